/*
 * objpool.h - layer 6: the object pool's structure, shared by its files:
 *
 *   objpool.c        get and put (fast and slow), the cap and waiting,
 *                    bulk calls
 *   objpool_cache.c  the caches and the depot, the locked path, validating
 *                    objects where they leave the fast path's reach
 *   objpool_create.c create, trim, move, destroy
 *   objpool_slabs.c  the slabs: lists, taking and giving objects (every
 *                    object validated before its slab's metadata is
 *                    written), growing, retiring, the depot's bound
 *   objpool_check.c  checked mode: per-object records, fills, red zones,
 *                    quarantine, the leak report
 *   objpool_stats.c  statistics, mp_objpool_foreach, mp_objpool_trim
 *   objpool_handle.c generational handles (MP_HANDLES): the table of
 *                    per-slot generations, handle, deref, put_handle
 *
 * Model. Objects live in slabs (slab.h). Free objects sit at one of four
 * places, fastest first:
 *   1. a cache's magazines (mag.h): per thread for thread-safe pools, one
 *      cache inside the pool for MP_SINGLE_THREAD pools;
 *   2. the depot: magazines the pool holds, exchanged whole with caches;
 *   3. the quarantine (checked mode): freed objects held back from reuse;
 *   4. the slabs' free bitmaps.
 * get pops the calling thread's loaded magazine; put pushes onto it after
 * one cheap ownership check (the object's chunk was last verified to belong
 * to this pool). Everything else - refill, flush, growth, bounds, trimming,
 * checks - is in noinline slow paths.
 *
 * Counting. made = objects ever made and not yet given back to the OS.
 *   free objects  = slab_free + depot.objs + quarantine length
 *                   + sum over caches of (loaded + prev)
 *   objects out   = made - free objects
 *   allocs        = allocs_base + sum over attached caches of allocs
 *   frees         = allocs - objects out
 *
 * Locking: `lock` guards everything from "depot" down, and every cache's
 * magazines (MP_SINGLE_THREAD pools take no lock at all); `live` and
 * `waiters` are atomics. The lock is never held while calling the OS, a
 * ctor or a dtor: slabs are made before the lock is taken, and slabs to
 * give back are unlinked under it and released after it is dropped. Lock
 * order: mp__tcache_lock, tree lock, pool lock, chunk lock.
 */
#ifndef MP_OBJPOOL_H
#define MP_OBJPOOL_H

#include "debug.h"
#include "error.h"
#include "list.h"
#include "mag.h"
#include "slab.h"
#include "sync.h"
#include "tcache.h"
#include "tree.h"

#define MP_OBJPOOL_KIND "objpool"

typedef enum mp__cache_mode {
    MP__CACHE_NONE,   /* every operation under the lock (no thread-cache slot was free) */
    MP__CACHE_OWN,    /* MP_SINGLE_THREAD: the pool's own cache, no lock */
    MP__CACHE_THREAD, /* per-thread caches */
    MP__CACHE_GROUP,  /* per-thread caches in its maker's blocks (a heap's size class) */
} mp__cache_mode;

struct mp_objpool {
    mp__node node; /* first: the pool tree casts between the two */
    char node_pad[MP__HOT_OFFSET - sizeof(mp__node)];

    /* What the inline paths see (mp__objpool_hot, mpool.h). Set once at the
     * end of create: a pool the fast paths may serve (a plain one) gets
     * fast_slot = its slot if that is a direct TLS entry, or, with
     * MP_SINGLE_THREAD, an attached own_cache; every other pool keeps
     * fast_slot 0 and own_cache detached. */
    uint32_t fast_slot;
    uint32_t cache_off;   /* MP__CACHE_GROUP: byte offset of its cache in a thread's block; else 0 */
    mp__cache own_cache;
    mp__cache *st_cache;  /* MP_SINGLE_THREAD: the cache of the slow paths (own_cache, or
                             quiet_cache when the fast paths may not serve the pool) */
    mp__cache quiet_cache;

