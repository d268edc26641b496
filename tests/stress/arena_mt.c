/* Eight threads on one MP_THREADSAFE arena. Each makes thousands of
 * allocations of every kind (aligned, unaligned, calloc, printf, large),
 * fills each with a pattern of its thread and index, sometimes frees the
 * one it just made (a rollback that races the others' bumps), and meanwhile
 * reads the statistics and makes and destroys child arenas. After the join
 * every kept allocation must be aligned, disjoint from all others and hold
 * its pattern, and the counters must add up. Then the same race against a
 * limit (never crossed, ENOMEM past it) and concurrent cleanups. Start is a
 * barrier; nothing depends on timing. */
#define _GNU_SOURCE 1
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define THREADS 8
#define PER_THREAD 6000

typedef struct rec {
    unsigned char *p;
    size_t size, align;
} rec;

typedef struct worker {
    int id;
    mp_arena *arena;
    size_t limit;      /* phase 2: stop at the first ENOMEM */
    rec recs[PER_THREAD];
    size_t n;          /* kept allocations */
    size_t made, freed; /* calls that returned memory; frees */
    size_t kids;        /* child arenas left alive (one allocation each) */
    size_t enomem;
    uint64_t rng;
} worker;

static worker workers[THREADS];

static uint32_t rnd(worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)(w->rng >> 11);
}

static unsigned char tag(const worker *w, size_t i, size_t k) { return (unsigned char)(w->id * 37 + i * 11 + k); }

/* Bytes written and checked: all of a small allocation, the ends of a big one. */
static bool pattern(const worker *w, size_t i, bool write)
{
    const rec *r = &w->recs[i];
    size_t n = r->size, edge = 2048;
    for (size_t k = 0; k < n; k++) {
        if (n > 2 * edge && k == edge)
            k = n - edge;
        if (write)
            r->p[k] = tag(w, i, k);
        else if (r->p[k] != tag(w, i, k))
            return false;
    }
    return true;
}

static void *one(worker *w, uint32_t r, size_t *size, size_t *align)
{
    *align = 1;
    *size = 1 + rnd(w) % 600;
    switch (r % 8) {
    case 0:
        *align = (size_t)1 << (rnd(w) % 9);
        return mp_alloc_aligned(w->arena, *size, *align);
    case 1: return mp_alloc_unaligned(w->arena, *size);
    case 2: return mp_calloc(w->arena, 1, *size);
    case 3: {
        char *s = mp_printf(w->arena, "t%d-%u", w->id, r);
        *size = s ? strlen(s) + 1 : 0;
        return s;
    }
    case 4:
        if (r % 400 == 4) {
            *size = 20000 + rnd(w) % 80000; /* large */
            *align = 16;
            return mp_alloc(w->arena, *size);
        }
        /* fall through */
    default: *align = 16; return mp_alloc(w->arena, *size);
    }
}

static void *run(void *arg)
{
    worker *w = arg;
    for (size_t i = 0; i < PER_THREAD; i++) {
        uint32_t r = rnd(w);
        size_t size, align;
        unsigned char *p = one(w, r, &size, &align);
        if (!p) {
            if (errno != ENOMEM || !w->limit) {
                fprintf(stderr, "thread %d: allocation failed: %d\n", w->id, errno);
                abort();
            }
            w->enomem++;
            break;
        }
        w->made++;
        if (((uintptr_t)p & (align - 1)) != 0) {
            fprintf(stderr, "thread %d: %p not aligned to %zu\n", w->id, (void *)p, align);
            abort();
        }
        if (r % 13 == 0) { /* give it straight back: rolled back unless another thread bumped meanwhile */
            memset(p, 0xee, size);
            mp_arena_free(w->arena, p);
            w->freed++;
            continue;
        }
        w->recs[w->n] = (rec){ p, size, align };
        pattern(w, w->n, true);
        w->n++;
        if (!w->limit && r % 1000 == 1) { /* the tree and the stats, concurrently */
            mp_stats s;
            if (mp_arena_stats(w->arena, &s) != 0 || s.objects_in_use > s.allocs)
                abort();
            /* Thread-safe kids: the stats of the shared arena read them while
             * their makers use them. */
            mp_arena *kid = mp_arena_create(w->arena, &(mp_arena_opts){ .name = "kid", .flags = MP_THREADSAFE });
            if (!kid || !mp_alloc(kid, 100))
                abort();
            if (r % 2)
                mp_arena_destroy(kid);
            else
                w->kids++; /* goes with the parent's reset */
        }
    }
    return NULL;
}

static int cmp_rec(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const rec *)a)->p, y = (uintptr_t)((const rec *)b)->p;
    return x < y ? -1 : x > y;
}

/* Runs the threads; returns the total kept. */
static size_t race(mp_arena *a, size_t limit)
{
    for (int t = 0; t < THREADS; t++)
        workers[t] = (worker){ .id = t, .arena = a, .limit = limit, .rng = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1) };
    threads_run_together(THREADS, run, workers, sizeof *workers);

    /* Every kept allocation holds its pattern, and none overlap. */
    static rec all[THREADS * PER_THREAD];
    size_t total = 0;
    for (int t = 0; t < THREADS; t++) {
        for (size_t i = 0; i < workers[t].n; i++) {
            if (!pattern(&workers[t], i, false)) {
                fprintf(stderr, "thread %d allocation %zu (%p, %zu bytes) changed\n", t, i,
                        (void *)workers[t].recs[i].p, workers[t].recs[i].size);
                check_failures++;
            }
            all[total++] = workers[t].recs[i];
        }
    }
    qsort(all, total, sizeof *all, cmp_rec);
    for (size_t i = 1; i < total; i++)
        if (all[i - 1].p + all[i - 1].size > all[i].p) {
            fprintf(stderr, "overlap: [%p, +%zu) and %p\n", (void *)all[i - 1].p, all[i - 1].size, (void *)all[i].p);
            check_failures++;
            break;
        }
    return total;
}

