/* max_live and get_wait across threads (public header only). No sleep is
 * used to synchronise: a test knows a thread is blocked in get_wait when
 * the pool's `waits` counter says so (a get_wait counts itself before it
 * blocks, under the pool's lock) and the cap guarantees it cannot return
 * before a put. Timeouts appear only where the contract is a timeout; no
 * assertion depends on how long anything takes.
 *
 *   - a waiter blocked at max_live (MP_WAIT_FOREVER, a long timeout) is
 *     released by a put, a put_bulk, an mp_free from another thread;
 *   - a put_bulk of k releases k of several waiters, no more;
 *   - a positive wait that runs out: NULL + ETIMEDOUT, no place leaked;
 *   - the cap is exact whatever other threads' caches hold;
 *   - destroying a pool while a thread waits is misuse and does nothing;
 *     its parent arena's destroy goes ahead and leaves it a root;
 *   - a fork() child does not count the parent's waiters: it may destroy;
 *   - many threads contending at a small cap never exceed it and finish. */
#define _GNU_SOURCE 1
#include "capture.h"
#include "check.h"
#include "child.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

static mp_stats stats_of(const mp_objpool *p)
{
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    return s;
}

/* Spins (yielding) until the pool has counted `waits` blocked get_waits. */
static void wait_for_waits(const mp_objpool *p, size_t waits)
{
    while (stats_of(p).waits < waits)
        sched_yield();
}

static mp_objpool *make(size_t max_live, unsigned flags)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "capped", .obj_size = 64,
                                                               .max_live = max_live, .flags = flags });
    REQUIRE(p != NULL);
    return p;
}

/* ------------------------------------------------------------ a waiter */

static void *get_wait(void *p, int64_t timeout) { return mp_objpool_get_wait(p, timeout); }

static void start_waiter(waiter *w, mp_objpool *p, int64_t timeout) { waiter_start(w, get_wait, p, timeout); }

/* How a test releases the waiter. */
typedef enum release_by { BY_PUT, BY_PUT_BULK, BY_MP_FREE, BY_OTHER_THREAD } release_by;

static void *put_from_thread(void *arg)
{
    void **pair = arg;
    mp_objpool_put(pair[0], pair[1]);
    return NULL;
}

static void test_waiter_released(int64_t timeout, release_by how)
{
    enum { CAP = 5 };
    mp_objpool *p = make(CAP, 0);
    void *objs[CAP];
    CHECK_EQ(mp_objpool_get_bulk(p, objs, CAP), CAP);
    waiter w;
    start_waiter(&w, p, timeout);
    wait_for_waits(p, 1);
    /* It is blocked: max_live objects are out, and nobody has put one. */
    CHECK_EQ(atomic_load(&w.done), 0);
    CHECK_EQ(stats_of(p).objects_in_use, CAP);
    switch (how) {
    case BY_PUT: mp_objpool_put(p, objs[2]); break;
    case BY_PUT_BULK: mp_objpool_put_bulk(p, objs + 2, 1); break;
    case BY_MP_FREE: mp_free(objs[2]); break;
    case BY_OTHER_THREAD: {
        void *pair[2] = { p, objs[2] };
        threads_run(1, put_from_thread, pair, 0);
        break;
    }
    }
    threads_join(&w.th, 1);
    CHECK(w.got != NULL);
    if (!w.got)
        fprintf(stderr, "waiter (timeout %lld, release %d) got NULL, errno %d\n", (long long)timeout, how, w.err);
    objs[2] = w.got;
    mp_stats s = stats_of(p);
    CHECK_EQ(s.objects_in_use, CAP);
    CHECK_EQ(s.waits, 1);
    CHECK_EQ(s.timeouts, 0);
    errno = 0;
    CHECK(mp_objpool_get(p) == NULL); /* still exactly at the cap */
    CHECK_EQ(errno, ENOMEM);
    if (w.got)
        mp_objpool_put_bulk(p, objs, CAP);
    CHECK_EQ(stats_of(p).objects_in_use, 0);
    mp_objpool_destroy(p);
}