    /* Configuration (constant after create). */
    mp__cache_mode mode;
    uint32_t slot;        /* this pool's thread-cache slot (MP__CACHE_THREAD, _GROUP) */
    mp__cache_group *group; /* MP__CACHE_GROUP: the blocks */
    const char *kind_name; /* what misuse messages call it: "objpool", or its maker's kind */
    bool says_free;       /* its maker's users free rather than put: messages say so */
    uint32_t chunk_kind;  /* the mp__kind its slabs' chunks carry */
    /* A maker's limit (a heap's): charge before a slab is made (false:
     * ENOMEM), uncharge after one is given back. NULL: none. */
    bool (*charge)(void *acct, size_t bytes);
    void (*uncharge)(void *acct, size_t bytes);
    void *acct;
    size_t obj_size;      /* as asked */
    mp__slab_shape shape; /* stride, alignment, slab geometry */
    unsigned flags;
    size_t max_free;      /* 0: keep every free object (but see free_share) */
    size_t free_share;    /* max_free 0, from a maker: keep at most made / free_share free
                             objects, plus a slab's worth (0: no bound) */
    size_t max_live;      /* 0: no cap */
    size_t mag_cap;       /* objects per magazine */
    bool tracked;         /* a memory tool watches: fast paths off, every event to track.h */
    bool checked;         /* checked mode (debug.h): fast paths off, per-object records */
    bool records;         /* per-object records (checked mode, or its maker's wish) */
    bool return_pages;    /* free slots hold nothing: pages with no object in use go back to the
                             OS (slab.h's page return; objpool_slabs.c's batching) */
    bool keep_pages;      /* return_pages, but only a trim gives the idle pages back */
    mp__leak_policy leak; /* what destroy does with objects still out (checked mode) */
    /* MP_HANDLES (objpool_handle.c). A handle pool's gets and puts all take
     * the slow paths (fast_paths_on), which move the generations. */
    bool handles;         /* made with MP_HANDLES */
    bool hquick;          /* a handle pool with neither checked mode, tools nor a cap: its
                             gets and puts start with what the inline paths would do
                             (objpool.c, handles_get and handles_put) */
    uint32_t hclass;      /* each slab takes 2^hclass handle numbers */
    uint64_t htag;        /* a handle record's word, generation aside, while one of this
                             pool's objects is out at it; MP__HTAG_NONE for other pools */
    uint32_t hspare;      /* the pool's ranges no slab holds now, linked (handle lock) */
    size_t hranges;       /* ranges the pool holds (handle lock; for bytes_meta) */
    void (*ctor)(void *, void *);
    void (*dtor)(void *, void *);
    void *arg;

    pthread_mutex_t lock; /* guards everything below but waiters and live; unused for MP_SINGLE_THREAD */
    pthread_cond_t freed; /* signalled by put while waiters > 0 (max_live pools) */
    size_t waiters;       /* threads blocked in get_wait (atomic; changed under the lock) */
    size_t live;          /* max_live pools: objects out, atomic, never under the lock */

    mp__depot depot;

    /* Slabs: partial (room, something out), empty (nothing out), full (no room). */
    mp__list partial, empty_slabs, full_slabs;
    size_t slab_free;     /* objects free in slab bitmaps */
    size_t made;          /* objects made and not given back */
    size_t mapped;        /* bytes of slabs held */
    size_t idle_pages;    /* return_pages: pages of the slabs marked idle (none in use, backed) */
    size_t idle_floor;    /* ... the fewest there were since the last sweep (<= idle_pages) */

    mp__quarantine quar;  /* checked mode */

    mp__list caches;      /* attached caches (a single-threaded pool's included) */
    size_t ncaches;

    /* Statistics. */
    size_t allocs_base;   /* gets not counted by an attached cache */
    size_t peak_out;      /* most objects ever outside the slabs, depot and quarantine,
                             sampled at each refill: objects then loaded in caches count
                             as out, so bytes_peak is an upper bound */
    size_t waits, timeouts, failures;
    size_t record_bytes;  /* checked mode: bytes of the slabs' per-object records */
    void *rejected;       /* the first object the slabs refused since the lock was taken */

    void *grave_next; /* checked: the graveyard link (mp__graveyard_keep) */
};

_Static_assert(offsetof(mp_objpool, fast_slot) == MP__HOT_OFFSET + offsetof(mp__objpool_hot, fast_slot) &&
                   offsetof(mp_objpool, cache_off) == MP__HOT_OFFSET + offsetof(mp__objpool_hot, cache_off) &&
                   offsetof(mp_objpool, own_cache) == MP__HOT_OFFSET + offsetof(mp__objpool_hot, own),
               "the object pool's fields the inline paths see (mpool.h)");

static inline void mp__objpool_lock(mp_objpool *p)
{
    if (!(p->flags & MP_SINGLE_THREAD))
        mp__lock(&p->lock);
}

static inline void mp__objpool_unlock(mp_objpool *p)
{
    if (!(p->flags & MP_SINGLE_THREAD))
        mp__unlock(&p->lock);
}

/* A misuse message in p's users' words: put_msg for an object pool's,
 * free_msg for a maker's whose users free (a heap's). */
