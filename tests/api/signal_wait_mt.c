/* Signals never end a wait: not in mp_objpool_get_wait on a pool at its
 * max_live, not in mp_reserve_alloc on an empty reserve over a failing
 * source (public header only).
 *
 * A no-op SIGUSR1 handler is installed without SA_RESTART, so every signal
 * interrupts whatever blocking call the waiter is in. Waiters block on a
 * pool or reserve with nothing to give: some with timeouts, some with
 * MP_WAIT_FOREVER. A signaller thread sends SIGUSR1 to every waiter about
 * every millisecond (its nanosleep is load, not synchronisation). Asserted,
 * for each kind:
 *   - a wait with a timeout ends in ETIMEDOUT (never EINTR, never an
 *     object), and not before its deadline (CLOCK_MONOTONIC);
 *   - a wait without limit ends only when an object is given back: a
 *     counter of gives is raised before each one, and no waiter returns
 *     while more waiters have returned than objects were given back; each
 *     gets an object, no two the same (from a reserve: one of the elements
 *     freed; from an object pool any object, as the one put stays in the
 *     putting thread's cache);
 *   - the statistics count every wait and timeout, and the signals did
 *     arrive (the handler counts them). */
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

/* ------------------------------------------------------- the two kinds */

/* What a round needs of a kind: something to wait on, with FOREVER objects
 * out and no more to be had. */
typedef struct kind {
    const char *name;
    void *(*make)(void **taken);                 /* the pool, with taken[0..FOREVER) out */
    threads_wait_fn *wait;                       /* a get that may wait */
    void (*give)(void *pool, void *obj);         /* back into the pool */
    mp_stats (*stats)(const void *pool);
    void (*destroy)(void *pool);                 /* everything is back; checks nothing leaked */
    bool gets_given;                             /* a released waiter gets the very object given back */
} kind;

/* Reserves: elements made at create, then a source that fails for ever.
 * Thread-safe by atomics. */
static struct source {
    atomic_bool fail;
    atomic_size_t live;
} src;

static void *src_alloc(void *arg)
{
    (void)arg;
    if (atomic_load(&src.fail)) {
        errno = ENOMEM;
        return NULL;
    }
    void *e = malloc(32);
    REQUIRE(e != NULL);
    atomic_fetch_add(&src.live, 1);
    return e;
}

static void src_free(void *elem, void *arg)
{
    (void)arg;
    atomic_fetch_sub(&src.live, 1);
    free(elem);
}

static void *reserve_make(void **taken)
{
    atomic_store(&src.fail, false);
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "signalled", .min_reserved = FOREVER,
                                                                 .alloc = src_alloc, .free = src_free });
    REQUIRE(r != NULL);
    atomic_store(&src.fail, true);
    for (int i = 0; i < FOREVER; i++)
        REQUIRE((taken[i] = mp_reserve_alloc(r, 0)) != NULL);
    return r;
}

static void *reserve_wait(void *r, int64_t timeout) { return mp_reserve_alloc(r, timeout); }

static void reserve_give(void *r, void *e) { mp_reserve_free(r, e); }

static mp_stats reserve_stats(const void *r)
{
    mp_stats s;
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    return s;
}

static void reserve_destroy(void *r)
{
    CHECK_EQ(reserve_stats(r).reserve_level, FOREVER);
    mp_reserve_destroy(r);
    CHECK_EQ(atomic_load(&src.live), 0);
}

/* Object pools: FOREVER objects out at max_live FOREVER. */
static void *objpool_make(void **taken)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "signalled", .obj_size = 32,
                                                                 .max_live = FOREVER });
    REQUIRE(p != NULL);
    for (int i = 0; i < FOREVER; i++)
        REQUIRE((taken[i] = mp_objpool_get(p)) != NULL);
    return p;
}

static void *objpool_wait(void *p, int64_t timeout) { return mp_objpool_get_wait(p, timeout); }

static void objpool_give(void *p, void *obj) { mp_objpool_put(p, obj); }

static mp_stats objpool_stats(const void *p)
{
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    return s;
}

static void objpool_destroy(void *p)
{
    CHECK_EQ(objpool_stats(p).objects_in_use, 0);
    mp_objpool_destroy(p);
}

static const kind kinds[] = {
    { "objpool", objpool_make, objpool_wait, objpool_give, objpool_stats, objpool_destroy, false },
    { "reserve", reserve_make, reserve_wait, reserve_give, reserve_stats, reserve_destroy, true },
};

/* ------------------------------------------------------------- signals */

static atomic_size_t deliveries;

