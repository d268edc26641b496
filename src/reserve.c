/*
 * reserve.c - layer 6: reserves, the Linux kernel's mempool in user space.
 *
 * A reserve sits in front of a source (a user alloc/free pair, malloc of
 * elem_size bytes, or an object pool) and keeps `min` elements back, so
 * that allocations still succeed while the source fails:
 *
 *   alloc: ask the source first (no lock); if it fails, take an element
 *          from the reserve; if the reserve is empty, wait until a free
 *          refills it or the deadline passes, retrying the source now and
 *          then (a source may recover without any free).
 *   free:  if the reserve is below min, the element refills it and one
 *          waiter wakes; otherwise it goes back to the source (no lock).
 *
 * Invariants:
 *   - elems[0..level) are the elements held; level <= min <= cap, except
 *     while a resize that shrinks hands its surplus back (level may exceed
 *     the new min until it has).
 *   - level and min change only under lock, and with them the flag
 *     free_locked == (level < min || slow) (release), which the free fast
 *     path reads without the lock (acquire). Why no element is lost while
 *     the source keeps failing: then every element out came from the
 *     reserve, so out + level == min. A thread freeing an element reads
 *     free_locked after the take that handed that element out (its own, or
 *     one ordered before it by whatever passed the element on), so it sees
 *     level <= min - 1, free_locked true, and takes the locked path. With a healthy source a stale
 *     read only sends an element back to the source, which is where the
 *     waiters, retrying it every MP_RESERVE_RETRY_NS, then find memory.
 *   - waiting counts the threads inside a wait (from its start to its
 *     return), under lock. Destroy with waiting > 0 is misuse.
 *   - The source is never called with the lock held.
 *
 * Counters are relaxed atomics: each is exact, but a snapshot of several
 * taken while threads run may be mutually inconsistent by a few counts.
 *
 * Checked mode adds the set of elements out (an mp__ptrset, under lock),
 * a ring of recently freed elements to name double frees, and a graveyard
 * that keeps destroyed reserves' memory so later use is reported. When the
 * element size is known, elements in the reserve are filled with
 * MP_FILL_FREED, checked when they come out, and come out oldest first.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "common.h"
#include "meta.h"
#include "sync.h"
#include "debug.h"
#include "error.h"
#include "os.h"
#include "ptrset.h"
#include "reserve.h"
#include "track.h"
#include "fork.h"
#include "tree.h"

#define KIND "reserve"

/* How often a waiter retries the source while nothing is freed. */
#define MP_RESERVE_RETRY_NS (50 * 1000 * 1000)

static const mp__node_ops reserve_ops;

/* ---------------------------------------------------------------- sources */

/* The default source: elem_size bytes from the system allocator. */
static void *default_alloc(void *src) { return malloc(((mp_reserve *)src)->elem_size); }

static void default_free(void *elem, void *src)
{
    (void)src;
    free(elem);
}

void *mp_objpool_source_alloc(void *objpool) { return mp_objpool_get(objpool); }

void mp_objpool_source_free(void *elem, void *objpool) { mp_objpool_put(objpool, elem); }

/* Gives an element back to the source; it must be accessible again first. */
static void source_free(mp_reserve *r, void *elem)
{
    if (r->tracked)
        mp__track_obj_touch(elem, r->elem_size);
    r->hot.src_free(elem, r->hot.src);
}

/* ------------------------------------------------------- the reserve array */

/* Drops the lock after `added` elements went into the reserve, then wakes
 * as many waiters (if any wait). Signalling after the unlock spares the
 * woken thread from blocking at once on the lock we hold; a waiter that
 * misses the signal is impossible, since it checks the level under the
 * lock before it sleeps. */
static void unlock_and_wake(mp_reserve *r, size_t added)
{
    size_t waiting = r->waiting;
    mp__unlock(&r->lock);
    if (!waiting || !added)
        return;
    if (added == 1)
        pthread_cond_signal(&r->refilled);
    else
        pthread_cond_broadcast(&r->refilled);
}

