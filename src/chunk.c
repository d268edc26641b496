/*
 * chunk.c - layer 2: size-aligned chunks, the registry of live chunks, and
 * retention of free chunks (see chunk.h).
 *
 * Registry: a two-level table over the 47-bit user address space. Level 1
 * is a static array indexed by addr >> 32; each level-2 leaf holds one
 * owner pointer per MP_CHUNK_SIZE of a 4 GiB region and is made on first
 * use, never freed. Entries are written under chunk_lock with release
 * stores (the owner after the header is filled in, NULL before the chunk's
 * memory is reused); lookups are lock-free (acquire loads).
 *
 * Where standard chunks come from, cheapest first (all under chunk_lock):
 *   hot   chunks freed lately, still backed by memory: reused with no
 *         system call, zeroing only the zero_len bytes the caller needs
 *         (at most MP_CHUNK_HOT of them);
 *   cold  older free chunks, decommitted: zero, no memory, one page fault
 *         per page touched (hot + cold <= MP_CHUNK_RETAIN bytes);
 *   fresh the untouched rest of the last batch mapped: standard chunks
 *         are mapped MP_CHUNK_BATCH at a time, so one mmap (and the two
 *         munmaps that align it) serves a batch, not each chunk;
 *   a new batch from the OS.
 * Chunks past the retention bound go back to the OS one by one (munmap of
 * a piece of a batch is fine).
 *
 * Under a memory tool, hot and cold chunks are no-access but for their
 * first word (the list link): a pointer kept past its pool's destroy
 * touches an idle chunk, and the tool reports it (track.h).
 */
#include "chunk.h"
#include "error.h"
#include "sync.h"
#include "os.h"
#include "track.h"


#define L1_SHIFT MP_REG_L1_SHIFT
#define L1_COUNT MP_REG_L1_COUNT
#define LEAF_SLOTS MP_REG_LEAF_SLOTS

typedef mp__reg_leaf leaf;

/* Written under chunk_lock with release stores; read lock-free with acquire
 * loads (mp__chunk_reg_entry). */
leaf *mp__registry[L1_COUNT];
/* The registry entry of a live chunk made with no owner (never a pool). */
_Alignas(8) char mp__chunk_no_owner; /* aligned: entries carry tags in their low bits */
#define registry mp__registry
static pthread_mutex_t chunk_lock = PTHREAD_MUTEX_INITIALIZER;

/* Free standard chunks kept for reuse, each list linked through the
 * chunks' first word. retained_bytes counts both lists. */
static void *hot, *cold;
static size_t hot_count, retained_bytes;
/* [fresh_next, fresh_end): untouched standard chunks of the last batch. */
static char *fresh_next, *fresh_end;

