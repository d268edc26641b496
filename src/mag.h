/*
 * mag.h - layer 4: magazines, the caches that hold them, and the depot.
 *
 * A kind that owns slots of one size (an object pool; a heap, once per size
 * class) keeps its free slots at three levels, fastest first:
 *   1. caches (mp__cache): one per thread (tcache.h), or one inside a
 *      single-threaded pool; each holds two magazines: `loaded`, which the
 *      fast paths pop and push, and `prev`, kept to absorb alternating
 *      bursts at a magazine boundary without going to the depot (Bonwick and
 *      Adams, 2001);
 *   2. the depot (mp__depot): the owner's spare magazines, full and empty,
 *      exchanged whole with caches under the owner's lock;
 *   3. the owner's own store (slab bitmaps), which this layer never sees.
 *
 * A magazine's slot before objs[0] is a guard that always holds NULL. The
 * fast paths keep `top` (one past the last object loaded) and `end` (one
 * past the last slot), so:
 *     get:  o = top[-1]; if (o) { top--; count; return o; }   (empty: the guard)
 *     put:  if (top < end) *top++ = obj;
 * A detached cache (mp__cache_none, or one whose owner went away) points top
 * and end at a guard of its own, so both fast paths fail over to the slow
 * path without a test of their own.
 *
 * Ownership and concurrency. A cache belongs to its thread: only that
 * thread moves top, and it counts allocs; it stores both with relaxed
 * atomic stores (never a read-modify-write) because statistics read them
 * from other threads. Everything else of a cache (its magazines, their
 * counts, owner and list links) changes only under the owner's lock, which
 * statistics hold while they read. The depot is guarded by the owner's lock.
 *
 * Bookkeeping memory is bounded: the owner bounds its depot's full
 * magazines by its slot memory and its empty ones by a small constant
 * (mp__depot_surplus), so threads that come and go leave nothing behind.
 */
#ifndef MP_MAG_H
#define MP_MAG_H

#include "common.h"
#include "list.h"

typedef struct mp__mag mp__mag;
struct mp__mag {
    mp__mag *next;  /* in the depot's full or empty list */
    const void *filler; /* the cache that filled it (a full one in the depot), or NULL */
    size_t n;       /* objects held (while loaded: see mp__cache_sync) */
    void *guard;    /* always NULL: objs[-1] */
    void *objs[];   /* capacity: the owner's magazine size */
};

typedef struct mp__cache mp__cache;
struct mp__cache {
    /* The fast paths' fields, first, laid out as mp__cache_hot (mpool.h),
     * which the inline paths in the caller see. */
    void **top;         /* loaded->objs + objects loaded (relaxed atomic stores) */
    void **end;         /* loaded->objs + capacity; top == end when detached */
    uintptr_t verified; /* base of the chunk last checked to be the owner's; 1 = none
                           (relaxed atomic: whoever gives that chunk back clears it,
                           under the owner's lock) */
    size_t allocs;      /* gets served here (relaxed atomic stores) */
    /* Under the owner's lock. */
    mp__mag *loaded, *prev; /* prev may hold 0 or a full magazine's objects */
    size_t cap;         /* objects per magazine; 0 when detached */
    void *owner;        /* the pool (or size class) served; NULL when detached */
    mp__link link;      /* on the owner's list of caches */
    void **home;        /* the thread-table entry that points here; NULL for a pool's own cache */
};

_Static_assert(offsetof(mp__cache, top) == offsetof(mp__cache_hot, top) &&
                   offsetof(mp__cache, end) == offsetof(mp__cache_hot, end) &&
                   offsetof(mp__cache, verified) == offsetof(mp__cache_hot, verified) &&
                   offsetof(mp__cache, allocs) == offsetof(mp__cache_hot, allocs),
               "mp__cache starts as mp__cache_hot (the ABI of the inline paths)");
_Static_assert(sizeof(mp__cache) == MP__CACHE_STRIDE, "a block of caches is an array of MP__CACHE_STRIDE (mpool.h)");

