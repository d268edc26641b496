/* Waiting in mp_reserve_alloc across threads (public header only). No sleep
 * is used to synchronise: a test knows a thread is blocked in
 * mp_reserve_alloc when the reserve's `waits` counter says so (an alloc
 * counts itself once, before it waits), and with the source failing and the
 * reserve empty it cannot return before a free. Timeouts appear only where
 * the contract is a timeout; no assertion depends on how long anything
 * takes, except that a wait that timed out lasted at least its timeout.
 *
 *   - a waiter (MP_WAIT_FOREVER, a 10 s timeout, INT64_MAX) is woken by a
 *     free from main or from another thread, and gets that element;
 *   - k frees wake k of n waiters, no more;
 *   - a positive wait that runs out: NULL + ETIMEDOUT, after the deadline;
 *   - destroy while a thread waits is misuse: reported, nothing done, the
 *     reserve still works and a free releases the waiter; its parent
 *     arena's destroy goes ahead and leaves it a root;
 *   - a fork() child does not count the parent's waiters: it may destroy;
 *   - a source that recovers while a thread waits (no free at all): the
 *     waiter gets a new element from the source;
 *   - threads contending for a small reserve over a failing source never
 *     hold more than min_reserved elements between them, and finish. */
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

/* ------------------------------------------------------ counting source */

enum { SRC_MAX = 64 };

/* Thread-safe: counters and the list of elements out under a lock; `fail`
 * (every call fails while set) is atomic so a test can flip it while a
 * waiter retries the source. */
typedef struct source {
    pthread_mutex_t lock;
    size_t calls, frees, live, bad_frees; /* under lock */
    void *out[SRC_MAX];                   /* under lock */
    atomic_bool fail;
} source;

static void src_init(source *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->fail, false);
}

static void *src_alloc(void *arg)
{
    source *s = arg;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    void *e = NULL;
    if (!atomic_load(&s->fail) && s->live < SRC_MAX) {
        e = malloc(64);
        REQUIRE(e != NULL);
        s->out[s->live++] = e;
    }
    pthread_mutex_unlock(&s->lock);
    if (!e)
        errno = ENOMEM;
    return e;
}

static void src_free(void *elem, void *arg)
{
    source *s = arg;
    pthread_mutex_lock(&s->lock);
    size_t i = 0;
    while (i < s->live && s->out[i] != elem)
        i++;
    if (i < s->live) {
        s->out[i] = s->out[--s->live];
        s->frees++;
        free(elem);
    } else {
        fprintf(stderr, "source: give-back of %p, which it does not have out\n", elem);
        s->bad_frees++;
    }
    pthread_mutex_unlock(&s->lock);
}

