/* Out-of-memory sweep for heaps (SQLite's fault simulator, applied to every
 * call a heap makes to the os layer). One scenario - create, blocks of every
 * size regime (small classes, medium, chunks of their own, aligned, calloc),
 * realloc chains up and down, a walk, frees in two orders, trim, the same
 * again, destroy - runs with mp__os_fail_after(k) for k = 1, 2, ... until a
 * run makes fewer than k calls to the os layer, i.e. completes with no
 * failure (for some variants every 5th k, and under a memory tool every
 * 7th of those). In every run:
 *   - each call succeeds or fails the documented way: NULL (0 from foreach)
 *     with errno ENOMEM; a failed realloc leaves the old block whole;
 *   - the one injected failure is the only one (injection is one-shot), so
 *     the same call made again succeeds and the scenario goes on with the
 *     same heap: it stayed usable;
 *   - every block keeps its pattern until it is freed, the counters match
 *     the calls that succeeded, and after everything is freed trim gives
 *     (nearly) every byte back;
 *   - nothing leaks: run under valgrind --leak-check=full and ASan.
 * This test includes src/os.h for the injection hook only; the heap is used
 * through the public header. Thread-safe heaps run each scenario in a new
 * thread, so the thread's caches are made (and may fail) inside it, and its
 * exit path runs too. */
#define _GNU_SOURCE 1
#include "check.h"
#include "heap.h"
#include "threads.h"
#include "os.h"

#include <mpool.h>

#include <errno.h>

/* Sizes are few on purpose: the sweep runs the scenario once per OS call
 * in it, and every size class a scenario touches adds calls. */
enum { SMALL = 120, MEDIUM = 16, LARGE = 4, ALIGNED = 16, ZEROED = 16,
       TOTAL = SMALL + MEDIUM + LARGE + ALIGNED + ZEROED };

typedef struct variant {
    const char *name;
    unsigned long every;  /* fail every such point (1: all) */
    unsigned flags;
    bool own_thread;   /* run in a new thread */
    bool under_arena;  /* the heap is a child of an arena made in the scenario */
    bool use_default;  /* the default heap instead of a created one */
} variant;

typedef struct run {
    const variant *v;
    size_t observed;  /* calls that reported ENOMEM */
    int bad_errno;    /* calls that failed with another errno */
    size_t allocs, frees; /* calls that succeeded */
} run;

typedef struct blk {
    char *p;
    size_t size;
    uint64_t seed;
} blk;

static blk blocks[TOTAL];

static void failed(run *r, const char *what)
{
    if (errno != ENOMEM) {
        fprintf(stderr, "%s: %s failed with errno %d, not ENOMEM\n", r->v->name, what, errno);
        r->bad_errno++;
    }
    r->observed++;
}

enum how { PLAIN, ALIGN, CALLOC };

/* An allocation that must succeed on its second try (one injected failure). */
static char *alloc_one(run *r, mp_heap *h, size_t size, enum how how)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        errno = 0;
        char *p = how == ALIGN ? mp_heap_alloc_aligned(h, size, 4096)
                : how == CALLOC ? mp_heap_calloc(h, 1, size)
                                : mp_heap_alloc(h, size);
        if (p) {
            r->allocs++;
            if (how == ALIGN && !heap_aligned(p, 4096)) {
                fprintf(stderr, "%s: aligned block %p\n", r->v->name, (void *)p);
                check_failures++;
            }
            if ((how == CALLOC || (r->v->flags & MP_ZERO)) && !heap_all_zero(p, size)) {
                fprintf(stderr, "%s: block of %zu not zeroed\n", r->v->name, size);
                check_failures++;
            }
            return p;
        }
        failed(r, how == ALIGN ? "alloc_aligned" : how == CALLOC ? "calloc" : "alloc");
    }
    fprintf(stderr, "%s: a second allocation of %zu failed too\n", r->v->name, size);
    exit(1);
}

static void take(run *r, mp_heap *h, blk *b, size_t size, enum how how, uint64_t seed)
{
    b->p = alloc_one(r, h, size, how);
    b->size = size;
    b->seed = seed;
    heap_fill(b->p, size, seed);
}