/* Relaxed atomic access for fields another thread may read. */
static inline size_t mp__ld(const size_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void mp__st(size_t *p, size_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uintptr_t mp__ldp(const uintptr_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void mp__stp(uintptr_t *p, uintptr_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void **mp__ldtop(void **const *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void mp__sttop(void ***p, void **v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* Detached caches: every entry of a thread's cache table that has no cache
 * of its own points here (enough of them for a heap's size classes). Their
 * top and end point just past mp__null_guard. */
#define MP_CACHE_NONE_COUNT 72
extern mp__cache mp__cache_none[MP_CACHE_NONE_COUNT];
extern void *const mp__null_guard[1];

/* Bytes of one magazine of cap objects. */
static inline size_t mp__mag_bytes(size_t cap) { return sizeof(mp__mag) + cap * sizeof(void *); }
/* A new empty magazine (metadata memory), or NULL with errno ENOMEM. */
mp__mag *mp__mag_new(size_t cap);
void mp__mag_free(mp__mag *m);

/* ----------------------------------------------------------------- caches */

/* Objects in c's loaded magazine. The owner thread, or anyone holding the
 * owner's lock after the thread quiesced, gets the exact count. */
static inline size_t mp__cache_loaded(const mp__cache *c)
{
    return c->loaded ? (size_t)(mp__ldtop(&c->top) - c->loaded->objs) : 0;
}
/* Objects in c's prev magazine (owner's lock held). */
static inline size_t mp__cache_prev(const mp__cache *c) { return c->prev ? c->prev->n : 0; }

/* Makes c a detached cache: nothing loaded, both fast paths fail. */
void mp__cache_reset(mp__cache *c);
/* Attaches detached c to owner with two empty magazines of cap objects. */
void mp__cache_attach(mp__cache *c, void *owner, size_t cap, mp__mag *a, mp__mag *b);
/* Detaches c (owner's lock held): its magazines, with their counts synced,
 * go to *loaded and *prev for the caller to hand on. */
void mp__cache_detach(mp__cache *c, mp__mag **loaded, mp__mag **prev);

/* Saves the loaded magazine's count into the magazine itself. */
static inline void mp__cache_sync(mp__cache *c) { c->loaded->n = (size_t)(c->top - c->loaded->objs); }

/* Loads m (its n objects) as c's magazine. */
void mp__cache_load(mp__cache *c, mp__mag *m);
/* Swaps loaded and prev (owner's lock held, for statistics' sake). */
void mp__cache_swap(mp__cache *c);

/* ------------------------------------------------------------------ depot */

typedef struct mp__depot {
    mp__mag *full, *empty; /* singly linked through next */
    size_t nfull, nempty;
    size_t objs;           /* objects in the full magazines */
    size_t cap;            /* objects per magazine */
} mp__depot;

void mp__depot_init(mp__depot *d, size_t cap);
void mp__depot_push_full(mp__depot *d, mp__mag *m);
mp__mag *mp__depot_pop_full(mp__depot *d);
void mp__depot_push_empty(mp__depot *d, mp__mag *m);
mp__mag *mp__depot_pop_empty(mp__depot *d);
/* Frees every magazine (objects in full ones are the caller's to have
 * taken out first). */
void mp__depot_free_all(mp__depot *d);
/* Bytes of the depot's magazines. */
static inline size_t mp__depot_bytes(const mp__depot *d) { return (d->nfull + d->nempty) * mp__mag_bytes(d->cap); }

/* Frees empty magazines past max_empty; returns how many full ones are
 * past max_full (for the owner to drain into its own store and push back
 * as empty: the next call frees them). */
size_t mp__depot_surplus(mp__depot *d, size_t max_full, size_t max_empty);

/* Cache-depot exchanges (owner's lock held). refill: c's loaded magazine
 * is empty and prev is too; full (from the depot, checked by the owner if
 * another cache filled it) becomes loaded, the old loaded becomes prev,
 * the old prev goes to the depot's empties. rotate: c's loaded and prev
 * magazines are full; loaded becomes prev, spare (empty) is loaded, and
 * the old prev is returned, marked as filled by c, for the owner to give
 * to the depot. */
void mp__cache_refill(mp__cache *c, mp__depot *d, mp__mag *full);
mp__mag *mp__cache_rotate(mp__cache *c, mp__mag *spare);

#endif /* MP_MAG_H */
