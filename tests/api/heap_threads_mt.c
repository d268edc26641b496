/* Thread lifecycles around heaps (public header only):
 *   - threads that exit with full caches of many heaps: afterwards the
 *     counters balance and trim gives (nearly) every byte back;
 *   - a thread that exits with blocks still out: they stay out, whole,
 *     until another thread frees them;
 *   - many short-lived threads, one alloc and free each: nothing piles up
 *     (trim still empties the heap, the counters are exact);
 *   - a heap destroyed while other threads have its blocks in their caches
 *     and out (the threads parked at a barrier; by mp_heap_destroy, and by
 *     the reset of its parent arena), after which the threads use a new
 *     heap and exit: no crash, no leak (ASan, memcheck);
 *   - fork() while another thread is busy allocating and freeing: the child
 *     allocates and frees in the heaps it inherited and the default heap,
 *     creates and destroys a heap of its own, and exits (a watchdog alarm
 *     kills a child that deadlocked); the parent goes on.
 * Synchronisation is by barriers, joins and counters, never by sleeping. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "heap.h"
#include "threads.h"

#include <mpool.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under memcheck a forked child cannot end with a normal exit: the
 * exit-time leak scan would report the busy thread's memory, which the
 * child inherits from a thread it does not have. It sends its verdict,
 * memcheck's error count included, and kills itself. */
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

static mp_heap *make(mp_arena *parent, const char *name)
{
    mp_heap *h = mp_heap_create(parent, &(mp_heap_opts){ .name = name });
    REQUIRE(h != NULL);
    return h;
}

static size_t size_of(uint64_t i) { return 8 + (size_t)(check_mix(i) % 3000); }

/* ------------------------------------------------- exit with full caches */

enum { EXIT_THREADS = 4, EXIT_BLOCKS = 5000, EXIT_HEAPS = 20 };

typedef struct exit_arg {
    mp_heap *big, **small;
    unsigned id;
} exit_arg;

static void *fill_and_exit(void *arg)
{
    exit_arg *a = arg;
    char **p = malloc(EXIT_BLOCKS * sizeof *p);
    REQUIRE(p != NULL);
    for (size_t i = 0; i < EXIT_BLOCKS; i++) {
        REQUIRE((p[i] = mp_heap_alloc(a->big, size_of(i))) != NULL);
        heap_fill(p[i], size_of(i), a->id * EXIT_BLOCKS + i);
    }
    for (size_t i = 0; i < EXIT_BLOCKS; i++)
        CHECK_EQ(heap_check(p[i], size_of(i), a->id * EXIT_BLOCKS + i), SIZE_MAX);
    for (size_t i = 0; i < EXIT_BLOCKS; i += 2)
        mp_free(p[i]);
    for (size_t i = 1; i < EXIT_BLOCKS; i += 2)
        mp_free(p[i]);
    for (size_t k = 0; a->small && k < EXIT_HEAPS; k++) { /* a cache in each of many heaps */
        void *few[50];
        for (size_t i = 0; i < 50; i++)
            REQUIRE((few[i] = mp_heap_alloc(a->small[k], 16 + k * 8)) != NULL);
        for (size_t i = 0; i < 50; i++)
            mp_free(few[i]);
    }
    free(p);
    return NULL; /* exits with full caches */
}

static void test_exit_with_full_caches(void)
{
    mp_heap *big = make(NULL, "big"), *small[EXIT_HEAPS];
    for (size_t k = 0; k < EXIT_HEAPS; k++)
        small[k] = make(NULL, "small");
    exit_arg a[EXIT_THREADS];
    for (unsigned i = 0; i < EXIT_THREADS; i++)
        a[i] = (exit_arg){ big, small, i };
    threads_run(EXIT_THREADS, fill_and_exit, a, sizeof *a);
    mp_stats s = heap_stats(big);
    CHECK_EQ(s.allocs, EXIT_THREADS * EXIT_BLOCKS);
    CHECK_EQ(s.frees, EXIT_THREADS * EXIT_BLOCKS);
    HEAP_CHECK_EMPTY(big);
    HEAP_CHECK_TRIMMED(big);
    for (size_t k = 0; k < EXIT_HEAPS; k++) {
        CHECK_EQ(heap_stats(small[k]).allocs, EXIT_THREADS * 50);
        HEAP_CHECK_EMPTY(small[k]);
        HEAP_CHECK_TRIMMED(small[k]);
        mp_heap_destroy(small[k]);
    }
    /* And the heap works after all that, here and in a new thread (the
     * small heaps are gone). */
    a[0].small = NULL;
    threads_run(1, fill_and_exit, a, sizeof *a);
    HEAP_CHECK_EMPTY(big);
    mp_heap_destroy(big);
}