static void give_back(run *r, blk *b)
{
    if (heap_check(b->p, b->size, b->seed) != SIZE_MAX) {
        fprintf(stderr, "%s: block %p of %zu bytes lost its contents\n", r->v->name, (void *)b->p, b->size);
        check_failures++;
    }
    mp_free(b->p);
    r->frees++;
    b->p = NULL;
}

/* A realloc that must succeed on its second try; a failure leaves the
 * block as it was. */
static void resize(run *r, mp_heap *h, blk *b, size_t size)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        errno = 0;
        char *q = mp_heap_realloc(h, b->p, size);
        if (q) {
            size_t keep = b->size < size ? b->size : size;
            if (heap_check(q, keep, b->seed) != SIZE_MAX) {
                fprintf(stderr, "%s: realloc %zu -> %zu lost the contents\n", r->v->name, b->size, size);
                check_failures++;
            }
            r->allocs++;
            r->frees++;
            b->p = q;
            b->size = size;
            heap_fill(q, size, b->seed);
            return;
        }
        failed(r, "realloc");
        if (heap_check(b->p, b->size, b->seed) != SIZE_MAX) {
            fprintf(stderr, "%s: a failed realloc changed the old block\n", r->v->name);
            check_failures++;
        }
    }
    fprintf(stderr, "%s: a second realloc to %zu failed too\n", r->v->name, size);
    exit(1);
}

static void count_visit(void *p, size_t size, void *arg)
{
    (void)p;
    (void)size;
    ++*(size_t *)arg;
}

static void fill_all(run *r, mp_heap *h, uint64_t round)
{
    size_t i = 0;
    static const size_t small[] = { 1, 8, 24, 64, 100, 256, 600, 1000, 1500, 2048, 3000, 8000 };
    for (size_t k = 0; k < SMALL; k++, i++)
        take(r, h, &blocks[i], small[k % 12] + k / 12, PLAIN, round << 32 | i);
    for (size_t k = 0; k < MEDIUM; k++, i++)
        take(r, h, &blocks[i], 4 * KiB + k * 997 % (60 * KiB), PLAIN, round << 32 | i);
    for (size_t k = 0; k < LARGE; k++, i++)
        take(r, h, &blocks[i], 256 * KiB + k * MiB, PLAIN, round << 32 | i);
    for (size_t k = 0; k < ALIGNED; k++, i++)
        take(r, h, &blocks[i], 100 + k * 50, ALIGN, round << 32 | i);
    for (size_t k = 0; k < ZEROED; k++, i++)
        take(r, h, &blocks[i], 10 + k * 77, CALLOC, round << 32 | i);
}

static void check_counts(run *r, mp_heap *h, const mp_stats *base, size_t live)
{
    mp_stats s = heap_stats(h);
    CHECK_EQ(s.allocs - base->allocs, r->allocs);
    CHECK_EQ(s.frees - base->frees, r->frees);
    CHECK_EQ(s.objects_in_use - base->objects_in_use, live);
}

