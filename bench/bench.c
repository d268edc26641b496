/*
 * bench.c - the harness behind bench.h: argument parsing, clock, RSS probes,
 * the PRNG and the result lines bench/run parses. Linked statically into every
 * benchmark program (target mpbench_harness).
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s w1|w2|w3|w4|w5|w1h|w3h|w5h|w6 IMPL [-n N] [-r ROUNDS]   (or %s --list)\n", prog,
            prog);
    exit(2);
}

static const char *const heap_workloads[] = { "w1h", "w3h", "w5h", "w6" };

int bench_heap_workload(const bench_opts *o)
{
    for (size_t i = 0; i < sizeof heap_workloads / sizeof heap_workloads[0]; i++)
        if (strcmp(o->workload, heap_workloads[i]) == 0)
            return 1;
    return 0;
}

static long parse_count(const char *prog, const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0)
        usage(prog);
    return v;
}

void bench_parse(int argc, char **argv, bench_opts *o)
{
    const char *prog = argc > 0 ? argv[0] : "bench";
    memset(o, 0, sizeof *o);
    if (argc < 3)
        usage(prog);
    const char *w = argv[1];
    o->workload = w;
    if ((strlen(w) != 2 || w[0] != 'w' || w[1] < '1' || w[1] > '5') && !bench_heap_workload(o))
        usage(prog);
    o->impl = argv[2];
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            o->n = parse_count(prog, argv[++i]);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
            long r = parse_count(prog, argv[++i]);
            if (r > 1000000)
                usage(prog);
            o->rounds = (int)r;
        } else
            usage(prog);
    }
}

static void args(int argc, char **argv, const char *const *impls, size_t n, bench_opts *o, int heaps)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            puts(impls[i]);
        exit(0);
    }
    bench_parse(argc, argv, o);
    for (size_t i = 0; i < n; i++)
        if (strcmp(o->impl, impls[i]) == 0) {
            if (!heaps && bench_heap_workload(o))
                bench_skip(o, "a heap workload: malloc-like allocation of any size, freed one by one (run by "
                              "mpbench's malloc, mpool-heap and mpool-default)");
            return;
        }
    fprintf(stderr, "%s: unknown impl '%s' (see --list)\n", argv[0], o->impl);
    exit(2);
}

void bench_args(int argc, char **argv, const char *const *impls, size_t n, bench_opts *o)
{
    args(argc, argv, impls, n, o, 0);
}

void bench_args_heaps(int argc, char **argv, const char *const *impls, size_t n, bench_opts *o)
{
    args(argc, argv, impls, n, o, 1);
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *bench_array(const bench_opts *o, size_t size)
{
    size = (size + 63) / 64 * 64;
    void *p = aligned_alloc(64, size);
    if (p == NULL) {
        fprintf(stderr, "%s %s: out of memory for the benchmark's own arrays\n", o->workload, o->impl);
        exit(1);
    }
    memset(p, 0, size);
    return p;
}

long bench_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f == NULL)
        return -1;
    int got = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    if (got != 2)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

long bench_peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss; /* kilobytes on Linux */
}

/* splitmix64: one add and a mix; good enough statistics, trivially fast. */
uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void bench_touch(void *p)
{
    *(volatile unsigned char *)p = 1;
}

void bench_yield(void)
{
    sched_yield();
}

void bench_result(const bench_opts *o, long ops, uint64_t elapsed_ns, const char *extra)
{
    double per = ops > 0 ? (double)elapsed_ns / (double)ops : 0.0;
    printf("RESULT workload=%s impl=%s ops=%ld ns_per_op=%.3f peak_rss_kb=%ld%s%s\n", o->workload,
           o->impl, ops, per, bench_peak_rss_kb(), extra != NULL ? " " : "", extra != NULL ? extra : "");
    fflush(stdout);
}

void bench_round(const bench_opts *o, int round, long rss_kb, size_t live_bytes)
{
    printf("ROUND workload=%s impl=%s round=%d rss_kb=%ld live_bytes=%zu\n", o->workload, o->impl, round,
           rss_kb, live_bytes);
    fflush(stdout);
}

void bench_skip(const bench_opts *o, const char *reason)
{
    printf("SKIP impl=%s workload=%s reason=%s\n", o->impl, o->workload, reason);
    fflush(stdout);
    exit(0);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL) {
        fprintf(stderr, "bench: out of memory (%zu bytes for the harness)\n", size);
        exit(1);
    }
    return p;
}

