/* Signals never end a wait in mp_reserve_alloc (public header only).
 *
 * A no-op SIGUSR1 handler is installed without SA_RESTART, so every signal
 * interrupts whatever blocking call the waiter is in. Waiters block on an
 * empty reserve over a failing source: some with timeouts, some with
 * MP_WAIT_FOREVER. A signaller thread sends SIGUSR1 to every waiter about
 * every millisecond (its nanosleep is load, not synchronisation). Asserted:
 *   - a wait with a timeout ends in ETIMEDOUT (never EINTR, never an
 *     element), and not before its deadline (CLOCK_MONOTONIC);
 *   - a wait without limit ends only when an element is freed: a counter of
 *     frees is raised before each free, and no waiter returns while more
 *     waiters have returned than elements were freed; each gets exactly one
 *     of the freed elements, no two the same;
 *   - the signals did arrive (the handler counts them). */
#define _GNU_SOURCE 1
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum { TIMED = 4, FOREVER = 4, WAITERS = TIMED + FOREVER, ROUNDS = 2 };

/* ------------------------------------------------------------ the source */

/* Makes elements at create, then fails for ever. Thread-safe by atomics. */
typedef struct source {
    atomic_bool fail;
    atomic_size_t live;
} source;

static void *src_alloc(void *arg)
{
    source *s = arg;
    if (atomic_load(&s->fail)) {
        errno = ENOMEM;
        return NULL;
    }
    void *e = malloc(32);
    REQUIRE(e != NULL);
    atomic_fetch_add(&s->live, 1);
    return e;
}

static void src_free(void *elem, void *arg)
{
    source *s = arg;
    atomic_fetch_sub(&s->live, 1);
    free(elem);
}

/* ------------------------------------------------------------- signals */

static atomic_size_t deliveries;

