/*
 * reserve_counts.c - layer 6: a reserve's allocs and frees, counted per
 * thread (the model is in reserve.h).
 *
 * A thread's counts are an mp__reserve_counts (mpool.h) at the start of a
 * thread_counts, which the thread's tcache entry for the reserve's slot
 * points at. Only the thread writes its counts, with single relaxed
 * stores; a reader sums them under r->lock with relaxed loads, so a sum
 * taken while threads run may miss their latest counts, and is exact once
 * they have stopped.
 */
#include "reserve.h"
#include "meta.h"

typedef struct thread_counts {
    mp__reserve_counts c; /* first: the thread's entry points here */
    void *mark[1];        /* c.top and c.end point here: top < end says "own" */
    mp__link link;        /* on r->counts, under r->lock */
    mp_reserve *r;
    void **home;          /* the thread's entry */
} thread_counts;

static thread_counts *counts_of(void *entry) { return (thread_counts *)entry; }

/* Thread exit (mp__tcache_lock held): the thread's counts go to r's own. */
static void retire(void *entry)
{
    thread_counts *t = counts_of(entry);
    mp_reserve *r = t->r;
    mp__lock(&r->lock);
    atomic_fetch_add_explicit(&r->allocs, __atomic_load_n(&t->c.allocs, __ATOMIC_RELAXED), memory_order_relaxed);
    atomic_fetch_add_explicit(&r->frees, __atomic_load_n(&t->c.frees, __ATOMIC_RELAXED), memory_order_relaxed);
    mp__list_remove(&r->counts, &t->link);
    r->ncounts--;
    mp__unlock(&r->lock);
    mp__tcache_clear(t->home);
    mp__meta_free(t);
}

void mp__reserve_counts_init(mp_reserve *r)
{
    if (r->checked)
        return;
    r->slot = mp__tcache_slot_alloc(retire);
    r->hot.fast_slot = r->slot < MP__TLS_FAST ? r->slot : 0;
}

void mp__reserve_counts_fini(mp_reserve *r)
{
    if (!r->slot)
        return;
    r->hot.fast_slot = 0;
    mp__lock(&mp__tcache_lock);
    mp__lock(&r->lock);
    while (r->counts.head) {
        thread_counts *t = mp__list_entry(r->counts.head, thread_counts, link);
        mp__list_remove(&r->counts, &t->link);
        mp__tcache_clear(t->home);
        mp__meta_free(t);
    }
    r->ncounts = 0;
    mp__unlock(&r->lock);
    mp__tcache_slot_free(r->slot);
    mp__unlock(&mp__tcache_lock);
    r->slot = 0;
}

MP_NOINLINE mp__reserve_counts *mp__reserve_counts_make(mp_reserve *r)
{
    void **home = mp__tcache_entry(r->slot);
    thread_counts *t = home ? mp__meta_alloc(sizeof *t) : NULL;
    if (!t)
        return NULL;
    t->c.top = t->mark;
    t->c.end = t->mark + 1;
    t->r = r;
    t->home = home;
    mp__lock(&mp__tcache_lock);
    mp__lock(&r->lock);
    mp__list_push(&r->counts, &t->link);
    r->ncounts++;
    mp__unlock(&r->lock);
    *home = t;
    mp__unlock(&mp__tcache_lock);
    return &t->c;
}

void mp__reserve_counts_sum(mp_reserve *r, size_t *allocs, size_t *frees)
{
    mp__lock(&r->lock);
    size_t a = atomic_load_explicit(&r->allocs, memory_order_relaxed);
    size_t f = atomic_load_explicit(&r->frees, memory_order_relaxed);
    for (mp__link *l = r->counts.head; l; l = l->next) {
        thread_counts *t = mp__list_entry(l, thread_counts, link);
        a += __atomic_load_n(&t->c.allocs, __ATOMIC_RELAXED);
        f += __atomic_load_n(&t->c.frees, __ATOMIC_RELAXED);
    }
    mp__unlock(&r->lock);
    *allocs = a;
    *frees = f;
}

size_t mp__reserve_counts_bytes(const mp_reserve *r) { return r->ncounts * sizeof(thread_counts); }
