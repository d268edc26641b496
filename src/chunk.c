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
 *         (at most MP_CHUNK_HOT of them, or 1/MP_CHUNK_HOT_SHARE of the
 *         live standard chunks when that is more, up to MP_CHUNK_HOT_MAX);
 *   cold  older free chunks, decommitted: zero, no memory, one page fault
 *         per page touched (hot + cold <= MP_CHUNK_RETAIN bytes, or the
 *         live standard chunks' bytes when that is more);
 *   fresh the untouched rest of the last batch mapped: standard chunks
 *         are mapped MP_CHUNK_BATCH at a time, so one mmap (and the two
 *         munmaps that align it) serves a batch, not each chunk;
 *   a new batch from the OS.
 * Chunks past the retention bound go back to the OS one by one (munmap of
 * a piece of a batch is fine).
 *
 * Larger chunks freed with mp__chunk_free_cached wait in large_cache,
 * oldest first, still backed: at most MP_CHUNK_LARGE_SLOTS of them and
 * MP_CHUNK_LARGE_RETAIN bytes, the oldest given back to make room (at
 * most MP_CHUNK_LARGE_BATCH per free: a chunk that needs more is not kept).
 * mp__chunk_alloc_fit takes the smallest that fits its bounds. The cache
 * is for turnover: while standard chunks grow on net, the oldest cached
 * chunks go back as much as they grew (large_shed_for_growth).
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
/* Live standard chunks (registered): what the hot bound scales with. */
static size_t live_standard;
/* [fresh_next, fresh_end): untouched standard chunks of the last batch. */
static char *fresh_next, *fresh_end;

/* Free chunks past the standard size, kept backed: [0, large_count),
 * oldest first; large_bytes is the sum of their sizes. */
typedef struct large_entry {
    void *mem;
    size_t size;
} large_entry;
static large_entry large_cache[MP_CHUNK_LARGE_SLOTS];
static size_t large_count, large_bytes;
/* Net growth of standard chunks' memory since the large cache last gave
 * a chunk back for it: bytes taken anew (cold, fresh or a new batch) less
 * bytes decommitted or given back, never below 0; see
 * large_shed_for_growth. */
static size_t large_growth;

static size_t slot_of(uintptr_t base) { return (base >> MP_CHUNK_SHIFT) & (LEAF_SLOTS - 1); }

/* The leaf for base, or NULL if it has none yet. */
static leaf *leaf_of(uintptr_t base) { return __atomic_load_n(&registry[base >> L1_SHIFT], __ATOMIC_ACQUIRE); }

/* The leaf for base, made if need be; NULL when base is past the
 * registry's address space or no leaf can be made. Under chunk_lock. */
static leaf *registry_leaf(uintptr_t base)
{
    if (base >> L1_SHIFT >= L1_COUNT)
        return NULL;
    leaf *lf = leaf_of(base);
    if (!lf && (lf = mp__os_reserve(sizeof(leaf), 0)) != NULL)
        __atomic_store_n(&registry[base >> L1_SHIFT], lf, __ATOMIC_RELEASE);
    return lf;
}

/* Sets base's entry to owner (the chunk goes live) or to NULL. Under
 * chunk_lock. */
static bool registry_set(uintptr_t base, void *owner)
{
    if (!owner && (base >> L1_SHIFT >= L1_COUNT || !leaf_of(base)))
        return true;
    leaf *lf = registry_leaf(base);
    if (!lf)
        return false;
    __atomic_store_n(&lf->owner[slot_of(base)], owner, __ATOMIC_RELEASE);
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

/* How many free standard chunks may stay backed: MP_CHUNK_HOT, or more
 * in a program with many live ones, whose turnover is larger too (a
 * chunk decommitted and taken again costs a page fault per page). Under
 * chunk_lock. */
static size_t hot_bound(void)
{
    size_t scaled = live_standard / MP_CHUNK_HOT_SHARE;
    return scaled < MP_CHUNK_HOT ? MP_CHUNK_HOT : scaled > MP_CHUNK_HOT_MAX ? MP_CHUNK_HOT_MAX : scaled;
}

/* How many bytes of free standard chunks may be kept in all:
 * MP_CHUNK_RETAIN, or as many as are live when that is more. Past the hot
 * ones they are decommitted, address space only: keeping them saves the
 * munmap and the mmap that would follow, each of which makes every CPU
 * running the process flush its TLB. Under chunk_lock. */
static size_t retain_bound(void)
{
    size_t live = live_standard * MP_CHUNK_SIZE;
    return live > MP_CHUNK_RETAIN ? live : MP_CHUNK_RETAIN;
}

/* Gives the n cached chunks of gone back to the OS. Outside chunk_lock. */
static void release_entries(const large_entry *gone, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mp__track_release(gone[i].mem, gone[i].size);
        mp__os_release(gone[i].mem, gone[i].size);
    }
}

/* Takes the oldest n cached chunks out of the cache into gone. Under
 * chunk_lock. */
static void large_take_oldest(size_t n, large_entry *gone)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += large_cache[i].size;
    memcpy(gone, large_cache, n * sizeof *large_cache);
    memmove(large_cache, &large_cache[n], (large_count - n) * sizeof *large_cache);
    large_count -= n;
    large_bytes -= bytes;
}

