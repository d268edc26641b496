/*
 * objpool_cache.c - layer 6: an object pool's caches and depot (the model
 * is in objpool.h): attaching a thread's cache, refilling and flushing it
 * a magazine at a time, retiring it at thread exit; the locked path of
 * pools with no cache; and validating each object where it leaves the
 * fast path's reach.
 */
#include "objpool.h"
#include "meta.h"
#include "os.h"
#include "tcache.h"
#include "track.h"

/* Drops the lock, then does what had to wait until it was dropped: report
 * an object the slabs refused, release the slabs retired meanwhile. */
void mp__objpool_unlock_then(mp_objpool *p, mp__slab *release)
{
    void *rejected = p->rejected;
    p->rejected = NULL;
    mp__objpool_unlock(p);
    if (rejected)
        mp__misuse(mp__objpool_says(p, "put of a pointer that is not an object of this pool (interior, header or put twice)",
                                      "free of a pointer that is not an allocation of this heap (interior, header or freed twice)"),
                   p->kind_name,
                   p->node.name, rejected);
    mp__objpool_slabs_release(p, release);
}

/* Enforces the depot bound and max_free, then unlocks (see mp__objpool_unlock_then). */
static void trim_and_unlock(mp_objpool *p)
{
    mp__slab *release = NULL;
    mp__objpool_depot_trim(p, MP__TRIM_BOUNDS, &release);
    mp__objpool_unlock_then(p, release);
}

/* A magazine leaving a cache goes to the depot (lock held): on the full
 * list if it holds objects, else on the empty one. */
static void depot_give_mag(mp_objpool *p, mp__mag *m)
{
    if (m->n)
        mp__depot_push_full(&p->depot, m);
    else
        mp__depot_push_empty(&p->depot, m);
}

/* True when obj is an object of p (a made slot's start in a slab of p's);
 * otherwise it is kept for mp__objpool_unlock's report (lock held). */
static bool valid_or_rejected(mp_objpool *p, void *obj)
{
    if (mp_likely(mp__slab_is_slot(mp__slab_of(obj), obj)))
        return true;
    if (!p->rejected)
        p->rejected = obj;
    return false;
}

/* True when every object in m is a made slot's start. Objects of one slab
 * tend to sit together in a magazine, so the test of each is a range and
 * a remainder against the geometry of the slab of the one before; only an
 * object outside that slab's made slots loads its own slab's. */
static bool mag_all_slots(const mp__mag *m, size_t stride)
{
    const char *slots = NULL;
    uint64_t recip = 0, made_bytes = 0;
    /* A power-of-two stride tells a slot's start by a mask (the common
     * sizes take the shorter loop); any other by the reciprocal. */
    uint64_t pow2_mask = mp__is_pow2(stride) ? stride - 1 : 0;
    for (size_t i = 0; i < m->n; i++) {
        const char *obj = m->objs[i];
        uint64_t off = (uint64_t)(obj - slots);
        if (mp_unlikely(off >= made_bytes)) {
            const mp__slab *s = mp__slab_of(obj);
            slots = s->slots;
            recip = s->recip;
            made_bytes = (uint64_t)__atomic_load_n(&s->nmade, __ATOMIC_RELAXED) * stride;
            off = (uint64_t)(obj - slots);
            if (off >= made_bytes)
                return false;
        }
        if (pow2_mask ? (off & pow2_mask) != 0 : ((off * recip) >> 32) * stride != off)
            return false;
    }
    return true;
}

/* A full magazine some other cache filled, about to be handed to a cache
 * (lock held): its objects came through that thread's fast path, which
 * checks only that each lies in a chunk of p's, so each is validated here,
 * before another thread can be given it. Keeps the valid ones. */
static void validate_mag(mp_objpool *p, mp__mag *m)
{
    if (mp_likely(mag_all_slots(m, p->shape.stride)))
        return;
    size_t kept = 0;
    for (size_t i = 0; i < m->n; i++)
        if (valid_or_rejected(p, m->objs[i]))
            m->objs[kept++] = m->objs[i];
    m->n = kept;
}

/* The growing step of mp__objpool_locked_take and mp__objpool_cache_refill, with the lock released
 * (a new slab maps memory): a slab for the caller to add once it holds the
 * lock again, or NULL with the failure counted and errno ENOMEM. */