/* Sets base's entry to owner (the chunk goes live) or to NULL. */
static bool registry_set(uintptr_t base, void *owner)
{
    size_t l1 = base >> L1_SHIFT;
    if (l1 >= L1_COUNT)
        return false;
    leaf *lf = __atomic_load_n(&registry[l1], __ATOMIC_ACQUIRE);
    if (!lf) {
        if (!owner)
            return true;
        lf = mp__os_reserve(sizeof(leaf), 0);
        if (!lf)
            return false;
        __atomic_store_n(&registry[l1], lf, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&lf->owner[(base >> MP_CHUNK_SHIFT) & (LEAF_SLOTS - 1)], owner, __ATOMIC_RELEASE);
    return true;
}

mp__chunk *mp__chunk_lookup(const void *p)
{
    uintptr_t base = (uintptr_t)p & ~(uintptr_t)MP_CHUNK_MASK;
    void *entry = mp__chunk_reg_entry(base);
    if (!entry)
        return NULL;
    mp__chunk *c = mp__chunk_entry_is_alias(entry) ? (mp__chunk *)((uintptr_t)entry & ~MP__REG_TAGS) : (mp__chunk *)base;
    return c->magic == MP_CHUNK_MAGIC ? c : NULL;
}

bool mp__chunk_alias(mp__chunk *c, uintptr_t unit)
{
    mp__lock(&chunk_lock);
    bool ok = registry_set(unit, (void *)((uintptr_t)c | 1));
    if (ok)
        c->alias = unit;
    mp__unlock(&chunk_lock);
    if (!ok)
        errno = ENOMEM;
    return ok;
}

static void *list_pop(void **list)
{
    void *mem = *list;
    *list = *(void **)mem;
    *(void **)mem = NULL;
    retained_bytes -= MP_CHUNK_SIZE;
    return mem;
}

/* Maps a new batch; returns its first chunk and makes the rest the fresh
 * range (or gives it back, if another thread refilled the range meanwhile). */
static void *map_batch(void)
{
    char *b = mp__os_reserve(MP_CHUNK_BATCH * MP_CHUNK_SIZE, MP_CHUNK_SIZE);
    if (!b)
        return NULL;
    char *rest = b + MP_CHUNK_SIZE, *end = b + MP_CHUNK_BATCH * MP_CHUNK_SIZE;
    mp__lock(&chunk_lock);
    if (fresh_next == fresh_end) {
        fresh_next = rest;
        fresh_end = end;
        rest = NULL;
    }
    mp__unlock(&chunk_lock);
    if (rest)
        mp__os_release(rest, (size_t)(end - rest));
    return b;
}

/* A standard chunk whose first zero_len bytes are zero, from the cheapest
 * place that has one. */
static void *standard_chunk(size_t zero_len)
{
    void *mem = NULL;
    bool dirty = false, idle = false;
    mp__lock(&chunk_lock);
    if (hot) {
        mem = list_pop(&hot);
        hot_count--;
        dirty = idle = true;
    } else if (cold) {
        mem = list_pop(&cold);
        idle = true;
    } else if (fresh_next != fresh_end) {
        mem = fresh_next;
        fresh_next += MP_CHUNK_SIZE;
    }
    mp__unlock(&chunk_lock);
    if (!mem)
        return map_batch();
    if (idle)
        mp__track_release(mem, MP_CHUNK_SIZE); /* undoes mp__chunk_free's mp__track_chunk_idle */
    if (dirty) /* far cheaper than decommit and page faults */
        memset(mem, 0, zero_len < MP_CHUNK_SIZE ? zero_len : MP_CHUNK_SIZE);
    return mem;
}

/* The OS gave memory at or above 2^MP_REG_ADDR_BITS, which the registry
 * cannot hold (a platform whose user address space is larger, such as
 * Linux on arm64 with 48-bit addresses, or a process that asked mmap for
 * high addresses): said once, through the error handler, since every pool
 * would fail with ENOMEM from then on. */
static MP_COLD void address_unsupported(const void *p)
{
    static int said;
    if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        return;
    mp__misuse("unsupported platform: the OS mapped memory above the 47-bit user address space that the chunk "
               "registry covers (every allocation of a pool fails with ENOMEM; see \"Supported platforms\" in "
               "mpool's README)",
               NULL, NULL, p);
}

static mp__chunk *chunk_alloc(size_t size, size_t zero_len, uint32_t kind, void *owner, uintptr_t tag)
{
    if (size > SIZE_MAX - MP_CHUNK_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    /* A chunk past the standard size is mapped to the page, not to the
     * next MP_CHUNK_SIZE: only its start must be chunk-aligned. */
    size = size <= MP_CHUNK_SIZE ? MP_CHUNK_SIZE : mp__align_up(size, mp__os_page_size());
    if (zero_len < sizeof(mp__chunk))
        zero_len = sizeof(mp__chunk);
    void *mem = size == MP_CHUNK_SIZE ? standard_chunk(zero_len) : mp__os_reserve(size, MP_CHUNK_SIZE);
    if (!mem)
        return NULL;
    mp__chunk *c = mem;
    c->kind = kind;
    c->owner = owner;
    c->size = size;
    c->obj_size = 0;
    c->alias = 0;
    c->magic = MP_CHUNK_MAGIC;
    mp__lock(&chunk_lock);
    bool ok = registry_set((uintptr_t)c, (void *)((uintptr_t)(owner ? owner : &mp__chunk_no_owner) | tag));
    if (ok) /* under the lock, which fork() takes: a child never inherits LSan's lock held */
        mp__track_chunk_used(c, size);
    mp__unlock(&chunk_lock);
    if (!ok) {
        if ((uintptr_t)c >> MP_REG_ADDR_BITS)
            address_unsupported(c);
        mp__os_release(mem, size);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

mp__chunk *mp__chunk_alloc(size_t size, size_t zero_len, uint32_t kind, void *owner)
{
    return chunk_alloc(size, zero_len, kind, owner, 0);
}

mp__chunk *mp__chunk_alloc_slab(size_t size, size_t zero_len, uint32_t kind, void *owner)
{
    return chunk_alloc(size, zero_len, kind, owner, MP__REG_SLAB);
}

void mp__chunk_free(mp__chunk *c)
{
    if (!c)
        return;
    size_t size = c->size;
    uintptr_t alias = c->alias; /* read before the tracker poisons the chunk */
    c->magic = 0;
    bool standard = size == MP_CHUNK_SIZE;
    if (standard) /* before a list makes it reachable: then it may be reused at once */
        mp__track_chunk_idle(c, size);
    mp__lock(&chunk_lock);
    mp__track_chunk_unused(c, size);
    registry_set((uintptr_t)c, NULL);
    if (alias)
        registry_set(alias, NULL);
    if (standard && hot_count < MP_CHUNK_HOT) {
        *(void **)c = hot;
        hot = c;
        hot_count++;
        retained_bytes += size;
        mp__unlock(&chunk_lock);
        return;
    }
    bool keep = standard && retained_bytes + size <= MP_CHUNK_RETAIN;
    mp__unlock(&chunk_lock);
    if (!keep) {
        mp__track_release(c, size); /* no poisoning outlives the mapping */
        mp__os_release(c, size);
        return;
    }
    /* Decommit outside the lock: the chunk is no longer reachable. */
    mp__os_decommit(c, size);
    mp__lock(&chunk_lock);
    *(void **)c = cold;
    cold = c;
    retained_bytes += size;
    mp__unlock(&chunk_lock);
}

size_t mp__chunk_retained(void)
{
    mp__lock(&chunk_lock);
    size_t n = retained_bytes;
    mp__unlock(&chunk_lock);
    return n;
}

static void release_list(void *list)
{
    while (list) {
        void *next = *(void **)list;
        mp__track_release(list, MP_CHUNK_SIZE); /* no poisoning outlives the mapping */
        mp__os_release(list, MP_CHUNK_SIZE);
        list = next;
    }
}

void mp__chunk_release_retained(void)
{
    mp__lock(&chunk_lock);
    void *h = hot, *c = cold;
    char *fresh = fresh_next;
    size_t fresh_bytes = (size_t)(fresh_end - fresh_next);
    hot = cold = NULL;
    hot_count = retained_bytes = 0;
    fresh_next = fresh_end = NULL;
    mp__unlock(&chunk_lock);
    release_list(h);
    release_list(c);
    mp__os_release(fresh, fresh_bytes);
}

void mp__chunk_fork_lock(void) { mp__lock(&chunk_lock); }
void mp__chunk_fork_unlock(void) { mp__unlock(&chunk_lock); }