static size_t level_of(const mp_reserve *r) { return atomic_load_explicit(&r->level, memory_order_relaxed); }

static size_t min_of(const mp_reserve *r) { return atomic_load_explicit(&r->min, memory_order_relaxed); }

/* Sets level and min (lock held) and free_locked, derived from them.
 * release: pairs with the acquire load of free_locked in mp_reserve_free. */
static void set_level_min_locked(mp_reserve *r, size_t level, size_t min)
{
    atomic_store_explicit(&r->level, level, memory_order_relaxed);
    atomic_store_explicit(&r->min, min, memory_order_relaxed);
    __atomic_store_n(&r->hot.free_locked, level < min || r->slow, __ATOMIC_RELEASE);
}

/* An element enters the reserve: checked mode fills it (checked when it
 * comes out), the tools see it as no-access. */
static void hold(mp_reserve *r, void *e)
{
    if (r->checked && r->elem_size)
        memset(e, MP_FILL_FREED, r->elem_size);
    if (r->tracked)
        mp__track_obj_hide(e, r->elem_size);
}

/* Puts e into the reserve (lock held, level < cap). */
static void push_locked(mp_reserve *r, void *e)
{
    size_t level = level_of(r);
    hold(r, e);
    r->elems[level] = e;
    set_level_min_locked(r, level + 1, min_of(r));
}

/* Takes an element out of the reserve (lock held, level > 0). */
static void *pop_locked(mp_reserve *r)
{
    size_t level = level_of(r) - 1;
    void *e;
    if (r->checked) {
        /* Oldest first: a stale pointer to an element just freed does not
         * alias the next allocation at once. */
        e = r->elems[0];
        memmove(r->elems, r->elems + 1, level * sizeof *r->elems);
    } else {
        e = r->elems[level];
    }
    set_level_min_locked(r, level, min_of(r));
    if (r->tracked)
        mp__track_obj_touch(e, r->elem_size);
    return e;
}

/* --------------------------------------------------------- checked mode */

/* Where e was freed, if it is among the elements freed last. */
static bool freed_find(const freed_ring *f, const void *e, const void **site)
{
    for (size_t i = 0; i < MP_RESERVE_FREED_RING; i++)
        if (f->at[i].elem == e) {
            *site = f->at[i].site;
            return true;
        }
    return false;
}

static void freed_remember(freed_ring *f, void *e, const void *site)
{
    f->at[f->next].elem = e;
    f->at[f->next].site = site;
    f->next = (f->next + 1) % MP_RESERVE_FREED_RING;
}

static void freed_forget(freed_ring *f, const void *e)
{
    for (size_t i = 0; i < MP_RESERVE_FREED_RING; i++)
        if (f->at[i].elem == e)
            f->at[i].elem = NULL;
}

/* Records e as out (checked mode). False (and e not recorded) when the set
 * cannot grow. Growing calls the system allocator with the lock held:
 * checked mode only, and never the source. */
static bool checked_out(mp_reserve *r, void *e, const void *site)
{
    mp__lock(&r->lock);
    bool ok = mp__ptrset_reserve(&r->out, 1);
    if (ok) {
        mp__ptrrec *rec = mp__ptrset_place(&r->out, e);
        *rec = (mp__ptrrec){ .p = e, .size = r->elem_size };
        rec->info.state = MP_OBJ_OUT;
        rec->info.alloc_site = site;
        freed_forget(&r->freed, e);
    }
    mp__unlock(&r->lock);
    return ok;
}

/* Checks that e is out from r and marks it back in; reports misuse and
 * returns false otherwise (checked mode). */
