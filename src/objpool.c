/*
 * objpool.c - layer 5: object pools (fixed-size objects), mp_free and
 * mp_usable_size.
 *
 * Model. Objects live in slabs (slab.h). Free objects sit at one of three
 * levels, fastest first:
 *   1. a cache's magazines (tcache.h): per thread for thread-safe pools, one
 *      cache inside the pool for MP_SINGLE_THREAD pools;
 *   2. the depot: magazines the pool holds (full list), exchanged whole
 *      with caches under the pool lock;
 *   3. the slabs' free bitmaps.
 * get pops the calling thread's loaded magazine; put pushes onto it after
 * one cheap ownership check (the object's chunk was last verified to belong
 * to this pool). Everything else - refill, flush, growth, bounds, trimming -
 * is in the noinline slow paths below.
 *
 * Pools with max_live keep their caches but count the objects out in one
 * atomic counter: a get first reserves a place under the cap (one CAS), a
 * put releases it. So the cap is exact - never more than max_live out, and
 * a get fails only when max_live objects really are out, whatever other
 * threads' caches hold - at the price of two atomic operations per object
 * (the fast paths are off for such pools; bulk calls reserve a whole batch
 * at once). get_wait sleeps on `freed`; puts wake it only when `waiters`
 * says someone sleeps (both counters sequentially consistent, so a put that
 * misses a new waiter is always seen by that waiter's re-check).
 *
 * Counting. made = objects ever made and not yet given back to the OS.
 *   free objects  = slab_free + depot_objs + qlen (quarantine)
 *                   + sum over caches (n + nprev)
 *   objects out   = made - free objects
 *   allocs        = allocs_base + sum over caches of allocs
 *   frees         = allocs - objects out
 * Caches' n, nprev and allocs are written by their thread (relaxed atomic
 * stores; also by the pool's destroy, which detaches every cache) and read
 * by statistics and foreach under the pool lock. A cache's `verified` is
 * also written by whichever thread retires a slab (caches_forget_chunk,
 * under the pool lock); see mp_objpool_put for why that race is benign.
 *
 * Locking: pool->lock guards everything under "depot", "slabs",
 * "quarantine", "caches" and "stats" (MP_SINGLE_THREAD pools take no lock
 * at all); `live` and `waiters` are atomics (see above). It is never held
 * while calling the OS, a ctor or a dtor: slabs are allocated before the
 * lock is taken, and slabs to give back are unlinked under it and released
 * after it is dropped. Lock order: mp__tcache_lock, tree lock, pool lock,
 * chunk lock.
 */
#include "common.h"
#include "sync.h"
#include "debug.h"
#include "error.h"
#include "os.h"
#include "slab.h"
#include "tcache.h"
#include "track.h"
#include "fork.h"
#include "tree.h"

#include <stdalign.h>

#define MAG_BYTES 32768  /* a magazine holds about this many bytes of objects */
#define MAG_MIN 8
#define MAG_MAX 128
#define DEPOT_FULL_MIN 8 /* full magazines the depot may always keep */
#define DEPOT_SHARE 16   /* ... and more while their memory stays under 1/16 of the slabs' */

typedef enum cache_mode {
    CACHE_NONE,   /* every operation under the lock (no thread-cache slot was free) */
    CACHE_OWN,    /* MP_SINGLE_THREAD: the pool's own cache, no lock */
    CACHE_THREAD, /* per-thread caches */
} cache_mode;

struct mp_objpool {
    mp__node node; /* first: the pool tree casts between the two */

    /* Fast path (set once at the end of create, then constant: read
     * without the lock). */
    mp__tcache *own;    /* MP_SINGLE_THREAD fast path cache; NULL: look up the thread's */
    uint32_t fast_slot; /* thread-cache slot the fast path uses; 0: fast path off */

    /* Configuration (constant after create). */
    cache_mode mode;
    uint32_t slot;        /* this pool's thread-cache slot (CACHE_THREAD) */
    size_t obj_size;      /* as asked */
    mp__slab_shape shape; /* stride, alignment, slab geometry */
    unsigned flags;
    size_t max_free;      /* 0: keep every free object */
    size_t max_live;      /* 0: no cap */
    size_t mag_cap;       /* objects per magazine */
    bool tracked;         /* a memory tool watches: fast paths off, every event to track.h */
    bool checked;         /* checked mode (debug.h): fast paths off, per-object records */
    mp__leak_policy leak; /* what destroy does with objects still out (checked mode) */
    void (*ctor)(void *, void *);
    void (*dtor)(void *, void *);
    void *arg;

    pthread_mutex_t lock; /* guards everything below but waiters and live; unused for MP_SINGLE_THREAD */
    pthread_cond_t freed; /* signalled by put while waiters > 0 (max_live pools) */
    size_t waiters;       /* threads blocked in get_wait (atomic; changed under the lock) */
    size_t live;          /* max_live pools: objects out, atomic, never under the lock (see top) */

    /* Depot. */
    mp__mag *full;        /* magazines holding objects */
    mp__mag *empty;       /* spare empty magazines */
    size_t nfull, nempty;
    size_t depot_objs;    /* objects in the full list */

    /* Slabs: partial (room, something out), empty (nothing out), full (no room). */
    mp__slab *partial, *empty_slabs, *full_slabs;
    size_t slab_free;     /* objects free in slab bitmaps */
    size_t made;          /* objects made and not given back */
    size_t mapped;        /* bytes of slabs held */

    /* Quarantine (checked mode): a FIFO ring of freed objects not yet reusable. */
    void **quar;
    size_t qcap, qhead, qlen;

    /* Caches. */
    mp__tcache *caches;   /* attached caches (the own cache included) */
    mp__tcache own_cache; /* the cache of a MP_SINGLE_THREAD pool */

    /* Statistics. */
    size_t allocs_base;   /* gets not counted by an attached cache */
    size_t peak_out;      /* most objects ever outside the slabs, depot and quarantine,
                             sampled at each refill: objects then loaded in caches count
                             as out, so bytes_peak is an upper bound */
    size_t waits, timeouts, failures;

    void *grave_next; /* checked: the graveyard link (mp__graveyard_keep) */
};

static const char KIND[] = "objpool";

/* ------------------------------------------------------------- locking */

static void pool_lock(mp_objpool *p)
{
    if (!(p->flags & MP_SINGLE_THREAD))
        mp__lock(&p->lock);
}

static void pool_unlock(mp_objpool *p)
{
    if (!(p->flags & MP_SINGLE_THREAD))
        mp__unlock(&p->lock);
}

/* ---------------------------------------------------------- slab lists */

static mp__slab **slab_list_for(mp_objpool *p, const mp__slab *s)
{
    if (!mp__slab_has_room(s))
        return &p->full_slabs;
    return mp__slab_is_empty(s) ? &p->empty_slabs : &p->partial;
}