static mp__slab *grow_unlocked(mp_objpool *p)
{
    mp__slab *s = mp__objpool_slab_new(p);
    if (!s) {
        mp__objpool_lock(p);
        p->failures++;
        mp__objpool_unlock(p);
        errno = ENOMEM;
    }
    return s;
}

/* The top of mp__objpool_locked_take's and mp__objpool_cache_refill's loops: takes the lock, then
 * adds the slab the last turn grew (grow_unlocked), if any. */
static void lock_adding(mp_objpool *p, mp__slab **grown)
{
    mp__objpool_lock(p);
    if (*grown) {
        mp__objpool_slab_add(p, *grown);
        *grown = NULL;
    }
}

/* ------------------------------------------------------------- locked path */

/* One object under the lock, for when there is no cache (no thread-cache
 * slot was free, or no cache could be made). Grows when needed. NULL with
 * errno ENOMEM when out of memory. */
void *mp__objpool_locked_take(mp_objpool *p)
{
    mp__slab *grown = NULL;
    for (;;) {
        lock_adding(p, &grown);
        void *obj = NULL;
        size_t fresh = 0;
        while (!obj && p->depot.full) {
            mp__mag *m = p->depot.full;
            obj = m->objs[--m->n];
            p->depot.objs--;
            if (m->n == 0)
                mp__depot_push_empty(&p->depot, mp__depot_pop_full(&p->depot));
            if (!valid_or_rejected(p, obj))
                obj = NULL;
        }
        if (!obj && mp__objpool_slabs_take(p, &obj, 1, &fresh) == 0) {
            mp__objpool_unlock(p);
            if (!(grown = grow_unlocked(p)))
                return NULL;
            continue;
        }
        p->allocs_base++;
        mp__objpool_note_peak(p);
        mp__objpool_unlock(p);
        if (fresh)
            mp__objpool_run_ctor(p, &obj, 1);
        return obj;
    }
}

void mp__objpool_locked_put(mp_objpool *p, void *obj)
{
    mp__objpool_lock(p);
    mp__objpool_slabs_give(p, &obj, 1);
    trim_and_unlock(p);
}

/* ---------------------------------------------------------------- caches */

/* Attaches c to p with two fresh magazines and links it into p's list. */
bool mp__objpool_cache_attach(mp_objpool *p, mp__cache *c)
{
    mp__mag *a = mp__mag_new(p->mag_cap), *b = a ? mp__mag_new(p->mag_cap) : NULL;
    if (!b) {
        mp__mag_free(a);
        return false;
    }
    mp__objpool_lock(p);
    mp__cache_attach(c, p, p->mag_cap, a, b);
    mp__list_push(&p->caches, &c->link);
    p->ncaches++;
    mp__objpool_unlock(p);
    return true;
}

/* Unlinks c from p and frees its magazines, objects and all (destroy, lock
 * held); the caller frees c itself, or keeps the pool's own. */
void mp__objpool_cache_drop(mp_objpool *p, mp__cache *c)
{
    mp__mag *a, *b;
    mp__cache_detach(c, &a, &b);
    mp__mag_free(a);
    mp__mag_free(b);
    mp__list_remove(&p->caches, &c->link);
    p->ncaches--;
}

/* Thread exit (tcache.h), with mp__tcache_lock held: the cache's objects
 * go to the depot, its count of gets to the pool, and the cache is freed.
 * Only the depot's bound is enforced here, not max_free: retiring slabs
 * would mean running the dtor under mp__tcache_lock. The next trim (a
 * flush, a locked put or a trim) gives back what max_free calls for. */
void mp__objpool_retire_cache(void *entry)
{
    mp__cache *c = entry;
    void **home = c->home;
    mp__objpool_retire_group_cache(c);
    mp__tcache_clear(home);
    mp__meta_free(c);
}

void mp__objpool_retire_group_cache(mp__cache *c)
{
    mp_objpool *p = c->owner;
    mp__objpool_lock(p);
    p->allocs_base += c->allocs;
    mp__mag *a, *b;
    mp__cache_detach(c, &a, &b);
    depot_give_mag(p, a);
    depot_give_mag(p, b);
    mp__list_remove(&p->caches, &c->link);
    p->ncaches--;
    mp__slab *none = NULL;
    mp__objpool_depot_trim(p, MP__TRIM_DEPOT, &none); /* retires no slab */
    mp__objpool_unlock_then(p, none);
}