static inline const char *mp__objpool_says(const mp_objpool *p, const char *put_msg, const char *free_msg)
{
    return p->says_free ? free_msg : put_msg;
}

/* True when p is a live object pool; reports misuse otherwise (errno EINVAL). */
static inline bool mp__objpool_ok(const mp_objpool *p, const char *what)
{
    return mp__node_ok((const mp__node *)p, MP__KIND_OBJPOOL, what);
}

/* -------------------------------------------------- objpool_create.c */

/* An object pool that another kind makes for itself (a heap's size
 * class): in no tree, its chunks of chunk_kind, its misuse messages naming
 * kind_name and name, its memory charged through charge/uncharge, and,
 * thread-safe, its thread caches at index group_index of group's blocks. */
typedef struct mp__objpool_spec {
    const char *name;
    const char *kind_name;
    bool says_free;
    uint32_t chunk_kind;
    size_t obj_size, align;
    unsigned flags; /* MP_SINGLE_THREAD, MP_ZERO */
    bool records;   /* per-object records even outside checked mode (tools) */
    size_t free_share; /* see mp_objpool.free_share */
    bool return_pages; /* no ctor, objects' free state unused: see mp_objpool.return_pages */
    bool keep_pages;   /* with return_pages: see mp_objpool.keep_pages */
    bool (*charge)(void *acct, size_t bytes);
    void (*uncharge)(void *acct, size_t bytes);
    void *acct;
    mp__cache_group *group;
    uint32_t group_index;
} mp__objpool_spec;
mp_objpool *mp__objpool_make(const mp__objpool_spec *spec);
/* Detaches every cache of p (mp__tcache_lock held), then, with the lock
 * dropped, frees the pool: what its maker does at its own destroy. */
void mp__objpool_detach_caches(mp_objpool *p);
void mp__objpool_unmake(mp_objpool *p);
/* mp_objpool_trim but the chunk layer's release (a maker trims all its
 * pools, then releases once). */
void mp__objpool_trim_now(mp_objpool *p);

/* ------------------------------------------------------ objpool_cache.c */

/* Drops the lock, then does what had to wait until it was dropped: report
 * an object the slabs refused, release the slabs retired meanwhile. */
void mp__objpool_unlock_then(mp_objpool *p, mp__slab *release);
/* One object under the lock (no cache), growing when needed; NULL with
 * errno ENOMEM. And one object back under the lock. */
void *mp__objpool_locked_take(mp_objpool *p);
void mp__objpool_locked_put(mp_objpool *p, void *obj);
/* Attaches c to p with two fresh magazines; false when none can be had. */
bool mp__objpool_cache_attach(mp_objpool *p, mp__cache *c);
/* Unlinks c from p and frees its magazines, objects and all (destroy,
 * lock held). */
void mp__objpool_cache_drop(mp_objpool *p, mp__cache *c);
/* The thread-exit callback of p's slot (tcache.h); and for a cache in a
 * group's block, which its group frees. */
void mp__objpool_retire_cache(void *entry);
void mp__objpool_retire_group_cache(mp__cache *c);
/* The calling thread's cache for the slow paths, NULL when there is none
 * (MP__CACHE_NONE, or no memory for one): objects then move under the lock. */
mp__cache *mp__objpool_slow_cache(mp_objpool *p);
/* Refills c's empty loaded magazine from prev, the depot or the slabs;
 * false with errno ENOMEM when no object can be had. */
bool mp__objpool_cache_refill(mp_objpool *p, mp__cache *c);
/* Makes room in c, whose loaded magazine is full; false when no empty
 * magazine can be had. */
bool mp__objpool_cache_flush(mp_objpool *p, mp__cache *c);

/* ------------------------------------------------------ objpool_slabs.c */

/* A new slab for p (with checked-mode records), made with the lock not
 * held; NULL with errno ENOMEM. */
mp__slab *mp__objpool_slab_new(mp_objpool *p);
/* Adds a new (unmade) slab (lock held). */
void mp__objpool_slab_add(mp_objpool *p, mp__slab *s);
/* Takes up to n objects from the slabs: free ones first, then fresh ones,
 * which come last in out; *fresh = how many need their ctor (lock held). */
size_t mp__objpool_slabs_take(mp_objpool *p, void **out, size_t n, size_t *fresh);
/* Gives n objects back to their slabs (lock held). Each is validated
 * first: one that is not a made slot of a slab of p, or that is free
 * already, is reported and left out. */