/* A put_bulk of k wakes k of n waiters; the rest stay blocked until more
 * objects come back. */
static void test_bulk_releases_k(void)
{
    enum { CAP = 4, WAITERS = 3 };
    mp_objpool *p = make(CAP, 0);
    void *objs[CAP];
    CHECK_EQ(mp_objpool_get_bulk(p, objs, CAP), CAP);
    waiter w[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        start_waiter(&w[i], p, i == 1 ? INT64_MAX : MP_WAIT_FOREVER);
    wait_for_waits(p, WAITERS);
    mp_objpool_put_bulk(p, objs, 2);
    /* Exactly two get through: wait until two are done... */
    int done = 0;
    while ((done = atomic_load(&w[0].done) + atomic_load(&w[1].done) + atomic_load(&w[2].done)) < 2)
        sched_yield();
    /* ...and the third cannot be: all CAP places are taken again. */
    CHECK_EQ(done, 2);
    CHECK_EQ(stats_of(p).objects_in_use, CAP);
    int blocked = -1;
    for (int i = 0; i < WAITERS; i++) {
        if (!atomic_load(&w[i].done)) {
            blocked = i;
            continue;
        }
        threads_join(&w[i].th, 1);
        CHECK(w[i].got != NULL);
    }
    REQUIRE(blocked >= 0);
    /* One of the winners gives its object back: the last waiter gets it. */
    int winner = blocked == 0 ? 1 : 0;
    mp_objpool_put(p, w[winner].got);
    threads_join(&w[blocked].th, 1);
    CHECK(w[blocked].got != NULL);
    for (int i = 0; i < WAITERS; i++)
        if (i != winner && w[i].got)
            mp_objpool_put(p, w[i].got);
    mp_objpool_put_bulk(p, objs + 2, 2);
    mp_stats s = stats_of(p);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.waits, WAITERS);
    CHECK_EQ(s.timeouts, 0);
    mp_objpool_destroy(p);
}

/* A positive wait that runs out. */
static void test_timeout(void)
{
    enum { CAP = 3 };
    mp_objpool *p = make(CAP, MP_ZERO);
    void *objs[CAP];
    CHECK_EQ(mp_objpool_get_bulk(p, objs, CAP), CAP);
    waiter w;
    start_waiter(&w, p, 5 * 1000 * 1000); /* 5 ms, from another thread */
    threads_join(&w.th, 1);
    CHECK(w.got == NULL);
    CHECK_EQ(w.err, ETIMEDOUT);
    errno = 0;
    CHECK(mp_objpool_get_wait(p, 1) == NULL); /* 1 ns: still a positive wait */
    CHECK_EQ(errno, ETIMEDOUT);
    errno = 0;
    CHECK(mp_objpool_get_wait(p, 0) == NULL); /* 0: no wait, ENOMEM */
    CHECK_EQ(errno, ENOMEM);
    mp_stats s = stats_of(p);
    CHECK_EQ(s.waits, 2);
    CHECK_EQ(s.timeouts, 2);
    CHECK_EQ(s.objects_in_use, CAP);
    /* The timed-out waits took no place: after the puts, the whole cap is
     * there again. */
    mp_objpool_put_bulk(p, objs, CAP);
    CHECK_EQ(mp_objpool_get_bulk(p, objs, CAP + 2), CAP);
    for (int i = 0; i < CAP; i++)
        CHECK(objs[i] != NULL && ((unsigned char *)objs[i])[63] == 0);
    mp_objpool_put_bulk(p, objs, CAP);
    mp_objpool_destroy(p);
}

/* ---------------------------------------------- exact cap, full caches */

typedef struct filler {
    mp_objpool *pool;
    size_t n;
    pthread_barrier_t *parked, *resume;
} filler;

/* Gets n objects and puts them all back (they stay in this thread's
 * cache), then stays alive, parked, while main uses the pool. */
