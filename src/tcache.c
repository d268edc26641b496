/*
 * tcache.c - layer 4: per-thread cache tables, slot numbers, and flushing
 * at thread exit (see tcache.h for the model).
 *
 * The table pointer is an initial-exec TLS variable so the fast path reads
 * it with one fs-relative load, also from the shared library. A pthread key
 * whose value is the table gives us a destructor at thread exit.
 */
#include "tcache.h"
#include "sync.h"
#include "os.h"

/* Every table entry points at a cache; slots with no cache of their own
 * point at this detached one (n == cap == 0, verified == 1), so the fast
 * paths need no NULL test: they simply fail over to the slow path. */
mp__tcache mp__tcache_none = { .verified = 1 };
static mp__tcache *empty_table[MP_TCACHE_SLOTS];
__thread mp__tcache **mp__tls_caches __attribute__((tls_model("initial-exec"))) = empty_table;

static void fill_table(mp__tcache **table)
{
    for (size_t i = 0; i < MP_TCACHE_SLOTS; i++)
        table[i] = &mp__tcache_none;
}

/* Runs at load time, before any thread can look into the empty table. */
__attribute__((constructor)) static void init_empty_table(void) { fill_table(empty_table); }

pthread_mutex_t mp__tcache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t slot_used[MP_TCACHE_SLOTS / 64] = { 1 }; /* slot 0 is never handed out */

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* Thread exit: flush every cache into its pool, then free them. */
static void thread_exit(void *arg)
{
    mp__tcache **table = arg;
    mp__lock(&mp__tcache_lock);
    for (size_t i = 0; i < MP_TCACHE_SLOTS; i++) {
        mp__tcache *c = table[i];
        if (c == &mp__tcache_none)
            continue;
        if (c->pool)
            mp__objpool_retire_cache(c);
        mp__meta_free(c->loaded);
        mp__meta_free(c->prev);
        mp__meta_free(c);
    }
    mp__unlock(&mp__tcache_lock);
    mp__tls_caches = empty_table;
    mp__meta_free(table);
}

static void make_exit_key(void)
{
    if (pthread_key_create(&exit_key, thread_exit) != 0)
        abort();
}

mp__tcache *mp__tcache_for_slot(uint32_t slot)
{
    mp__tcache **table = mp__tls_caches;
    if (table == empty_table) {
        pthread_once(&exit_key_once, make_exit_key);
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
    mp__tcache *c = table[slot];
    if (c == &mp__tcache_none) {
        c = mp__meta_alloc(sizeof *c);
        if (!c)
            return NULL;
        c->verified = 1;
        table[slot] = c;
    }
    return c;
}

uint32_t mp__tcache_slot_alloc(void)
{
    uint32_t slot = 0;
    mp__lock(&mp__tcache_lock);
    for (size_t w = 0; w < MP_TCACHE_SLOTS / 64 && !slot; w++) {
        if (~slot_used[w]) {
            unsigned b = (unsigned)__builtin_ctzll(~slot_used[w]);
            slot_used[w] |= (uint64_t)1 << b;
            slot = (uint32_t)(w * 64 + b);
        }
    }
    mp__unlock(&mp__tcache_lock);
    return slot;
}

/* Called with mp__tcache_lock held (by the pool's destroy). */
void mp__tcache_slot_free(uint32_t slot)
{
    if (slot)
        slot_used[slot / 64] &= ~((uint64_t)1 << (slot % 64));
}

void mp__tcache_fork_lock(void) { mp__lock(&mp__tcache_lock); }
void mp__tcache_fork_unlock(void) { mp__unlock(&mp__tcache_lock); }