/* Single-threaded kids under the shared arena: made, used, moved and
 * destroyed concurrently by their threads (tree and accounting locks), with
 * no statistics meanwhile (they would read the kids too). */
static void *kid_churn(void *arg)
{
    worker *w = arg;
    mp_arena *mine = mp_arena_create(w->arena, &(mp_arena_opts){ .name = "mine" });
    if (!mine)
        abort();
    for (int i = 0; i < 300; i++) {
        mp_arena *kid = mp_arena_create(i % 3 ? w->arena : mine, &(mp_arena_opts){ .name = "st-kid" });
        if (!kid)
            abort();
        for (int k = 0; k < 20; k++) { /* one block each: 64 KiB charged */
            char *p = mp_alloc(kid, 1 + rnd(w) % 1000);
            if (!p)
                abort();
            p[0] = (char)k;
        }
        if (i % 4 == 0 && mp_arena_move(kid, i % 8 ? mine : w->arena) != 0)
            abort();
        if (i % 4 != 0)
            mp_arena_destroy(kid); /* the others (75 per thread) go with the shared arena */
    }
    mp_arena_destroy(mine);
    return NULL;
}

static int cleanups_run;
static void count_cleanup(void *arg)
{
    (void)arg;
    cleanups_run++; /* runs in the destroying thread, after the join */
}

static void *push_cleanups(void *arg)
{
    mp_arena *a = arg;
    for (int i = 0; i < 500; i++) {
        if (mp_cleanup_push(a, count_cleanup, NULL) != 0)
            abort();
        if (i % 5 == 0 && mp_cleanup_remove(a, count_cleanup, NULL) != 0)
            abort();
        if (!mp_alloc(a, 32))
            abort();
    }
    return NULL;
}

int main(void)
{
    /* Phase 1: no limit. */
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "shared", .flags = MP_THREADSAFE });
    REQUIRE(a != NULL);
    for (int round = 0; round < 2; round++) {
        size_t kept = race(a, 0);
        size_t made = 0, freed = 0, kids = 0;
        for (int t = 0; t < THREADS; t++) {
            made += workers[t].made;
            freed += workers[t].freed;
            kids += workers[t].kids;
        }
        CHECK_EQ(made, (size_t)THREADS * PER_THREAD);
        CHECK_EQ(kept, made - freed);
        mp_stats s;
        REQUIRE(mp_arena_stats(a, &s) == 0);
        /* Own counters (allocs survive a reset) plus the kids that are left. */
        CHECK_EQ(s.allocs, made * (size_t)(round + 1) + kids);
        CHECK_EQ(s.objects_in_use, kept + kids);
        mp_arena_reset(a); /* the second round reuses the kept blocks */
        REQUIRE(mp_arena_stats(a, &s) == 0);
        CHECK_EQ(s.objects_in_use, 0);
        CHECK_EQ(s.bytes_in_use, 0);
    }
    mp_arena_destroy(a);

    /* Phase 2: a limit shared by eight threads is never crossed. */
    size_t limit = (size_t)2 << 20;
    a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "limited", .flags = MP_THREADSAFE, .limit = limit });
    REQUIRE(a != NULL);
    race(a, limit);
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    CHECK(s.bytes_mapped <= limit);
    CHECK(s.bytes_mapped > limit / 2);
    size_t enomem = 0;
    for (int t = 0; t < THREADS; t++)
        enomem += workers[t].enomem;
    CHECK(enomem > 0);
    CHECK(s.failures >= enomem);
    mp_arena_destroy(a);

    /* Phase 3: single-threaded kids come and go under a shared limited arena. */
    a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "parent", .flags = MP_THREADSAFE, .limit = (size_t)64 << 20 });
    REQUIRE(a != NULL);
    for (int t = 0; t < THREADS; t++)
        workers[t] = (worker){ .id = t, .arena = a, .rng = 0x51afd7ed558ccd1dull * (uint64_t)(t + 1) };
    threads_run_together(THREADS, kid_churn, workers, sizeof *workers);
    REQUIRE(mp_arena_stats(a, &s) == 0);
    CHECK(s.bytes_mapped <= (size_t)64 << 20);
    CHECK(s.bytes_mapped > 0);
    mp_arena_reset(a); /* the kids left over */
    REQUIRE(mp_arena_stats(a, &s) == 0);
    CHECK_EQ(s.bytes_mapped, 0);
    CHECK_EQ(s.objects_in_use, 0);
    mp_arena_destroy(a);

    /* Phase 4: cleanups pushed and removed concurrently run once each. */
    a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "cleanups", .flags = MP_THREADSAFE });
    REQUIRE(a != NULL);
    threads_run_together(THREADS, push_cleanups, a, 0);
    mp_arena_destroy(a);
    CHECK_EQ(cleanups_run, THREADS * (500 - 100));
    return check_done();
}