/* --------------------------------------------- exit with blocks still out */

typedef struct handoff {
    mp_heap *h;
    char *p[300];
} handoff;

static void *alloc_and_exit(void *arg)
{
    handoff *o = arg;
    for (size_t i = 0; i < 300; i++) {
        REQUIRE((o->p[i] = mp_heap_alloc(o->h, size_of(i))) != NULL);
        heap_fill(o->p[i], size_of(i), i);
    }
    for (size_t i = 0; i < 100; i++) /* some go back before the exit */
        mp_free(o->p[i]);
    return NULL;
}

static void test_exit_with_blocks_out(void)
{
    handoff o = { .h = make(NULL, "handoff") };
    threads_run(1, alloc_and_exit, &o, 0);
    mp_stats s = heap_stats(o.h);
    CHECK_EQ(s.objects_in_use, 200);
    CHECK_EQ(s.allocs, 300);
    CHECK_EQ(s.frees, 100);
    for (size_t i = 100; i < 300; i++) {
        CHECK_EQ(heap_check(o.p[i], size_of(i), i), SIZE_MAX);
        mp_free(o.p[i]);
    }
    HEAP_CHECK_EMPTY(o.h);
    HEAP_CHECK_TRIMMED(o.h);
    mp_heap_destroy(o.h);
}

/* ------------------------------------------------------------ churn */

static void *one_pair(void *arg)
{
    void *p = mp_heap_alloc(arg, 100);
    REQUIRE(p != NULL);
    memset(p, 1, 100);
    mp_free(p);
    return NULL;
}

static void test_thread_churn(void)
{
    size_t threads = check_tool_attached() || CHECK_TSAN ? 300 : 3000;
    mp_heap *h = make(NULL, "churn");
    for (size_t i = 0; i < threads; i++)
        threads_run(1, one_pair, h, 0);
    threads_run(1, one_pair, mp_heap_default(), 0);
    mp_stats s = heap_stats(h);
    CHECK_EQ(s.allocs, threads);
    CHECK_EQ(s.frees, threads);
    HEAP_CHECK_EMPTY(h);
    HEAP_CHECK_TRIMMED(h);
    mp_heap_destroy(h);
}

/* ------------------------------------------- destroy with cached blocks */

enum { PARK_THREADS = 4 };

typedef struct park {
    mp_heap *doomed;
    mp_heap **next; /* made by main while the threads are parked */
    pthread_barrier_t *parked, *resume;
    unsigned id;
} park;

static void *cache_then_park(void *arg)
{
    park *k = arg;
    char *p[1000];
    for (size_t i = 0; i < 1000; i++)
        REQUIRE((p[i] = mp_heap_alloc(k->doomed, size_of(i))) != NULL);
    for (size_t i = 10; i < 1000; i++) /* 10 stay out at destroy */
        mp_free(p[i]);
    pthread_barrier_wait(k->parked);
    /* main destroys `doomed` here */
    pthread_barrier_wait(k->resume);
    mp_heap *h = *k->next;
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < 1000; i++) {
            REQUIRE((p[i] = mp_heap_alloc(h, size_of(i))) != NULL);
            heap_fill(p[i], size_of(i), k->id * 1000 + i);
        }
        for (size_t i = 0; i < 1000; i++) {
            CHECK_EQ(heap_check(p[i], size_of(i), k->id * 1000 + i), SIZE_MAX);
            mp_free(p[i]);
        }
    }
    return NULL; /* exit with a full cache of `next`, and one of `doomed` */
}