static void slab_unlink(mp__slab **head, mp__slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void slab_push(mp__slab **head, mp__slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

/* Moves s from the list it was on (from) to the one its counts now call for. */
static void slab_relist(mp_objpool *p, mp__slab *s, mp__slab **from)
{
    mp__slab **to = slab_list_for(p, s);
    if (from != to) {
        slab_unlink(from, s);
        slab_push(to, s);
    }
}

/* Takes up to n objects from the slabs on *head into out; only free (made)
 * ones when !fresh_ok. Adds the number of fresh ones to *fresh. */
static size_t take_from_list(mp_objpool *p, mp__slab **head, void **out, size_t n, bool fresh_ok, size_t *fresh)
{
    size_t got = 0;
    for (mp__slab *s = *head, *next; s && got < n; s = next) {
        next = s->next;
        size_t want = n - got;
        if (!fresh_ok && want > s->nfree)
            want = s->nfree;
        if (want == 0)
            continue;
        size_t f;
        got += mp__slab_take(s, out + got, want, &f);
        *fresh += f;
        slab_relist(p, s, head);
    }
    return got;
}

/* Takes up to n objects from the slabs into out: free ones first (from
 * partial slabs, then empty ones), then fresh ones, which come last in out.
 * *fresh = how many are fresh and need their ctor. */
static size_t slabs_take(mp_objpool *p, void **out, size_t n, size_t *fresh)
{
    *fresh = 0;
    size_t got = take_from_list(p, &p->partial, out, n, false, fresh);
    got += take_from_list(p, &p->empty_slabs, out + got, n - got, false, fresh);
    got += take_from_list(p, &p->partial, out + got, n - got, true, fresh);
    got += take_from_list(p, &p->empty_slabs, out + got, n - got, true, fresh);
    p->slab_free -= got - *fresh;
    p->made += *fresh;
    return got;
}

/* Moves s, just given an object when `before` of its objects were free, to
 * the list its counts now call for. A give moves a slab only from full (to
 * partial or empty) or from partial to empty (an object of s was out, so it
 * was not empty), so only before == 0 or before + 1 == nmade can move it. */
static MP_NOINLINE void slab_relist_after_give(mp_objpool *p, mp__slab *s, uint32_t before)
{
    bool was_full = before == 0 && s->nmade == s->nslots;
    slab_relist(p, s, was_full ? &p->full_slabs : &p->partial);
}

/* Gives n objects back to their slabs. Draining a full magazine is a loop
 * of these (in a batch workload half of all frees take it), so the common
 * case is a bitmap bit, a count and one test for a list move, which is
 * done out of line. An object already free in its slab (a double put the
 * always-on check cannot see) is not counted twice. */
static void slabs_give(mp_objpool *p, void *const *objs, size_t n)
{
    size_t given = 0;
    for (size_t i = 0; i < n; i++) {
        mp__slab *s = mp__slab_of(objs[i]);
        uint32_t before = s->nfree;
        if (mp_unlikely(!mp__slab_give(s, objs[i])))
            continue;
        given++;
        if (mp_unlikely(before == 0 || before + 1 == s->nmade))
            slab_relist_after_give(p, s, before);
    }
    p->slab_free += given;
}

/* A new slab for p, with its checked-mode records. NULL with errno ENOMEM. */
static mp__slab *pool_slab_new(mp_objpool *p)
{
    mp__slab *s = mp__slab_new(&p->shape, MP__KIND_OBJPOOL, p);
    if (s && p->checked) {
        s->info = mp__meta_alloc(s->nslots * sizeof *s->info);
        if (!s->info) {
            mp__slab_free(s);
            return NULL;
        }
    }
    return s;
}

/* The growing step of locked_take and cache_refill, with the lock released
 * (a new slab maps memory): a slab for the caller to add once it holds the
 * lock again, or NULL with the failure counted and errno ENOMEM. */
static mp__slab *grow_unlocked(mp_objpool *p)
{
    mp__slab *s = pool_slab_new(p);
    if (!s) {
        pool_lock(p);
        p->failures++;
        pool_unlock(p);
        errno = ENOMEM;
    }
    return s;
}

/* Adds a new (unmade) slab. */
static void slab_add(mp_objpool *p, mp__slab *s)
{
    if (p->tracked)
        mp__track_block_new(p, s->slots, (size_t)s->nslots * s->chunk.obj_size);
    slab_push(slab_list_for(p, s), s);
    p->mapped += s->chunk.size;
}

/* The top of locked_take's and cache_refill's loops: takes the lock, then
 * adds the slab the last turn grew (grow_unlocked), if any. */
static void lock_adding(mp_objpool *p, mp__slab **grown)
{
    pool_lock(p);
    if (*grown) {
        slab_add(p, *grown);
        *grown = NULL;
    }
}

/* Tells every cache that chunk base is no longer verified. */
static void caches_forget_chunk(mp_objpool *p, uintptr_t base)
{
    for (mp__tcache *c = p->caches; c; c = c->pool_next)
        if (mp__ldp(&c->verified) == base)
            mp__stp(&c->verified, 1);
}

/* Unlinks an empty slab so it can be released after the lock is dropped;
 * it is chained on *out through its next field. */
static void slab_retire(mp_objpool *p, mp__slab *s, mp__slab **out)
{
    slab_unlink(&p->empty_slabs, s);
    p->slab_free -= s->nfree;
    p->made -= s->nmade;
    p->mapped -= s->chunk.size;
    caches_forget_chunk(p, (uintptr_t)s);
    s->next = *out;
    *out = s;
}

/* Runs the dtor over every made slot of each slab, then frees them. Called
 * without the lock. */
static void slabs_release(mp_objpool *p, mp__slab *list)
{
    while (list) {
        mp__slab *next = list->next;
        size_t stride = list->chunk.obj_size;
        for (uint32_t i = 0; i < list->nmade && p->dtor; i++) {
            void *obj = mp__slab_slot(list, i);
            if (p->tracked)
                mp__track_obj_touch(obj, stride);
            p->dtor(obj, p->arg);
        }
        if (p->tracked)
            mp__track_release(list, list->chunk.size);
        mp__meta_free(list->info);
        mp__slab_free(list);
        list = next;
    }
}

/* Constructs fresh objects (which stay free, and no-access when tracked). */
static void run_ctor(mp_objpool *p, void **objs, size_t n)
{
    if (!p->ctor)
        return;
    for (size_t i = 0; i < n; i++) {
        if (p->tracked)
            mp__track_obj_touch(objs[i], p->obj_size);
        p->ctor(objs[i], p->arg);
        if (p->tracked)
            mp__track_obj_hide(objs[i], p->shape.stride);
    }
}

/* ---------------------------------------------------------------- depot */

static mp__mag *mag_new(const mp_objpool *p)
{
    return mp__meta_alloc(sizeof(mp__mag) + p->mag_cap * sizeof(void *));
}

static void depot_push_full(mp_objpool *p, mp__mag *m)
{
    m->next = p->full;
    p->full = m;
    p->nfull++;
    p->depot_objs += m->n;
}

static mp__mag *depot_pop_full(mp_objpool *p)
{
    mp__mag *m = p->full;
    if (m) {
        p->full = m->next;
        p->nfull--;
        p->depot_objs -= m->n;
    }
    return m;
}

static void depot_push_empty(mp_objpool *p, mp__mag *m)
{
    m->n = 0;
    m->next = p->empty;
    p->empty = m;
    p->nempty++;
}

static mp__mag *depot_pop_empty(mp_objpool *p)
{
    mp__mag *m = p->empty;
    if (m) {
        p->empty = m->next;
        p->nempty--;
    }
    return m;
}

/* Drains one full magazine into the slabs. */
static void depot_drain_one(mp_objpool *p)
{
    mp__mag *m = depot_pop_full(p);
    slabs_give(p, m->objs, m->n);
    depot_push_empty(p, m);
}

/* Full magazines the depot keeps before draining into the slabs: objects in
 * magazines are the fastest to hand out again, but each costs a pointer of
 * magazine memory, so that memory is held to a share of the slabs'. */
static size_t depot_limit(const mp_objpool *p)
{
    size_t mag_bytes = sizeof(mp__mag) + p->mag_cap * sizeof(void *);
    size_t by_share = p->mapped / DEPOT_SHARE / mag_bytes;
    return by_share > DEPOT_FULL_MIN ? by_share : DEPOT_FULL_MIN;
}

/* Enforces the depot bound and max_free; with `all` (trim) drains every
 * full magazine and retires every empty slab instead. Slabs to give back
 * are chained on *release (the caller releases them after unlocking). A
 * slab nothing was ever made in holds no free object, so retiring it
 * cannot bring the free count under max_free: only `all` retires it. */
static void depot_trim(mp_objpool *p, bool all, mp__slab **release)
{
    size_t limit = all ? 0 : depot_limit(p);
    while (p->nfull > limit)
        depot_drain_one(p);
    if (!all && !p->max_free)
        return;
    while ((all || p->depot_objs + p->slab_free > p->max_free) && p->nfull)
        depot_drain_one(p);
    mp__slab *s = p->empty_slabs;
    while (s && (all || p->depot_objs + p->slab_free > p->max_free)) {
        mp__slab *next = s->next;
        if (s->nmade > 0 || all)
            slab_retire(p, s, release);
        s = next;
    }
}

static void note_peak(mp_objpool *p)
{
    size_t out = p->made - p->slab_free - p->depot_objs - p->qlen;
    if (out > p->peak_out)
        p->peak_out = out;
}

/* ------------------------------------------------------------- locked path */

/* One object under the lock, for when there is no cache (no thread-cache
 * slot was free, or no cache could be made). Grows when needed. NULL with
 * errno ENOMEM when out of memory. */
static void *locked_take(mp_objpool *p)
{
    mp__slab *grown = NULL;
    for (;;) {
        lock_adding(p, &grown);
        void *obj;
        size_t fresh = 0;
        mp__mag *m = p->full;
        if (m) {
            obj = m->objs[--m->n];
            p->depot_objs--;
            if (m->n == 0)
                depot_push_empty(p, depot_pop_full(p));
        } else if (slabs_take(p, &obj, 1, &fresh) == 0) {
            pool_unlock(p);
            if (!(grown = grow_unlocked(p)))
                return NULL;
            continue;
        }
        p->allocs_base++;
        note_peak(p);
        pool_unlock(p);
        if (fresh)
            run_ctor(p, &obj, 1);
        return obj;
    }
}

static void locked_put(mp_objpool *p, void *obj)
{
    pool_lock(p);
    slabs_give(p, &obj, 1);
    mp__slab *release = NULL;
    depot_trim(p, false, &release);
    pool_unlock(p);
    slabs_release(p, release);
}

/* -------------------------------------------------------------- the cap */

/* Reserves up to n places under max_live; returns how many it got. */
static size_t live_reserve(mp_objpool *p, size_t n)
{
    size_t cur = __atomic_load_n(&p->live, __ATOMIC_SEQ_CST);
    for (;;) {
        size_t room = cur < p->max_live ? p->max_live - cur : 0;
        size_t k = n < room ? n : room;
        if (k == 0)
            return 0;
        if (__atomic_compare_exchange_n(&p->live, &cur, cur + k, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return k;
    }
}

/* Gives n places back and wakes waiters, if any sleep. More places given
 * back than were taken means more puts than gets (a double put): the
 * count would wrap and refuse every get from then on, so it is mended and
 * reported. */
static void live_release(mp_objpool *p, size_t n)
{
    size_t was = __atomic_fetch_sub(&p->live, n, __ATOMIC_SEQ_CST);
    if (mp_unlikely(was < n)) {
        __atomic_fetch_add(&p->live, n - was, __ATOMIC_SEQ_CST);
        mp__misuse("put with no object out (a double put?)", KIND, p->node.name, p);
    }
    if (__atomic_load_n(&p->waiters, __ATOMIC_SEQ_CST) == 0)
        return;
    pool_lock(p);
    if (n == 1)
        pthread_cond_signal(&p->freed);
    else
        pthread_cond_broadcast(&p->freed);
    pool_unlock(p);
}

/* ---------------------------------------------------------------- caches */

static void cache_load(mp__tcache *c, mp__mag *m)
{
    c->loaded = m;
    c->objs = m->objs;
    mp__st(&c->n, m->n);
}

/* Saves the loaded magazine's count into the magazine itself. */
static void cache_sync(mp__tcache *c) { c->loaded->n = c->n; }

static void cache_swap(mp__tcache *c)
{
    cache_sync(c);
    mp__mag *m = c->prev;
    c->prev = c->loaded;
    mp__st(&c->nprev, c->prev->n);
    cache_load(c, m);
}

/* Links a detached cache to p with two fresh magazines. */
static bool cache_attach(mp_objpool *p, mp__tcache *c)
{
    mp__mag *a = mag_new(p), *b = a ? mag_new(p) : NULL;
    if (!b) {
        mp__meta_free(a);
        return false;
    }
    /* Detaching (destroy, thread exit) already freed these and set them to
     * NULL, so these frees do nothing. */
    mp__meta_free(c->loaded);
    mp__meta_free(c->prev);
    c->prev = b;
    mp__st(&c->nprev, 0);
    cache_load(c, a);
    c->cap = p->mag_cap;
    mp__st(&c->allocs, 0);
    mp__stp(&c->verified, 1);
    pool_lock(p);
    c->pool = p;
    c->pool_prev = NULL;
    c->pool_next = p->caches;
    if (p->caches)
        p->caches->pool_prev = c;
    p->caches = c;
    pool_unlock(p);
    return true;
}

static void cache_unlink(mp_objpool *p, mp__tcache *c)
{
    if (c->pool_prev)
        c->pool_prev->pool_next = c->pool_next;
    else
        p->caches = c->pool_next;
    if (c->pool_next)
        c->pool_next->pool_prev = c->pool_prev;
    c->pool_prev = c->pool_next = NULL;
}

/* The calling thread's cache for p, attached; NULL if none can be made
 * (the caller falls back to the locked path, which sets errno itself if it
 * fails too: a call that succeeds leaves errno alone). */
static mp__tcache *cache_of(mp_objpool *p)
{
    if (p->mode == CACHE_OWN)
        return &p->own_cache;
    int err = errno;
    mp__tcache *c = mp__tcache_for_slot(p->slot);
    if (c && (c->pool == p || cache_attach(p, c)))
        return c;
    errno = err;
    return NULL;
}

static void *cache_pop(mp__tcache *c)
{
    size_t n = c->n - 1;
    mp__st(&c->n, n);
    mp__st(&c->allocs, c->allocs + 1);
    return c->objs[n];
}

/* Refills c's loaded magazine (which is empty) from the depot or the slabs.
 * Returns false with errno ENOMEM when no object can be had. */
static bool cache_refill(mp_objpool *p, mp__tcache *c)
{
    if (c->nprev) {
        cache_swap(c);
        return true;
    }
    mp__slab *grown = NULL;
    for (;;) {
        lock_adding(p, &grown);
        mp__mag *m = depot_pop_full(p);
        if (m) {
            cache_sync(c);
            depot_push_empty(p, c->prev);
            c->prev = c->loaded;
            mp__st(&c->nprev, 0);
            cache_load(c, m);
            note_peak(p);
            pool_unlock(p);
            return true;
        }
        size_t fresh;
        size_t got = slabs_take(p, c->objs, c->cap, &fresh);
        if (got) {
            mp__st(&c->n, got);
            note_peak(p);
            pool_unlock(p);
            run_ctor(p, c->objs + got - fresh, fresh);
            return true;
        }
        pool_unlock(p);
        if (!(grown = grow_unlocked(p)))
            return false;
    }
}

/* Makes room in c, whose loaded magazine is full: swaps in prev if it is
 * empty, else (prev is then full: prev only ever holds 0 or cap objects)
 * gives prev to the depot and loads an empty magazine. Returns false when
 * no empty magazine can be had. */
static bool cache_flush(mp_objpool *p, mp__tcache *c)
{
    if (c->nprev == 0) {
        cache_swap(c);
        return true;
    }
    /* One lock round when the depot has a spare empty magazine (the usual
     * case); only making a new one (metadata memory) is done unlocked. */
    pool_lock(p);
    mp__mag *spare = depot_pop_empty(p);
    if (!spare) {
        pool_unlock(p);
        if (!(spare = mag_new(p)))
            return false;
        pool_lock(p);
    }
    cache_sync(c);
    depot_push_full(p, c->prev);
    c->prev = c->loaded;
    mp__st(&c->nprev, c->prev->n);
    cache_load(c, spare);
    mp__slab *release = NULL;
    depot_trim(p, false, &release);
    pool_unlock(p);
    slabs_release(p, release);
    return true;
}

/* Called by tcache.c at thread exit, with mp__tcache_lock held: hands the
 * cache's objects to the depot and detaches it. Only the depot bound is
 * enforced here, not max_free: retiring slabs would mean running the dtor
 * under mp__tcache_lock. The next depot_trim (a flush, a locked put or a
 * trim) gives back what max_free calls for. */
void mp__objpool_retire_cache(mp__tcache *c)
{
    mp_objpool *p = c->pool;
    cache_sync(c);
    pool_lock(p);
    mp__mag *mags[2] = { c->loaded, c->prev };
    for (int i = 0; i < 2; i++) {
        if (mags[i]->n)
            depot_push_full(p, mags[i]);
        else
            depot_push_empty(p, mags[i]);
    }
    while (p->nfull > depot_limit(p))
        depot_drain_one(p);
    p->allocs_base += c->allocs;
    cache_unlink(p, c);
    pool_unlock(p);
    c->loaded = c->prev = NULL;
    c->objs = NULL;
    c->n = c->cap = c->nprev = 0;
    c->pool = NULL;
}

/* ---------------------------------------------------------------- checks */

/* True when p is a live object pool; reports misuse otherwise. */
static bool pool_ok(const mp_objpool *p, const char *what)
{
    return mp__node_ok((const mp__node *)p, MP__KIND_OBJPOOL, what);
}

/* The always-on check for a pointer given back to p. */
static bool owned_by(mp_objpool *p, void *obj)
{
    mp__chunk *ch = mp__chunk_lookup(obj);
    if (!ch) {
        mp__misuse("put of a pointer not from mpool", KIND, p->node.name, obj);
        return false;
    }
    if (ch->owner != p) {
        char from[160];
        mp__owner_detail(from, sizeof from, ch);
        mp__misuse_detail("put of a pointer from another pool", KIND, p->node.name, obj, from);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------- checked mode */

static const char *pool_name(const mp_objpool *p) { return p->node.name; }

/* Checks and records an object going out: the freed fill must be intact
 * (no write after put), then new fill and red zone. */
static void checked_out(mp_objpool *p, void *obj, const void *site)
{
    mp__slab *s = mp__slab_of(obj);
    mp__objinfo *in = &s->info[mp__slab_index(s, obj)];
    size_t rz = p->shape.stride - p->obj_size;
    if (p->tracked)
        mp__track_obj_touch(obj, p->shape.stride);
    if (in->state == MP_OBJ_OUT)
        mp__misuse_obj("corrupted free list: object handed out twice", KIND, pool_name(p), obj, in);
    else if (in->state == MP_OBJ_FREE && !p->ctor && !mp__filled(obj, p->obj_size, MP_FILL_FREED))
        mp__misuse_obj("write to a freed object", KIND, pool_name(p), obj, in);
    in->state = MP_OBJ_OUT;
    in->alloc_site = site;
    in->free_site = NULL;
    if (!p->ctor)
        memset(obj, MP_FILL_NEW, p->obj_size);
    memset((char *)obj + p->obj_size, MP_FILL_REDZONE, rz);
    if (p->tracked)
        mp__track_obj_hide(obj, p->shape.stride);
}

/* Checks an object coming back. Returns false, after reporting, when the
 * put must not go ahead (the pool is left as it was). */
static bool checked_in(mp_objpool *p, void *obj, const void *site)
{
    mp__slab *s = mp__slab_of(obj);
    if (!mp__slab_is_slot(s, obj)) {
        mp__misuse("put of an interior pointer", KIND, pool_name(p), obj);
        return false;
    }
    mp__objinfo *in = &s->info[mp__slab_index(s, obj)];
    if (in->state != MP_OBJ_OUT) {
        mp__misuse_obj(in->state == MP_OBJ_FREE ? "double put" : "put of an object never handed out", KIND,
                       pool_name(p), obj, in);
        return false;
    }
    char *rz = (char *)obj + p->obj_size;
    size_t rzlen = p->shape.stride - p->obj_size;
    if (p->tracked)
        mp__track_obj_touch(rz, rzlen);
    if (!mp__filled(rz, rzlen, MP_FILL_REDZONE))
        mp__misuse_obj("write past the end of an object", KIND, pool_name(p), obj, in);
    in->state = MP_OBJ_FREE;
    in->free_site = site;
    if (!p->ctor)
        memset(obj, MP_FILL_FREED, p->obj_size);
    return true;
}

/* Holds a freed object back; returns the one that leaves the quarantine
 * (to be put for real), or NULL. */
static void *quarantine_push(mp_objpool *p, void *obj)
{
    if (!p->qcap)
        return obj;
    void *out = NULL;
    pool_lock(p);
    if (p->qlen == p->qcap) {
        out = p->quar[p->qhead];
        p->quar[p->qhead] = obj;
        p->qhead = (p->qhead + 1) % p->qcap;
    } else {
        p->quar[(p->qhead + p->qlen) % p->qcap] = obj;
        p->qlen++;
    }
    pool_unlock(p);
    return out;
}

/* Reports the objects still out when a checked pool is destroyed. */
static void report_leaks(mp_objpool *p)
{
    if (!p->checked || p->leak == MP__LEAK_IGNORE)
        return;
    char text[2048], site[160];
    size_t count = 0, shown = 0, len = 0;
    const void *first = NULL;
    mp__slab *lists[] = { p->partial, p->empty_slabs, p->full_slabs };
    for (int l = 0; l < 3; l++)
        for (mp__slab *s = lists[l]; s; s = s->next)
            for (uint32_t i = 0; i < s->nmade; i++)
                if (s->info[i].state == MP_OBJ_OUT)
                    count++;
    if (!count)
        return;
    len = (size_t)snprintf(text, sizeof text, "mpool: leak: objpool '%s': %zu object%s (%zu bytes) still out at destroy",
                           pool_name(p), count, count == 1 ? "" : "s", count * p->obj_size);
    for (int l = 0; l < 3; l++)
        for (mp__slab *s = lists[l]; s; s = s->next)
            for (uint32_t i = 0; i < s->nmade && shown < 8; i++) {
                if (s->info[i].state != MP_OBJ_OUT)
                    continue;
                void *obj = mp__slab_slot(s, i);
                first = first ? first : obj;
                mp__format_site(site, sizeof site, s->info[i].alloc_site);
                if (len < sizeof text)
                    len += (size_t)snprintf(text + len, sizeof text - len, "\n  %p allocated at %s", obj, site);
                shown++;
            }
    mp__leak(p->leak, text, first);
}

/* ------------------------------------------------------------ slow paths */

/* Last step of every slow get: checks, tools, zeroing. */
static void *hand_out(mp_objpool *p, void *obj, const void *site)
{
    if (p->checked)
        checked_out(p, obj, site);
    if (p->tracked)
        mp__track_obj_out(p, obj, p->obj_size, p->ctor != NULL || (p->flags & MP_ZERO));
    if (p->flags & MP_ZERO)
        memset(obj, 0, p->obj_size);
    return obj;
}

/* The calling thread's cache for the slow paths, NULL when there is none
 * (CACHE_NONE, or no memory for one): objects then move under the lock. */
static mp__tcache *slow_cache(mp_objpool *p) { return p->mode == CACHE_NONE ? NULL : cache_of(p); }

/* n objects from the calling thread's cache, refilled as needed and
 * emptied a magazine at a time, or, with no cache, from under the lock.
 * Returns how many it got: n unless memory ran out (errno ENOMEM). The cap
 * is the caller's business. */
static size_t take_many(mp_objpool *p, void **out, size_t n)
{
    mp__tcache *c = slow_cache(p);
    size_t got = 0;
    if (!c) {
        while (got < n && (out[got] = locked_take(p)) != NULL)
            got++;
        return got;
    }
    while (got < n && (c->n != 0 || cache_refill(p, c))) {
        size_t top = c->n, k = n - got < top ? n - got : top;
        for (size_t j = 0; j < k; j++)
            out[got + j] = c->objs[top - 1 - j];
        mp__st(&c->n, top - k);
        mp__st(&c->allocs, c->allocs + k);
        got += k;
    }
    return got;
}

/* One object, within the cap. *at_cap: it failed because of the cap. */
static void *get_common(mp_objpool *p, const void *site, bool *at_cap)
{
    *at_cap = false;
    if (p->max_live && !live_reserve(p, 1)) {
        *at_cap = true;
        errno = ENOMEM;
        return NULL;
    }
    void *obj;
    if (take_many(p, &obj, 1) == 0) {
        if (p->max_live)
            live_release(p, 1);
        return NULL;
    }
    return hand_out(p, obj, site);
}

static MP_NOINLINE void *get_slow(mp_objpool *p, const void *site)
{
    if (!pool_ok(p, "get from a destroyed or invalid pool"))
        return NULL;
    bool at_cap;
    return get_common(p, site, &at_cap);
}

/* give_one's way when c's loaded magazine is full. */
static MP_NOINLINE void give_to_full(mp_objpool *p, mp__tcache *c, void *obj)
{
    if (!cache_flush(p, c)) {
        locked_put(p, obj); /* no magazine could be had */
        return;
    }
    c->objs[c->n] = obj;
    mp__st(&c->n, c->n + 1);
}

/* Gives obj back to cache c (slow_cache's) or, c NULL, under the lock.
 * obj must already be known to be p's (put_common checked it, or it left
 * p's quarantine): its chunk becomes c's verified one. The magazine
 * exchange is out of line (give_to_full), which put_many shares. */
static inline void give_one(mp_objpool *p, mp__tcache *c, void *obj)
{
    if (!c) {
        locked_put(p, obj);
        return;
    }
    mp__stp(&c->verified, (uintptr_t)mp__chunk_of(obj));
    if (mp_unlikely(c->n == c->cap)) {
        give_to_full(p, c, obj);
        return;
    }
    c->objs[c->n] = obj;
    mp__st(&c->n, c->n + 1);
}

/* put_common's way for checked or tracked pools, once ownership is
 * checked: checked mode's state, red zone and fill checks, the tools' event,
 * the quarantine, then the object (or the one leaving the quarantine) goes
 * back to cache c (slow_cache's). Returns false when the put was refused
 * (misuse reported); the cap's place is then not released. */
static MP_NOINLINE bool put_debug(mp_objpool *p, mp__tcache *c, void *obj, const void *site)
{
    if (p->checked && !checked_in(p, obj, site))
        return false;
    if (p->tracked)
        mp__track_obj_in(p, obj, p->shape.stride);
    if (p->checked && !(obj = quarantine_push(p, obj)))
        return true;
    give_one(p, c, obj);
    return true;
}

/* Inline: put_slow and put_bulk (with checked mode or tools, or with no
 * cache) run it once per object; without checked mode or tools it is only
 * the ownership check and a push. */
static inline bool put_common(mp_objpool *p, mp__tcache *c, void *obj, const void *site)
{
    bool known = c && (uintptr_t)mp__chunk_of(obj) == mp__ldp(&c->verified);
    if (!known && !owned_by(p, obj))
        return false;
    if (p->checked || p->tracked)
        return put_debug(p, c, obj, site);
    give_one(p, c, obj);
    return true;
}

/* put_common for a batch, without checked mode or tools: each object is
 * checked (a NULL skipped, one of another chunk than the last verified
 * looked up) and pushed onto c's magazine, whose count is kept in a local
 * and published once per magazine. Returns how many went back. */
static size_t put_many(mp_objpool *p, mp__tcache *c, void *const *objs, size_t count)
{
    uintptr_t verified = mp__ldp(&c->verified);
    size_t n = c->n, given = 0;
    for (size_t i = 0; i < count; i++) {
        void *obj = objs[i];
        uintptr_t base = (uintptr_t)mp__chunk_of(obj);
        if (!obj || (base != verified && !owned_by(p, obj)))
            continue; /* NULL does nothing; a foreign pointer was reported */
        if (base != verified)
            mp__stp(&c->verified, verified = base);
        given++;
        if (mp_unlikely(n == c->cap)) {
            mp__st(&c->n, n);
            give_to_full(p, c, obj); /* exchanges the magazine, then pushes */
            n = c->n;
            verified = mp__ldp(&c->verified); /* the pool may have given chunks back */
            continue;
        }
        c->objs[n++] = obj;
    }
    mp__st(&c->n, n);
    return given;
}

static MP_NOINLINE void put_slow(mp_objpool *p, void *obj, const void *site)
{
    if (!obj)
        return;
    if (!p) { /* obj would stay out of its pool for good: a silent leak */
        mp__misuse("put to a NULL pool", KIND, NULL, obj);
        return;
    }
    if (!pool_ok(p, "put to a destroyed or invalid pool"))
        return;
    if (put_common(p, slow_cache(p), obj, site) && p->max_live)
        live_release(p, 1);
}

/* ------------------------------------------------------------- fast paths */

/* The cache the fast paths use: a MP_SINGLE_THREAD pool's own, else the
 * calling thread's (mp__tcache_none when the fast path is off). */
static inline mp__tcache *fast_cache(const mp_objpool *p)
{
    mp__tcache *own = p->own;
    if (mp_likely(own == NULL))
        return mp__tcache_get(p->fast_slot);
    return own;
}

void *mp_objpool_get(mp_objpool *p)
{
    if (mp_likely(p != NULL)) {
        mp__tcache *c = fast_cache(p);
        if (mp_likely(c->n != 0))
            return cache_pop(c);
    }
    return get_slow(p, __builtin_return_address(0));
}

/* The always-on ownership check, for a chunk the cache has not verified
 * yet: a live chunk owned by p, by one registry lookup. Off the hot path,
 * but inline: puts of objects from many chunks (shuffled frees) take it on
 * nearly every call. A detached cache (cap == 0) never gets here: the
 * caller's n < cap failed. */
static inline bool chunk_owned(const mp_objpool *p, mp__tcache *c, uintptr_t base)
{
    if (!mp__chunk_owned_by(base, p))
        return false;
    mp__stp(&c->verified, base);
    return true;
}

/* No lock and no test of c->pool: a thread's cache in p's slot is either
 * detached (cap == 0: the test fails) or attached to p, because a pool's
 * destroy detaches every cache in its slot before the slot can be handed
 * to another pool. `verified` can be cleared under us by a slab retirement
 * (caches_forget_chunk), but a chunk holding an object that is out - the
 * one being put - is never retired, so for a correct put it stays true.
 * Only a racing misuse (a put into a chunk being retired) can leave a
 * stale chunk verified. */
void mp_objpool_put(mp_objpool *p, void *obj)
{
    if (mp_likely(p != NULL)) {
        mp__tcache *c = fast_cache(p);
        uintptr_t base = (uintptr_t)obj & ~(uintptr_t)MP_CHUNK_MASK;
        size_t n = c->n; /* read once: the atomic store of verified would force a reload */
        if (mp_likely(n < c->cap) && (mp_likely(base == mp__ldp(&c->verified)) || chunk_owned(p, c, base))) {
            c->objs[n] = obj;
            mp__st(&c->n, n + 1);
            return;
        }
    }
    put_slow(p, obj, __builtin_return_address(0));
}

/* ------------------------------------------------------------ waiting get */

void *mp_objpool_get_wait(mp_objpool *p, int64_t timeout_ns)
{
    const void *site = __builtin_return_address(0);
    if (!pool_ok(p, "get from a destroyed or invalid pool"))
        return NULL;
    if (timeout_ns < 0 && timeout_ns != MP_WAIT_FOREVER) {
        errno = EINVAL;
        return NULL;
    }
    bool at_cap;
    void *obj = get_common(p, site, &at_cap);
    /* Only a capped, thread-safe pool can be given an object by another
     * thread; every other failure is final. */
    if (obj || !at_cap || timeout_ns == 0 || (p->flags & MP_SINGLE_THREAD))
        return obj;
    int64_t deadline = mp__os_deadline(timeout_ns);
    bool counted = false;
    for (;;) {
        pool_lock(p);
        __atomic_fetch_add(&p->waiters, 1, __ATOMIC_SEQ_CST);
        if (!counted) {
            p->waits++;
            counted = true;
        }
        int rc = 0;
        while (rc == 0 && __atomic_load_n(&p->live, __ATOMIC_SEQ_CST) >= p->max_live)
            rc = mp__cond_wait_until(&p->freed, &p->lock, deadline);
        __atomic_fetch_sub(&p->waiters, 1, __ATOMIC_SEQ_CST);
        if (rc == ETIMEDOUT && __atomic_load_n(&p->live, __ATOMIC_SEQ_CST) >= p->max_live) {
            p->timeouts++;
            pool_unlock(p);
            errno = ETIMEDOUT;
            return NULL;
        }
        pool_unlock(p);
        obj = get_common(p, site, &at_cap);
        if (obj || !at_cap)
            return obj;
    }
}

/* ------------------------------------------------------------------ bulk */

size_t mp_objpool_get_bulk(mp_objpool *p, void **objs, size_t n)
{
    const void *site = __builtin_return_address(0);
    if ((!objs && n) || !pool_ok(p, "get from a destroyed or invalid pool")) {
        errno = EINVAL;
        return 0;
    }
    /* Capped: one reservation for the whole batch. Then the objects come
     * out of the cache a magazine at a time; checked mode and the tools
     * see each one with the caller's site. */
    size_t k = p->max_live ? live_reserve(p, n) : n, i = take_many(p, objs, k);
    if (p->checked || p->tracked || (p->flags & MP_ZERO))
        for (size_t j = 0; j < i; j++)
            hand_out(p, objs[j], site);
    if (p->max_live && i < k)
        live_release(p, k - i);
    if (k == i && k < n)
        errno = ENOMEM; /* the cap, not memory (take_many sets that) */
    return i;
}

void mp_objpool_put_bulk(mp_objpool *p, void *const *objs, size_t n)
{
    const void *site = __builtin_return_address(0);
    if (!objs || !n)
        return;
    if (!p) { /* misuse for each object, as put reports it */
        for (size_t i = 0; i < n; i++)
            mp_objpool_put(NULL, objs[i]);
        return;
    }
    if (!pool_ok(p, "put to a destroyed or invalid pool"))
        return;
    mp__tcache *c = slow_cache(p); /* looked up once for the batch */
    size_t given = 0;
    if (c && !p->checked && !p->tracked)
        given = put_many(p, c, objs, n);
    else
        for (size_t i = 0; i < n; i++)
            if (objs[i] && put_common(p, c, objs[i], site))
                given++;
    if (p->max_live && given)
        live_release(p, given); /* one release (and wake-up) for the batch */
}

/* ------------------------------------------------------------ trim/stats */

void mp_objpool_trim(mp_objpool *p)
{
    if (!pool_ok(p, "trim of a destroyed or invalid pool"))
        return;
    /* The calling thread's own cache can be emptied safely; others' can't. */
    mp__tcache *c = NULL;
    if (p->mode == CACHE_OWN)
        c = &p->own_cache;
    else if (p->mode == CACHE_THREAD) {
        c = mp__tcache_get(p->slot); /* never NULL: mp__tcache_none at worst */
        if (c->pool != p)
            c = NULL;
    }
    pool_lock(p);
    if (c) {
        cache_sync(c);
        slabs_give(p, c->loaded->objs, c->loaded->n);
        slabs_give(p, c->prev->objs, c->prev->n);
        c->loaded->n = c->prev->n = 0;
        mp__st(&c->n, 0);
        mp__st(&c->nprev, 0);
    }
    mp__slab *release = NULL;
    depot_trim(p, true, &release);
    while (p->nempty) /* spare magazines are metadata the pool can remake */
        mp__meta_free(depot_pop_empty(p));
    pool_unlock(p);
    slabs_release(p, release);
    /* The chunk layer keeps freed chunks for reuse; a trim means "give the
     * memory back now", so they go too (any pool can remap later). */
    mp__chunk_release_retained();
}

static void objpool_stats_locked(const mp_objpool *p, mp_stats *out)
{
    size_t cached = 0, allocs = p->allocs_base;
    for (const mp__tcache *c = p->caches; c; c = c->pool_next) {
        cached += mp__ld(&c->n) + mp__ld(&c->nprev);
        allocs += mp__ld(&c->allocs);
    }
    size_t free_objs = p->slab_free + p->depot_objs + p->qlen + cached;
    size_t out_objs = p->made > free_objs ? p->made - free_objs : 0;
    /* Caches are read without their threads' help: a get caught between
     * lowering n and raising allocs looks out but not yet got. Keeping
     * out_objs <= allocs keeps frees = allocs - out_objs from wrapping. */
    if (out_objs > allocs)
        out_objs = allocs;
    *out = (mp_stats){ 0 };
    out->objects_in_use = out_objs;
    out->bytes_in_use = out_objs * p->obj_size;
    out->bytes_peak = (p->peak_out > out_objs ? p->peak_out : out_objs) * p->obj_size;
    out->bytes_mapped = p->mapped;
    out->allocs = allocs;
    out->frees = allocs - out_objs;
    out->waits = p->waits;
    out->timeouts = p->timeouts;
    out->failures = p->failures;
}

int mp_objpool_stats(const mp_objpool *p, mp_stats *out)
{
    if (!out || !pool_ok(p, "stats of a destroyed or invalid pool"))
        return EINVAL;
    mp_objpool *mp = (mp_objpool *)p;
    pool_lock(mp);
    objpool_stats_locked(p, out);
    pool_unlock(mp);
    return 0;
}

/* ------------------------------------------------------------ live walk */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

static bool in_sorted(void *const *v, size_t n, const void *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)v[mid] < (uintptr_t)key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == key;
}

/* Appends obj to out[*n] unless out is full: the bound keeps foreach
 * memory-safe even if its caller broke the rule that other threads stay
 * out of the pool meanwhile. */
static void held_add(void **out, size_t *n, size_t cap, void *obj)
{
    if (*n < cap)
        out[(*n)++] = obj;
}

/* Free objects held outside the slab bitmaps: depot, caches, quarantine. */
static size_t gather_held_free(const mp_objpool *p, void **out, size_t cap)
{
    size_t n = 0;
    for (const mp__mag *m = p->full; m; m = m->next)
        for (size_t i = 0; i < m->n; i++)
            held_add(out, &n, cap, m->objs[i]);
    for (const mp__tcache *c = p->caches; c; c = c->pool_next) {
        size_t ln = mp__ld(&c->n), pn = mp__ld(&c->nprev);
        for (size_t i = 0; i < ln; i++)
            held_add(out, &n, cap, c->objs[i]);
        for (size_t i = 0; i < pn; i++)
            held_add(out, &n, cap, c->prev->objs[i]);
    }
    for (size_t i = 0; i < p->qlen; i++)
        held_add(out, &n, cap, p->quar[(p->qhead + i) % p->qcap]);
    return n;
}

/* Made slots not free in their slab's bitmap and not in held (sorted). */
static size_t gather_out(const mp_objpool *p, void *const *held, size_t nheld, void **out)
{
    size_t n = 0;
    const mp__slab *lists[] = { p->partial, p->empty_slabs, p->full_slabs };
    for (int l = 0; l < 3; l++)
        for (const mp__slab *s = lists[l]; s; s = s->next)
            for (uint32_t i = 0; i < s->nmade; i++) {
                if (s->freemap[i / 64] & ((uint64_t)1 << (i % 64)))
                    continue;
                void *obj = mp__slab_slot(s, i);
                if (!in_sorted(held, nheld, obj))
                    out[n++] = obj;
            }
    return n;
}

size_t mp_objpool_foreach(mp_objpool *p, void (*visit)(void *obj, void *arg), void *arg)
{
    if (!visit || !pool_ok(p, "foreach on a destroyed or invalid pool")) {
        errno = EINVAL;
        return 0;
    }
    for (;;) {
        pool_lock(p);
        size_t bound = p->made - p->slab_free; /* out + held outside the slabs */
        pool_unlock(p);
        void **held = mp__meta_alloc((bound + 1) * sizeof *held);
        void **out = held ? mp__meta_alloc((bound + 1) * sizeof *out) : NULL;
        if (!out) {
            mp__meta_free(held);
            return 0;
        }
        pool_lock(p);
        if (p->made - p->slab_free > bound) { /* grew meanwhile: size again */
            pool_unlock(p);
            mp__meta_free(held);
            mp__meta_free(out);
            continue;
        }
        size_t nheld = gather_held_free(p, held, bound + 1);
        qsort(held, nheld, sizeof *held, cmp_ptr);
        size_t nout = gather_out(p, held, nheld, out);
        pool_unlock(p);
        for (size_t i = 0; i < nout; i++)
            visit(out[i], arg);
        mp__meta_free(held);
        mp__meta_free(out);
        return nout;
    }
}

/* --------------------------------------------------------------- destroy */

static void objpool_free(mp_objpool *p)
{
    mp__lock(&mp__tcache_lock);
    pool_lock(p);
    while (p->caches) {
        mp__tcache *c = p->caches;
        cache_unlink(p, c);
        mp__meta_free(c->loaded);
        mp__meta_free(c->prev);
        c->loaded = c->prev = NULL;
        c->objs = NULL;
        mp__st(&c->n, 0);
        mp__st(&c->nprev, 0);
        c->cap = 0;
        mp__stp(&c->verified, 1);
        c->pool = NULL;
    }
    pool_unlock(p);
    mp__tcache_slot_free(p->slot);
    mp__unlock(&mp__tcache_lock);

    while (p->nfull)
        mp__meta_free(depot_pop_full(p));
    while (p->nempty)
        mp__meta_free(depot_pop_empty(p));
    mp__slab *lists[] = { p->partial, p->empty_slabs, p->full_slabs };
    for (int i = 0; i < 3; i++) {
        for (mp__slab *s = lists[i], *next; s; s = next) {
            next = s->next;
            s->next = NULL;
            slabs_release(p, s);
        }
    }
    if (p->tracked)
        mp__track_pool_destroy(p);
    if (!(p->flags & MP_SINGLE_THREAD)) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->freed);
    }
    mp__node_fini(&p->node);
    mp__meta_free(p->quar);
    if (p->checked) { /* kept, so that a later use is detected */
        mp__graveyard_keep(p, &p->grave_next);
        return;
    }
    mp__meta_free(p);
}

/* Destroys a live pool; false (the misuse reported, nothing done) while
 * threads wait in it: they would wake in freed memory. */
static bool destroy_live(mp_objpool *p, bool by_parent)
{
    if (__atomic_load_n(&p->waiters, __ATOMIC_SEQ_CST)) {
        mp__misuse("pool destroyed while threads wait in get_wait", KIND, p->node.name, p);
        return false;
    }
    mp__node_detach(&p->node);
    if (!by_parent) /* objects out end with their arena, as its allocations do */
        report_leaks(p);
    objpool_free(p);
    return true;
}

void mp_objpool_destroy(mp_objpool *p)
{
    if (!p)
        return;
    if (!mp__node_live(&p->node, MP__KIND_OBJPOOL)) {
        mp__misuse("destroy of a destroyed or invalid pool", KIND, NULL, p);
        return;
    }
    destroy_live(p, false);
}

static bool node_destroy(mp__node *n) { return destroy_live((mp_objpool *)n, true); }

static void node_stats(const mp__node *n, mp_stats *out) { mp_objpool_stats((const mp_objpool *)n, out); }

static void node_lock(mp__node *n) { pool_lock((mp_objpool *)n); }

static void node_unlock(mp__node *n) { pool_unlock((mp_objpool *)n); }

/* fork() child, pool lock held: the parent's get_wait sleepers are not
 * here; their count and the condition variable start afresh (destroying a
 * condition variable that still counts waiters would block for good). */
static void node_forget_waiters(mp__node *n)
{
    mp_objpool *p = (mp_objpool *)n;
    if ((p->flags & MP_SINGLE_THREAD) || !__atomic_load_n(&p->waiters, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&p->waiters, 0, __ATOMIC_RELAXED);
    mp__cond_forget_waiters(&p->freed);
}

static const mp__node_ops objpool_ops = {
    .destroy = node_destroy,
    .stats = node_stats,
    .lock_for_fork = node_lock,
    .unlock_after_fork = node_unlock,
    .forget_waiters_after_fork = node_forget_waiters,
};

int mp_objpool_move(mp_objpool *p, mp_arena *new_parent)
{
    if (!pool_ok(p, "move of a destroyed or invalid pool"))
        return EINVAL;
    return mp__node_move(&p->node, new_parent, NULL, NULL);
}

/* ---------------------------------------------------------------- create */

static size_t default_align(size_t obj_size)
{
    size_t a = 8;
    while (a < obj_size && a < alignof(max_align_t))
        a <<= 1;
    return a;
}

/* Makes `initial` objects (free, constructed) before the pool is shared. */
static bool make_initial(mp_objpool *p, size_t initial)
{
    while (p->made < initial) {
        mp__slab *s = pool_slab_new(p);
        if (!s)
            return false;
        size_t n = initial - p->made < s->nslots ? initial - p->made : s->nslots;
        mp__slab_make_free(s, (uint32_t)n);
        slab_add(p, s);
        for (uint32_t i = 0; i < n; i++) {
            void *obj = mp__slab_slot(s, i);
            run_ctor(p, &obj, 1);
        }
        p->made += n;
        p->slab_free += n;
    }
    return true;
}

mp_objpool *mp_objpool_create(mp_arena *parent, const mp_objpool_opts *opts)
{
    mp_objpool_opts o = opts ? *opts : (mp_objpool_opts){ 0 };
    const unsigned known = MP_SINGLE_THREAD | MP_THREADSAFE | MP_ZERO | MP_LEAK_ABORT | MP_LEAK_IGNORE;
    size_t align = o.align ? o.align : default_align(o.obj_size);
    bool checked = mp__checked(), tracked = mp__track_active();
    if (tracked && align < MP_TRACK_GRAIN && (align & (align - 1)) == 0)
        align = MP_TRACK_GRAIN;
    mp__slab_shape shape;
    size_t initial_bytes;
    /* A bad parent is refused here, with the other options, so that no
     * ctor runs (and no memory is made) for a pool that cannot be attached. */
    if (o.obj_size == 0 || o.obj_size > SIZE_MAX / 4 || (o.flags & ~known) ||
        (parent && !mp__node_live((const mp__node *)parent, MP__KIND_ARENA)) ||
        ((o.flags & MP_SINGLE_THREAD) && (o.flags & MP_THREADSAFE)) ||
        !mp__slab_shape_for(o.obj_size + (checked ? MP_REDZONE : 0), align, &shape) ||
        !mp__mul_ok(o.initial, shape.stride, &initial_bytes)) { /* initial * size overflows */
        errno = EINVAL;
        return NULL;
    }
    mp__fork_init();

    mp_objpool *p = mp__meta_alloc(sizeof *p);
    if (!p)
        return NULL;
    if (mp__node_init(&p->node, MP__KIND_OBJPOOL, &objpool_ops, o.name)) {
        mp__meta_free(p);
        errno = ENOMEM;
        return NULL;
    }
    p->obj_size = o.obj_size;
    p->shape = shape;
    p->flags = o.flags;
    p->max_free = o.max_free;
    p->max_live = o.max_live;
    p->ctor = o.ctor;
    p->dtor = o.dtor;
    p->arg = o.arg;
    p->checked = checked;
    p->leak = mp__leak_policy_of(o.flags);
    p->tracked = tracked;
    if (p->tracked)
        mp__track_pool_create(p, false);
    size_t cap = MAG_BYTES / shape.stride;
    p->mag_cap = cap < MAG_MIN ? MAG_MIN : cap > MAG_MAX ? MAG_MAX : cap;
    if (!(p->flags & MP_SINGLE_THREAD)) {
        mp__mutex_init(&p->lock);
        mp__cond_init(&p->freed);
    }

    if (p->flags & MP_SINGLE_THREAD)
        p->mode = CACHE_OWN;
    else
        p->mode = (p->slot = mp__tcache_slot_alloc()) ? CACHE_THREAD : CACHE_NONE;

    bool ok = true;
    if (checked && (p->qcap = mp__quarantine_depth()) != 0)
        ok = (p->quar = mp__meta_alloc(p->qcap * sizeof *p->quar)) != NULL;
    if (ok && p->mode == CACHE_OWN) {
        p->own_cache.verified = 1;
        ok = cache_attach(p, &p->own_cache);
    }
    ok = ok && make_initial(p, o.initial);
    int rc = ok ? mp__node_attach(parent, &p->node) : ENOMEM;
    if (rc) {
        objpool_free(p);
        errno = rc;
        return NULL;
    }
    /* The fast path is for plain pools; MP_ZERO pools zero in the slow path,
     * tracked pools tell the tools there, checked pools check and record
     * there, and capped pools count every object in `live` there. */
    if (!(p->flags & MP_ZERO) && !p->tracked && !p->checked && !p->max_live) {
        if (p->mode == CACHE_OWN)
            p->own = &p->own_cache;
        else if (p->mode == CACHE_THREAD)
            p->fast_slot = p->slot;
    }
    return p;
}

/* ------------------------------------------------------- pointer-only API */

void mp_free(void *ptr)
{
    if (!ptr)
        return;
    mp__chunk *ch = mp__chunk_lookup(ptr);
    if (!ch || ch->kind != MP__KIND_OBJPOOL) {
        mp__misuse("mp_free of a pointer not from an object pool", NULL, NULL, ptr);
        return;
    }
    mp_objpool *p = ch->owner;
    if (p->checked || p->tracked)
        put_slow(p, ptr, __builtin_return_address(0));
    else
        mp_objpool_put(p, ptr);
}

size_t mp_usable_size(const void *ptr)
{
    if (!ptr)
        return 0;
    mp__chunk *ch = mp__chunk_lookup(ptr);
    if (!ch || ch->kind != MP__KIND_OBJPOOL) {
        mp__misuse("mp_usable_size of a pointer not from an object pool", NULL, NULL, ptr);
        return 0;
    }
    const mp_objpool *p = ch->owner;
    /* Checked pools guard the bytes past obj_size with a red zone, and memory
     * tools (tracked pools) mark exactly obj_size bytes accessible: only
     * those are usable there. */
    return p->checked || p->tracked ? p->obj_size : ch->obj_size;
}
