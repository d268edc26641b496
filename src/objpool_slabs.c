/*
 * objpool_slabs.c - layer 6: an object pool's slabs (see objpool.h).
 *
 * Slab lists, by what a slab can do:
 *   partial      has room (free or never-made slots) and objects out;
 *   empty_slabs  nothing out (every made slot free): its memory can go back;
 *   full_slabs   no room.
 * A get takes free objects before fresh ones, from partial slabs before
 * empty ones, so that empty slabs stay empty and can be given back.
 *
 * Every object given back to a slab is validated before the slab's
 * metadata is written (mp__slab_give): an interior pointer, a pointer into
 * the slab's own header, or an object already free, reached the pool's
 * free lists through the fast path's cheap ownership check; it is left
 * out, and reported once the lock is dropped (mp__objpool_unlock).
 *
 * The depot's bound: full magazines at most max(DEPOT_MIN, the slabs'
 * memory / DEPOT_SHARE / a magazine's bytes), empty ones at most
 * DEPOT_EMPTY; past it, empty magazines are freed, full ones drained into
 * the slabs (and then freed). max_free then bounds the free objects
 * outside the caches, retiring empty slabs.
 *
 * Page return (return_pages: a heap's size classes): as objects reach the
 * slabs, pages that hold no object in use are marked idle (slab.h); once
 * max(RETURN_MIN pages, the slabs' memory / RETURN_SHARE, times the
 * threads using the pool up to RETURN_THREADS) more pages are idle than
 * after the last sweep, the slabs are swept: the pages idle
 * since the last sweep go back to the OS, and those idle now are aged for
 * the next. Batching keeps the system calls few, and aging keeps a page
 * that is soon used again from being returned and faulted back in; the
 * free memory kept backed stays within about twice the bound. A trim
 * returns every idle page; with keep_pages, only a trim does.
 */
#include "objpool.h"
#include "meta.h"
#include "os.h"
#include "track.h"

#define DEPOT_MIN 8    /* full magazines the depot may always keep */
#define DEPOT_SHARE 16 /* ... and more while their memory stays under 1/16 of the slabs' */
#define DEPOT_EMPTY 4  /* empty magazines kept as spares for flushes */
#define RETURN_MIN 64  /* idle pages a pool with return_pages may always keep backed */
#define RETURN_SHARE 32 /* ... or 1/32 of the slabs' memory, when that is more, */
#define RETURN_THREADS 4 /* ... times the threads using the pool, up to 4 */

/* The idle pages fell (taken, or their slab retired): the next sweep
 * counts from there. */
static void idle_fell(mp_objpool *p)
{
    if (p->idle_floor > p->idle_pages)
        p->idle_floor = p->idle_pages;
}

static mp__slab *slab_of_link(mp__link *l) { return l ? mp__list_entry(l, mp__slab, link) : NULL; }

static mp__list *list_for(mp_objpool *p, const mp__slab *s)
{
    if (!mp__slab_has_room(s))
        return &p->full_slabs;
    return mp__slab_is_empty(s) ? &p->empty_slabs : &p->partial;
}

/* Moves s from the list it was on (from) to the one its counts now call for. */
static void relist(mp_objpool *p, mp__slab *s, mp__list *from)
{
    mp__list *to = list_for(p, s);
    if (from != to)
        mp__list_move(from, to, &s->link);
}

/* Takes up to n objects from the slabs on l into out; only free (made)
 * ones when !fresh_ok. Adds the number of fresh ones to *fresh. */
static size_t take_from_list(mp_objpool *p, mp__list *l, void **out, size_t n, bool fresh_ok, size_t *fresh)
{
    size_t got = 0;
    for (mp__slab *s = slab_of_link(l->head), *next; s && got < n; s = next) {
        next = slab_of_link(s->link.next);
        size_t want = n - got;
        if (!fresh_ok && want > s->nfree)
            want = s->nfree;
        if (want == 0)
            continue;
        size_t f, idle = mp__slab_idle_pages(s);
        got += mp__slab_take(s, out + got, want, &f);
        *fresh += f;
        p->idle_pages -= idle - mp__slab_idle_pages(s);
        idle_fell(p);
        relist(p, s, l);
    }
    return got;
}

size_t mp__objpool_slabs_take(mp_objpool *p, void **out, size_t n, size_t *fresh)
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
static MP_NOINLINE void relist_after_give(mp_objpool *p, mp__slab *s, uint32_t before)
{
    bool was_full = before == 0 && s->nmade == s->nslots;
    relist(p, s, was_full ? &p->full_slabs : &p->partial);
}

/* Keeps the first object the slabs refused, for mp__objpool_unlock to
 * report once the lock is dropped. */