/* A standard chunk is about to take memory anew (no hot one is left).
 * When that outpaces the standard chunks' memory going back, the program
 * is growing, not turning memory over, and the large cache is for
 * turnover: once the net growth reaches the oldest cached chunk's size,
 * that chunk goes (into gone; the count is returned), so that growth
 * replaces cached memory rather than adding to it. Under chunk_lock. */
static size_t large_shed_for_growth(large_entry *gone)
{
    if (!large_count) {
        large_growth = 0;
        return 0;
    }
    large_growth += MP_CHUNK_SIZE;
    size_t n = 0, bytes = 0;
    while (n < large_count && n < MP_CHUNK_LARGE_BATCH && large_growth >= bytes + large_cache[n].size)
        bytes += large_cache[n++].size;
    large_growth -= bytes;
    large_take_oldest(n, gone);
    return n;
}

/* A standard chunk whose first zero_len bytes are zero, from the cheapest
 * place that has one. */
static void *standard_chunk(size_t zero_len)
{
    void *mem = NULL;
    bool dirty = false, idle = false;
    large_entry gone[MP_CHUNK_LARGE_BATCH];
    size_t ngone = 0;
    mp__lock(&chunk_lock);
    if (!hot)
        ngone = large_shed_for_growth(gone);
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
    release_entries(gone, ngone);
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

/* Fills in the header of mem, a chunk of size bytes, and registers it;
 * gives mem back to the OS when the registry cannot take it. */
static mp__chunk *chunk_register(void *mem, size_t size, uint32_t kind, void *owner, uintptr_t tag)
{
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
    if (ok && size == MP_CHUNK_SIZE)
        live_standard++;
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

/* A chunk's size for a request of size bytes: MP_CHUNK_SIZE, or whole
 * pages past it (only its start must be chunk-aligned); 0 on overflow. */
static size_t chunk_bytes(size_t size)
{
    if (size > SIZE_MAX - MP_CHUNK_SIZE)
        return 0;
    return size <= MP_CHUNK_SIZE ? MP_CHUNK_SIZE : mp__align_up(size, mp__os_page_size());
}

static mp__chunk *chunk_alloc(size_t size, size_t zero_len, uint32_t kind, void *owner, uintptr_t tag)
{
    if (!(size = chunk_bytes(size))) {
        errno = ENOMEM;
        return NULL;
    }
    if (zero_len < sizeof(mp__chunk))
        zero_len = sizeof(mp__chunk);
    void *mem = size == MP_CHUNK_SIZE ? standard_chunk(zero_len) : mp__os_reserve(size, MP_CHUNK_SIZE);
    if (!mem)
        return NULL;
    return chunk_register(mem, size, kind, owner, tag);
}

mp__chunk *mp__chunk_alloc(size_t size, size_t zero_len, uint32_t kind, void *owner)
{
    return chunk_alloc(size, zero_len, kind, owner, 0);
}

mp__chunk *mp__chunk_alloc_slab(size_t size, size_t zero_len, uint32_t kind, void *owner)
{
    return chunk_alloc(size, zero_len, kind, owner, MP__REG_SLAB);
}

/* Takes the smallest cached chunk of [size, max_size] bytes out of the
 * cache, or returns NULL. Under chunk_lock. */
static void *large_take(size_t size, size_t max_size, size_t *got)
{
    size_t best = large_count;
    for (size_t i = 0; i < large_count; i++)
        if (large_cache[i].size >= size && large_cache[i].size <= max_size &&
            (best == large_count || large_cache[i].size < large_cache[best].size))
            best = i;
    if (best == large_count)
        return NULL;
    void *mem = large_cache[best].mem;
    *got = large_cache[best].size;
    large_bytes -= *got;
    memmove(&large_cache[best], &large_cache[best + 1], (large_count - best - 1) * sizeof *large_cache);
    large_count--;
    return mem;
}

mp__chunk *mp__chunk_alloc_fit(size_t size, size_t max_size, size_t zero_len, uint32_t kind, void *owner)
{
    if (!(size = chunk_bytes(size))) {
        errno = ENOMEM;
        return NULL;
    }
    if (size == MP_CHUNK_SIZE)
        return chunk_alloc(size, zero_len, kind, owner, 0);
    size_t got = 0;
    mp__lock(&chunk_lock);
    void *mem = large_count ? large_take(size, max_size, &got) : NULL;
    mp__unlock(&chunk_lock);
    if (!mem)
        return chunk_alloc(size, zero_len, kind, owner, 0);
    mp__track_release(mem, got); /* undoes mp__chunk_free_cached's mp__track_chunk_idle */
    if (zero_len < sizeof(mp__chunk))
        zero_len = sizeof(mp__chunk);
    memset(mem, 0, zero_len < got ? zero_len : got);
    return chunk_register(mem, got, kind, owner, 0);
}

/* Puts the large chunk c (unregistered, of size bytes) into the cache,
 * making room by taking the oldest out into gone (*ngone of them, at most
 * MP_CHUNK_LARGE_BATCH), which the caller gives back to the OS outside
 * the lock, with c itself when it is not kept (false). Under chunk_lock. */
static bool large_keep(void *c, size_t size, large_entry *gone, size_t *ngone)
{
    *ngone = 0;
    if (size > MP_CHUNK_LARGE_RETAIN / 4)
        return false;
    size_t drop = 0, dropped = 0;
    while (drop < large_count &&
           (large_count - drop >= MP_CHUNK_LARGE_SLOTS || large_bytes - dropped + size > MP_CHUNK_LARGE_RETAIN)) {
        if (drop == MP_CHUNK_LARGE_BATCH)
            break;
        dropped += large_cache[drop++].size;
    }
    large_take_oldest(drop, gone);
    *ngone = drop;
    if (large_count >= MP_CHUNK_LARGE_SLOTS || large_bytes + size > MP_CHUNK_LARGE_RETAIN)
        return false; /* no room made within the batch: c goes too */
    large_cache[large_count++] = (large_entry){ c, size };
    large_bytes += size;
    return true;
}

static void chunk_free(mp__chunk *c, bool cache)
{
    size_t size = c->size;
    uintptr_t alias = c->alias; /* read before the tracker poisons the chunk */
    c->magic = 0;
    bool standard = size == MP_CHUNK_SIZE;
    cache = cache && !standard && !alias;
    if (standard || cache) /* before a list makes it reachable: then it may be reused at once */
        mp__track_chunk_idle(c, size);
    mp__lock(&chunk_lock);
    mp__track_chunk_unused(c, size);
    registry_set((uintptr_t)c, NULL);
    if (alias)
        registry_set(alias, NULL);
    large_entry gone[MP_CHUNK_LARGE_BATCH];
    size_t ngone = 0;
    if (cache && large_keep(c, size, gone, &ngone)) {
        mp__unlock(&chunk_lock);
        release_entries(gone, ngone);
        return;
    }
    if (standard)
        live_standard--;
    if (standard && hot_count < hot_bound()) {
        *(void **)c = hot;
        hot = c;
        hot_count++;
        retained_bytes += size;
        mp__unlock(&chunk_lock);
        return;
    }
    bool keep = standard && retained_bytes + size <= retain_bound();
    if (standard) /* decommitted or given back: memory the program no longer holds */
        large_growth = large_growth > size ? large_growth - size : 0;
    mp__unlock(&chunk_lock);
    release_entries(gone, ngone); /* a large chunk not kept: what large_keep took out */
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

void mp__chunk_free(mp__chunk *c)
{
    if (c)
        chunk_free(c, false);
}

void mp__chunk_free_cached(mp__chunk *c)
{
    if (c)
        chunk_free(c, true);
}

mp__chunk *mp__chunk_resize(mp__chunk *c, size_t new_size)
{
    size_t old_size = c->size;
    if (mp__os_resize(c, old_size, new_size)) {
        mp__lock(&chunk_lock);
        mp__track_chunk_unused(c, old_size);
        mp__track_chunk_used(c, new_size);
        mp__unlock(&chunk_lock);
        if (new_size < old_size)
            mp__track_release((char *)c + new_size, old_size - new_size);
        c->size = new_size;
        return c;
    }
    /* Moving: the new place is reserved and its registry leaf made first,
     * so that once the pages move nothing can fail. */
    char *to = mp__os_reserve_space_aligned(new_size, MP_CHUNK_SIZE);
    if (!to)
        return NULL;
    mp__lock(&chunk_lock);
    bool ok = registry_leaf((uintptr_t)to) != NULL;
    void *entry = __atomic_load_n(&leaf_of((uintptr_t)c)->owner[slot_of((uintptr_t)c)], __ATOMIC_RELAXED);
    if (ok) /* unregistered while the pages move: a lookup finds nothing rather than reading them */
        registry_set((uintptr_t)c, NULL);
    mp__unlock(&chunk_lock);
    if (!ok || !mp__os_move(c, old_size, new_size, to)) {
        mp__lock(&chunk_lock);
        if (ok)
            registry_set((uintptr_t)c, entry);
        mp__unlock(&chunk_lock);
        mp__os_release(to, new_size);
        errno = ENOMEM;
        return NULL;
    }
    mp__chunk *n = (mp__chunk *)to;
    n->size = new_size;
    mp__lock(&chunk_lock);
    mp__track_chunk_unused(c, old_size);
    registry_set((uintptr_t)n, entry);
    mp__track_chunk_used(n, new_size);
    mp__unlock(&chunk_lock);
    return n;
}

size_t mp__chunk_retained(void)
{
    mp__lock(&chunk_lock);
    size_t n = retained_bytes;
    mp__unlock(&chunk_lock);
    return n;
}

size_t mp__chunk_cached_large(void)
{
    mp__lock(&chunk_lock);
    size_t n = large_bytes;
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
    large_growth = 0;
    mp__unlock(&chunk_lock);
    release_list(h);
    release_list(c);
    mp__os_release(fresh, fresh_bytes);
    for (;;) { /* a batch at a time, each out of the cache before it is unmapped */
        large_entry large[MP_CHUNK_LARGE_BATCH];
        mp__lock(&chunk_lock);
        size_t n = large_count < MP_CHUNK_LARGE_BATCH ? large_count : MP_CHUNK_LARGE_BATCH;
        large_take_oldest(n, large);
        mp__unlock(&chunk_lock);
        if (!n)
            break;
        release_entries(large, n);
    }
}

void mp__chunk_fork_lock(void) { mp__lock(&chunk_lock); }
void mp__chunk_fork_unlock(void) { mp__unlock(&chunk_lock); }
