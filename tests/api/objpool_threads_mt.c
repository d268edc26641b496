/* Thread lifecycles around object pools (public header only):
 *   - threads that exit with full caches, of many pools: afterwards the
 *     counters balance, their objects are reused (by this thread and by a
 *     new one) without new memory, trim gives all memory back, and every
 *     object made is destroyed exactly once;
 *   - a thread that exits with objects out: they stay out until put;
 *   - a pool destroyed while other threads have objects of it in their
 *     caches (the threads parked at a barrier), after which the threads use
 *     a new pool and exit: no crash, no leak (ASan, memcheck), dtor == ctor;
 *   - fork() while another thread is busy getting and putting: the child
 *     can create pools and get/put on existing ones, the parent goes on.
 * Synchronisation is by barriers, joins and counters, never by sleeping. */
#define _GNU_SOURCE 1
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under memcheck a forked child cannot end with a normal exit: memcheck's
 * exit-time leak scan would report the other threads' caches, which the
 * child inherits from threads it does not have (nobody can free them).
 * The child then sends its verdict, memcheck's error count included, and
 * kills itself. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK_H 1
#endif
#endif

static bool under_memcheck(void)
{
#ifdef HAVE_MEMCHECK_H
    if (!RUNNING_ON_VALGRIND)
        return false;
#endif
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload_memcheck");
}

static int memcheck_errors(void)
{
#ifdef HAVE_MEMCHECK_H
    return (int)VALGRIND_COUNT_ERRORS;
#else
    return 0;
#endif
}

static mp_stats stats_of(const mp_objpool *p)
{
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    return s;
}

static void check_balanced(const mp_objpool *p, int line)
{
    mp_stats s = stats_of(p);
    if (s.objects_in_use != 0 || s.allocs != s.frees || s.bytes_in_use != 0) {
        fprintf(stderr, "line %d: not balanced: in_use %zu allocs %zu frees %zu bytes_in_use %zu\n", line,
                s.objects_in_use, s.allocs, s.frees, s.bytes_in_use);
        check_failures++;
    }
}
#define BALANCED(p) check_balanced((p), __LINE__)

/* Counting ctor/dtor shared by threads; each object remembers that it is
 * constructed so a double ctor or dtor is seen. */
typedef struct life {
    atomic_size_t ctor, dtor, bad;
} life;

#define LIVE_MAGIC 0x6c697665u

static void life_ctor(void *obj, void *arg)
{
    life *l = arg;
    if (*(unsigned *)obj == LIVE_MAGIC)
        atomic_fetch_add(&l->bad, 1);
    *(unsigned *)obj = LIVE_MAGIC;
    atomic_fetch_add(&l->ctor, 1);
}

static void life_dtor(void *obj, void *arg)
{
    life *l = arg;
    if (*(unsigned *)obj != LIVE_MAGIC)
        atomic_fetch_add(&l->bad, 1);
    *(unsigned *)obj = 0;
    atomic_fetch_add(&l->dtor, 1);
}

/* Objects carry the magic in their first word, a stamp after it. */
typedef struct obj {
    unsigned magic;
    unsigned stamp;
    char pad[56];
} obj;

/* ------------------------------------------------- exit with full caches */

enum { EXIT_THREADS = 4, EXIT_OBJS = 5000, EXIT_POOLS = 40 };

typedef struct exit_arg {
    mp_objpool *big;                /* each thread fills its cache of this one */
    mp_objpool **small;             /* and of these */
    unsigned id;
    pthread_barrier_t *all_out;     /* every thread holds its objects at once */
} exit_arg;

static void *fill_and_exit(void *arg)
{
    exit_arg *a = arg;
    obj **objs = malloc(EXIT_OBJS * sizeof *objs);
    REQUIRE(objs != NULL);
    CHECK_EQ(mp_objpool_get_bulk(a->big, (void **)objs, EXIT_OBJS), EXIT_OBJS);
    for (size_t i = 0; i < EXIT_OBJS; i++) {
        CHECK_EQ(objs[i]->magic, LIVE_MAGIC);
        objs[i]->stamp = a->id;
    }
    pthread_barrier_wait(a->all_out);
    for (size_t i = 0; i < EXIT_OBJS; i++)
        CHECK_EQ(objs[i]->stamp, a->id); /* nobody else was given it */
    /* Back in an order unlike the gets, one by one: caches, depot, slabs. */
    for (size_t i = 0; i < EXIT_OBJS; i += 2)
        mp_objpool_put(a->big, objs[i]);
    for (size_t i = 1; i < EXIT_OBJS; i += 2)
        mp_objpool_put(a->big, objs[i]);
    /* A cache in each of many pools. */
    for (size_t k = 0; k < EXIT_POOLS; k++) {
        void *few[50];
        CHECK_EQ(mp_objpool_get_bulk(a->small[k], few, 50), 50);
        mp_objpool_put_bulk(a->small[k], few, 50);
    }
    free(objs);
    return NULL; /* exits with full caches */
}