static MP_NOINLINE void reject(mp_objpool *p, void *obj)
{
    if (!p->rejected)
        p->rejected = obj;
}

/* Draining a full magazine is a loop of these (in a batch workload half of
 * all frees take it), so the common case is the validation, a bitmap bit,
 * a count and one test for a list move, which is done out of line. */
/* Sweeps every slab with free slots: its aged pages (every idle page
 * when all) go back to the OS. */
static MP_NOINLINE void return_idle_pages(mp_objpool *p, bool all)
{
    mp__list *lists[] = { &p->partial, &p->empty_slabs };
    size_t left = 0;
    for (size_t k = 0; k < 2; k++)
        for (mp__link *l = lists[k]->head; l; l = l->next) {
            mp__slab *s = slab_of_link(l);
            if (s->idle)
                mp__slab_return_idle(s, all);
            left += mp__slab_idle_pages(s);
        }
    p->idle_pages = p->idle_floor = left;
}

static void note_idle(mp_objpool *p, mp__slab *s, const void *obj)
{
    size_t before = mp__slab_idle_pages(s);
    mp__slab_note_idle(s, obj);
    p->idle_pages += mp__slab_idle_pages(s) - before;
}

/* The threads that use p now, as far as page return counts them: each
 * call that gives pages back makes every CPU running the process flush
 * its TLB, and a page given back and used again costs a fault, so with
 * more threads the sweeps batch more (up to RETURN_THREADS times). */
static size_t sweep_threads(const mp_objpool *p)
{
    size_t n = p->group ? __atomic_load_n(&p->group->nblocks, __ATOMIC_RELAXED) : 1;
    return n < 1 ? 1 : n > RETURN_THREADS ? RETURN_THREADS : n;
}

static bool idle_past_bound(const mp_objpool *p)
{
    size_t bound = p->mapped / RETURN_SHARE / mp__os_page_size() * sweep_threads(p);
    return p->idle_pages - p->idle_floor > (bound > RETURN_MIN ? bound : RETURN_MIN);
}

/* The loop of mp__objpool_slabs_give, made twice by the compiler: with
 * page return and without (the common case pays no test per object). */
static inline size_t give_all(mp_objpool *p, void *const *objs, size_t n, bool return_pages)
{
    size_t refused = 0;
    for (size_t i = 0; i < n; i++) {
        mp__slab *s = mp__slab_of(objs[i]);
        uint32_t before = s->nfree;
        if (mp_unlikely(!mp__slab_give(s, objs[i]))) {
            reject(p, objs[i]);
            refused++;
            continue;
        }
        if (mp_unlikely(before == 0 || before + 1 == s->nmade))
            relist_after_give(p, s, before);
        if (return_pages)
            note_idle(p, s, objs[i]);
    }
    return refused;
}

void mp__objpool_slabs_give(mp_objpool *p, void *const *objs, size_t n)
{
    if (!p->return_pages) {
        p->slab_free += n - give_all(p, objs, n, false);
        return;
    }
    p->slab_free += n - give_all(p, objs, n, true);
    if (!p->keep_pages && idle_past_bound(p))
        return_idle_pages(p, false);
}

mp__slab *mp__objpool_slab_new(mp_objpool *p)
{
    if (p->charge && !p->charge(p->acct, p->shape.slab_size)) {
        errno = ENOMEM;
        return NULL;
    }
    mp__slab *s = mp__slab_new(&p->shape, p->chunk_kind, p);
    if (s && p->records) {
        s->records = mp__meta_alloc(s->nslots * sizeof(mp__objinfo));
        if (!s->records) {
            mp__slab_free(s);
            s = NULL;
        }
    }
    if (s && p->handles && !mp__handles_slab_new(p, s)) { /* objpool_handle.c */
        mp__meta_free(s->records);
        mp__slab_free(s);
        s = NULL;
    }
    if (!s && p->uncharge)
        p->uncharge(p->acct, p->shape.slab_size);
    return s;
}

static size_t records_bytes(const mp__slab *s) { return s->records ? s->nslots * sizeof(mp__objinfo) : 0; }

void mp__objpool_slab_add(mp_objpool *p, mp__slab *s)
{
    if (p->tracked)
        mp__track_block_new(p, s->slots, (size_t)s->nslots * s->chunk.obj_size);
    mp__list_push(list_for(p, s), &s->link);
    p->mapped += s->chunk.size;
    p->record_bytes += records_bytes(s);
}

/* Tells every cache that the chunk of slab s is no longer checked to be p's. */
static void caches_forget_slab(mp_objpool *p, const mp__slab *s)
{
    for (mp__link *l = p->caches.head; l; l = l->next) {
        mp__cache *c = mp__list_entry(l, mp__cache, link);
        if (mp__ldp(&c->verified) == (uintptr_t)s)
            mp__stp(&c->verified, 1);
    }
}