uint32_t *bench_perm(size_t n)
{
    uint32_t *perm = xmalloc((n ? n : 1) * sizeof *perm);
    uint64_t st = BENCH_SEED;
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(bench_rand(&st) % i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    return perm;
}

const uint16_t *bench_w3_sizes(void)
{
    static uint16_t *sizes;
    if (sizes == NULL) {
        uint64_t st = BENCH_SEED;
        sizes = xmalloc(BENCH_W3_TABLE * sizeof *sizes);
        for (size_t i = 0; i < BENCH_W3_TABLE; i++)
            sizes[i] = (uint16_t)bench_rand_size(&st, BENCH_W3_MIN, BENCH_W3_MAX);
    }
    return sizes;
}

/* One W5 object: where it is and the size asked for. */
typedef struct w5_obj {
    void *p;
    size_t size;
} w5_obj;

void bench_w5(const bench_opts *o, bench_alloc_fn *alloc, bench_free_fn *free_fn, void *ctx,
              const char *note)
{
    size_t n = (size_t)(o->n ? o->n : BENCH_W5_N);
    int rounds = o->rounds ? o->rounds : BENCH_W5_ROUNDS;
    size_t nfree = n / 10 * 9 + (n % 10) * 9 / 10; /* exactly floor(0.9 n) */
    size_t keep = n - nfree;
    w5_obj *batch = xmalloc(n * sizeof *batch);
    w5_obj *live = xmalloc(((size_t)rounds * keep + 1) * sizeof *live);
    /* Fault the harness's own arrays in now, so that every implementation's
     * RSS carries the same baseline and no clock time goes to them. */
    memset(batch, 0, n * sizeof *batch);
    memset(live, 0, ((size_t)rounds * keep + 1) * sizeof *live);

    uint64_t st = BENCH_SEED;
    size_t nlive = 0, live_bytes = 0;
    long rss = 0;
    uint64_t elapsed = 0;
    for (int r = 1; r <= rounds; r++) {
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++) {
            size_t size = bench_rand_size(&st, BENCH_W5_MIN, BENCH_W5_MAX);
            void *p = alloc(ctx, size);
            if (p == NULL) {
                fprintf(stderr, "bench: w5 %s: allocation of %zu bytes failed (round %d)\n", o->impl,
                        size, r);
                exit(1);
            }
            bench_touch(p);
            batch[i] = (w5_obj){ p, size };
        }
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)(bench_rand(&st) % i);
            w5_obj t = batch[i - 1];
            batch[i - 1] = batch[j];
            batch[j] = t;
        }
        for (size_t i = 0; i < nfree; i++)
            free_fn(ctx, batch[i].p, batch[i].size);
        for (size_t i = nfree; i < n; i++) {
            if (live_bytes < BENCH_W5_LIVE_CAP) {
                live[nlive++] = batch[i];
                live_bytes += batch[i].size;
            } else
                free_fn(ctx, batch[i].p, batch[i].size);
        }
        elapsed += bench_now_ns() - t0;
        rss = bench_rss_kb();
        bench_round(o, r, rss, live_bytes);
    }
    char extra[256];
    snprintf(extra, sizeof extra, "final_rss_kb=%ld live_bytes=%zu rss_per_live=%.3f%s%s", rss,
             live_bytes, live_bytes ? (double)rss * 1024.0 / (double)live_bytes : 0.0,
             note != NULL ? " " : "", note != NULL ? note : "");
    bench_result(o, (long)n * rounds, elapsed, extra);
    for (size_t i = 0; i < nlive; i++)
        free_fn(ctx, live[i].p, live[i].size);
    free(batch);
    free(live);
}

/* ------------------------------------------------------------------ W6 */

typedef struct w6_side {
    bench_alloc_fn *alloc;
    bench_free_fn *free_fn;
    void *ctx;
    const bench_opts *o;
    long n;               /* replacements */
    uint64_t seed;
    void **win;           /* BENCH_W6_WINDOW live blocks */
    bench_ring *out, *in; /* to the other thread, from it */
    _Atomic long *sent_mine, *sent_other; /* blocks passed, published when done; -1 before */
    pthread_barrier_t *start, *done;
} w6_side;

