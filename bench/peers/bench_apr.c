/*
 * bench_apr.c - the benchmark workloads (bench/bench.h) over APR pools.
 *
 *   bench_apr --list
 *   bench_apr w1|w2|w3|w4|w5 apr [-n N] [-r ROUNDS]
 *
 * impl "apr": W3 only. One pool made with apr_pool_create() before the
 * clock starts; per request 200 apr_palloc() from it, then apr_pool_clear().
 * APR pools have no way to free one allocation, so the workloads that free
 * objects one at a time (W1, W2, W4, W5) are skipped.
 */
#include "bench.h"

#include <apr_errno.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const impls[] = {"apr"};

static void die_apr(const char *what, apr_status_t st)
{
    char buf[256];
    fprintf(stderr, "bench_apr: %s failed: %s\n", what, apr_strerror(st, buf, sizeof buf));
    exit(1);
}

static void w3(const bench_opts *o)
{
    long n = o->n > 0 ? o->n : BENCH_W3_N;
    const uint16_t *sizes = bench_w3_sizes();
    apr_pool_t *pool;
    apr_status_t st = apr_pool_create(&pool, NULL);
    if (st != APR_SUCCESS)
        die_apr("apr_pool_create", st);
    size_t k = 0;

    uint64_t t0 = bench_now_ns();
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < BENCH_W3_PER_REQ; i++) {
            void *p = apr_palloc(pool, sizes[k++ & (BENCH_W3_TABLE - 1)]);
            if (p == NULL) {
                fprintf(stderr, "bench_apr: apr_palloc failed\n");
                exit(1);
            }
            bench_touch(p);
        }
        apr_pool_clear(pool);
    }
    uint64_t t1 = bench_now_ns();

    apr_pool_destroy(pool);
    char extra[64];
    snprintf(extra, sizeof extra, "ns_per_req=%.1f", (double)(t1 - t0) / (double)n);
    bench_result(o, n * BENCH_W3_PER_REQ, t1 - t0, extra);
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_args(argc, argv, impls, sizeof impls / sizeof impls[0], &o);
    if (o.workload[1] != '3')
        bench_skip(&o, "APR pools cannot free one allocation: W1/W2/W4/W5 do not apply");

    apr_status_t st = apr_initialize();
    if (st != APR_SUCCESS)
        die_apr("apr_initialize", st);
    w3(&o);
    apr_terminate();
    return 0;
}
