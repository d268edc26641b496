/*
 * objpool.c - layer 6: object pools' get and put, fast and slow, the cap
 * and waiting, bulk calls (the model is in objpool.h).
 *
 * The fast paths (mp_objpool_get, mp_objpool_put) pop and push the calling
 * thread's loaded magazine: no lock, no atomic read-modify-write. They are
 * on only for plain pools; MP_ZERO pools zero, tracked pools tell the
 * tools, checked pools check and record, capped pools count every
 * object in `live`, and handle pools move each object's generation
 * (objpool_handle.c), all in the slow paths here.
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
#include "os.h"
#include "tcache.h"
#include "track.h"

static const char KIND[] = MP_OBJPOOL_KIND;

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
        mp__misuse(mp__objpool_says(p, "put with no object out (a double put?)", "free with no object out (a double free?)"), p->kind_name, p->node.name, p);
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

/* ---------------------------------------------------------------- checks */

/* The always-on check for a pointer given back to p, off the fast path:
 * an object of p's (a made slot's start in a slab p owns). */
static bool owned_by(mp_objpool *p, void *obj)
{
    mp__chunk *ch = mp__chunk_lookup(obj);
    if (!ch) {
        mp__misuse(mp__objpool_says(p, "put of a pointer not from mpool", "free of a pointer not from mpool"), p->kind_name, p->node.name, obj);
        return false;
    }
    if (ch->owner != p) {
        char from[160];
        mp__owner_detail(from, sizeof from, ch);
        mp__misuse_detail(mp__objpool_says(p, "put of a pointer from another pool", "free of a pointer from another pool"), p->kind_name, p->node.name, obj, from);
        return false;
    }
    if (!mp__slab_is_slot((mp__slab *)ch, obj)) {
        mp__misuse(mp__objpool_says(p, "put of an interior pointer", "free of an interior pointer"), p->kind_name, p->node.name, obj);
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

/* ---------------------------------------------------------- handle pools */

/* Handle pools skip the inline paths (fast_slot 0, own cache detached):
 * those cannot move generations. Without checked mode, tools or a cap,
 * their gets and puts start here instead, with what the inline paths do
 * plus the generation, before the general slow paths. The magic test
 * keeps a destroyed pool's use reported (its struct may be reused). */
static inline bool handles_quick(const mp_objpool *p)
{
    return p && p->hquick && p->node.magic == MP_NODE_MAGIC;
}

/* The cache the inline paths would serve p from, were it a plain pool. */
static inline mp__cache *handles_cache(mp_objpool *p)
{
    return p->mode == MP__CACHE_OWN ? p->st_cache : (mp__cache *)mp__tcache_get(p->slot);
}

/* An object from the calling thread's cache, or NULL (empty, or none). */
static void *handles_get(mp_objpool *p)
{
    mp__cache *c = handles_cache(p);
    void **top = c->top;
    void *obj = top[-1];
    if (!obj)
        return NULL;
    mp__sttop(&c->top, top - 1);
    mp__st(&c->allocs, c->allocs + 1);
    if (p->flags & MP_ZERO)
        memset(obj, 0, p->obj_size);
    mp__handles_out(p, obj);
    return obj;
}

/* obj back into the calling thread's cache; false when that is for the
 * slow path (no room, or obj not known to be an object of p's). The
 * record is written only for a made slot's exact start. */
static bool handles_put(mp_objpool *p, void *obj)
{
    mp__cache *c = handles_cache(p);
    void **top = c->top;
    uintptr_t base = (uintptr_t)obj & ~(uintptr_t)MP_CHUNK_MASK;
    if (top == c->end || !(base == mp__ldp(&c->verified) || mp__chunk_owned_by(base, p)) ||
        !mp__slab_is_slot((mp__slab *)base, obj))
        return false;
    mp__stp(&c->verified, base);
    if (!mp__handles_in(p, obj)) {
        mp__misuse(mp__objpool_says(p, "double put", "double free"), p->kind_name, p->node.name, obj);
        return true;
    }
    *top = obj;
    mp__sttop(&c->top, top + 1);
    return true;
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
    if (p->handles)
        mp__handles_out(p, obj);
    return obj;
}

/* n objects from the calling thread's cache, refilled as needed and
 * emptied a magazine at a time, or, with no cache, from under the lock.
 * Returns how many it got: n unless memory ran out (errno ENOMEM). The cap
 * is the caller's business. */
static size_t take_many(mp_objpool *p, void **out, size_t n)
{
    mp__cache *c = mp__objpool_slow_cache(p);
    size_t got = 0;
    if (!c) {
        while (got < n && (out[got] = mp__objpool_locked_take(p)) != NULL)
            got++;
        return got;
    }
    while (got < n && (c->top[-1] != NULL || mp__objpool_cache_refill(p, c))) {
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
    if (handles_quick(p)) {
        void *obj = handles_get(p);
        if (obj)
            return obj;
    }
    if (!mp__objpool_ok(p, "get from a destroyed or invalid pool"))
        return NULL;
    bool at_cap;
    return get_common(p, site, &at_cap);
}

/* give_one's way when c's loaded magazine is full. */
static MP_NOINLINE void give_to_full(mp_objpool *p, mp__cache *c, void *obj)
{
    if (!mp__objpool_cache_flush(p, c)) {
        mp__objpool_locked_put(p, obj); /* no magazine could be had */
        return;
    }
    *c->top = obj;
    mp__sttop(&c->top, c->top + 1);
}

/* Gives obj back to cache c (mp__objpool_slow_cache's) or, c NULL, under the lock.
 * obj must already be known to be p's (put_common checked it, or it left
 * p's quarantine): its chunk becomes c's verified one. */
static inline void give_one(mp_objpool *p, mp__cache *c, void *obj)
{
    if (!c) {
        mp__objpool_locked_put(p, obj);
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

/* put_common's way for checked, tracked or handle pools, once ownership
 * is checked: checked mode's state, red zone and fill checks, the
 * generation (unless put_handle advanced it already: claimed), the tools'
 * event, the quarantine, then the object (or the one leaving the
 * quarantine) goes back to cache c. Returns false when the put was refused
 * (misuse reported); the cap's place is then not released. */
static MP_NOINLINE bool put_debug(mp_objpool *p, mp__cache *c, void *obj, const void *site, bool claimed)
{
    if (!mp__slab_is_slot(mp__slab_of(obj), obj)) { /* the tools must not poison metadata */
        mp__misuse(mp__objpool_says(p, "put of an interior pointer", "free of an interior pointer"), p->kind_name, p->node.name, obj);
        return false;
    }
    if (p->checked && !mp__objpool_checked_in(p, obj, site))
        return false;
    /* A handle pool knows which objects are out: a double put is caught
     * in any mode (checked mode's report above names the sites). */
    if (p->handles && !claimed && !mp__handles_in(p, obj)) {
        mp__misuse(mp__objpool_says(p, "double put", "double free"), p->kind_name, p->node.name, obj);
        return false;
    }
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
    if (p->checked || p->tracked || p->handles)
        return put_debug(p, c, obj, site, false);
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
    if (handles_quick(p) && handles_put(p, obj))
        return;
    if (!mp__objpool_ok(p, "put to a destroyed or invalid pool"))
        return;
    if (put_common(p, mp__objpool_slow_cache(p), obj, site) && p->max_live)
        live_release(p, 1);
}

void mp__objpool_free_slow(mp_objpool *p, void *obj, const void *site) { put_slow(p, obj, site); }

void mp__objpool_put_claimed(mp_objpool *p, void *obj, const void *site)
{
    if (put_debug(p, mp__objpool_slow_cache(p), obj, site, true) && p->max_live)
        live_release(p, 1);
}

void *mp__objpool_get_at(mp_objpool *p, const void *site) { return get_slow(p, site); }

void mp__objpool_put_at(mp_objpool *p, void *obj, const void *site) { put_slow(p, obj, site); }

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
    return p->fast_slot ? (mp__cache *)((char *)mp__tls_fast[p->fast_slot] + p->cache_off) : &p->own_cache;
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
    if (p->checked || p->tracked || (p->flags & MP_ZERO) || p->handles)
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
    mp__cache *c = mp__objpool_slow_cache(p); /* looked up once for the batch */
    size_t given = 0;
    if (c && !p->checked && !p->tracked && !p->handles)
        given = put_many(p, c, objs, n);
    else
        for (size_t i = 0; i < n; i++)
            if (objs[i] && put_common(p, c, objs[i], site))
                given++;
    if (p->max_live && given)
        live_release(p, given); /* one release (and wake-up) for the batch */
}

