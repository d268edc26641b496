/*
 * objpool.c - layer 6: object pools: create and destroy, the caches, get
 * and put, the cap and waiting, bulk calls (the model is in objpool.h).
 *
 * The fast paths (mp_objpool_get, mp_objpool_put) pop and push the calling
 * thread's loaded magazine: no lock, no atomic read-modify-write. They are
 * on only for plain pools; MP_ZERO pools zero, tracked pools tell the
 * tools, checked pools check and record, and capped pools count every
 * object in `live`, all in the slow paths here.
 *
 * Pools with max_live keep their caches but count the objects out in one
 * atomic counter: a get first reserves a place under the cap (one CAS), a
 * put releases it. So the cap is exact - never more than max_live out, and
 * a get fails only when max_live objects really are out, whatever other
 * threads' caches hold. get_wait sleeps on `freed`; puts wake it only when
 * `waiters` says someone sleeps (both counters sequentially consistent, so
 * a put that misses a new waiter is always seen by that waiter's re-check).
 */
#include "objpool.h"
#include "fork.h"
#include "os.h"
#include "tcache.h"
#include "track.h"

#include <stdalign.h>
#include <stdio.h>

#define MAG_BYTES 32768 /* a magazine holds about this many bytes of objects */
#define MAG_MIN 8
#define MAG_MAX 128

static const char KIND[] = MP_OBJPOOL_KIND;

/* Drops the lock, then does what had to wait until it was dropped: report
 * an object the slabs refused, release the slabs retired meanwhile. */
static void unlock_then(mp_objpool *p, mp__slab *release)
{
    void *rejected = p->rejected;
    p->rejected = NULL;
    mp__objpool_unlock(p);
    if (rejected)
        mp__misuse("put of a pointer that is not an object of this pool (interior, header or freed twice)", KIND,
                   p->node.name, rejected);
    mp__objpool_slabs_release(p, release);
}