static void *get_many_check_mapped(void *arg)
{
    mp_objpool *p = arg;
    size_t mapped = stats_of(p).bytes_mapped;
    void **objs = malloc(EXIT_OBJS * sizeof *objs);
    REQUIRE(objs != NULL);
    CHECK_EQ(mp_objpool_get_bulk(p, objs, EXIT_OBJS), EXIT_OBJS);
    CHECK_EQ(stats_of(p).bytes_mapped, mapped); /* reused, not made */
    for (size_t i = 0; i < EXIT_OBJS; i++)
        CHECK_EQ(((obj *)objs[i])->magic, LIVE_MAGIC);
    mp_objpool_put_bulk(p, objs, EXIT_OBJS);
    free(objs);
    return NULL;
}

static void test_exit_with_full_caches(unsigned flags_max_free)
{
    life l = { 0 };
    mp_objpool *big = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "big", .obj_size = sizeof(obj),
                                                                 .max_free = flags_max_free, .ctor = life_ctor,
                                                                 .dtor = life_dtor, .arg = &l });
    REQUIRE(big != NULL);
    mp_objpool *small[EXIT_POOLS];
    for (size_t k = 0; k < EXIT_POOLS; k++) {
        small[k] = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 16 + k });
        REQUIRE(small[k] != NULL);
    }
    pthread_barrier_t all_out;
    pthread_barrier_init(&all_out, NULL, EXIT_THREADS);
    exit_arg a[EXIT_THREADS];
    for (unsigned i = 0; i < EXIT_THREADS; i++)
        a[i] = (exit_arg){ big, small, i + 1, &all_out };
    threads_run(EXIT_THREADS, fill_and_exit, a, sizeof *a);
    pthread_barrier_destroy(&all_out);

    /* The exited threads' caches went back to their pools. */
    mp_stats s = stats_of(big);
    CHECK_EQ(s.allocs, EXIT_THREADS * EXIT_OBJS);
    CHECK_EQ(s.frees, EXIT_THREADS * EXIT_OBJS);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK(s.bytes_peak >= EXIT_THREADS * EXIT_OBJS * sizeof(obj));
    for (size_t k = 0; k < EXIT_POOLS; k++) {
        mp_stats ss = stats_of(small[k]);
        CHECK_EQ(ss.allocs, EXIT_THREADS * 50);
        BALANCED(small[k]);
    }
    CHECK_EQ(atomic_load(&l.dtor) == 0, flags_max_free == 0);

    /* Their objects are reusable, here and in a new thread, without new
     * memory (unless max_free gave some back). */
    if (!flags_max_free) {
        get_many_check_mapped(big);
        threads_run(1, get_many_check_mapped, big, 0);
    }
    BALANCED(big);

    /* trim gives everything back: nothing is out, no cache holds any. */
    mp_objpool_trim(big);
    s = stats_of(big);
    CHECK_EQ(s.bytes_mapped, 0);
    CHECK_EQ(atomic_load(&l.dtor), atomic_load(&l.ctor));
    for (size_t k = 0; k < EXIT_POOLS; k++) {
        mp_objpool_trim(small[k]);
        CHECK_EQ(stats_of(small[k]).bytes_mapped, 0);
        mp_objpool_destroy(small[k]);
    }
    /* And the pool works after all that. */
    void *o = mp_objpool_get(big);
    CHECK(o != NULL);
    mp_objpool_put(big, o);
    mp_objpool_destroy(big);
    CHECK_EQ(atomic_load(&l.dtor), atomic_load(&l.ctor));
    CHECK_EQ(atomic_load(&l.bad), 0);
}

/* A thread exits with objects still out; another thread puts them. */
typedef struct handoff {
    mp_objpool *pool;
    void *objs[300];
} handoff;

static void *get_and_exit(void *arg)
{
    handoff *h = arg;
    CHECK_EQ(mp_objpool_get_bulk(h->pool, h->objs, 300), 300);
    for (size_t i = 0; i < 100; i++) /* some go back before the exit */
        mp_objpool_put(h->pool, h->objs[i]);
    return NULL;
}

static void test_exit_with_objects_out(void)
{
    handoff h = { 0 };
    h.pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 32 });
    REQUIRE(h.pool != NULL);
    threads_run(1, get_and_exit, &h, 0);
    mp_stats s = stats_of(h.pool);
    CHECK_EQ(s.objects_in_use, 200);
    CHECK_EQ(s.allocs, 300);
    CHECK_EQ(s.frees, 100);
    mp_objpool_put_bulk(h.pool, h.objs + 100, 200);
    BALANCED(h.pool);
    CHECK_EQ(stats_of(h.pool).allocs, 300);
    mp_objpool_destroy(h.pool);
}

