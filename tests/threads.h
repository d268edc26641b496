/*
 * threads.h - the threads of the threaded tests: starting and joining them,
 * the clock their waiters time themselves on, and the contention scaffold
 * the object-pool and reserve tests share. A pthread call that fails leaves
 * a test without the threads it is about, so it is a REQUIRE: the program
 * exits at once.
 */
#ifndef MP_TEST_THREADS_H
#define MP_TEST_THREADS_H

#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Thread i gets (char *)args + i * arg_size, its element of an array of
 * per-thread arguments; with arg_size 0 every thread gets args itself.
 * For tests that act while the threads run: threads_join waits for them. */
static inline void threads_start(pthread_t *threads, size_t n, void *(*fn)(void *), void *args, size_t arg_size)
{
    for (size_t i = 0; i < n; i++)
        REQUIRE(pthread_create(&threads[i], NULL, fn, arg_size ? (char *)args + i * arg_size : args) == 0);
}

static inline void threads_join(const pthread_t *threads, size_t n)
{
    for (size_t i = 0; i < n; i++)
        REQUIRE(pthread_join(threads[i], NULL) == 0);
}

/* threads_start and threads_join, for tests that do nothing meanwhile. */
static inline void threads_run(size_t n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t *threads = malloc(n * sizeof *threads);
    REQUIRE(threads != NULL);
    threads_start(threads, n, fn, args, arg_size);
    threads_join(threads, n);
    free(threads);
}

/* One thread of threads_run_together. */
typedef struct threads_entry {
    void *(*fn)(void *);
    void *arg;
    pthread_barrier_t *all_started;
} threads_entry;

static inline void *threads_enter_together(void *arg)
{
    threads_entry *e = arg;
    pthread_barrier_wait(e->all_started);
    return e->fn(e->arg);
}

/* threads_run, but no thread calls fn before all n have started: otherwise
 * the first threads would be done before the last exist, and nothing would
 * contend. */
static inline void threads_run_together(size_t n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_barrier_t all_started;
    REQUIRE(pthread_barrier_init(&all_started, NULL, (unsigned)n) == 0);
    threads_entry *entries = malloc(n * sizeof *entries);
    REQUIRE(entries != NULL);
    for (size_t i = 0; i < n; i++)
        entries[i] = (threads_entry){ fn, arg_size ? (char *)args + i * arg_size : args, &all_started };
    threads_run(n, threads_enter_together, entries, sizeof *entries);
    free(entries);
    pthread_barrier_destroy(&all_started);
}

/* Nanoseconds on CLOCK_MONOTONIC, the clock mpool's timeouts run on: a
 * waiter that timed out can tell whether it waited its whole timeout. */
static inline int64_t threads_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------- a waiter */

/* A call that may wait: mp_objpool_get_wait or mp_reserve_alloc, through a
 * wrapper of this type. */
typedef void *threads_wait_fn(void *pool, int64_t timeout);

/* A thread that makes one such call and records what it got, errno, and how
 * long it waited; done turns 1 once all of that is recorded. */
typedef struct waiter {
    threads_wait_fn *wait;
    void *pool;
    int64_t timeout;
    void *got;
    int err;
    int64_t waited; /* ns, on CLOCK_MONOTONIC */
    atomic_int done;
    pthread_t th;
} waiter;

/* The call and its record, without done: for a waiter thread of a test's
 * own that records more. */
static inline void waiter_call(waiter *w)
{
    int64_t t0 = threads_now_ns();
    errno = 0;
    w->got = w->wait(w->pool, w->timeout);
    w->err = errno;
    w->waited = threads_now_ns() - t0;
}

static inline void *waiter_main(void *arg)
{
    waiter *w = arg;
    waiter_call(w);
    atomic_store(&w->done, 1);
    return NULL;
}

static inline void waiter_init(waiter *w, threads_wait_fn *wait, void *pool, int64_t timeout)
{
    *w = (waiter){ .wait = wait, .pool = pool, .timeout = timeout };
    atomic_init(&w->done, 0);
}

/* Starts a waiter on its own thread; threads_join(&w->th, 1) ends it. */
static inline void waiter_start(waiter *w, threads_wait_fn *wait, void *pool, int64_t timeout)
{
    waiter_init(w, wait, pool, timeout);
    threads_start(&w->th, 1, waiter_main, w, 0);
}

/* ---------------------------------------------------- contending for a cap */

/* Threads take objects from a capped pool (max_live) or a reserve over a
 * failing source (min_reserved) and count what they hold between them: a
 * count above the cap means the library gave out more than it has. */
typedef struct contention {
    size_t cap;
    atomic_size_t held; /* by the threads' own count */
    atomic_size_t over; /* times `held` went above `cap` */
} contention;

typedef struct contender {
    contention *contention;
    void *supply; /* the pool or reserve */
    unsigned seed; /* of the thread's own sequence of moves */
} contender;

/* Runs fn in `threads` threads at once, each on a contender of c for
 * `supply` with a seed of its own. */
static inline void contention_run(contention *c, size_t threads, void *(*fn)(void *), void *supply)
{
    contender *them = malloc(threads * sizeof *them);
    REQUIRE(them != NULL);
    for (size_t i = 0; i < threads; i++)
        them[i] = (contender){ c, supply, 77u + (unsigned)i };
    threads_run_together(threads, fn, them, sizeof *them);
    free(them);
}

/* Holds the n objects got on move x before they go back: counts them
 * against the cap, and checks that nobody else writes them meanwhile. */
static inline void contention_hold(contender *me, void *const *objs, size_t n, unsigned x)
{
    contention *c = me->contention;
    if (atomic_fetch_add(&c->held, n) + n > c->cap)
        atomic_fetch_add(&c->over, 1);
    for (size_t k = 0; k < n; k++)
        *(unsigned *)objs[k] = x; /* the object is ours */
    if (x & 2)
        sched_yield(); /* hold the objects a while: others hit the cap */
    for (size_t k = 0; k < n; k++)
        REQUIRE(*(unsigned *)objs[k] == x);
    atomic_fetch_sub(&c->held, n);
}

#endif