/* Enforces the depot bound and max_free, then unlocks (see unlock_then). */
static void trim_and_unlock(mp_objpool *p)
{
    mp__slab *release = NULL;
    mp__objpool_depot_trim(p, MP__TRIM_BOUNDS, &release);
    unlock_then(p, release);
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
static bool mag_all_slots(const mp__mag *m)
{
    const char *slots = NULL;
    uint64_t recip = 0, stride = 0, made_bytes = 0;
    for (size_t i = 0; i < m->n; i++) {
        const char *obj = m->objs[i];
        uint64_t off = (uint64_t)(obj - slots);
        if (mp_unlikely(off >= made_bytes)) {
            const mp__slab *s = mp__slab_of(obj);
            slots = s->slots;
            recip = s->recip;
            stride = s->chunk.obj_size;
            made_bytes = (uint64_t)__atomic_load_n(&s->nmade, __ATOMIC_RELAXED) * stride;
            off = (uint64_t)(obj - slots);
            if (off >= made_bytes)
                return false;
        }
        if (mp_unlikely(((off * recip) >> 32) * stride != off))
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
    if (mp_likely(mag_all_slots(m)))
        return;
    size_t kept = 0;
    for (size_t i = 0; i < m->n; i++)
        if (valid_or_rejected(p, m->objs[i]))
            m->objs[kept++] = m->objs[i];
    m->n = kept;
}

/* The growing step of locked_take and cache_refill, with the lock released
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

/* The top of locked_take's and cache_refill's loops: takes the lock, then
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
static void *locked_take(mp_objpool *p)
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

static void locked_put(mp_objpool *p, void *obj)
{
    mp__objpool_lock(p);
    mp__objpool_slabs_give(p, &obj, 1);
    trim_and_unlock(p);
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
    mp__objpool_lock(p);
    if (n == 1)
        pthread_cond_signal(&p->freed);
    else
        pthread_cond_broadcast(&p->freed);
    mp__objpool_unlock(p);
}

/* ---------------------------------------------------------------- caches */

/* Attaches c to p with two fresh magazines and links it into p's list. */
static bool cache_attach(mp_objpool *p, mp__cache *c)
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
static void cache_drop(mp_objpool *p, mp__cache *c)
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
static void retire_cache(void *entry)
{
    mp__cache *c = entry;
    mp_objpool *p = c->owner;
    void **home = c->home;
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
    unlock_then(p, none);
    mp__tcache_clear(home);
    mp__meta_free(c);
}

/* The calling thread's cache for p, attached; NULL if none can be made
 * (the caller falls back to the locked path, which sets errno itself if it
 * fails too: a call that succeeds leaves errno alone). */
static mp__cache *cache_of(mp_objpool *p)
{
    if (p->mode == MP__CACHE_OWN)
        return p->st_cache;
    void *entry = mp__tcache_get(p->slot);
    if (mp_likely(mp__tcache_is_own(entry)))
        return entry;
    int err = errno;
    void **home = mp__tcache_entry(p->slot);
    mp__cache *c = home ? mp__meta_alloc(sizeof *c) : NULL;
    if (c) {
        mp__cache_reset(c);
        c->home = home;
        if (cache_attach(p, c)) {
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
static mp__cache *slow_cache(mp_objpool *p) { return p->mode == MP__CACHE_NONE ? NULL : cache_of(p); }

/* Refills c's loaded magazine (which is empty) from prev, the depot or
 * the slabs. Returns false with errno ENOMEM when no object can be had. */
static bool cache_refill(mp_objpool *p, mp__cache *c)
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
            unlock_then(p, NULL);
            return true;
        }
        if (full) { /* every object in it was refused */
            mp__depot_push_empty(&p->depot, full);
            unlock_then(p, NULL);
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
static bool cache_flush(mp_objpool *p, mp__cache *c)
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

/* ---------------------------------------------------------------- checks */

/* The always-on check for a pointer given back to p, off the fast path:
 * an object of p's (a made slot's start in a slab p owns). */
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
    if (!mp__slab_is_slot((mp__slab *)ch, obj)) {
        mp__misuse("put of an interior pointer", KIND, p->node.name, obj);
        return false;
    }
    return true;
}

/* Records that obj's chunk is p's, for the fast path's check of the next
 * puts. */
static void cache_verify(mp__cache *c, const void *obj) { mp__stp(&c->verified, (uintptr_t)mp__chunk_of(obj)); }

/* The fast path's check: obj lies in the chunk c checked last. */
static inline bool in_verified(const mp__cache *c, const void *obj)
{
    return (uintptr_t)mp__chunk_of(obj) == mp__ldp(&c->verified);
}

/* ------------------------------------------------------------ slow paths */

/* Last step of every slow get: checks, tools, zeroing. */
static void *obj_hand_out(mp_objpool *p, void *obj, const void *site)
{
    if (p->checked)
        mp__objpool_checked_out(p, obj, site);
    if (p->tracked)
        mp__track_obj_out(p, obj, p->obj_size, p->ctor != NULL || (p->flags & MP_ZERO));
    if (p->flags & MP_ZERO)
        memset(obj, 0, p->obj_size);
    return obj;
}

/* n objects from the calling thread's cache, refilled as needed and
 * emptied a magazine at a time, or, with no cache, from under the lock.
 * Returns how many it got: n unless memory ran out (errno ENOMEM). The cap
 * is the caller's business. */
static size_t take_many(mp_objpool *p, void **out, size_t n)
{
    mp__cache *c = slow_cache(p);
    size_t got = 0;
    if (!c) {
        while (got < n && (out[got] = locked_take(p)) != NULL)
            got++;
        return got;
    }
    while (got < n && (c->top[-1] != NULL || cache_refill(p, c))) {
        void **top = c->top;
        size_t avail = (size_t)(top - c->loaded->objs), k = n - got < avail ? n - got : avail;
        for (size_t j = 0; j < k; j++)
            out[got + j] = top[-1 - (ptrdiff_t)j];
        mp__sttop(&c->top, top - k);
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
    return obj_hand_out(p, obj, site);
}

static MP_NOINLINE void *get_slow(mp_objpool *p, const void *site)
{
    if (!mp__objpool_ok(p, "get from a destroyed or invalid pool"))
        return NULL;
    bool at_cap;
    return get_common(p, site, &at_cap);
}

/* give_one's way when c's loaded magazine is full. */
static MP_NOINLINE void give_to_full(mp_objpool *p, mp__cache *c, void *obj)
{
    if (!cache_flush(p, c)) {
        locked_put(p, obj); /* no magazine could be had */
        return;
    }
    *c->top = obj;
    mp__sttop(&c->top, c->top + 1);
}

/* Gives obj back to cache c (slow_cache's) or, c NULL, under the lock.
 * obj must already be known to be p's (put_common checked it, or it left
 * p's quarantine): its chunk becomes c's verified one. */
static inline void give_one(mp_objpool *p, mp__cache *c, void *obj)
{
    if (!c) {
        locked_put(p, obj);
        return;
    }
    cache_verify(c, obj);
    if (mp_unlikely(c->top == c->end)) {
        give_to_full(p, c, obj);
        return;
    }
    *c->top = obj;
    mp__sttop(&c->top, c->top + 1);
}

/* put_common's way for checked or tracked pools, once ownership is
 * checked: checked mode's state, red zone and fill checks, the tools' event,
 * the quarantine, then the object (or the one leaving the quarantine) goes
 * back to cache c. Returns false when the put was refused (misuse
 * reported); the cap's place is then not released. */
static MP_NOINLINE bool put_debug(mp_objpool *p, mp__cache *c, void *obj, const void *site)
{
    if (!mp__slab_is_slot(mp__slab_of(obj), obj)) { /* the tools must not poison metadata */
        mp__misuse("put of an interior pointer", KIND, p->node.name, obj);
        return false;
    }
    if (p->checked && !mp__objpool_checked_in(p, obj, site))
        return false;
    if (p->tracked)
        mp__track_obj_in(p, obj, p->shape.stride);
    if (p->checked && !(obj = mp__objpool_quarantine(p, obj)))
        return true;
    give_one(p, c, obj);
    return true;
}

/* Inline: put_slow and put_bulk (with checked mode or tools, or with no
 * cache) run it once per object; without checked mode or tools it is only
 * the ownership check and a push. */
static inline bool put_common(mp_objpool *p, mp__cache *c, void *obj, const void *site)
{
    bool known = c && in_verified(c, obj);
    if (!known && !owned_by(p, obj))
        return false;
    if (p->checked || p->tracked)
        return put_debug(p, c, obj, site);
    give_one(p, c, obj);
    return true;
}

/* put_common for a batch, without checked mode or tools: each object is
 * checked as the fast path checks it (a NULL skipped, one outside the
 * last verified slab looked up) and pushed onto c's magazine, whose top is
 * kept in a local and published once per magazine. Returns how many went
 * back. */
static size_t put_many(mp_objpool *p, mp__cache *c, void *const *objs, size_t count)
{
    void **top = c->top;
    size_t given = 0;
    for (size_t i = 0; i < count; i++) {
        void *obj = objs[i];
        if (!obj)
            continue; /* NULL does nothing */
        if (!in_verified(c, obj)) {
            if (!owned_by(p, obj))
                continue; /* reported */
            cache_verify(c, obj);
        }
        given++;
        if (mp_unlikely(top == c->end)) {
            mp__sttop(&c->top, top);
            give_to_full(p, c, obj); /* exchanges the magazine, then pushes */
            top = c->top;
            continue;
        }
        *top++ = obj;
    }
    mp__sttop(&c->top, top);
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
    if (!mp__objpool_ok(p, "put to a destroyed or invalid pool"))
        return;
    if (put_common(p, slow_cache(p), obj, site) && p->max_live)
        live_release(p, 1);
}

/* Checked or tracked pools route mp_free here: their puts must see the
 * caller's site and take the slow path. */
void mp__objpool_free_slow(mp_objpool *p, void *obj, const void *site) { put_slow(p, obj, site); }

/* ------------------------------------------------------------- fast paths */

/* The inline paths (mpool.h) try the pool's own cache, then the calling
 * thread's direct TLS entry; what they cannot do comes here. The
 * out-of-line mp_objpool_get and mp_objpool_put below do the same as the
 * inline ones, for MPOOL_NO_INLINE builds and callers through a pointer. */

/* The cache the fast paths serve from: the calling thread's direct entry,
 * or (fast_slot 0) the pool's own, detached unless the pool is a plain
 * single-threaded one. */
static inline mp__cache *fast_cache(mp_objpool *p)
{
    return p->fast_slot ? (mp__cache *)mp__tls_fast[p->fast_slot] : &p->own_cache;
}

void *mp__objpool_get_slow(mp_objpool *p) { return get_slow(p, __builtin_return_address(0)); }

/* A put the inline path could not finish because obj is in another chunk
 * than cache c checked last (shuffled frees take this on nearly every
 * call): the always-on check of a live chunk owned by p is one registry
 * lookup, and the push follows here. Anything else goes the slow way. */
void mp__objpool_put_unverified(mp_objpool *p, mp__cache_hot *hot, void *obj)
{
    mp__cache *c = (mp__cache *)hot;
    uintptr_t base = (uintptr_t)obj & ~(uintptr_t)MP_CHUNK_MASK;
    if (mp_likely(mp__chunk_owned_by(base, p))) {
        void **top = c->top;
        mp__stp(&c->verified, base);
        *top = obj;
        mp__sttop(&c->top, top + 1);
        return;
    }
    put_slow(p, obj, __builtin_return_address(0));
}

void mp__objpool_put_slow(mp_objpool *p, void *obj) { put_slow(p, obj, __builtin_return_address(0)); }

void *mp_objpool_get(mp_objpool *p)
{
    if (mp_likely(p != NULL)) {
        mp__cache *c = fast_cache(p);
        void **top = c->top;
        void *obj = top[-1]; /* the magazine's guard (NULL) when it is empty */
        if (mp_likely(obj != NULL)) {
            mp__sttop(&c->top, top - 1);
            mp__st(&c->allocs, c->allocs + 1);
            return obj;
        }
    }
    return get_slow(p, __builtin_return_address(0));
}

/* No lock and no test of the cache's owner: a thread's cache in p's slot
 * is either detached (top == end: the test fails) or attached to p,
 * because a pool's destroy frees every cache in its slot before the slot
 * can be handed to another pool. The check is the chunk's: a pointer into
 * one of p's chunks that is not an object (an interior or header pointer)
 * passes it, and is caught where it leaves this thread (validate_mag) or
 * reaches its slab (mp__objpool_slabs_give); a checked pool catches it at
 * the put. `verified` can be cleared under us by the chunk's retirement,
 * but a chunk holding an object that is out - the one being put - is never
 * retired. */
void mp_objpool_put(mp_objpool *p, void *obj)
{
    if (mp_likely(p != NULL)) {
        mp__cache *c = fast_cache(p);
        uintptr_t base = (uintptr_t)obj & ~(uintptr_t)MP_CHUNK_MASK;
        void **top = c->top;
        if (mp_likely(top < c->end) && (mp_likely(base == mp__ldp(&c->verified)) || mp__chunk_owned_by(base, p))) {
            mp__stp(&c->verified, base);
            *top = obj;
            mp__sttop(&c->top, top + 1);
            return;
        }
    }
    put_slow(p, obj, __builtin_return_address(0));
}

/* ------------------------------------------------------------ waiting get */

void *mp_objpool_get_wait(mp_objpool *p, int64_t timeout_ns)
{
    const void *site = __builtin_return_address(0);
    if (!mp__objpool_ok(p, "get from a destroyed or invalid pool"))
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
        mp__objpool_lock(p);
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
            mp__objpool_unlock(p);
            errno = ETIMEDOUT;
            return NULL;
        }
        mp__objpool_unlock(p);
        obj = get_common(p, site, &at_cap);
        if (obj || !at_cap)
            return obj;
    }
}

/* ------------------------------------------------------------------ bulk */

size_t mp_objpool_get_bulk(mp_objpool *p, void **objs, size_t n)
{
    const void *site = __builtin_return_address(0);
    if ((!objs && n) || !mp__objpool_ok(p, "get from a destroyed or invalid pool")) {
        errno = EINVAL;
        return 0;
    }
    /* Capped: one reservation for the whole batch. Then the objects come
     * out of the cache a magazine at a time; checked mode and the tools
     * see each one with the caller's site. */
    size_t k = p->max_live ? live_reserve(p, n) : n, i = take_many(p, objs, k);
    if (p->checked || p->tracked || (p->flags & MP_ZERO))
        for (size_t j = 0; j < i; j++)
            obj_hand_out(p, objs[j], site);
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
    if (!mp__objpool_ok(p, "put to a destroyed or invalid pool"))
        return;
    mp__cache *c = slow_cache(p); /* looked up once for the batch */
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

/* ---------------------------------------------------------------- trim */

void mp_objpool_trim(mp_objpool *p)
{
    if (!mp__objpool_ok(p, "trim of a destroyed or invalid pool"))
        return;
    /* The calling thread's own cache can be emptied safely; others' can't. */
    mp__cache *c = NULL;
    if (p->mode == MP__CACHE_OWN)
        c = p->st_cache;
    else if (p->mode == MP__CACHE_THREAD && mp__tcache_is_own(mp__tcache_get(p->slot)))
        c = mp__tcache_get(p->slot);
    mp__objpool_lock(p);
    if (c) {
        mp__cache_sync(c);
        mp__objpool_slabs_give(p, c->loaded->objs, c->loaded->n);
        mp__objpool_slabs_give(p, c->prev->objs, c->prev->n);
        c->loaded->n = c->prev->n = 0;
        mp__cache_load(c, c->loaded);
    }
    mp__slab *release = NULL;
    mp__objpool_depot_trim(p, MP__TRIM_ALL, &release);
    unlock_then(p, release);
    /* The chunk layer keeps freed chunks for reuse; a trim means "give the
     * memory back now", so they go too (any pool can remap later). */
    mp__chunk_release_retained();
}

/* --------------------------------------------------------------- destroy */

static void objpool_free(mp_objpool *p)
{
    mp__lock(&mp__tcache_lock);
    mp__objpool_lock(p);
    while (p->caches.head) {
        mp__cache *c = mp__list_entry(p->caches.head, mp__cache, link);
        void **home = c->home;
        cache_drop(p, c);
        if (home) {
            mp__tcache_clear(home);
            mp__meta_free(c);
        }
    }
    mp__objpool_unlock(p);
    mp__tcache_slot_free(p->slot);
    mp__unlock(&mp__tcache_lock);

    mp__depot_free_all(&p->depot);
    mp__objpool_slabs_free_all(p);
    if (p->tracked)
        mp__track_pool_destroy(p);
    if (!(p->flags & MP_SINGLE_THREAD)) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->freed);
    }
    mp__node_fini(&p->node);
    mp__quarantine_fini(&p->quar);
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
        mp__objpool_report_leaks(p);
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

static void node_lock(mp__node *n) { mp__objpool_lock((mp_objpool *)n); }

static void node_unlock(mp__node *n) { mp__objpool_unlock((mp_objpool *)n); }

/* fork() child, pool lock held: the parent's get_wait sleepers are not
 * here. */
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
    .stats = mp__objpool_node_stats,
    .lock_for_fork = node_lock,
    .unlock_after_fork = node_unlock,
    .forget_waiters_after_fork = node_forget_waiters,
};

int mp_objpool_move(mp_objpool *p, mp_arena *new_parent)
{
    if (!mp__objpool_ok(p, "move of a destroyed or invalid pool"))
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
        mp__slab *s = mp__objpool_slab_new(p);
        if (!s)
            return false;
        size_t n = initial - p->made < s->nslots ? initial - p->made : s->nslots;
        mp__slab_make_free(s, (uint32_t)n);
        mp__objpool_slab_add(p, s);
        for (uint32_t i = 0; i < n; i++) {
            void *obj = mp__slab_slot(s, i);
            mp__objpool_run_ctor(p, &obj, 1);
        }
        p->made += n;
        p->slab_free += n;
    }
    return true;
}

/* The options a pool cannot be made with (errno EINVAL), checked before
 * anything is made: no ctor runs for a pool that cannot be attached. */
static bool opts_ok(const mp_objpool_opts *o, mp_arena *parent, bool checked, size_t align, mp__slab_shape *shape)
{
    const unsigned known = MP_SINGLE_THREAD | MP_ZERO | MP_LEAK_ABORT | MP_LEAK_IGNORE;
    size_t initial_bytes;
    return o->obj_size != 0 && o->obj_size <= SIZE_MAX / 4 && !(o->flags & ~known) &&
           (!parent || mp__node_live((const mp__node *)parent, MP__KIND_ARENA)) &&
           mp__slab_shape_for(o->obj_size + (checked ? MP_REDZONE : 0), align, shape) &&
           mp__mul_ok(o->initial, shape->stride, &initial_bytes); /* initial * size overflows */
}

mp_objpool *mp_objpool_create(mp_arena *parent, const mp_objpool_opts *opts)
{
    mp_objpool_opts o = opts ? *opts : (mp_objpool_opts){ 0 };
    size_t align = o.align ? o.align : default_align(o.obj_size);
    bool checked = mp__checked(), tracked = mp__track_active();
    if (tracked && align < MP_TRACK_GRAIN && mp__is_pow2(align))
        align = MP_TRACK_GRAIN;
    mp__slab_shape shape;
    if (!opts_ok(&o, parent, checked, align, &shape)) {
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
    mp__depot_init(&p->depot, p->mag_cap);
    mp__cache_reset(&p->own_cache);
    mp__cache_reset(&p->quiet_cache);
    if (!(p->flags & MP_SINGLE_THREAD)) {
        mp__mutex_init(&p->lock);
        mp__cond_init(&p->freed);
    }

    if (p->flags & MP_SINGLE_THREAD)
        p->mode = MP__CACHE_OWN;
    else
        p->mode = (p->slot = mp__tcache_slot_alloc(retire_cache)) ? MP__CACHE_THREAD : MP__CACHE_NONE;

    /* The fast paths are for plain pools; MP_ZERO pools zero in the slow
     * path, tracked pools tell the tools there, checked pools check and
     * record there, and capped pools count every object in `live` there. */
    bool fast = !(p->flags & MP_ZERO) && !p->tracked && !p->checked && !p->max_live;
    p->st_cache = fast ? &p->own_cache : &p->quiet_cache;
    bool ok = mp__quarantine_init(&p->quar, checked ? mp__quarantine_depth() : 0);
    if (ok && p->mode == MP__CACHE_OWN)
        ok = cache_attach(p, p->st_cache);
    ok = ok && make_initial(p, o.initial);
    int rc = ok ? mp__node_attach(parent, &p->node) : ENOMEM;
    if (rc) {
        p->checked = false; /* never handed out: no graveyard */
        objpool_free(p);
        errno = rc;
        return NULL;
    }
    if (fast && p->mode == MP__CACHE_THREAD && p->slot < MP__TLS_FAST)
        p->fast_slot = p->slot;
    return p;
}