static void destroy_with_cached(bool by_arena)
{
    mp_arena *a = by_arena ? mp_arena_create(NULL, &(mp_arena_opts){ .name = "owner" }) : NULL;
    mp_heap *doomed = make(a, "doomed"), *next = NULL;
    pthread_barrier_t parked, resume;
    REQUIRE(pthread_barrier_init(&parked, NULL, PARK_THREADS + 1) == 0);
    REQUIRE(pthread_barrier_init(&resume, NULL, PARK_THREADS + 1) == 0);
    pthread_t t[PARK_THREADS];
    park k[PARK_THREADS];
    for (unsigned i = 0; i < PARK_THREADS; i++)
        k[i] = (park){ doomed, &next, &parked, &resume, i };
    threads_start(t, PARK_THREADS, cache_then_park, k, sizeof *k);
    pthread_barrier_wait(&parked);
    mp_stats s = heap_stats(doomed);
    CHECK_EQ(s.objects_in_use, PARK_THREADS * 10);
    CHECK_EQ(s.allocs, PARK_THREADS * 1000);
    if (by_arena)
        mp_arena_reset(a);
    else
        mp_heap_destroy(doomed);
    next = make(a, "next");
    pthread_barrier_wait(&resume);
    threads_join(t, PARK_THREADS);
    s = heap_stats(next);
    CHECK_EQ(s.allocs, PARK_THREADS * 3000);
    HEAP_CHECK_EMPTY(next);
    HEAP_CHECK_TRIMMED(next);
    if (by_arena)
        mp_arena_destroy(a);
    else
        mp_heap_destroy(next);
    pthread_barrier_destroy(&parked);
    pthread_barrier_destroy(&resume);
}

static void test_destroy_with_cached(void) { destroy_with_cached(false); }
static void test_arena_reset_with_cached(void) { destroy_with_cached(true); }

/* ------------------------------------------------------------------ fork */

typedef struct busy {
    mp_heap *h;
    atomic_int stop;
    atomic_size_t rounds;
} busy;

static void *busy_main(void *arg)
{
    busy *b = arg;
    char *p[200];
    uint64_t x = 1;
    while (!atomic_load(&b->stop)) {
        x = check_mix(x);
        size_t n = 1 + x % 200;
        for (size_t i = 0; i < n; i++) {
            mp_heap *h = i % 3 ? b->h : mp_heap_default();
            size_t size = i == 7 && x % 8 == 0 ? 300 * KiB : size_of(x + i);
            REQUIRE((p[i] = mp_heap_alloc(h, size)) != NULL);
            p[i][0] = (char)i;
        }
        for (size_t i = 0; i < n; i++) {
            REQUIRE(p[i][0] == (char)i);
            mp_free(p[i]);
        }
        if (x % 16 == 0) {
            mp_heap_trim(b->h);
            mp_heap *tmp = make(NULL, "tmp"); /* the tree's locks too */
            void *q = mp_heap_alloc(tmp, 10);
            REQUIRE(q != NULL);
            mp_free(q);
            mp_heap_destroy(tmp);
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
    if (mp_heap_stats(b->h, &before) != 0)
        return 100;
    enum { N = 3000 };
    static char *p[N];
    for (size_t i = 0; i < N; i++) {
        p[i] = mp_heap_alloc(i % 2 ? b->h : mp_heap_default(), size_of(i));
        if (!p[i])
            return 101;
        heap_fill(p[i], size_of(i), i);
    }
    for (size_t i = 0; i < N; i++) {
        bad += heap_check(p[i], size_of(i), i) != SIZE_MAX;
        mp_free(p[i]);
    }
    char *big = mp_heap_alloc(b->h, 3 * MiB);
    bad += big == NULL;
    mp_free(big);
    mp_stats after;
    if (mp_heap_stats(b->h, &after) != 0)
        return bad + 1;
    bad += after.allocs != before.allocs + N / 2 + 1;
    bad += after.frees != before.frees + N / 2 + 1;
    mp_heap *mine = make(NULL, "child");
    for (size_t i = 0; i < 1000; i++)
        if (!(p[i] = mp_heap_alloc(mine, size_of(i))))
            return bad + 1;
    for (size_t i = 0; i < 1000; i++)
        mp_free(p[i]);
    mp_stats ms;
    bad += mp_heap_stats(mine, &ms) != 0 || ms.objects_in_use != 0 || ms.allocs != 1000;
    mp_heap_destroy(mine);
    return bad;
}

static void test_fork_while_busy(void)
{
    int forks = under_memcheck() ? 10 : 40;
    busy b = { .h = make(NULL, "shared") };
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
    HEAP_CHECK_EMPTY(b.h);
    mp_heap_destroy(b.h);
}

static const check_case cases[] = {
    CHECK_CASE(exit_with_full_caches, test_exit_with_full_caches),
    CHECK_CASE(exit_with_blocks_out, test_exit_with_blocks_out),
    CHECK_CASE(thread_churn, test_thread_churn),
    CHECK_CASE(destroy_with_cached, test_destroy_with_cached),
    CHECK_CASE(arena_reset_with_cached, test_arena_reset_with_cached),
    CHECK_CASE(fork_while_busy, test_fork_while_busy),
};

int main(int argc, char **argv)
{
    setenv("MPOOL_QUARANTINE", "0", 0); /* trim must give every free byte back */
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