static void *w6_alloc(const w6_side *s, uint64_t r)
{
    size_t size = BENCH_W6_MIN + (size_t)(r % (BENCH_W6_MAX - BENCH_W6_MIN + 1));
    void *p = s->alloc(s->ctx, size);
    if (p == NULL) {
        fprintf(stderr, "bench: w6 %s: allocation of %zu bytes failed\n", s->o->impl, size);
        exit(1);
    }
    bench_touch(p);
    return p;
}

/* Frees what the other thread passed: at most max, or all there is (max 0). */
static long w6_drain(const w6_side *s, long max)
{
    long got = 0;
    void *p;
    while ((max == 0 || got < max) && (p = bench_ring_try_pop(s->in)) != NULL) {
        s->free_fn(s->ctx, p, 0);
        got++;
    }
    return got;
}

static void *w6_thread(void *arg)
{
    w6_side *s = arg;
    uint64_t st = s->seed;
    for (size_t i = 0; i < BENCH_W6_WINDOW; i++)
        s->win[i] = w6_alloc(s, bench_rand(&st));
    pthread_barrier_wait(s->start);
    long sent = 0, received = 0;
    for (long i = 0; i < s->n; i++) {
        received += w6_drain(s, 4);
        uint64_t r = bench_rand(&st);
        size_t slot = (size_t)(r % BENCH_W6_WINDOW);
        void *old = s->win[slot];
        s->win[slot] = w6_alloc(s, r >> 24);
        if ((r >> 56) % BENCH_W6_REMOTE == 0) {
            unsigned spins = 0;
            while (!bench_ring_try_push(s->out, old)) {
                long got = w6_drain(s, 0);
                received += got;
                if (got == 0)
                    bench_wait(&spins);
                else
                    spins = 0;
            }
            sent++;
        } else {
            s->free_fn(s->ctx, old, 0);
        }
    }
    atomic_store_explicit(s->sent_mine, sent, memory_order_release);
    unsigned spins = 0;
    for (;;) {
        long got = w6_drain(s, 0);
        received += got;
        if (got)
            spins = 0;
        long expect = atomic_load_explicit(s->sent_other, memory_order_acquire);
        if (expect >= 0 && received == expect)
            break;
        if (!got)
            bench_wait(&spins);
    }
    pthread_barrier_wait(s->done);
    for (size_t i = 0; i < BENCH_W6_WINDOW; i++) /* after the clock */
        s->free_fn(s->ctx, s->win[i], 0);
    return NULL;
}

void bench_w6(const bench_opts *o, bench_alloc_fn *alloc, bench_free_fn *free_fn, void *ctx)
{
    long n = o->n ? o->n : BENCH_W6_N;
    bench_ring *ring = bench_array(o, 2 * sizeof *ring);
    bench_ring_init(&ring[0]);
    bench_ring_init(&ring[1]);
    void **win = bench_array(o, 2 * BENCH_W6_WINDOW * sizeof *win);
    _Atomic long sent[2];
    atomic_init(&sent[0], -1);
    atomic_init(&sent[1], -1);
    pthread_barrier_t start, done;
    pthread_barrier_init(&start, NULL, 3);
    pthread_barrier_init(&done, NULL, 3);
    w6_side side[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        side[i] = (w6_side){ alloc, free_fn, ctx, o, n, BENCH_SEED ^ (0x5851f42d4c957f2dull * (uint64_t)(i + 1)),
                             win + i * BENCH_W6_WINDOW, &ring[i], &ring[1 - i], &sent[i], &sent[1 - i],
                             &start, &done };
        if (pthread_create(&th[i], NULL, w6_thread, &side[i]) != 0) {
            fprintf(stderr, "bench: w6: pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = bench_now_ns();
    pthread_barrier_wait(&done);
    uint64_t dt = bench_now_ns() - t0;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    char extra[64];
    snprintf(extra, sizeof extra, "ops_per_sec=%.0f", dt ? (double)(2 * n) * 1e9 / (double)dt : 0.0);
    bench_result(o, 2 * n, dt, extra);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&done);
    free(win);
    free(ring);
}

void bench_wait(unsigned *spins)
{
    unsigned s = (*spins)++;
    if (s < 64)
        bench_pause();
    else
        sched_yield();
}
