/*
 * bench_talloc.c - the benchmark workloads (bench/bench.h) over talloc.
 *
 *   bench_talloc --list
 *   bench_talloc w1|w2|w3|w4|w5 talloc [-n N] [-r ROUNDS]
 *
 * impl "talloc":
 *   W1, W2  a talloc_pool() parent sized for the live objects; each object is
 *           talloc_size(pool, 64) and goes back with talloc_free().
 *   W3      talloc's request-scope idiom: a long-lived talloc_pool(), per
 *           request a talloc_new() context under it, 200 talloc_size() on that
 *           context, then one talloc_free() of the request context (which
 *           frees its children; the pool rewinds once it is empty).
 *   W4      skipped: talloc is not thread-safe, a chunk must not be freed by
 *           another thread than the one using its context.
 *   W5      talloc_size()/talloc_free() on the NULL context.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <talloc.h>

static const char *const impls[] = {"talloc"};

static void die(const char *what)
{
    fprintf(stderr, "bench_talloc: %s failed\n", what);
    exit(1);
}

/*
 * Bytes a pool uses per object of size `size` (talloc's chunk header plus
 * the object, rounded as talloc rounds): the distance between two consecutive
 * allocations from a pool. talloc does not publish its header size, so it is
 * measured; the pools below are sized from it so that every allocation of the
 * workload comes from the pool and none falls back to malloc.
 */
static size_t pool_stride(size_t size)
{
    void *pool = talloc_pool(NULL, 4 * (size + 1024));
    if (pool == NULL)
        die("talloc_pool");
    char *a = talloc_size(pool, size);
    char *b = talloc_size(pool, size);
    if (a == NULL || b == NULL)
        die("talloc_size");
    size_t stride = b > a ? (size_t)(b - a) : 0;
    talloc_free(pool);
    if (stride < size || stride > size + 1024)
        stride = size + 256; /* not laid out as expected: a generous guess */
    return stride;
}

static void *pool_for(size_t count, size_t size)
{
    size_t bytes = count * pool_stride(size) + 4096;
    void *pool = talloc_pool(NULL, bytes);
    if (pool == NULL)
        die("talloc_pool");
    return pool;
}

/* W1 and W2: bench.h's loops over these, in a talloc pool sized for the
 * objects out at once. */
static inline void *pool_get(void *pool)
{
    void *p = talloc_size(pool, BENCH_OBJ_SIZE);
    if (p == NULL)
        die("talloc_size");
    return p;
}

#define POOL_GET(pool) pool_get(pool)
#define POOL_PUT(pool, p) talloc_free(p)

static void w1(const bench_opts *o)
{
    void *pool = pool_for(1, BENCH_OBJ_SIZE);
    BENCH_RUN_W1(o, pool, POOL_GET, POOL_PUT, NULL);
    talloc_free(pool);
}

static void w2(const bench_opts *o)
{
    void *pool = pool_for((size_t)(o->n > 0 ? o->n : BENCH_W2_N), BENCH_OBJ_SIZE);
    BENCH_RUN_W2(o, pool, POOL_GET, POOL_PUT, NULL);
    talloc_free(pool);
}

static void w3(const bench_opts *o)
{
    long n = o->n > 0 ? o->n : BENCH_W3_N;
    const uint16_t *sizes = bench_w3_sizes();
    /* Room for the request context and its largest possible request. */
    size_t bytes = pool_stride(0) + BENCH_W3_PER_REQ * pool_stride(BENCH_W3_MAX) + 4096;
    void *top = talloc_pool(NULL, bytes);
    if (top == NULL)
        die("talloc_pool");
    size_t k = 0;

    uint64_t t0 = bench_now_ns();
    for (long r = 0; r < n; r++) {
        void *req = talloc_new(top);
        if (req == NULL)
            die("talloc_new");
        for (int i = 0; i < BENCH_W3_PER_REQ; i++) {
            void *p = talloc_size(req, sizes[k++ & (BENCH_W3_TABLE - 1)]);
            if (p == NULL)
                die("talloc_size");
            bench_touch(p);
        }
        talloc_free(req);
    }
    uint64_t t1 = bench_now_ns();

    talloc_free(top);
    char extra[64];
    snprintf(extra, sizeof extra, "ns_per_req=%.1f", (double)(t1 - t0) / (double)n);
    bench_result(o, n * BENCH_W3_PER_REQ, t1 - t0, extra);
}

static void *w5_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return talloc_size(NULL, size);
}

static void w5_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    talloc_free(p);
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_args(argc, argv, impls, sizeof impls / sizeof impls[0], &o);
    switch (o.workload[1]) {
    case '1':
        w1(&o);
        break;
    case '2':
        w2(&o);
        break;
    case '3':
        w3(&o);
        break;
    case '4':
        bench_skip(&o, "talloc is not thread-safe: a chunk cannot be freed on another thread (W4 does not apply)");
        break;
    case '5':
        bench_w5(&o, w5_alloc, w5_free, NULL, "note=talloc-null-context");
        break;
    }
    return 0;
}
