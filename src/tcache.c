/*
 * tcache.c - layer 4: per-thread cache tables, slot numbers, and retiring
 * caches at thread exit (see tcache.h for the model).
 *
 * Both the direct entries and the table pointer are initial-exec TLS, read
 * with fs-relative loads, also from the shared library. A pthread key gives
 * us a destructor at thread exit: its value is the thread's table, or a
 * marker for a thread that has direct entries only.
 */
#include "tcache.h"
#include "meta.h"
#include "list.h"
#include "os.h"

/* The table of threads that have none of their own yet: every entry is the
 * detached caches. Filled before any thread can look into it. */
static void *empty_table[MP_TCACHE_SLOTS];
__thread void **mp__tls_caches __attribute__((tls_model("initial-exec"))) = empty_table;

#define NONE ((mp__cache_hot *)mp__cache_none)
#define NONE8 NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE
_Static_assert(MP__TLS_FAST == 32, "the initialiser below has 32 entries");
__thread mp__cache_hot *mp__tls_fast[MP__TLS_FAST] __attribute__((tls_model("initial-exec"))) = { NONE8, NONE8, NONE8,
                                                                                                   NONE8 };
static char direct_only; /* the key's value of a thread with no table */

static void fill_table(void **table)
{
    for (size_t i = 0; i < MP_TCACHE_SLOTS; i++)
        table[i] = mp__cache_none;
}

__attribute__((constructor)) static void init_empty_table(void) { fill_table(empty_table); }

pthread_mutex_t mp__tcache_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under mp__tcache_lock. Slot 0 is never handed out. */
static uint64_t slot_used[MP_TCACHE_SLOTS / 64] = { 1 };
static void (*slot_retire[MP_TCACHE_SLOTS])(void *entry);

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* Thread exit: every entry of the thread's own goes back to its owner. */
static void thread_exit(void *arg)
{
    mp__lock(&mp__tcache_lock);
    for (uint32_t i = 1; i < MP_TCACHE_SLOTS; i++) {
        void *entry = mp__tcache_get(i);
        if (mp__tcache_is_own(entry))
            slot_retire[i](entry);
    }
    mp__unlock(&mp__tcache_lock);
    void **table = mp__tls_caches;
    mp__tls_caches = empty_table;
    if (arg != &direct_only)
        mp__meta_free(table);
}

static void make_exit_key(void)
{
    if (pthread_key_create(&exit_key, thread_exit) != 0)
        abort();
}

void **mp__tcache_entry(uint32_t slot)
{
    pthread_once(&exit_key_once, make_exit_key);
    if (slot < MP__TLS_FAST) {
        /* The key's value makes thread_exit run for this thread. */
        if (!pthread_getspecific(exit_key) && pthread_setspecific(exit_key, &direct_only) != 0) {
            errno = ENOMEM;
            return NULL;
        }
        return (void **)&mp__tls_fast[slot];
    }
    void **table = mp__tls_caches;
    if (table == empty_table) {
        table = mp__meta_alloc(MP_TCACHE_SLOTS * sizeof *table);
        if (!table)
            return NULL;
        fill_table(table);
        if (pthread_setspecific(exit_key, table) != 0) {
            mp__meta_free(table);
            errno = ENOMEM;
            return NULL;
        }
        mp__tls_caches = table;
    }
    return &table[slot];
}

uint32_t mp__tcache_slot_alloc(void (*retire)(void *entry))
{
    uint32_t slot = 0;
    mp__lock(&mp__tcache_lock);
    for (size_t w = 0; w < MP_TCACHE_SLOTS / 64 && !slot; w++) {
        if (~slot_used[w]) {
            unsigned b = (unsigned)__builtin_ctzll(~slot_used[w]);
            slot_used[w] |= (uint64_t)1 << b;
            slot = (uint32_t)(w * 64 + b);
            slot_retire[slot] = retire;
        }
    }
    mp__unlock(&mp__tcache_lock);
    return slot;
}

void mp__tcache_slot_free(uint32_t slot)
{
    if (slot) {
        slot_used[slot / 64] &= ~((uint64_t)1 << (slot % 64));
        slot_retire[slot] = NULL;
    }
}

/* ----------------------------------------------------------- cache groups */

/* A thread's block: this header, then the caches its entry points at. */
typedef struct group_block {
    mp__link link;      /* on the group's list of blocks */
    mp__cache_group *group;
    void **home;        /* the thread's entry that points at caches */
    mp__cache caches[];
} group_block;

static group_block *block_of(void *entry) { return mp__list_entry(entry, group_block, caches); }

/* Thread exit (mp__tcache_lock held): every attached cache goes back to
 * its owner, then the block is freed. */
static void group_retire(void *entry)
{
    group_block *b = block_of(entry);
    mp__cache_group *g = b->group;
    for (uint32_t i = 0; i < g->count; i++)
        if (b->caches[i].owner)
            g->retire_cache(&b->caches[i]);
    mp__list_remove(&g->blocks, &b->link);
    __atomic_store_n(&g->nblocks, g->nblocks - 1, __ATOMIC_RELAXED);
    mp__tcache_clear(b->home);
    mp__meta_free(b);
}

bool mp__cache_group_init(mp__cache_group *g, uint32_t count, void (*retire_cache)(mp__cache *c))
{
    *g = (mp__cache_group){ .count = count, .retire_cache = retire_cache };
    g->slot = mp__tcache_slot_alloc(group_retire);
    return g->slot != 0;
}

mp__cache *mp__cache_group_block(mp__cache_group *g)
{
    void *entry = mp__tcache_get(g->slot);
    if (mp_likely(mp__tcache_is_own(entry)))
        return entry;
    void **home = mp__tcache_entry(g->slot);
    group_block *b = home ? mp__meta_alloc(sizeof *b + g->count * sizeof(mp__cache)) : NULL;
    if (!b)
        return NULL;
    b->group = g;
    b->home = home;
    for (uint32_t i = 0; i < g->count; i++)
        mp__cache_reset(&b->caches[i]);
    mp__lock(&mp__tcache_lock);
    mp__list_push(&g->blocks, &b->link);
    __atomic_store_n(&g->nblocks, g->nblocks + 1, __ATOMIC_RELAXED);
    *home = b->caches;
    mp__unlock(&mp__tcache_lock);
    return b->caches;
}

void mp__cache_group_fini(mp__cache_group *g)
{
    while (g->blocks.head) {
        group_block *b = mp__list_entry(g->blocks.head, group_block, link);
        mp__list_remove(&g->blocks, &b->link);
        mp__tcache_clear(b->home);
        mp__meta_free(b);
    }
    g->nblocks = 0;
    mp__tcache_slot_free(g->slot);
    g->slot = 0;
}

void mp__tcache_fork_lock(void) { mp__lock(&mp__tcache_lock); }
void mp__tcache_fork_unlock(void) { mp__unlock(&mp__tcache_lock); }