void mp__objpool_slabs_give(mp_objpool *p, void *const *objs, size_t n);
/* Constructs fresh objects (which stay free, and no-access when tracked). */
void mp__objpool_run_ctor(mp_objpool *p, void **objs, size_t n);
/* How much mp__objpool_depot_trim gives back. */
typedef enum mp__trim {
    MP__TRIM_DEPOT,  /* the depot's bound only: no slab is retired (no dtor runs) */
    MP__TRIM_BOUNDS, /* the depot's bound, then max_free */
    MP__TRIM_ALL,    /* every full magazine drained, every empty slab retired */
} mp__trim;
/* Trims (lock held); slabs to give back are chained on *release. */
void mp__objpool_depot_trim(mp_objpool *p, mp__trim how, mp__slab **release);
/* Runs the dtor over every made slot of each slab on the chain, then
 * frees them (lock not held). */
void mp__objpool_slabs_release(mp_objpool *p, mp__slab *list);
/* Every slab of p, with its dtors, at destroy (p no longer shared). */
void mp__objpool_slabs_free_all(mp_objpool *p);
/* Records the most objects out so far (lock held). */
void mp__objpool_note_peak(mp_objpool *p);

/* ------------------------------------------------------ objpool_stats.c */

/* The tree's stats callback. */
void mp__objpool_node_stats(const mp__node *n, mp_stats *out);
/* Stats under the caller's hold of the pool lock. */
void mp__objpool_stats_locked(const mp_objpool *p, mp_stats *out);
/* A maker's get and put: the slow paths, with the caller's site (objpool.c). */
void *mp__objpool_get_at(mp_objpool *p, const void *site);
void mp__objpool_put_at(mp_objpool *p, void *obj, const void *site);
/* Checked or tracked pools route mp_free here (objpool.c): their puts
 * must see the caller's site and take the slow path. */
void mp__objpool_free_slow(mp_objpool *p, void *obj, const void *site);

/* ----------------------------------------------------- objpool_handle.c */

/* The tag of a pool without handles: id 0, which no pool has, marked
 * out, so that no record ever matches it and deref goes to its checks. */
#define MP__HTAG_NONE ((uint64_t)1 << 32)

/* At create, before any slab: the table, the pool's id and tag. False
 * with errno ENOMEM. */
bool mp__handles_pool_init(mp_objpool *p);
/* A new slab of a handle pool takes a range of numbers (lock not held).
 * False with errno ENOMEM. */
bool mp__handles_slab_new(mp_objpool *p, mp__slab *s);
/* A handle pool's slab goes (lock not held): objects still out at it
 * (at destroy) become stale, its range goes to the pool's spares. */
void mp__handles_slab_gone(mp_objpool *p, mp__slab *s);
/* The pool is gone: its spare ranges go to the next pools. */
void mp__handles_pool_gone(mp_objpool *p);
/* obj (a slot of p's) goes out: its record says so, at its generation. */
void mp__handles_out(mp_objpool *p, void *obj);
/* obj comes back: its generation advances. False when obj is not out (a
 * double put): nothing changes. */
bool mp__handles_in(mp_objpool *p, void *obj);
/* Bytes of the table the pool's ranges take. */
size_t mp__handles_bytes(const mp_objpool *p);
/* objpool.c: the put of an object whose handle put_handle has just
 * claimed (its generation already advanced). */
void mp__objpool_put_claimed(mp_objpool *p, void *obj, const void *site);

/* ------------------------------------------------------ objpool_check.c */

/* Checks and records an object going out: the freed fill must be intact
 * (no write after put), then new fill and red zone. */
void mp__objpool_checked_out(mp_objpool *p, void *obj, const void *site);
/* Checks an object coming back (a slot of p's). Returns false, after
 * reporting, when the put must not go ahead (the pool is left as it was). */
bool mp__objpool_checked_in(mp_objpool *p, void *obj, const void *site);
/* Holds a freed object back; returns the one that leaves the quarantine
 * (to be put for real), or NULL. */
void *mp__objpool_quarantine(mp_objpool *p, void *obj);
/* Reports the objects still out when a checked pool is destroyed. */
void mp__objpool_report_leaks(mp_objpool *p);
/* The objects out in p's records, one at a time (next: false when no
 * more; the shape mp__leak_report takes). Lock not needed at destroy. */
typedef struct mp__leak_walk {
    mp__list *lists[3];
    int list;
    mp__slab *slab;
    uint32_t next_slot;
} mp__leak_walk;
void mp__objpool_leak_walk(mp__leak_walk *w, mp_objpool *p);
bool mp__objpool_next_leak(void *walk, const void **ptr, const void **site);

#endif /* MP_OBJPOOL_H */