static void *scenario(void *arg)
{
    run *r = arg;
    const variant *v = r->v;
    mp_arena *a = NULL;
    if (v->under_arena) {
        errno = 0;
        a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "owner" });
        if (!a) {
            failed(r, "arena create");
            a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "owner" });
            REQUIRE(a != NULL);
        }
    }
    mp_heap *h;
    if (v->use_default) {
        h = mp_heap_default();
        REQUIRE(h != NULL);
    } else {
        errno = 0;
        h = mp_heap_create(a, &(mp_heap_opts){ .name = v->name, .flags = v->flags });
        if (!h) {
            failed(r, "create");
            h = mp_heap_create(a, &(mp_heap_opts){ .name = v->name, .flags = v->flags });
            REQUIRE(h != NULL);
        }
    }
    mp_stats base = heap_stats(h);

    for (uint64_t round = 1; round <= 2; round++) {
        fill_all(r, h, round);
        check_counts(r, h, &base, TOTAL);
        /* Realloc chains: small up to a chunk of its own and back down. */
        static const size_t chain[] = { 3000, 40000, 700 * KiB, 2 * MiB, 5000, 24 };
        for (size_t k = 0; k < 6; k++)
            resize(r, h, &blocks[k * 19], chain[k]);
        for (size_t k = 0; k < 6; k++)
            resize(r, h, &blocks[SMALL + k], chain[5 - k]);
        check_counts(r, h, &base, TOTAL);

        if (!v->use_default) {
            size_t seen = 0;
            errno = 0;
            size_t walked = mp_heap_foreach(h, count_visit, &seen);
            if (walked == 0) {
                failed(r, "foreach");
                seen = 0;
                walked = mp_heap_foreach(h, count_visit, &seen);
            }
            CHECK_EQ(walked, TOTAL);
            CHECK_EQ(seen, TOTAL);
        }
        /* Frees cannot fail: every other one, trim in between, the rest. */
        for (size_t i = 0; i < TOTAL; i += 2)
            give_back(r, &blocks[i]);
        mp_heap_trim(h);
        for (size_t i = 1; i < TOTAL; i += 2)
            give_back(r, &blocks[i]);
        check_counts(r, h, &base, 0);
        if (!v->use_default) {
            HEAP_CHECK_EMPTY(h);
            HEAP_CHECK_TRIMMED(h);
        }
    }
    if (r->observed && !r->bad_errno)
        CHECK(heap_stats(h).failures - base.failures <= r->observed);
    if (a)
        mp_arena_destroy(a);
    else if (!v->use_default)
        mp_heap_destroy(h);
    return NULL;
}

/* Runs the scenario once with the k-th os-layer call failing (k = 0: no
 * injection). Returns how many os-layer calls it made. */
static unsigned long run_once(const variant *v, unsigned long k, run *r)
{
    *r = (run){ .v = v };
    unsigned long before = mp__os_calls();
    mp__os_fail_after(k);
    if (v->own_thread)
        threads_run(1, scenario, r, 0);
    else
        scenario(r);
    unsigned long calls = mp__os_calls() - before;
    mp__os_fail_after(0);
    return calls;
}

/* Under a memory tool a run costs tens of times more: every STRIDE-th
 * point is failed there (the plain build fails every one). */
static unsigned long stride(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 7;
#else
    return check_tool_attached() ? 7 : 1;
#endif
}

static void sweep(const variant *v)
{
    run r;
    unsigned long clean_calls = run_once(v, 0, &r);
    CHECK_EQ(r.observed, 0);
    unsigned long k, observed_runs = 0, step = stride() * v->every, points = 0;
    for (k = 1;; k += step, points++) {
        unsigned long calls = run_once(v, k, &r);
        CHECK_EQ(r.bad_errno, 0);
        CHECK(r.observed <= 1); /* one injected failure, seen at most once */
        observed_runs += r.observed != 0;
        if (calls < k) /* the countdown never reached zero: a clean run */
            break;
        REQUIRE(k < 100000);
    }
    CHECK(points > 0);
    CHECK(observed_runs > 0); /* some failures reach the caller, others are absorbed */
    printf("%-24s %lu os-layer calls in a clean run; %lu injection points (1 in %lu%s), %lu reported ENOMEM\n",
           v->name, clean_calls, points, step, stride() > 1 ? ", a memory tool is attached" : "", observed_runs);
}

int main(void)
{
    /* In checked mode (MPOOL_CHECK=1) freed blocks wait in a quarantine
     * that trim does not release; these tests assert that trim gives every
     * free byte back, so they run without one unless told otherwise. */
    setenv("MPOOL_QUARANTINE", "0", 0);
    (void)mp_heap_default(); /* made outside the sweep: it is never destroyed */
    /* Every point of the scenario in a thread-safe and a single-threaded
     * heap; the other variants differ from those in a few calls (their
     * own points among the ones taken), so every 5th of theirs keeps the
     * run short. */
    const variant variants[] = {
        { "thread-safe", 1, 0, true, false, false },
        { "thread-safe, main", 5, 0, false, false, false },
        { "single-thread", 1, MP_SINGLE_THREAD, false, false, false },
        { "zero", 5, MP_ZERO, true, false, false },
        { "under an arena", 5, 0, true, true, false },
        { "default heap", 1, 0, true, false, true },
    };
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
        sweep(&variants[i]);
    return check_done();
}
