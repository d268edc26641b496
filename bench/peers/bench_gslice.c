/*
 * bench_gslice.c - the benchmark workloads (bench/bench.h) over GLib's
 * GSlice allocator.
 *
 *   bench_gslice --list
 *   bench_gslice w1|w2|w3|w4|w5 gslice [-n N] [-r ROUNDS]
 *
 * impl "gslice": g_slice_alloc() / g_slice_free1() for W1, W2, W4 (GSlice is
 * thread-safe: thread B frees what thread A allocated) and W5 (the random
 * sizes). W3 is skipped: GSlice has no bulk release.
 *
 * Which GSlice is measured depends on the GLib linked: up to 2.74 (Debian 12)
 * it is the slab/magazine allocator with per-thread magazines; from 2.76 on
 * it is a thin wrapper over malloc. Every RESULT line therefore carries
 * "glib=MAJOR.MINOR.MICRO" of the library actually loaded and
 * "gslice_mode=magazine|always-malloc|malloc": GLib up to 2.74 also falls back
 * to malloc ("always-malloc") when G_SLICE=always-malloc is set, and when it
 * finds itself under Valgrind while G_SLICE is unset. That check runs in
 * GLib's constructor, before main, so this program cannot undo it: run it
 * under callgrind with G_SLICE set to the empty string (`G_SLICE= valgrind
 * ...`) to measure the magazine allocator.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define BENCH_HAVE_VALGRIND_H 1
#endif
#endif
#ifndef BENCH_HAVE_VALGRIND_H
#define BENCH_HAVE_VALGRIND_H 0
#endif

static const char *const impls[] = {"gslice"};

static char extra_glib[96]; /* "glib=2.74.6 gslice_mode=magazine" */

static void die(const char *what)
{
    fprintf(stderr, "bench_gslice: %s failed\n", what);
    exit(1);
}

/* W1 and W2: bench.h's loops over these. */
#define SLICE_GET(unused) g_slice_alloc(BENCH_OBJ_SIZE)
#define SLICE_PUT(unused, p) g_slice_free1(BENCH_OBJ_SIZE, p)

static BENCH_W4_CALL void *bench_w4_alloc(void) { return g_slice_alloc(BENCH_PACKET_SIZE); }
static BENCH_W4_CALL void bench_w4_free(void *p) { g_slice_free1(BENCH_PACKET_SIZE, p); }

/* W4: the main thread is A (allocates), a second thread is B (frees). */
struct w4_ctx {
    bench_ring ring;
    long n;
};

static void *w4_consumer(void *arg)
{
    struct w4_ctx *c = arg;
    for (long i = 0; i < c->n; i++) {
        void *p = bench_ring_pop(&c->ring);
        bench_touch(p);
        bench_w4_free(p);
    }
    return NULL;
}

static void w4(const bench_opts *o)
{
    struct w4_ctx *c = aligned_alloc(64, sizeof *c);
    if (c == NULL)
        die("aligned_alloc");
    bench_ring_init(&c->ring);
    c->n = o->n > 0 ? o->n : BENCH_W4_N;
    pthread_t b;
    if (pthread_create(&b, NULL, w4_consumer, c) != 0)
        die("pthread_create");

    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < c->n; i++) {
        void *p = bench_w4_alloc();
        bench_touch(p);
        bench_ring_push(&c->ring, p);
    }
    pthread_join(b, NULL);
    uint64_t t1 = bench_now_ns();

    long n = c->n;
    free(c);
    bench_result(o, n, t1 - t0, extra_glib);
}

static void *w5_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return g_slice_alloc(size);
}

static void w5_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    g_slice_free1(size, p);
}

/* Whether GSlice (GLib <= 2.74) runs as plain malloc: the checks GLib makes
 * once, in its constructor (its configuration cannot be queried). G_SLICE
 * holds options separated by ":;, \t"; "always-malloc" and "all" select
 * malloc; when G_SLICE is unset, so does running under Valgrind. */
static int gslice_always_malloc(void)
{
    const char *env = getenv("G_SLICE");
    if (env == NULL) {
#if BENCH_HAVE_VALGRIND_H
        if (RUNNING_ON_VALGRIND)
            return 1;
#endif
        const char *pre = getenv("LD_PRELOAD"); /* valgrind preloads vgpreload_*.so */
        return pre != NULL && strstr(pre, "vgpreload") != NULL;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", env);
    char *save = NULL;
    for (char *t = strtok_r(buf, ":;, \t", &save); t != NULL; t = strtok_r(NULL, ":;, \t", &save)) {
        if (strcasecmp(t, "always-malloc") == 0 || strcasecmp(t, "all") == 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_args(argc, argv, impls, sizeof impls / sizeof impls[0], &o);

    /* What is measured: the version of the GLib loaded at run time (not the
     * headers') and the mode GSlice runs in. */
    const char *mode;
    if (glib_major_version > 2 || (glib_major_version == 2 && glib_minor_version >= 76))
        mode = "malloc"; /* GSlice is a wrapper over malloc since 2.76 */
    else
        mode = gslice_always_malloc() ? "always-malloc" : "magazine";
    snprintf(extra_glib, sizeof extra_glib, "glib=%u.%u.%u gslice_mode=%s", glib_major_version,
             glib_minor_version, glib_micro_version, mode);

    switch (o.workload[1]) {
    case '1':
        BENCH_RUN_W1(&o, NULL, SLICE_GET, SLICE_PUT, extra_glib);
        break;
    case '2':
        BENCH_RUN_W2(&o, NULL, SLICE_GET, SLICE_PUT, extra_glib);
        break;
    case '3':
        bench_skip(&o, "GSlice has no bulk release: every slice is freed one by one (W3 does not apply)");
        break;
    case '4':
        w4(&o);
        break;
    case '5':
        bench_w5(&o, w5_alloc, w5_free, NULL, extra_glib);
        break;
    }
    return 0;
}