static void *fill_cache_and_park(void *arg)
{
    filler *f = arg;
    void **objs = malloc(f->n * sizeof *objs);
    REQUIRE(objs != NULL);
    size_t got = mp_objpool_get_bulk(f->pool, objs, f->n);
    CHECK_EQ(got, f->n);
    for (size_t i = 0; i < got; i++)
        mp_objpool_put(f->pool, objs[i]);
    free(objs);
    pthread_barrier_wait(f->parked);
    pthread_barrier_wait(f->resume);
    return NULL;
}

static void test_cap_exact_with_caches(void)
{
    enum { CAP = 200 };
    mp_objpool *p = make(CAP, 0);
    pthread_barrier_t parked, resume;
    pthread_barrier_init(&parked, NULL, 2);
    pthread_barrier_init(&resume, NULL, 2);
    filler f = { p, CAP, &parked, &resume };
    pthread_t t;
    threads_start(&t, 1, fill_cache_and_park, &f, 0);
    pthread_barrier_wait(&parked);
    /* The other thread's cache holds free objects; the cap counts objects
     * out, so all CAP are available here, one by one, and no more. */
    void *objs[CAP];
    size_t got = 0;
    while (got < CAP && (objs[got] = mp_objpool_get(p)) != NULL)
        got++;
    CHECK_EQ(got, CAP);
    errno = 0;
    CHECK(mp_objpool_get(p) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(stats_of(p).objects_in_use, CAP);
    mp_objpool_put_bulk(p, objs, got);
    pthread_barrier_wait(&resume);
    threads_join(&t, 1);
    mp_stats s = stats_of(p);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, 2 * CAP);
    CHECK_EQ(s.frees, 2 * CAP);
    pthread_barrier_destroy(&parked);
    pthread_barrier_destroy(&resume);
    mp_objpool_destroy(p);
}

/* ------------------------------------------------- destroy while waiting */

static int misuse_calls;
static char misuse_msg[512];

static void record_misuse(const char *msg, const void *ptr, void *arg)
{
    (void)ptr;
    (void)arg;
    misuse_calls++;
    snprintf(misuse_msg, sizeof misuse_msg, "%s", msg);
}

/* by_parent: the destroy is the pool's parent arena's, which goes ahead;
 * the pool, refusing, must stay live and visible, as a root. */
static void test_destroy_while_waiting(bool by_parent)
{
    misuse_calls = 0;
    mp_objpool *p = make(1, 0);
    mp_arena *parent = by_parent ? mp_arena_create(NULL, &(mp_arena_opts){ .name = "parent" }) : NULL;
    REQUIRE(!by_parent || (parent && mp_objpool_move(p, parent) == 0));
    void *o = mp_objpool_get(p);
    REQUIRE(o != NULL);
    waiter w;
    start_waiter(&w, p, MP_WAIT_FOREVER);
    wait_for_waits(p, 1);
    mp_set_error_handler(record_misuse, NULL);
    if (by_parent)
        mp_arena_destroy(parent);
    else
        mp_objpool_destroy(p); /* misuse: reported, and nothing done */
    mp_set_error_handler(NULL, NULL);
    CHECK_EQ(misuse_calls, 1);
    CHECK(strstr(misuse_msg, "wait") != NULL);
    CHECK_EQ(atomic_load(&w.done), 0);
    CHECK_EQ(stats_of(p).objects_in_use, 1); /* the pool is intact */
    CHECK(report_has_root("objpool capped"));
    mp_objpool_put(p, o);
    threads_join(&w.th, 1);
    CHECK(w.got != NULL);
    mp_objpool_put(p, w.got);
    mp_objpool_destroy(p);
    CHECK_EQ(misuse_calls, 1);
}

/* fork() while a thread waits in get_wait: that thread does not exist in
 * the child, which may use and destroy the pool (the waiter was counted for
 * good, so the destroy was refused as misuse, and the condition variable
 * it slept on would have blocked it). */
static mp_objpool *forked_pool;
static void *forked_obj;

static void use_and_destroy_in_child(void)
{
    mp_objpool_put(forked_pool, forked_obj);
    void *again = mp_objpool_get_wait(forked_pool, 0);
    if (!again)
        _exit(1);
    mp_objpool_put(forked_pool, again);
    mp_objpool_destroy(forked_pool);
}

