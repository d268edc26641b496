/* The default heap, the process heap, from several threads (public header
 * only):
 *   - its first calls, from eight threads at once, all get the same heap;
 *   - threads allocate in it, free their own blocks and their neighbours'
 *     (mp_free), while another thread trims it and reads its counters over
 *     and over; afterwards the counters have moved by exactly what the
 *     threads did, and every block kept its contents until freed;
 *   - it outlives everything: an arena destroyed, a heap destroyed, and
 *     threads that exited leave it working. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "heap.h"
#include "threads.h"

#include <mpool.h>

enum { THREADS = 8 };

static mp_heap *seen[THREADS];

static void *first_call(void *arg)
{
    unsigned me = *(const unsigned *)arg;
    seen[me] = mp_heap_default();
    void *p = mp_heap_alloc(seen[me], 32);
    REQUIRE(p != NULL);
    mp_free(p);
    return NULL;
}

/* Must run first in its process: the first call races here. */
static void test_first_call_race(void)
{
    unsigned ids[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        ids[i] = i;
    threads_run_together(THREADS, first_call, ids, sizeof *ids);
    CHECK(seen[0] != NULL);
    for (unsigned i = 1; i < THREADS; i++)
        CHECK_PTR_EQ(seen[i], seen[0]);
    CHECK_PTR_EQ(mp_heap_default(), seen[0]);
}

/* ---------------------------------------------------------- shared use */

enum { WORKERS = 4, PER = 20000 };

typedef struct worker {
    unsigned id;
    char **mine; /* PER blocks; the odd ones the next worker frees */
    struct worker *all;
    pthread_barrier_t *made;
    atomic_int *stop;
} worker;

static size_t size_of(unsigned id, size_t i) { return 1 + (size_t)(check_mix((uint64_t)id << 32 | i) % 1500); }

static void *work(void *arg)
{
    worker *w = arg;
    mp_heap *d = mp_heap_default();
    for (size_t i = 0; i < PER; i++) {
        REQUIRE((w->mine[i] = mp_heap_alloc(d, size_of(w->id, i))) != NULL);
        heap_fill(w->mine[i], size_of(w->id, i), (uint64_t)w->id << 32 | i);
    }
    for (size_t i = 0; i < PER; i += 2) {
        CHECK_EQ(heap_check(w->mine[i], size_of(w->id, i), (uint64_t)w->id << 32 | i), SIZE_MAX);
        mp_free(w->mine[i]);
    }
    pthread_barrier_wait(w->made);
    const worker *next = &w->all[(w->id + 1) % WORKERS];
    for (size_t i = 1; i < PER; i += 2) {
        CHECK_EQ(heap_check(next->mine[i], size_of(next->id, i), (uint64_t)next->id << 32 | i), SIZE_MAX);
        mp_free(next->mine[i]);
    }
    return NULL;
}

static void *trimmer(void *arg)
{
    worker *w = arg;
    while (!atomic_load(w->stop)) {
        mp_heap_trim(mp_heap_default());
        (void)heap_stats(mp_heap_default()); /* counters read while they move: no invariant to hold */
        sched_yield();
    }
    return NULL;
}

static void test_shared_use(void)
{
    mp_heap *d = mp_heap_default();
    REQUIRE(d != NULL);
    mp_stats before = heap_stats(d);
    static worker ws[WORKERS + 1];
    static char *blocks[WORKERS][PER];
    pthread_barrier_t made;
    atomic_int stop;
    atomic_init(&stop, 0);
    REQUIRE(pthread_barrier_init(&made, NULL, WORKERS) == 0);
    for (unsigned i = 0; i < WORKERS; i++)
        ws[i] = (worker){ .id = i, .mine = blocks[i], .all = ws, .made = &made, .stop = &stop };
    ws[WORKERS] = (worker){ .stop = &stop };
    pthread_t tt, th[WORKERS];
    threads_start(&tt, 1, trimmer, &ws[WORKERS], 0);
    threads_start(th, WORKERS, work, ws, sizeof *ws);
    threads_join(th, WORKERS);
    atomic_store(&stop, 1);
    threads_join(&tt, 1);
    pthread_barrier_destroy(&made);
    mp_stats after = heap_stats(d);
    CHECK_EQ(after.allocs - before.allocs, WORKERS * PER);
    CHECK_EQ(after.frees - before.frees, WORKERS * PER);
    CHECK_EQ(after.objects_in_use, before.objects_in_use);
    CHECK_EQ(after.bytes_in_use, before.bytes_in_use);
}

/* ------------------------------------------------------------ outlives */

static void *use_default(void *arg)
{
    (void)arg;
    void *p = mp_heap_alloc(mp_heap_default(), 4000);
    REQUIRE(p != NULL);
    memset(p, 3, 4000);
    return p; /* freed by main, after this thread exited */
}

static void test_outlives(void)
{
    mp_heap *d = mp_heap_default();
    mp_stats before = heap_stats(d);
    mp_arena *a = mp_arena_create(NULL, NULL);
    mp_heap *h = mp_heap_create(a, NULL);
    REQUIRE(a && h);
    void *keep = mp_heap_alloc(d, 100);
    REQUIRE(keep != NULL);
    mp_arena_destroy(a);
    pthread_t t;
    void *from_thread = NULL;
    REQUIRE(pthread_create(&t, NULL, use_default, NULL) == 0);
    REQUIRE(pthread_join(t, &from_thread) == 0);
    REQUIRE(from_thread != NULL);
    CHECK_EQ(((unsigned char *)from_thread)[3999], 3);
    CHECK_PTR_EQ(mp_heap_default(), d);
    mp_free(from_thread);
    mp_free(keep);
    mp_stats after = heap_stats(d);
    CHECK_EQ(after.allocs - before.allocs, 2);
    CHECK_EQ(after.frees - before.frees, 2);
    CHECK_EQ(after.objects_in_use, before.objects_in_use);
}

static const check_case cases[] = {
    CHECK_CASE(first_call_race, test_first_call_race),
    CHECK_CASE(shared_use, test_shared_use),
    CHECK_CASE(outlives, test_outlives),
};

int main(int argc, char **argv) { return check_cases(argc, argv, cases, CHECK_NCASES(cases)); }
