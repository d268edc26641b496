/*
 * tcache.h - layer 4: per-thread caches (magazines) of free objects.
 *
 * Each thread-safe pool gets a slot number (1 .. MP_TCACHE_SLOTS-1; 0 means
 * "no thread caches": every operation then takes the pool's lock). Each
 * thread has a table, indexed by slot, of its caches. A cache holds two
 * magazines (arrays of free objects): `loaded`, which the fast path pops and
 * pushes, and `prev`, kept to absorb alternating bursts at a magazine
 * boundary without touching the pool (Bonwick and Adams, 2001).
 *
 * Ownership and concurrency:
 *   - A cache belongs to its thread: only that thread pushes, pops and
 *     swaps its magazines, with plain loads and relaxed atomic stores of the
 *     fields other threads may read (n, nprev, allocs) - no lock, no
 *     read-modify-write on the fast path.
 *   - The cache is linked into its pool's list of caches under the pool
 *     lock, so the pool can sum its caches' counters for statistics and
 *     invalidate `verified` when it gives a chunk back.
 *   - mp__tcache_lock serialises the two ways a cache leaves its pool: the
 *     thread exits (its caches are flushed into their pools) or the pool is
 *     destroyed (its caches are emptied and detached, left for their threads
 *     to reuse). Lock order: mp__tcache_lock, then a pool lock.
 *   - A detached cache has pool == NULL, n == cap == 0 and verified == 1,
 *     so both fast paths fail over to the slow path, which re-attaches it.
 */
#ifndef MP_TCACHE_H
#define MP_TCACHE_H

#include "sync.h"

#define MP_TCACHE_SLOTS 1024

typedef struct mp__mag mp__mag;
struct mp__mag {
    mp__mag *next;   /* in the depot's full or empty list */
    size_t n;        /* objects held */
    void *objs[];    /* capacity: the pool's mag_cap */
};

typedef struct mp__tcache mp__tcache;
struct mp__tcache {
    void **objs;             /* loaded->objs, for the fast path */
    size_t n;                /* objects in the loaded magazine */
    size_t cap;              /* magazine capacity; 0 while detached */
    uintptr_t verified;      /* chunk base last checked to belong to pool; 1 = none */
    size_t allocs;           /* gets served by this cache */
    mp__mag *loaded, *prev;  /* the two magazines (prev may be NULL) */
    size_t nprev;            /* prev->n, mirrored for statistics */
    mp_objpool *pool;        /* the pool this cache serves; NULL when detached */
    mp__tcache *pool_prev, *pool_next; /* in the pool's cache list */
};

/* Relaxed atomic access for fields another thread may read. */
static inline size_t mp__ld(const size_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void mp__st(size_t *p, size_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uintptr_t mp__ldp(const uintptr_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void mp__stp(uintptr_t *p, uintptr_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/* The calling thread's cache table: never NULL, and no entry is NULL
 * (unused entries point at mp__tcache_none). */
extern mp__tcache mp__tcache_none;
extern __thread mp__tcache **mp__tls_caches __attribute__((tls_model("initial-exec")));

static inline mp__tcache *mp__tcache_get(uint32_t slot) { return mp__tls_caches[slot]; }

/* The calling thread's cache in slot, created empty and detached if there
 * is none yet. NULL with errno ENOMEM. */
mp__tcache *mp__tcache_for_slot(uint32_t slot);

/* Slot numbers for pools; 0 when all are taken. */
uint32_t mp__tcache_slot_alloc(void);
void mp__tcache_slot_free(uint32_t slot);

extern pthread_mutex_t mp__tcache_lock;

/* fork(): the thread-cache lock, taken first of all (fork.h). */
void mp__tcache_fork_lock(void);
void mp__tcache_fork_unlock(void);

/* Implemented by the pool kind (objpool.c): flush a cache of an exiting
 * thread into its pool and detach it. Called with mp__tcache_lock held. */
void mp__objpool_retire_cache(mp__tcache *c);

#endif /* MP_TCACHE_H */