/* Unlinks an empty slab so it can be released after the lock is dropped;
 * it is chained on *out through its link's next field. */
static void slab_retire(mp_objpool *p, mp__slab *s, mp__slab **out)
{
    mp__list_remove(&p->empty_slabs, &s->link);
    p->slab_free -= s->nfree;
    p->made -= s->nmade;
    p->mapped -= s->chunk.size;
    p->record_bytes -= records_bytes(s);
    p->idle_pages -= mp__slab_idle_pages(s);
    idle_fell(p);
    caches_forget_slab(p, s);
    s->link.next = *out ? &(*out)->link : NULL;
    *out = s;
}

void mp__objpool_slabs_release(mp_objpool *p, mp__slab *list)
{
    while (list) {
        mp__slab *next = slab_of_link(list->link.next);
        size_t stride = list->chunk.obj_size;
        for (uint32_t i = 0; i < list->nmade && p->dtor; i++) {
            void *obj = mp__slab_slot(list, i);
            if (p->tracked)
                mp__track_obj_touch(obj, stride);
            p->dtor(obj, p->arg);
        }
        if (p->handles) /* objpool_handle.c */
            mp__handles_slab_gone(p, list);
        if (p->tracked)
            mp__track_release(list, list->chunk.size);
        mp__meta_free(list->records);
        size_t bytes = list->chunk.size;
        mp__slab_free(list);
        if (p->uncharge)
            p->uncharge(p->acct, bytes);
        list = next;
    }
}

void mp__objpool_slabs_free_all(mp_objpool *p)
{
    mp__list *lists[] = { &p->partial, &p->empty_slabs, &p->full_slabs };
    for (int i = 0; i < 3; i++) {
        while (lists[i]->head) {
            mp__slab *s = slab_of_link(lists[i]->head);
            mp__list_remove(lists[i], &s->link);
            mp__objpool_slabs_release(p, s);
        }
    }
}

void mp__objpool_run_ctor(mp_objpool *p, void **objs, size_t n)
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

/* Drains one full magazine into the slabs; it becomes an empty one. */
static void depot_drain_one(mp_objpool *p)
{
    mp__mag *m = mp__depot_pop_full(&p->depot);
    mp__objpool_slabs_give(p, m->objs, m->n);
    mp__depot_push_empty(&p->depot, m);
}

/* Full magazines the depot keeps: objects in magazines are the
 * fastest to hand out again, but each costs a pointer of magazine memory,
 * so that memory is held to a share of the slabs'. */
static size_t depot_limit(const mp_objpool *p)
{
    size_t by_share = p->mapped / DEPOT_SHARE / mp__mag_bytes(p->mag_cap);
    return by_share > DEPOT_MIN ? by_share : DEPOT_MIN;
}

/* A slab nothing was ever made in holds no free object, so retiring it
 * cannot bring the free count under max_free: only `all` retires it. */
/* The free objects the depot and the slabs may keep (0: any number): the
 * pool's max_free, or, for a pool its maker gave a share (a heap's size
 * class), that share of the objects made, plus a slab's worth so that a
 * small class never gives its only slab back. */
static size_t keep_free(const mp_objpool *p)
{
    if (p->max_free || !p->free_share)
        return p->max_free;
    return p->made / p->free_share + p->shape.nslots;
}

void mp__objpool_depot_trim(mp_objpool *p, mp__trim how, mp__slab **release)
{
    size_t keep = keep_free(p);
    bool all = how == MP__TRIM_ALL, by_max_free = how == MP__TRIM_BOUNDS && keep;
    size_t max_full = all ? 0 : depot_limit(p), max_empty = all ? 0 : DEPOT_EMPTY;
    for (size_t over = mp__depot_surplus(&p->depot, max_full, max_empty); over; over--)
        depot_drain_one(p);
    while (by_max_free && p->depot.objs + p->slab_free > keep && p->depot.nfull)
        depot_drain_one(p);
    mp__depot_surplus(&p->depot, max_full, max_empty); /* frees what was just drained */
    if (!all && !by_max_free)
        return;
    for (mp__slab *s = slab_of_link(p->empty_slabs.head), *next; s; s = next) {
        if (!all && p->depot.objs + p->slab_free <= keep)
            break;
        next = slab_of_link(s->link.next);
        if (s->nmade > 0 || all)
            slab_retire(p, s, release);
    }
    if (all && p->idle_pages)
        return_idle_pages(p, true); /* a trim gives back every page free now */
}

void mp__objpool_note_peak(mp_objpool *p)
{
    size_t out = p->made - p->slab_free - p->depot.objs - p->quar.len;
    if (out > p->peak_out)
        p->peak_out = out;
}