/* ------------------------------------------- destroy with cached objects */

enum { PARK_THREADS = 4 };

typedef struct park {
    mp_objpool *doomed;             /* destroyed while this thread is parked */
    mp_objpool **next;              /* made by main while we are parked */
    pthread_barrier_t *parked, *resume;
    unsigned id;
} park;

static void *cache_then_park(void *arg)
{
    park *k = arg;
    void *objs[1000];
    CHECK_EQ(mp_objpool_get_bulk(k->doomed, objs, 1000), 1000);
    for (size_t i = 10; i < 1000; i++) /* 10 stay out at destroy */
        mp_objpool_put(k->doomed, objs[i]);
    pthread_barrier_wait(k->parked);
    /* main destroys `doomed` here */
    pthread_barrier_wait(k->resume);
    /* The detached caches serve a new pool (quite possibly in the same
     * thread-cache slot). */
    mp_objpool *p = *k->next;
    for (int r = 0; r < 3; r++) {
        size_t n = mp_objpool_get_bulk(p, objs, 1000);
        CHECK_EQ(n, 1000);
        for (size_t i = 0; i < n; i++)
            ((obj *)objs[i])->stamp = k->id;
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(((obj *)objs[i])->stamp, k->id);
        for (size_t i = 0; i < n; i++)
            mp_objpool_put(p, objs[i]);
    }
    return NULL; /* exit with a full cache of `next` and a detached one of `doomed` */
}

static void test_destroy_with_cached_objects(void)
{
    life l = { 0 }, l2 = { 0 };
    mp_objpool *doomed = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "doomed", .obj_size = sizeof(obj),
                                                                    .ctor = life_ctor, .dtor = life_dtor, .arg = &l });
    REQUIRE(doomed != NULL);
    mp_objpool *next = NULL;
    pthread_barrier_t parked, resume;
    pthread_barrier_init(&parked, NULL, PARK_THREADS + 1);
    pthread_barrier_init(&resume, NULL, PARK_THREADS + 1);
    pthread_t t[PARK_THREADS];
    park k[PARK_THREADS];
    for (unsigned i = 0; i < PARK_THREADS; i++)
        k[i] = (park){ doomed, &next, &parked, &resume, i + 1 };
    threads_start(t, PARK_THREADS, cache_then_park, k, sizeof *k);
    pthread_barrier_wait(&parked);
    mp_stats s = stats_of(doomed);
    CHECK_EQ(s.objects_in_use, PARK_THREADS * 10);
    CHECK_EQ(s.allocs, PARK_THREADS * 1000);
    mp_objpool_destroy(doomed);
    CHECK_EQ(atomic_load(&l.dtor), atomic_load(&l.ctor)); /* every object made, out, cached or free */
    CHECK(atomic_load(&l.ctor) >= 1000); /* threads may reuse each other's objects through the depot */
    next = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "next", .obj_size = sizeof(obj), .ctor = life_ctor,
                                                       .dtor = life_dtor, .arg = &l2 });
    REQUIRE(next != NULL);
    pthread_barrier_wait(&resume);
    threads_join(t, PARK_THREADS);
    pthread_barrier_destroy(&parked);
    pthread_barrier_destroy(&resume);
    s = stats_of(next);
    CHECK_EQ(s.allocs, PARK_THREADS * 3000);
    BALANCED(next);
    mp_objpool_trim(next);
    CHECK_EQ(stats_of(next).bytes_mapped, 0);
    mp_objpool_destroy(next);
    CHECK_EQ(atomic_load(&l2.dtor), atomic_load(&l2.ctor));
    CHECK_EQ(atomic_load(&l.bad) + atomic_load(&l2.bad), 0);
}

/* ------------------------------------------------------------------ fork */

typedef struct busy {
    mp_objpool *pool, *capped;
    atomic_int stop;
    atomic_size_t rounds;
} busy;

static void *busy_main(void *arg)
{
    busy *b = arg;
    void *objs[300];
    unsigned x = 1;
    while (!atomic_load(&b->stop)) {
        x = x * 1103515245u + 12345u;
        size_t n = mp_objpool_get_bulk(b->pool, objs, 1 + (x >> 16) % 300);
        for (size_t i = 0; i < n; i++)
            ((obj *)objs[i])->stamp = x;
        for (size_t i = 0; i < n; i++)
            REQUIRE(((obj *)objs[i])->stamp == x);
        for (size_t i = 0; i < n / 2; i++)
            mp_objpool_put(b->pool, objs[i]);
        mp_objpool_put_bulk(b->pool, objs + n / 2, n - n / 2);
        void *c = mp_objpool_get(b->capped);
        if (c)
            mp_objpool_put(b->capped, c);
        if ((x >> 8) % 16 == 0) {
            mp_objpool_trim(b->pool);
            /* create/destroy: the tree and thread-cache slot locks too */
            mp_objpool *tmp = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 8 });
            REQUIRE(tmp != NULL);
            void *o = mp_objpool_get(tmp);
            mp_objpool_put(tmp, o);
            mp_objpool_destroy(tmp);
        }
        atomic_fetch_add(&b->rounds, 1);
    }
    return NULL;
}