static void test_fork_while_waiting(void)
{
    mp_objpool *p = forked_pool = make(1, 0);
    void *o = forked_obj = mp_objpool_get(p);
    REQUIRE(o != NULL);
    waiter w;
    start_waiter(&w, p, MP_WAIT_FOREVER);
    wait_for_waits(p, 1);
    CHECK(child_runs_clean(use_and_destroy_in_child));
    /* The parent's waiter is still there, and is released as ever. */
    CHECK_EQ(atomic_load(&w.done), 0);
    mp_objpool_put(p, o);
    threads_join(&w.th, 1);
    CHECK(w.got != NULL);
    mp_objpool_put(p, w.got);
    mp_objpool_destroy(p);
}

/* ------------------------------------------------------- contention */

enum { CONTEND_THREADS = 6, CONTEND_CAP = 3, CONTEND_ITERS = 4000 };

static void *contend_main(void *arg)
{
    contender *me = arg;
    mp_objpool *p = me->supply;
    unsigned x = me->seed;
    for (int i = 0; i < CONTEND_ITERS; i++) {
        x = x * 1103515245u + 12345u;
        void *objs[2];
        size_t n;
        switch ((x >> 16) % 4) {
        case 0: /* wait without limit */
            objs[0] = mp_objpool_get_wait(p, MP_WAIT_FOREVER);
            REQUIRE(objs[0] != NULL);
            n = 1;
            break;
        case 1: /* a short wait: either an object or ETIMEDOUT */
            errno = 0;
            objs[0] = mp_objpool_get_wait(p, 20000);
            REQUIRE(objs[0] != NULL || errno == ETIMEDOUT);
            n = objs[0] != NULL;
            break;
        case 2: /* no wait */
            errno = 0;
            objs[0] = mp_objpool_get(p);
            REQUIRE(objs[0] != NULL || errno == ENOMEM);
            n = objs[0] != NULL;
            break;
        default:
            errno = 0;
            n = mp_objpool_get_bulk(p, objs, 2);
            REQUIRE(n == 2 || errno == ENOMEM);
            break;
        }
        contention_hold(me, objs, n, x);
        if (n == 2 && (x & 1))
            mp_objpool_put_bulk(p, objs, 2);
        else
            for (size_t k = 0; k < n; k++)
                mp_objpool_put(p, objs[k]);
    }
    return NULL;
}

static void test_contention(void)
{
    mp_objpool *p = make(CONTEND_CAP, 0);
    contention c = { .cap = CONTEND_CAP };
    contention_run(&c, CONTEND_THREADS, contend_main, p);
    CHECK_EQ(atomic_load(&c.over), 0);
    mp_stats s = stats_of(p);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, s.frees);
    CHECK(s.timeouts <= s.waits);
    /* Every place is free again. */
    void *objs[CONTEND_CAP + 1];
    CHECK_EQ(mp_objpool_get_bulk(p, objs, CONTEND_CAP + 1), CONTEND_CAP);
    mp_objpool_put_bulk(p, objs, CONTEND_CAP);
    mp_objpool_destroy(p);
}

int main(void)
{
    test_waiter_released(MP_WAIT_FOREVER, BY_PUT);
    test_waiter_released(MP_WAIT_FOREVER, BY_PUT_BULK);
    test_waiter_released(MP_WAIT_FOREVER, BY_MP_FREE);
    test_waiter_released(MP_WAIT_FOREVER, BY_OTHER_THREAD);
    test_waiter_released((int64_t)3600 * 1000000000, BY_PUT); /* a long positive wait, cut short by the put */
    test_waiter_released(INT64_MAX, BY_PUT);
    test_bulk_releases_k();
    test_timeout();
    test_cap_exact_with_caches();
    test_destroy_while_waiting(false);
    test_destroy_while_waiting(true);
    test_fork_while_waiting();
    test_contention();
    return check_done();
}
