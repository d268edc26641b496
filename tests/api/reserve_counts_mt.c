/* A reserve's allocs and frees are counted in each thread's own counts
 * (public header only): after the threads stop, the statistics are exact,
 * whether the threads are still alive, have exited, or allocated on one
 * thread and freed on another; the threads' counts show in bytes_meta
 * while the threads live and leave it when they exit; reserves past the
 * first few (which count in the library) and a thread's first count are
 * exact too.
 *
 *   - live: 4 threads each make 10,000 alloc+free pairs and keep 3
 *     elements out, then wait at a barrier while main reads the stats;
 *   - exited: the same threads, read after they were joined;
 *   - cross: elements allocated on one thread and freed on another;
 *   - many: 40 reserves at once (more than the direct entries), one
 *     thread per reserve, each count exact. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "threads.h"

#include <mpool.h>

#include <stdlib.h>

enum { NTHREADS = 4, PAIRS = 10000, KEPT = 3, ELEM = 48 };

static mp_stats stats_of(const mp_reserve *r)
{
    mp_stats s;
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    return s;
}

static mp_reserve *make(const char *name)
{
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = name, .min_reserved = 2, .elem_size = ELEM });
    REQUIRE(r != NULL);
    return r;
}

typedef struct worker {
    mp_reserve *r;
    pthread_barrier_t *counted, *done; /* NULL: return at once */
    void *kept[KEPT];
} worker;

static void *pairs(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PAIRS; i++) {
        char *e = mp_reserve_alloc(w->r, 0);
        REQUIRE(e != NULL);
        e[0] = (char)i;
        mp_reserve_free(w->r, e);
    }
    for (int k = 0; k < KEPT; k++)
        REQUIRE((w->kept[k] = mp_reserve_alloc(w->r, 0)) != NULL);
    if (w->counted) {
        pthread_barrier_wait(w->counted); /* main reads the stats now */
        pthread_barrier_wait(w->done);
    }
    return NULL;
}

static void free_kept(worker *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < KEPT; k++)
            mp_reserve_free(w[i].r, w[i].kept[k]);
}

static void test_live_threads(void)
{
    mp_reserve *r = make("live");
    size_t meta_before = stats_of(r).bytes_meta;
    pthread_barrier_t counted, done;
    REQUIRE(pthread_barrier_init(&counted, NULL, NTHREADS + 1) == 0);
    REQUIRE(pthread_barrier_init(&done, NULL, NTHREADS + 1) == 0);
    worker w[NTHREADS];
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        w[i] = (worker){ .r = r, .counted = &counted, .done = &done };
    threads_start(t, NTHREADS, pairs, w, sizeof *w);
    pthread_barrier_wait(&counted);
    mp_stats s = stats_of(r);
    CHECK_EQ(s.allocs, NTHREADS * (PAIRS + KEPT));
    CHECK_EQ(s.frees, NTHREADS * PAIRS);
    CHECK_EQ(s.objects_in_use, NTHREADS * KEPT);
    CHECK(s.bytes_meta > meta_before); /* the threads' counts are bookkeeping */
    pthread_barrier_wait(&done);
    threads_join(t, NTHREADS);
    s = stats_of(r);
    CHECK_EQ(s.allocs, NTHREADS * (PAIRS + KEPT)); /* kept across the threads' exit */
    CHECK_EQ(s.objects_in_use, NTHREADS * KEPT);
    CHECK_EQ(s.bytes_meta, meta_before); /* and their counts left with them */
    free_kept(w, NTHREADS);                /* freed by main */
    s = stats_of(r);
    CHECK_EQ(s.frees, NTHREADS * (PAIRS + KEPT));
    CHECK_EQ(s.objects_in_use, 0);
    pthread_barrier_destroy(&counted);
    pthread_barrier_destroy(&done);
    mp_reserve_destroy(r);
}

/* Elements allocated on one thread, freed on the next. */
typedef struct relay {
    mp_reserve *r;
    void *elems[PAIRS];
} relay;

static void *alloc_all(void *arg)
{
    relay *x = arg;
    for (int i = 0; i < PAIRS; i++)
        REQUIRE((x->elems[i] = mp_reserve_alloc(x->r, MP_WAIT_FOREVER)) != NULL);
    return NULL;
}

static void *free_all(void *arg)
{
    relay *x = arg;
    for (int i = 0; i < PAIRS; i++)
        mp_reserve_free(x->r, x->elems[i]);
    return NULL;
}

static void test_cross_thread(void)
{
    mp_reserve *r = make("cross");
    relay *x = malloc(sizeof *x);
    REQUIRE(x != NULL);
    x->r = r;
    for (int round = 0; round < 3; round++) {
        threads_run(1, alloc_all, x, 0);
        CHECK_EQ(stats_of(r).objects_in_use, PAIRS);
        threads_run(1, free_all, x, 0);
        mp_stats s = stats_of(r);
        CHECK_EQ(s.allocs, (size_t)(round + 1) * PAIRS);
        CHECK_EQ(s.frees, (size_t)(round + 1) * PAIRS);
        CHECK_EQ(s.objects_in_use, 0);
    }
    free(x);
    mp_reserve_destroy(r);
}

/* More reserves than the threads' direct entries: those past them count
 * in the library, as exactly. */
enum { MANY = 40 };

static void test_many_reserves(void)
{
    mp_reserve *r[MANY];
    worker w[MANY];
    pthread_t t[MANY];
    for (int i = 0; i < MANY; i++) {
        r[i] = make("many");
        w[i] = (worker){ .r = r[i] };
    }
    threads_start(t, MANY, pairs, w, sizeof *w);
    threads_join(t, MANY);
    for (int i = 0; i < MANY; i++) {
        mp_stats s = stats_of(r[i]);
        CHECK_EQ(s.allocs, PAIRS + KEPT);
        CHECK_EQ(s.frees, PAIRS);
    }
    free_kept(w, MANY);
    for (int i = 0; i < MANY; i++) {
        CHECK_EQ(stats_of(r[i]).objects_in_use, 0);
        mp_reserve_destroy(r[i]);
    }
}

static const check_case cases[] = {
    CHECK_CASE(live_threads, test_live_threads),
    CHECK_CASE(cross_thread, test_cross_thread),
    CHECK_CASE(many_reserves, test_many_reserves),
};

int main(int argc, char **argv) { return check_cases(argc, argv, cases, CHECK_NCASES(cases)); }