/* What the child does; returns the number of failed checks. */
static int child_work(busy *b)
{
    int bad = 0;
    mp_stats before;
    if (mp_objpool_stats(b->pool, &before) != 0)
        return 100;
    enum { N = 5000 };
    static void *objs[N];
    size_t n = mp_objpool_get_bulk(b->pool, objs, N); /* grows: slabs, chunks */
    bad += n != N;
    for (size_t i = 0; i < n; i++)
        ((obj *)objs[i])->stamp = (unsigned)i;
    for (size_t i = 0; i < n; i++)
        bad += ((obj *)objs[i])->stamp != (unsigned)i;
    for (size_t i = 0; i < n; i++)
        mp_objpool_put(b->pool, objs[i]);
    mp_objpool_trim(b->pool);
    mp_stats after;
    if (mp_objpool_stats(b->pool, &after) != 0)
        return 100;
    bad += after.objects_in_use != before.objects_in_use;
    bad += after.allocs != before.allocs + N;

    void *c = mp_objpool_get_wait(b->capped, MP_WAIT_FOREVER); /* the cap has room: never waits */
    bad += c == NULL;
    mp_free(c);

    mp_objpool *mine = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "child", .obj_size = 100 });
    if (!mine)
        return bad + 1;
    n = mp_objpool_get_bulk(mine, objs, 1000);
    bad += n != 1000;
    mp_objpool_put_bulk(mine, objs, n);
    mp_stats ms;
    bad += mp_objpool_stats(mine, &ms) != 0 || ms.objects_in_use != 0 || ms.allocs != 1000;
    mp_objpool_destroy(mine);
    return bad;
}

static void test_fork_while_busy(int forks)
{
    busy b = { 0 };
    b.pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "shared", .obj_size = sizeof(obj) });
    b.capped = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "capped", .obj_size = 32, .max_live = 64 });
    REQUIRE(b.pool && b.capped);
    bool memcheck = under_memcheck();
    pthread_t t;
    threads_start(&t, 1, busy_main, &b, 0);
    for (int i = 0; i < forks; i++) {
        /* Fork only while the other thread is in its loop. */
        size_t r = atomic_load(&b.rounds);
        while (atomic_load(&b.rounds) == r)
            sched_yield();
        int verdict[2];
        REQUIRE(pipe(verdict) == 0);
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(verdict[0]);
            alarm(60); /* a child that deadlocked dies instead of hanging the test */
            int errors_before = memcheck_errors();
            int bad = child_work(&b);
            bad += memcheck_errors() - errors_before;
            unsigned char v = (unsigned char)(bad > 100 ? 100 : bad);
            if (write(verdict[1], &v, 1) != 1)
                _exit(101);
            if (memcheck)
                kill(getpid(), SIGKILL);
            _exit(0);
        }
        close(verdict[1]);
        unsigned char v = 255;
        ssize_t got = read(verdict[0], &v, 1);
        close(verdict[0]);
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        bool ended_well = memcheck ? WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
                                   : WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (got != 1 || v != 0 || !ended_well) {
            fprintf(stderr, "fork %d: child verdict %d (%zd bytes), status %#x (%s %d)\n", i, v, got, status,
                    WIFSIGNALED(status) ? "signal" : "exit code",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            check_failures++;
        }
    }
    atomic_store(&b.stop, 1);
    threads_join(&t, 1);
    BALANCED(b.pool);
    BALANCED(b.capped);
    mp_objpool_destroy(b.pool);
    mp_objpool_destroy(b.capped);
}

int main(int argc, char **argv)
{
    /* Forks under memcheck are slow: fewer of them there. */
    int forks = argc > 1 ? atoi(argv[1]) : under_memcheck() ? 10 : 40;
    /* In checked mode (MPOOL_CHECK=1) freed objects wait in a quarantine
     * that trim does not release; these tests assert that trim gives every
     * free byte back, so they run without one unless told otherwise. */
    setenv("MPOOL_QUARANTINE", "0", 0);
    test_exit_with_full_caches(0);
    test_exit_with_full_caches(64);
    test_exit_with_objects_out();
    test_destroy_with_cached_objects();
    test_fork_while_busy(forks);
    return check_done();
}