static size_t src_live(source *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->live;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static size_t src_bad(source *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->bad_frees;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static bool src_has(source *s, const void *e)
{
    pthread_mutex_lock(&s->lock);
    bool found = false;
    for (size_t i = 0; i < s->live && !found; i++)
        found = s->out[i] == e;
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* A reserve of min elements over s, emptied: the source fails and all min
 * elements are out, in e[0..min). */
static mp_reserve *make_empty(const char *name, size_t min, source *s, void **e)
{
    src_init(s);
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = name, .min_reserved = min,
                                                                .alloc = src_alloc, .free = src_free, .src = s });
    REQUIRE(r != NULL);
    atomic_store(&s->fail, true);
    for (size_t i = 0; i < min; i++)
        REQUIRE((e[i] = mp_reserve_alloc(r, 0)) != NULL);
    return r;
}

/* ------------------------------------------------------------- helpers */

static mp_stats stats_of(const mp_reserve *r)
{
    mp_stats s;
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    return s;
}

/* Spins (yielding) until the reserve has counted `waits` waiting allocs. */
static void wait_for_waits(const mp_reserve *r, size_t waits)
{
    while (stats_of(r).waits < waits)
        sched_yield();
}

/* ------------------------------------------------------------ a waiter */

static void *alloc_wait(void *r, int64_t timeout) { return mp_reserve_alloc(r, timeout); }

static void start_waiter(waiter *w, mp_reserve *r, int64_t timeout) { waiter_start(w, alloc_wait, r, timeout); }

typedef struct release {
    mp_reserve *r;
    void *elem;
} release;

static void *free_from_thread(void *arg)
{
    release *x = arg;
    mp_reserve_free(x->r, x->elem);
    return NULL;
}

/* ------------------------------------------------------ woken by a free */

static void test_waiter_woken(int64_t timeout, bool other_thread)
{
    enum { MIN = 3 };
    source s;
    void *e[MIN];
    mp_reserve *r = make_empty("woken", MIN, &s, e);
    waiter w;
    start_waiter(&w, r, timeout);
    wait_for_waits(r, 1);
    /* It is waiting: the reserve is empty and the source fails. */
    CHECK_EQ(atomic_load(&w.done), 0);
    if (other_thread) {
        release x = { r, e[1] };
        threads_run(1, free_from_thread, &x, 0);
    } else {
        mp_reserve_free(r, e[1]);
    }
    threads_join(&w.th, 1);
    if (w.got != e[1])
        fprintf(stderr, "waiter (timeout %lld, %s) got %p, errno %d; want %p\n", (long long)timeout,
                other_thread ? "freed by another thread" : "freed by main", w.got, w.err, e[1]);
    CHECK_PTR_EQ(w.got, e[1]); /* the element freed for it: nothing else is there */
    mp_stats st = stats_of(r);
    CHECK_EQ(st.allocs, MIN + 1);
    CHECK_EQ(st.frees, 1);
    CHECK_EQ(st.objects_in_use, MIN);
    CHECK_EQ(st.reserve_used, MIN + 1);
    CHECK_EQ(st.waits, 1);
    CHECK_EQ(st.timeouts, 0);
    CHECK_EQ(st.reserve_level, 0);
    CHECK(st.failures >= MIN + 1); /* one per alloc, and maybe retries while waiting */
    errno = 0;
    CHECK(mp_reserve_alloc(r, 0) == NULL); /* still empty */
    CHECK_EQ(errno, ENOMEM);
    for (size_t i = 0; i < MIN; i++)
        mp_reserve_free(r, e[i]);
    CHECK_EQ(stats_of(r).reserve_level, MIN);
    mp_reserve_destroy(r);
    CHECK_EQ(src_live(&s), 0);
    CHECK_EQ(src_bad(&s), 0);
}

/* ------------------------------------------------ k frees wake k waiters */

static void test_k_of_n(void)
{
    enum { MIN = 4, WAITERS = 3 };
    source s;
    void *e[MIN];
    mp_reserve *r = make_empty("k-of-n", MIN, &s, e);
    waiter w[WAITERS];
    const int64_t timeouts[WAITERS] = { MP_WAIT_FOREVER, INT64_MAX, (int64_t)3600 * 1000000000 };
    for (int i = 0; i < WAITERS; i++)
        start_waiter(&w[i], r, timeouts[i]);
    wait_for_waits(r, WAITERS);
    mp_reserve_free(r, e[0]);
    mp_reserve_free(r, e[1]);
    /* Exactly two get through: wait until two are done... */
    int done;
    while ((done = atomic_load(&w[0].done) + atomic_load(&w[1].done) + atomic_load(&w[2].done)) < 2)
        sched_yield();
    /* ...and the third cannot be: the reserve is empty again. */
    CHECK_EQ(done, 2);
    mp_stats st = stats_of(r);
    CHECK_EQ(st.reserve_level, 0);
    CHECK_EQ(st.objects_in_use, MIN);
    int blocked = -1;
    for (int i = 0; i < WAITERS; i++) {
        if (!atomic_load(&w[i].done)) {
            blocked = i;
            continue;
        }
        threads_join(&w[i].th, 1);
        CHECK(w[i].got == e[0] || w[i].got == e[1]);
    }
    REQUIRE(blocked >= 0);
    int winner = blocked == 0 ? 1 : 0;
    CHECK(w[winner].got != w[3 - blocked - winner].got);
    /* A winner gives its element back: the last waiter gets it. */
    void *back = w[winner].got;
    mp_reserve_free(r, back);
    threads_join(&w[blocked].th, 1);
    CHECK_PTR_EQ(w[blocked].got, back);
    st = stats_of(r);
    CHECK_EQ(st.waits, WAITERS);
    CHECK_EQ(st.timeouts, 0);
    CHECK_EQ(st.allocs, MIN + WAITERS);
    CHECK_EQ(st.reserve_used, MIN + WAITERS);
    for (int i = 0; i < WAITERS; i++)
        if (i != winner)
            mp_reserve_free(r, w[i].got);
    for (int i = 2; i < MIN; i++)
        mp_reserve_free(r, e[i]);
    st = stats_of(r);
    CHECK_EQ(st.objects_in_use, 0);
    CHECK_EQ(st.reserve_level, MIN);
    mp_reserve_destroy(r);
    CHECK_EQ(src_live(&s), 0);
    CHECK_EQ(src_bad(&s), 0);
}

/* ---------------------------------------------------------- timing out */

static void test_timeout(void)
{
    enum { MIN = 2 };
    source s;
    void *e[MIN];
    mp_reserve *r = make_empty("timeout", MIN, &s, e);
    const int64_t timeout = 5 * 1000 * 1000; /* 5 ms, in another thread */
    waiter w;
    start_waiter(&w, r, timeout);
    threads_join(&w.th, 1);
    CHECK(w.got == NULL);
    CHECK_EQ(w.err, ETIMEDOUT);
    if (w.waited < timeout) {
        fprintf(stderr, "a %lld ns wait returned after %lld ns\n", (long long)timeout, (long long)w.waited);
        check_failures++;
    }
    mp_stats st = stats_of(r);
    CHECK_EQ(st.waits, 1);
    CHECK_EQ(st.timeouts, 1);
    CHECK_EQ(st.allocs, MIN);
    CHECK_EQ(st.reserve_level, 0);
    /* The timed-out wait took nothing: after the frees, the reserve is full. */
    for (size_t i = 0; i < MIN; i++)
        mp_reserve_free(r, e[i]);
    CHECK_EQ(stats_of(r).reserve_level, MIN);
    mp_reserve_destroy(r);
    CHECK_EQ(src_live(&s), 0);
}

/* ------------------------------------------------- destroy while waiting */

static atomic_int misuse_calls;
static char misuse_msg[512];

static void record_misuse(const char *msg, const void *ptr, void *arg)
{
    (void)ptr;
    (void)arg;
    atomic_fetch_add(&misuse_calls, 1);
    snprintf(misuse_msg, sizeof misuse_msg, "%s", msg ? msg : "(null)");
}

/* by_parent: the destroy is the reserve's parent arena's, which goes
 * ahead; the reserve, refusing, must stay live and visible, as a root. */
static void test_destroy_while_waiting(bool by_parent)
{
    enum { MIN = 2 };
    source s;
    void *e[MIN];
    atomic_store(&misuse_calls, 0);
    mp_reserve *r = make_empty("busy", MIN, &s, e);
    mp_arena *parent = by_parent ? mp_arena_create(NULL, &(mp_arena_opts){ .name = "parent" }) : NULL;
    REQUIRE(!by_parent || (parent && mp_reserve_move(r, parent) == 0));
    waiter w;
    start_waiter(&w, r, MP_WAIT_FOREVER);
    wait_for_waits(r, 1);
    mp_set_error_handler(record_misuse, NULL);
    if (by_parent)
        mp_arena_destroy(parent);
    else
        mp_reserve_destroy(r); /* misuse: reported, and nothing done */
    mp_set_error_handler(NULL, NULL);
    CHECK(report_has_root("reserve busy"));
    CHECK_EQ(atomic_load(&misuse_calls), 1);
    CHECK(strstr(misuse_msg, "reserve") != NULL);
    CHECK(strstr(misuse_msg, "busy") != NULL);
    if (!strstr(misuse_msg, "reserve") || !strstr(misuse_msg, "busy"))
        fprintf(stderr, "destroy while waiting: message \"%s\"\n", misuse_msg);
    CHECK_EQ(atomic_load(&w.done), 0);
    /* The reserve is intact and works. */
    mp_stats st = stats_of(r);
    CHECK_EQ(st.objects_in_use, MIN);
    CHECK_EQ(st.reserve_min, MIN);
    CHECK_EQ(st.reserve_level, 0);
    CHECK_EQ(st.waits, 1);
    CHECK_EQ(src_live(&s), MIN);
    /* A free releases the waiter. */
    mp_reserve_free(r, e[0]);
    threads_join(&w.th, 1);
    CHECK_PTR_EQ(w.got, e[0]);
    mp_reserve_free(r, w.got);
    mp_reserve_free(r, e[1]);
    st = stats_of(r);
    CHECK_EQ(st.objects_in_use, 0);
    CHECK_EQ(st.reserve_level, MIN);
    mp_reserve_destroy(r); /* now it may go */
    CHECK_EQ(atomic_load(&misuse_calls), 1);
    CHECK_EQ(src_live(&s), 0);
    CHECK_EQ(src_bad(&s), 0);
}

/* fork() while a thread waits in mp_reserve_alloc: that thread does not
 * exist in the child, which may destroy the reserve (the waiter was counted
 * for good, so the destroy was refused as misuse, and the condition
 * variable it slept on would have blocked it). The reserve is empty, so the
 * child's destroy gives nothing to the source (whose lock the parent's
 * waiter may have held at the fork). */
static mp_reserve *forked_reserve;

static void destroy_in_child(void) { mp_reserve_destroy(forked_reserve); }

static void test_fork_while_waiting(void)
{
    enum { MIN = 2 };
    source s;
    void *e[MIN];
    mp_reserve *r = forked_reserve = make_empty("forked", MIN, &s, e);
    waiter w;
    start_waiter(&w, r, MP_WAIT_FOREVER);
    wait_for_waits(r, 1);
    CHECK(child_runs_clean(destroy_in_child));
    /* The parent's waiter is still there, and a free releases it. */
    CHECK_EQ(atomic_load(&w.done), 0);
    mp_reserve_free(r, e[0]);
    threads_join(&w.th, 1);
    CHECK_PTR_EQ(w.got, e[0]);
    mp_reserve_free(r, w.got);
    mp_reserve_free(r, e[1]);
    mp_reserve_destroy(r);
    CHECK_EQ(src_live(&s), 0);
    CHECK_EQ(src_bad(&s), 0);
}

/* ------------------------------------------------ the source recovers */

static void test_source_recovers(int64_t timeout)
{
    enum { MIN = 2 };
    source s;
    void *e[MIN];
    mp_reserve *r = make_empty("recover", MIN, &s, e);
    waiter w;
    start_waiter(&w, r, timeout);
    wait_for_waits(r, 1);
    CHECK_EQ(atomic_load(&w.done), 0);
    atomic_store(&s.fail, false); /* no free: only a retry of the source can end the wait */
    threads_join(&w.th, 1);
    if (!w.got)
        fprintf(stderr, "waiter (timeout %lld) got NULL, errno %d, after the source recovered\n",
                (long long)timeout, w.err);
    CHECK(w.got != NULL);
    CHECK(w.got != e[0] && w.got != e[1]);
    CHECK(src_has(&s, w.got)); /* a new element from the source */
    CHECK_EQ(src_live(&s), MIN + 1);
    mp_stats st = stats_of(r);
    CHECK_EQ(st.allocs, MIN + 1);
    CHECK_EQ(st.reserve_used, MIN); /* the last one did not come from the reserve */
    CHECK_EQ(st.reserve_level, 0);
    CHECK_EQ(st.waits, 1);
    CHECK_EQ(st.timeouts, 0);
    CHECK(st.failures >= MIN + 1);
    mp_reserve_free(r, w.got); /* refills the reserve */
    mp_reserve_free(r, e[0]);
    mp_reserve_free(r, e[1]); /* full: to the source */
    st = stats_of(r);
    CHECK_EQ(st.reserve_level, MIN);
    CHECK_EQ(st.objects_in_use, 0);
    mp_reserve_destroy(r);
    CHECK_EQ(src_live(&s), 0);
    CHECK_EQ(src_bad(&s), 0);
}

/* ------------------------------------------------------- contention */

enum { CONTEND_THREADS = 6, CONTEND_MIN = 3, CONTEND_ITERS = 3000 };

static void *contend_main(void *arg)
{
    contender *me = arg;
    mp_reserve *r = me->supply;
    unsigned x = me->seed;
    for (int i = 0; i < CONTEND_ITERS; i++) {
        x = x * 1103515245u + 12345u;
        void *e;
        errno = 0;
        switch ((x >> 16) % 3) {
        case 0: /* wait without limit */
            e = mp_reserve_alloc(r, MP_WAIT_FOREVER);
            REQUIRE(e != NULL);
            break;
        case 1: /* a short wait: an element or ETIMEDOUT */
            e = mp_reserve_alloc(r, 20000);
            REQUIRE(e != NULL || errno == ETIMEDOUT);
            break;
        default: /* no wait: an element or ENOMEM */
            e = mp_reserve_alloc(r, 0);
            REQUIRE(e != NULL || errno == ENOMEM);
            break;
        }
        if (!e)
            continue;
        contention_hold(me, &e, 1, x);
        mp_reserve_free(r, e);
    }
    return NULL;
}

static void test_contention(void)
{
    source s;
    src_init(&s);
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "contend", .min_reserved = CONTEND_MIN,
                                                                .alloc = src_alloc, .free = src_free, .src = &s });
    REQUIRE(r != NULL);
    atomic_store(&s.fail, true); /* only the reserve's elements circulate */
    contention c = { .cap = CONTEND_MIN };
    contention_run(&c, CONTEND_THREADS, contend_main, r);
    CHECK_EQ(atomic_load(&c.over), 0);
    mp_stats st = stats_of(r);
    CHECK_EQ(st.objects_in_use, 0);
    CHECK_EQ(st.allocs, st.frees);
    CHECK_EQ(st.reserve_used, st.allocs);
    CHECK_EQ(st.reserve_level, CONTEND_MIN);
    CHECK(st.timeouts <= st.waits);
    CHECK_EQ(src_live(&s), CONTEND_MIN); /* nothing lost, nothing made */
    /* Every element is there again, and no more. */
    void *e[CONTEND_MIN];
    for (int i = 0; i < CONTEND_MIN; i++)
        CHECK((e[i] = mp_reserve_alloc(r, 0)) != NULL);
    errno = 0;
    CHECK(mp_reserve_alloc(r, 0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    for (int i = 0; i < CONTEND_MIN; i++)
        mp_reserve_free(r, e[i]);
    mp_reserve_destroy(r);
    CHECK_EQ(src_live(&s), 0);
    CHECK_EQ(src_bad(&s), 0);
}

int main(void)
{
    test_waiter_woken(MP_WAIT_FOREVER, false);
    test_waiter_woken(MP_WAIT_FOREVER, true);
    test_waiter_woken((int64_t)10 * 1000000000, false); /* a long positive wait, cut short by the free */
    test_waiter_woken((int64_t)10 * 1000000000, true);
    test_waiter_woken(INT64_MAX, false);
    test_k_of_n();
    test_timeout();
    test_destroy_while_waiting(false);
    test_destroy_while_waiting(true);
    test_fork_while_waiting();
    test_source_recovers(MP_WAIT_FOREVER);
    test_source_recovers((int64_t)3600 * 1000000000);
    test_contention();
    return check_done();
}