static void on_sigusr1(int sig)
{
    (void)sig;
    atomic_fetch_add_explicit(&deliveries, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------- waiters */

typedef struct shared {
    void *pool;
    atomic_size_t given;    /* objects given back for the forever-waiters (raised before the give) */
    atomic_size_t returned; /* forever-waiters that returned */
    atomic_size_t early;    /* forever-waiters that returned with no object given back for them */
    atomic_bool stop;       /* the signaller stops */
    atomic_size_t rounds;   /* signalling rounds so far */
    pthread_t th[WAITERS];
} shared;

/* A waiter that also counts returns against gives (forever-waiters). */
typedef struct sig_waiter {
    waiter w;
    shared *sh;
} sig_waiter;

static void *sig_waiter_main(void *arg)
{
    sig_waiter *sw = arg;
    waiter_call(&sw->w);
    if (sw->w.timeout == MP_WAIT_FOREVER) {
        size_t n = atomic_fetch_add(&sw->sh->returned, 1) + 1;
        if (n > atomic_load(&sw->sh->given))
            atomic_fetch_add(&sw->sh->early, 1);
    }
    atomic_store(&sw->w.done, 1);
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

/* Lets the signaller run n more rounds (load while nothing may happen). */
static void let_signals_run(shared *sh, size_t n)
{
    size_t until = atomic_load(&sh->rounds) + n;
    while (atomic_load(&sh->rounds) < until)
        sched_yield();
}

/* Index of obj in objs[0..n), -1 if absent. */
static int index_of(void *const *objs, int n, const void *obj)
{
    for (int i = 0; i < n; i++)
        if (objs[i] == obj)
            return i;
    return -1;
}

static void round_once(const kind *k, int round)
{
    static shared sh;
    memset(&sh, 0, sizeof sh);
    void *taken[FOREVER];
    sh.pool = k->make(taken);

    /* Timed waiters from 3 to 60 ms, then the forever-waiters. */
    static sig_waiter sw[WAITERS];
    static waiter *w[WAITERS];
    const int64_t ms = 1000 * 1000;
    const int64_t timeouts[TIMED] = { 3 * ms, 15 * ms, 30 * ms, 60 * ms };
    for (int i = 0; i < WAITERS; i++) {
        waiter_init(&sw[i].w, k->wait, sh.pool, i < TIMED ? timeouts[i] : MP_WAIT_FOREVER);
        sw[i].sh = &sh;
        w[i] = &sw[i].w;
    }
    threads_start(sh.th, WAITERS, sig_waiter_main, sw, sizeof *sw);
    pthread_t signaller;
    threads_start(&signaller, 1, signaller_main, &sh, 0);

    /* Every waiter is waiting (or, for the timed ones, has waited). */
    while (k->stats(sh.pool).waits < WAITERS)
        sched_yield();
    /* The timed ones end by their timeouts. */
    for (int i = 0; i < TIMED; i++)
        while (!atomic_load(&w[i]->done))
            sched_yield();
    for (int i = 0; i < TIMED; i++) {
        if (w[i]->got != NULL || w[i]->err != ETIMEDOUT || w[i]->waited < w[i]->timeout) {
            fprintf(stderr, "%s round %d: timed waiter %d (%lld ns) got %p, errno %d (%s), after %lld ns; "
                    "want NULL, ETIMEDOUT, after >= the timeout\n", k->name, round, i, (long long)w[i]->timeout,
                    w[i]->got, w[i]->err, w[i]->err == EINTR ? "EINTR" : "", (long long)w[i]->waited);
            check_failures++;
        }
    }
    /* The forever-waiters are still waiting, signals or not. */
    let_signals_run(&sh, 20);
    for (int i = TIMED; i < WAITERS; i++)
        CHECK_EQ(atomic_load(&w[i]->done), 0);
    mp_stats st = k->stats(sh.pool);
    CHECK_EQ(st.waits, WAITERS);
    CHECK_EQ(st.timeouts, TIMED);
    CHECK_EQ(st.allocs, FOREVER);

    /* Give the objects back one by one, with signals in between: each
     * give releases exactly one waiter. */
    for (int i = 0; i < FOREVER; i++) {
        atomic_fetch_add(&sh.given, 1);
        k->give(sh.pool, taken[i]);
        while (atomic_load(&sh.returned) < (size_t)i + 1)
            sched_yield();
        let_signals_run(&sh, 5);
        CHECK_EQ(atomic_load(&sh.returned), i + 1); /* not two for one give */
    }
    atomic_store(&sh.stop, true);
    threads_join(&signaller, 1);
    threads_join(sh.th, WAITERS);

    CHECK_EQ(atomic_load(&sh.early), 0);
    /* Each forever-waiter got an object (from a reserve, one of those
     * given back), no two the same. */
    void *got[FOREVER];
    for (int i = 0; i < FOREVER; i++) {
        waiter *v = w[TIMED + i];
        got[i] = v->got;
        const char *bad = !v->got                                          ? "nothing"
                          : index_of(got, i, v->got) >= 0                  ? "an object another waiter got too"
                          : k->gets_given && index_of(taken, FOREVER, v->got) < 0 ? "not an element freed"
                                                                           : NULL;
        if (bad) {
            fprintf(stderr, "%s round %d: forever-waiter %d got %p (errno %d): %s\n", k->name, round, TIMED + i,
                    v->got, v->err, bad);
            check_failures++;
        }
    }
    st = k->stats(sh.pool);
    CHECK_EQ(st.waits, WAITERS);
    CHECK_EQ(st.timeouts, TIMED);
    CHECK_EQ(st.allocs, 2 * FOREVER);
    CHECK_EQ(st.frees, FOREVER);
    CHECK_EQ(st.objects_in_use, FOREVER);
    for (int i = 0; i < FOREVER; i++)
        if (got[i])
            k->give(sh.pool, got[i]);
    k->destroy(sh.pool);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls return EINTR */
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (int round = 0; round < ROUNDS; round++)
            round_once(&kinds[k], round);
    size_t n = atomic_load(&deliveries);
    printf("%zu signals delivered\n", n);
    CHECK(n > 0);
    return check_done();
}