static bool checked_in(mp_reserve *r, void *e, const void *site)
{
    char detail[400], at[160], was[160];
    mp__lock(&r->lock);
    mp__ptrrec *rec = mp__ptrset_find(&r->out, e);
    if (rec) {
        mp__ptrset_delete(&r->out, rec);
        freed_remember(&r->freed, e, site);
        mp__unlock(&r->lock);
        return true;
    }
    const void *freed_at = NULL;
    bool was_freed = freed_find(&r->freed, e, &freed_at);
    mp__unlock(&r->lock);
    mp__format_site(at, sizeof at, site);
    if (was_freed) {
        mp__format_site(was, sizeof was, freed_at);
        snprintf(detail, sizeof detail, "freed again at %s, first freed at %s", at, was);
        mp__misuse_detail("double free", KIND, r->node.name, e, detail);
    } else {
        snprintf(detail, sizeof detail, "freed at %s", at);
        mp__misuse_detail("free of an element this reserve did not hand out", KIND, r->node.name, e, detail);
    }
    return false;
}

/* Walks the elements still out for mp__leak_report. */
typedef struct leak_walk {
    const mp__ptrset *out;
    size_t pos;
} leak_walk;

static bool next_leak(void *it, const void **ptr, const void **site)
{
    leak_walk *w = it;
    const mp__ptrrec *rec = mp__ptrset_next(w->out, &w->pos);
    if (!rec)
        return false;
    *ptr = rec->p;
    *site = rec->info.alloc_site;
    return true;
}

/* Reports the elements still out when a checked reserve is destroyed. */
static void reserve_report_leaks(mp_reserve *r)
{
    size_t n = mp__ptrset_count(&r->out);
    if (!r->checked || r->leak == MP__LEAK_IGNORE || !n)
        return;
    char header[2048];
    snprintf(header, sizeof header, "mpool: leak: reserve '%s': %zu element%s still out at destroy", r->node.name,
             n, n == 1 ? "" : "s");
    leak_walk w = { .out = &r->out };
    mp__leak_report(r->leak, header, next_leak, &w);
}

/* ---------------------------------------------------------------- checks */

static bool reserve_ok(const mp_reserve *r, const char *what)
{
    return mp__node_ok((const mp__node *)r, MP__KIND_RESERVE, what);
}

/* ------------------------------------------------------------- counters */