static void on_sigusr1(int sig)
{
    (void)sig;
    atomic_fetch_add_explicit(&deliveries, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------- waiters */

typedef struct shared {
    mp_reserve *r;
    atomic_size_t freed;    /* elements freed for the forever-waiters (raised before the free) */
    atomic_size_t returned; /* forever-waiters that returned */
    atomic_size_t early;    /* forever-waiters that returned with no element freed for them */
    atomic_bool stop;       /* the signaller stops */
    atomic_size_t rounds;   /* signalling rounds so far */
    pthread_t th[WAITERS];
} shared;

typedef struct waiter {
    shared *sh;
    int64_t timeout;
    void *got;
    int err;
    int64_t waited;
    atomic_int done;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    int64_t t0 = threads_now_ns();
    errno = 0;
    w->got = mp_reserve_alloc(w->sh->r, w->timeout);
    w->err = errno;
    w->waited = threads_now_ns() - t0;
    if (w->timeout == MP_WAIT_FOREVER) {
        size_t n = atomic_fetch_add(&w->sh->returned, 1) + 1;
        if (n > atomic_load(&w->sh->freed))
            atomic_fetch_add(&w->sh->early, 1);
    }
    atomic_store(&w->done, 1);
    return NULL;
}

static void *signaller_main(void *arg)
{
    shared *sh = arg;
    while (!atomic_load(&sh->stop)) {
        for (int i = 0; i < WAITERS; i++)
            pthread_kill(sh->th[i], SIGUSR1); /* a thread that has ended (not yet joined) is fine */
        atomic_fetch_add(&sh->rounds, 1);
        nanosleep(&(struct timespec){ .tv_nsec = 1000 * 1000 }, NULL);
    }
    return NULL;
}

static mp_stats stats_of(const mp_reserve *r)
{
    mp_stats s;
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    return s;
}

/* Lets the signaller run n more rounds (load while nothing may happen). */
static void let_signals_run(shared *sh, size_t n)
{
    size_t until = atomic_load(&sh->rounds) + n;
    while (atomic_load(&sh->rounds) < until)
        sched_yield();
}

static void round_once(int round)
{
    source src = { 0 };
    atomic_init(&src.fail, false);
    atomic_init(&src.live, 0);
    static shared sh;
    memset(&sh, 0, sizeof sh);
    sh.r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "signalled", .min_reserved = FOREVER,
                                                       .alloc = src_alloc, .free = src_free, .src = &src });
    REQUIRE(sh.r != NULL);
    atomic_store(&src.fail, true);
    void *e[FOREVER];
    for (int i = 0; i < FOREVER; i++)
        REQUIRE((e[i] = mp_reserve_alloc(sh.r, 0)) != NULL);

    /* Timed waiters from 3 to 60 ms, then the forever-waiters. */
    static waiter w[WAITERS];
    const int64_t ms = 1000 * 1000;
    const int64_t timeouts[TIMED] = { 3 * ms, 15 * ms, 30 * ms, 60 * ms };
    for (int i = 0; i < WAITERS; i++) {
        w[i] = (waiter){ .sh = &sh, .timeout = i < TIMED ? timeouts[i] : MP_WAIT_FOREVER };
        atomic_init(&w[i].done, 0);
    }
    threads_start(sh.th, WAITERS, waiter_main, w, sizeof *w);
    pthread_t signaller;
    threads_start(&signaller, 1, signaller_main, &sh, 0);

    /* Every waiter is waiting (or, for the timed ones, has waited). */
    while (stats_of(sh.r).waits < WAITERS)
        sched_yield();
    /* The timed ones end by their timeouts. */
    for (int i = 0; i < TIMED; i++)
        while (!atomic_load(&w[i].done))
            sched_yield();
    for (int i = 0; i < TIMED; i++) {
        if (w[i].got != NULL || w[i].err != ETIMEDOUT || w[i].waited < w[i].timeout) {
            fprintf(stderr, "round %d: timed waiter %d (%lld ns) got %p, errno %d (%s), after %lld ns; "
                    "want NULL, ETIMEDOUT, after >= the timeout\n", round, i, (long long)w[i].timeout, w[i].got,
                    w[i].err, w[i].err == EINTR ? "EINTR" : "", (long long)w[i].waited);
            check_failures++;
        }
    }
    /* The forever-waiters are still waiting, signals or not. */
    let_signals_run(&sh, 20);
    for (int i = TIMED; i < WAITERS; i++)
        CHECK_EQ(atomic_load(&w[i].done), 0);
    mp_stats st = stats_of(sh.r);
    CHECK_EQ(st.waits, WAITERS);
    CHECK_EQ(st.timeouts, TIMED);
    CHECK_EQ(st.allocs, FOREVER);

    /* Free the elements one by one, with signals in between: each free
     * releases exactly one waiter. */
    for (int i = 0; i < FOREVER; i++) {
        atomic_fetch_add(&sh.freed, 1);
        mp_reserve_free(sh.r, e[i]);
        while (atomic_load(&sh.returned) < (size_t)i + 1)
            sched_yield();
        let_signals_run(&sh, 5);
        CHECK_EQ(atomic_load(&sh.returned), i + 1); /* not two for one free */
    }
    atomic_store(&sh.stop, true);
    threads_join(&signaller, 1);
    threads_join(sh.th, WAITERS);

    CHECK_EQ(atomic_load(&sh.early), 0);
    /* Each forever-waiter got one of the freed elements, no two the same. */
    bool taken[FOREVER] = { false };
    for (int i = TIMED; i < WAITERS; i++) {
        int k = -1;
        for (int j = 0; j < FOREVER; j++)
            if (w[i].got == e[j])
                k = j;
        if (k < 0 || taken[k]) {
            fprintf(stderr, "round %d: forever-waiter %d got %p (errno %d): %s\n", round, i, w[i].got, w[i].err,
                    k < 0 ? "not a freed element" : "also given to another waiter");
            check_failures++;
        } else {
            taken[k] = true;
        }
    }
    st = stats_of(sh.r);
    CHECK_EQ(st.waits, WAITERS);
    CHECK_EQ(st.timeouts, TIMED);
    CHECK_EQ(st.allocs, 2 * FOREVER);
    CHECK_EQ(st.frees, FOREVER);
    CHECK_EQ(st.reserve_level, 0);
    for (int i = TIMED; i < WAITERS; i++)
        if (w[i].got)
            mp_reserve_free(sh.r, w[i].got);
    CHECK_EQ(stats_of(sh.r).reserve_level, FOREVER);
    mp_reserve_destroy(sh.r);
    CHECK_EQ(atomic_load(&src.live), 0);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls return EINTR */
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    for (int round = 0; round < ROUNDS; round++)
        round_once(round);
    size_t n = atomic_load(&deliveries);
    printf("%zu signals delivered\n", n);
    CHECK(n > 0);
    return check_done();
}
