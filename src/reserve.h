/*
 * reserve.h - layer 6: a reserve's layout (reserve.c) and its per-thread
 * counts (reserve_counts.c). The model is at the top of reserve.c.
 */
#ifndef MP_RESERVE_H
#define MP_RESERVE_H

#include <stdatomic.h>

#include "common.h"
#include "list.h"
#include "ptrset.h"
#include "sync.h"
#include "tcache.h"
#include "tree.h"

/* Recently freed elements remembered in checked mode (to say "double free"). */
#define MP_RESERVE_FREED_RING 256

/* Checked mode: the elements freed last, to tell a double free from a
 * foreign pointer. */
typedef struct freed_ring {
    struct {
        void *elem;       /* NULL: an empty entry */
        const void *site; /* return address of the free */
    } at[MP_RESERVE_FREED_RING];
    size_t next;          /* the entry written next (the oldest) */
} freed_ring;

struct mp_reserve {
    mp__node node; /* first: the pool tree's view of this reserve */
    char node_pad[MP__HOT_OFFSET - sizeof(mp__node)];
    /* The inline paths' (mpool.h): the source, the direct TLS entry of the
     * per-thread counts (0: every call comes to the library), and
     * free_locked. */
    mp__reserve_hot hot;
    /* Every call takes the slow paths: checked mode, or (checked mode's
     * graveyard) destroyed. Set at create and destroy. */
    bool slow;
    uint32_t slot;              /* the tcache slot of the per-thread counts; 0: none */
    mp__list counts;            /* under lock: every thread's counts */
    size_t ncounts;             /* under lock: how many */

    size_t elem_size;     /* 0: unknown (a user source without elem_size) */
    bool checked;         /* checked mode, decided at create */
    bool tracked;         /* tell Valgrind/ASan elements in the reserve are no-access */
    mp__leak_policy leak; /* checked mode: what destroy does with elements out */

    pthread_mutex_t lock;
    pthread_cond_t refilled;    /* signalled once per element put into the reserve */
    void **elems;               /* under lock: the reserve, elems[0..level) */
    size_t cap;                 /* under lock: capacity of elems, >= min */
    _Atomic size_t level;       /* written under lock */
    _Atomic size_t min;         /* written under lock */
    /* (hot.free_locked: frees must take the locked path: level < min, or
     * slow. Written under lock with level and min; read by the free fast
     * paths.) */
    size_t waiting;             /* under lock: threads inside a wait */
    mp__ptrset out;             /* under lock, checked mode: the elements out */
    freed_ring freed;           /* under lock, checked mode */
    void *grave_next;           /* checked: the graveyard link (mp__graveyard_keep) */

    /* Counters (relaxed atomics), see mp_reserve_stats; allocs and frees
     * hold only what is not counted per thread (reserve_counts.c). */
    atomic_size_t allocs, frees, failures, reserve_used, waits, timeouts;
    atomic_size_t peak_out; /* most elements out seen by a slow path or a stats read */
};

_Static_assert(offsetof(mp_reserve, hot) == MP__HOT_OFFSET, "the reserve's fast fields at MP__HOT_OFFSET");

/* ------------------------------------------------------ reserve_counts.c
 *
 * allocs and frees are counted per thread, so that the healthy path
 * writes no cache line another thread writes: a reserve with a tcache slot
 * (r->slot) gives each thread that uses it an mp__reserve_counts in that
 * slot (mpool.h), made on the thread's first count and listed on
 * r->counts. The inline paths count there when the slot is a direct
 * entry (r->hot.fast_slot), the library when it is not. At thread exit a
 * thread's counts are added to r->allocs and r->frees (relaxed atomics,
 * which also count for a reserve with no slot, and for a thread whose
 * counts could not be made). Lock order: mp__tcache_lock, then r->lock. */

/* Takes a slot for r's per-thread counts (none in checked mode); false
 * when none is free: then r counts in r->allocs and r->frees alone. */
void mp__reserve_counts_init(mp_reserve *r);
/* Frees every thread's counts and gives the slot back (destroy). */
void mp__reserve_counts_fini(mp_reserve *r);
/* The calling thread's counts for r, made on its first count; NULL (errno
 * ENOMEM) when they cannot be made. */
mp__reserve_counts *mp__reserve_counts_make(mp_reserve *r);

/* Counts an allocation (or a free) by the calling thread. */
static inline void mp__reserve_count(mp_reserve *r, bool alloc)
{
    if (mp_likely(r->slot != 0)) {
        void *entry = mp__tcache_get(r->slot);
        mp__reserve_counts *c = mp__tcache_is_own(entry) ? entry : mp__reserve_counts_make(r);
        if (mp_likely(c != NULL)) {
            size_t *n = alloc ? &c->allocs : &c->frees;
            __atomic_store_n(n, *n + 1, __ATOMIC_RELAXED);
            return;
        }
    }
    atomic_fetch_add_explicit(alloc ? &r->allocs : &r->frees, 1, memory_order_relaxed);
}
/* The totals of every thread's counts and r's own. */
void mp__reserve_counts_sum(mp_reserve *r, size_t *allocs, size_t *frees);
/* The bookkeeping bytes of the threads' counts (r->lock held). */
size_t mp__reserve_counts_bytes(const mp_reserve *r);

#endif /* MP_RESERVE_H */