static void counter_inc(atomic_size_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

static size_t read_count(const atomic_size_t *c) { return atomic_load_explicit(c, memory_order_relaxed); }

/* Raises the recorded peak of elements out to what is out now. Called off
 * the fast paths only, so the peak is a lower bound. */
static void reserve_note_peak(const mp_reserve *r)
{
    mp_reserve *w = (mp_reserve *)r; /* the peak is a cache, even for a const reader */
    size_t allocs, frees;
    mp__reserve_counts_sum(w, &allocs, &frees);
    size_t out = allocs > frees ? allocs - frees : 0, peak = read_count(&r->peak_out);
    while (out > peak && !atomic_compare_exchange_weak_explicit(&w->peak_out, &peak, out, memory_order_relaxed,
                                                                memory_order_relaxed))
        ;
}

/* ---------------------------------------------------------------- alloc */

/* The end of every successful allocation that did not take the fast path. */
static void *handed_out(mp_reserve *r, void *e, bool from_reserve, const void *site)
{
    if (r->checked && !checked_out(r, e, site)) {
        /* Cannot track it: put it back where it came from and fail. */
        if (from_reserve) {
            mp__lock(&r->lock);
            push_locked(r, e);
            unlock_and_wake(r, 1);
        } else {
            source_free(r, e);
        }
        errno = ENOMEM;
        return NULL;
    }
    if (from_reserve && r->checked && r->elem_size && !mp__filled(e, r->elem_size, MP_FILL_FREED))
        mp__misuse("write to an element while it was in the reserve (after it was freed)", KIND, r->node.name, e);
    if (from_reserve)
        counter_inc(&r->reserve_used);
    mp__reserve_count(r, true);
    reserve_note_peak(r);
    return e;
}

/* The source failed once already: take from the reserve or wait. */
static void *alloc_slow(mp_reserve *r, int64_t timeout_ns, const void *site)
{
    counter_inc(&r->failures);
    int64_t deadline = 0;
    bool waiting = false;
    void *e = NULL;
    mp__lock(&r->lock);
    for (;;) {
        if (level_of(r) > 0) {
            e = pop_locked(r);
            break;
        }
        if (timeout_ns == 0) {
            errno = ENOMEM;
            break;
        }
        if (!waiting) {
            waiting = true;
            r->waiting++;
            counter_inc(&r->waits);
            deadline = mp__os_deadline(timeout_ns);
        }
        int64_t now = mp__os_now_ns();
        if (now >= deadline) {
            counter_inc(&r->timeouts);
            errno = ETIMEDOUT;
            break;
        }
        int64_t until = deadline - now > MP_RESERVE_RETRY_NS ? now + MP_RESERVE_RETRY_NS : deadline;
        if (mp__cond_wait_until(&r->refilled, &r->lock, until) == 0 || level_of(r) > 0)
            continue; /* signalled (or spurious): look at the reserve again */
        /* A retry slice ran out: the source may have recovered. */
        mp__unlock(&r->lock);
        void *s = r->hot.src_alloc(r->hot.src);
        mp__lock(&r->lock);
        if (s) {
            r->waiting--;
            mp__unlock(&r->lock);
            return handed_out(r, s, false, site);
        }
        counter_inc(&r->failures);
    }
    if (waiting)
        r->waiting--;
    mp__unlock(&r->lock);
    return e ? handed_out(r, e, true, site) : NULL;
}

/* Every call but the fast path's: bad arguments, a slow reserve, or a
 * source that failed (`called`: the fast path asked it already). */
static MP_NOINLINE void *alloc_other(mp_reserve *r, int64_t timeout_ns, bool called, const void *site)
{
    if (!reserve_ok(r, "alloc from a destroyed or invalid reserve"))
        return NULL;
    if (timeout_ns < 0 && timeout_ns != MP_WAIT_FOREVER) {
        errno = EINVAL;
        return NULL;
    }
    void *e = called ? NULL : r->hot.src_alloc(r->hot.src);
    return e ? handed_out(r, e, false, site) : alloc_slow(r, timeout_ns, site);
}

/* The library's fast path (mpool.h has the inline one): good arguments, a
 * plain reserve, a source that delivers. */
void *mp_reserve_alloc(mp_reserve *r, int64_t timeout_ns)
{
    if (mp_unlikely(!r || r->slow || timeout_ns < MP_WAIT_FOREVER))
        return alloc_other(r, timeout_ns, false, __builtin_return_address(0));
    void *e = r->hot.src_alloc(r->hot.src);
    if (mp_unlikely(!e))
        return alloc_other(r, timeout_ns, true, __builtin_return_address(0));
    mp__reserve_count(r, true);
    return e;
}

/* The inline path's ways into the library: anything but a plain reserve
 * and good arguments; a source that failed; an allocation to count. */
void *mp__reserve_alloc_slow(mp_reserve *r, int64_t timeout_ns)
{
    return alloc_other(r, timeout_ns, false, __builtin_return_address(0));
}

void *mp__reserve_alloc_failed(mp_reserve *r, int64_t timeout_ns)
{
    return alloc_other(r, timeout_ns, true, __builtin_return_address(0));
}

void *mp__reserve_count_alloc(mp_reserve *r, void *elem)
{
    mp__reserve_count(r, true);
    return elem;
}

/* ----------------------------------------------------------------- free */

/* The reserve looked below min: refill it under the lock, or, if it filled
 * up meanwhile, give the element back to the source. */
static MP_NOINLINE void free_slow(mp_reserve *r, void *elem)
{
    mp__lock(&r->lock);
    size_t level = level_of(r);
    if (level < min_of(r) && level < r->cap) {
        push_locked(r, elem);
        unlock_and_wake(r, 1);
        return;
    }
    mp__unlock(&r->lock);
    source_free(r, elem);
}

/* Every free but the fast path's: a bad or slow reserve, or one below
 * its minimum. */
static MP_NOINLINE void free_other(mp_reserve *r, void *elem, const void *site)
{
    if (!r) {
        mp__misuse("free to a NULL reserve", KIND, NULL, elem);
        return;
    }
    if (!reserve_ok(r, "free to a destroyed or invalid reserve") || (r->checked && !checked_in(r, elem, site)))
        return;
    mp__reserve_count(r, false);
    free_slow(r, elem);
}

/* The library's free (mpool.h has the inline one), and the inline
 * path's way into it. */
static void reserve_free_at(mp_reserve *r, void *elem, const void *site)
{
    if (!elem)
        return;
    /* acquire: pairs with the release store in set_level_min_locked */
    if (mp_unlikely(!r || __atomic_load_n(&r->hot.free_locked, __ATOMIC_ACQUIRE))) {
        free_other(r, elem, site);
        return;
    }
    mp__reserve_count(r, false);
    r->hot.src_free(elem, r->hot.src); /* elements out are never poisoned */
}

void mp_reserve_free(mp_reserve *r, void *elem) { reserve_free_at(r, elem, __builtin_return_address(0)); }

void mp__reserve_free_slow(mp_reserve *r, void *elem) { reserve_free_at(r, elem, __builtin_return_address(0)); }

/* --------------------------------------------------------------- resize */

/* Shrinks to n: surplus elements go back to the source, one at a time with
 * the lock dropped. */
static int shrink(mp_reserve *r, size_t n)
{
    mp__lock(&r->lock);
    set_level_min_locked(r, level_of(r), n);
    while (level_of(r) > n) {
        void *e = pop_locked(r);
        mp__unlock(&r->lock);
        r->hot.src_free(e, r->hot.src); /* pop_locked made it accessible */
        mp__lock(&r->lock);
    }
    mp__unlock(&r->lock);
    return 0;
}

/* Gets `want` elements from the source into got[], all or none. */
static bool fill_from_source(mp_reserve *r, void **got, size_t want)
{
    for (size_t i = 0; i < want; i++) {
        if (!(got[i] = r->hot.src_alloc(r->hot.src))) {
            while (i--)
                r->hot.src_free(got[i], r->hot.src);
            return false;
        }
    }
    return true;
}

/* Grows to n: the new elements are got from the source first (no lock),
 * so that a failure changes nothing. */
static int grow(mp_reserve *r, size_t n)
{
    mp__lock(&r->lock);
    size_t level = level_of(r);
    size_t want = level < n ? n - level : 0;
    bool need_array = r->cap < n;
    mp__unlock(&r->lock);

    void **got = want ? mp__meta_alloc(want * sizeof *got) : NULL;
    void **elems = need_array ? mp__meta_alloc(n * sizeof *elems) : NULL;
    if ((want && !got) || (need_array && !elems) || !fill_from_source(r, got, want)) {
        mp__meta_free(got);
        mp__meta_free(elems);
        return ENOMEM;
    }

    mp__lock(&r->lock);
    level = level_of(r);
    if (r->cap < n) { /* elems is non-NULL: cap only grows, and was < n before */
        memcpy(elems, r->elems, level * sizeof *elems);
        void **old = r->elems;
        r->elems = elems;
        r->cap = n;
        elems = old;
    }
    set_level_min_locked(r, level, n);
    size_t used = 0;
    while (used < want && level_of(r) < n)
        push_locked(r, got[used++]);
    unlock_and_wake(r, used);

    /* Frees meanwhile may have refilled part of the gap. */
    for (size_t i = used; i < want; i++)
        r->hot.src_free(got[i], r->hot.src);
    mp__meta_free(got);
    mp__meta_free(elems);
    return 0;
}

int mp_reserve_resize(mp_reserve *r, size_t min_reserved)
{
    if (!reserve_ok(r, "resize of a destroyed or invalid reserve"))
        return EINVAL;
    if (min_reserved == 0 || min_reserved > SIZE_MAX / (2 * sizeof(void *)))
        return EINVAL;
    return min_reserved <= min_of(r) ? shrink(r, min_reserved) : grow(r, min_reserved);
}

/* -------------------------------------------------------- create/destroy */

/* Frees r's own memory (its elements are already back with the source). */
static void reserve_free(mp_reserve *r)
{
    mp__node_fini(&r->node);
    r->slow = true;
    __atomic_store_n(&r->hot.free_locked, true, __ATOMIC_RELEASE);
    mp__reserve_counts_fini(r);
    mp__meta_free(r->elems);
    mp__ptrset_fini(&r->out);
    r->elems = NULL;
    if (r->checked) {
        /* Keep the struct so later use is reported rather than undefined. */
        mp__graveyard_keep(r, &r->grave_next);
        return;
    }
    pthread_cond_destroy(&r->refilled);
    pthread_mutex_destroy(&r->lock);
    mp__meta_free(r);
}

/* Gives every element held back to the source (r no longer shared). */
static void drain(mp_reserve *r)
{
    for (size_t i = level_of(r); i-- > 0;)
        source_free(r, r->elems[i]);
    set_level_min_locked(r, 0, min_of(r));
}

/* Destroys a live reserve; false (the misuse reported, nothing done) while
 * threads wait in it: they would wake in freed memory. */
static bool destroy_live(mp_reserve *r)
{
    mp__lock(&r->lock);
    size_t waiting = r->waiting;
    mp__unlock(&r->lock);
    if (waiting) {
        mp__misuse("reserve destroyed while threads wait in mp_reserve_alloc", KIND, r->node.name, r);
        return false;
    }
    mp__node_detach(&r->node);
    reserve_report_leaks(r);
    drain(r);
    if (r->tracked)
        mp__track_pool_destroy(r);
    reserve_free(r);
    return true;
}

void mp_reserve_destroy(mp_reserve *r)
{
    if (r && reserve_ok(r, "destroy of a destroyed or invalid reserve"))
        destroy_live(r);
}

mp_reserve *mp_reserve_create(mp_arena *parent, const mp_reserve_opts *opts)
{
    const unsigned known = MP_LEAK_ABORT | MP_LEAK_IGNORE;
    if (!opts || opts->min_reserved == 0 || opts->min_reserved > SIZE_MAX / (2 * sizeof(void *)) ||
        (!opts->alloc && !opts->free && opts->elem_size == 0) || (!opts->alloc != !opts->free) ||
        (opts->flags & ~known) || (parent && !mp__node_live((const mp__node *)parent, MP__KIND_ARENA))) {
        /* (A bad parent is caught here too, so the source is not called for
         * a reserve that cannot be attached.) */
        errno = EINVAL;
        return NULL;
    }
    mp__fork_init();
    mp_reserve *r = mp__meta_alloc(sizeof *r);
    void **elems = mp__meta_alloc(opts->min_reserved * sizeof *elems);
    if (!r || !elems) {
        mp__meta_free(r);
        mp__meta_free(elems);
        errno = ENOMEM;
        return NULL;
    }
    if (mp__node_init(&r->node, MP__KIND_RESERVE, &reserve_ops, opts->name)) {
        mp__meta_free(r);
        mp__meta_free(elems);
        errno = ENOMEM;
        return NULL;
    }
    r->hot.src_alloc = opts->alloc ? opts->alloc : default_alloc;
    r->hot.src_free = opts->alloc ? opts->free : default_free;
    r->hot.src = opts->alloc ? opts->src : r;
    r->elem_size = opts->elem_size;
    r->checked = mp__checked();
    r->slow = r->checked;
    r->leak = mp__leak_policy_of(opts->flags);
    r->tracked = r->elem_size && mp__track_active();
    mp__mutex_init(&r->lock);
    mp__cond_init(&r->refilled);
    r->elems = elems;
    r->cap = opts->min_reserved;

    /* Not shared yet: fill without the lock. */
    bool filled = fill_from_source(r, elems, opts->min_reserved);
    int rc = filled ? mp__node_attach(parent, &r->node) : ENOMEM;
    if (rc) {
        if (filled)
            for (size_t i = 0; i < opts->min_reserved; i++)
                r->hot.src_free(elems[i], r->hot.src);
        r->checked = false; /* never handed out: no graveyard */
        reserve_free(r);
        errno = rc;
        return NULL;
    }
    if (r->tracked)
        mp__track_pool_create(r, false);
    for (size_t i = 0; i < opts->min_reserved; i++)
        hold(r, elems[i]);
    set_level_min_locked(r, opts->min_reserved, opts->min_reserved);
    mp__reserve_counts_init(r);
    return r;
}

int mp_reserve_move(mp_reserve *r, mp_arena *new_parent)
{
    if (!reserve_ok(r, "move of a destroyed or invalid reserve"))
        return EINVAL;
    return mp__node_move(&r->node, new_parent, NULL, NULL);
}

/* ---------------------------------------------------------------- stats */

/* Bookkeeping bytes (lock held): the reserve itself (the freed ring
 * included), its name, its array of elements, the set of elements out and
 * the threads' counts. */
static size_t meta_bytes(const mp_reserve *r)
{
    return sizeof *r + strlen(r->node.name) + r->cap * sizeof *r->elems + mp__ptrset_bytes(&r->out) +
           mp__reserve_counts_bytes(r);
}

int mp_reserve_stats(const mp_reserve *r, mp_stats *out)
{
    if (!out || !reserve_ok(r, "stats of a destroyed or invalid reserve"))
        return EINVAL;
    size_t allocs, frees;
    mp__reserve_counts_sum((mp_reserve *)r, &allocs, &frees);
    size_t in_use = allocs >= frees ? allocs - frees : 0;
    reserve_note_peak(r);
    size_t level = level_of(r), peak = read_count(&r->peak_out);
    mp_reserve *w = (mp_reserve *)r; /* locked for reading only */
    mp__lock(&w->lock);              /* elems and out change size under it */
    size_t meta = meta_bytes(r);
    mp__unlock(&w->lock);
    *out = (mp_stats){
        .objects_in_use = in_use,
        .allocs = allocs,
        .frees = frees,
        .bytes_in_use = in_use * r->elem_size,
        .bytes_peak = (peak > in_use ? peak : in_use) * r->elem_size,
        .bytes_mapped = level * r->elem_size,
        .waits = read_count(&r->waits),
        .timeouts = read_count(&r->timeouts),
        .failures = read_count(&r->failures),
        .reserve_level = level,
        .reserve_min = min_of(r),
        .reserve_used = read_count(&r->reserve_used),
        .bytes_meta = meta,
    };
    return 0;
}

static bool node_destroy(mp__node *n) { return destroy_live((mp_reserve *)n); }

static void node_stats(const mp__node *n, mp_stats *out) { mp_reserve_stats((const mp_reserve *)n, out); }

static void node_lock(mp__node *n) { mp__lock(&((mp_reserve *)n)->lock); }

static void node_unlock(mp__node *n) { mp__unlock(&((mp_reserve *)n)->lock); }

/* fork() child, lock held: as for object pools, the parent's waiters are
 * not here (see objpool.c). */
static void node_forget_waiters(mp__node *n)
{
    mp_reserve *r = (mp_reserve *)n;
    if (!r->waiting)
        return;
    r->waiting = 0;
    mp__cond_forget_waiters(&r->refilled);
}

static const mp__node_ops reserve_ops = {
    .destroy = node_destroy,
    .stats = node_stats,
    .lock_for_fork = node_lock,
    .unlock_after_fork = node_unlock,
    .forget_waiters_after_fork = node_forget_waiters,
};