/* The calling thread's cache for p, attached; NULL if none can be made
 * (the caller falls back to the locked path, which sets errno itself if it
 * fails too: a call that succeeds leaves errno alone). */
static mp__cache *cache_of(mp_objpool *p)
{
    if (p->mode == MP__CACHE_OWN)
        return p->st_cache;
    if (p->mode == MP__CACHE_GROUP) {
        int err = errno;
        char *block = (char *)mp__cache_group_block(p->group);
        mp__cache *c = block ? (mp__cache *)(block + p->cache_off) : NULL;
        if (c && (c->owner == p || mp__objpool_cache_attach(p, c)))
            return c;
        errno = err;
        return NULL;
    }
    void *entry = mp__tcache_get(p->slot);
    if (mp_likely(mp__tcache_is_own(entry)))
        return entry;
    int err = errno;
    void **home = mp__tcache_entry(p->slot);
    mp__cache *c = home ? mp__meta_alloc(sizeof *c) : NULL;
    if (c) {
        mp__cache_reset(c);
        c->home = home;
        if (mp__objpool_cache_attach(p, c)) {
            *home = c;
            return c;
        }
        mp__meta_free(c);
    }
    errno = err;
    return NULL;
}

/* The calling thread's cache for the slow paths, NULL when there is none
 * (MP__CACHE_NONE, or no memory for one): objects then move under the lock. */
mp__cache *mp__objpool_slow_cache(mp_objpool *p) { return p->mode == MP__CACHE_NONE ? NULL : cache_of(p); }

/* Refills c's loaded magazine (which is empty) from prev, the depot or
 * the slabs. Returns false with errno ENOMEM when no object can be had. */
bool mp__objpool_cache_refill(mp_objpool *p, mp__cache *c)
{
    mp__slab *grown = NULL;
    for (;;) {
        lock_adding(p, &grown);
        if (mp__cache_prev(c)) { /* prev is full: swap it in */
            mp__cache_swap(c);
            mp__objpool_unlock(p);
            return true;
        }
        mp__mag *full = mp__depot_pop_full(&p->depot);
        if (full && full->filler != c)
            validate_mag(p, full);
        if (full && full->n) {
            mp__cache_refill(c, &p->depot, full);
            mp__objpool_note_peak(p);
            mp__objpool_unlock_then(p, NULL);
            return true;
        }
        if (full) { /* every object in it was refused */
            mp__depot_push_empty(&p->depot, full);
            mp__objpool_unlock_then(p, NULL);
            continue;
        }
        size_t fresh, got = mp__objpool_slabs_take(p, c->loaded->objs, c->cap, &fresh);
        if (got) {
            mp__sttop(&c->top, c->loaded->objs + got);
            mp__objpool_note_peak(p);
            mp__objpool_unlock(p);
            mp__objpool_run_ctor(p, c->loaded->objs + got - fresh, fresh);
            return true;
        }
        mp__objpool_unlock(p);
        if (!(grown = grow_unlocked(p)))
            return false;
    }
}

/* Makes room in c, whose loaded magazine is full: swaps in prev if it is
 * empty, else (prev is then full: prev only ever holds 0 or cap objects)
 * gives prev to the depot and loads an empty magazine. Returns false when
 * no empty magazine can be had. */
bool mp__objpool_cache_flush(mp_objpool *p, mp__cache *c)
{
    mp__objpool_lock(p);
    if (mp__cache_prev(c) == 0) {
        mp__cache_swap(c);
        mp__objpool_unlock(p);
        return true;
    }
    /* One lock round when the depot has a spare empty magazine (the usual
     * case); only making a new one (metadata memory) is done unlocked. */
    mp__mag *spare = mp__depot_pop_empty(&p->depot);
    if (!spare) {
        mp__objpool_unlock(p);
        if (!(spare = mp__mag_new(p->mag_cap)))
            return false;
        mp__objpool_lock(p);
    }
    depot_give_mag(p, mp__cache_rotate(c, spare));
    trim_and_unlock(p);
    return true;
}

