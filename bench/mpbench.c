/*
 * mpbench.c - the workloads of bench.h for mpool, for the system malloc and
 * for the floor (no allocator at all).
 *
 *     mpbench <workload> <impl> [-n N] [-r ROUNDS]
 *     mpbench --list | --version
 *
 * impls:
 *   mpool     W1/W2 a thread-safe object pool of 64 B; W3 an arena (mp_alloc,
 *             then mp_arena_reset per request); W4 a thread-safe object pool
 *             of 256 B, got on thread A and put on thread B; W5 one object
 *             pool per size class (mpool has no general-purpose heap yet).
 *   mpool-st  W1/W2 only: the same object pool with MP_SINGLE_THREAD.
 *   mpool-free W1/W2 only: the thread-safe object pool, objects given back
 *             with mp_free (no pool) instead of mp_objpool_put.
 *   mpool-heap     the heap workloads (W1h, W3h, W5h, W6) only: a heap made
 *             with mp_heap_create(NULL, NULL), mp_heap_alloc and mp_free.
 *   mpool-default  the same with mp_heap_default(), the process heap.
 *             Both need a library with heaps (MPBENCH_HEAP, set by
 *             bench/CMakeLists.txt when src/ defines mp_heap_create);
 *             without, they answer with a SKIP line.
 *   malloc    malloc/free for every workload. bench/run also runs it under
 *             LD_PRELOAD for jemalloc, mimalloc, tcmalloc and tbbmalloc, with
 *             BENCH_EXPECT_MALLOC naming the library that must then provide
 *             malloc (checked with dladdr; a SKIP line if it does not).
 *   floor     what the workload costs with no allocator: W1/W2 a bare
 *             intrusive free list over a preallocated array, W3 a bare bump
 *             pointer over one preallocated buffer, W4 preallocated buffers
 *             cycled through the same ring; no W5. W1h is W1's floor, W3h a
 *             bump pointer whose frees do nothing; no W5h, no W6.
 *
 * Each workload is written once as a macro over the implementation's get and
 * put, so that every implementation runs exactly the same loop and the floor's
 * operations inline into it.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <dlfcn.h>
#include <mpool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const bench_opts *o, const char *what)
{
    fprintf(stderr, "mpbench %s %s: %s\n", o->workload, o->impl, what);
    exit(1);
}

static long count_or(long n, long def)
{
    return n ? n : def;
}

/* ------------------------------------------------------------ the floor */

/* A bare intrusive free list: the least a fixed-size pool can do. */
typedef struct floor_obj {
    struct floor_obj *next;
} floor_obj;

typedef struct floor_list {
    floor_obj *free;
    void *mem;
} floor_list;

static void floor_list_init(const bench_opts *o, floor_list *fl, size_t count, size_t size)
{
    unsigned char *mem = bench_array(o, count * size);
    fl->mem = mem;
    fl->free = NULL;
    for (size_t i = count; i > 0; i--) {
        floor_obj *ob = (floor_obj *)(mem + (i - 1) * size);
        ob->next = fl->free;
        fl->free = ob;
    }
}

static inline void *floor_get(floor_list *fl)
{
    floor_obj *ob = fl->free;
    if (__builtin_expect(ob == NULL, 0))
        return NULL;
    fl->free = ob->next;
    return ob;
}

static inline void floor_put(floor_list *fl, void *p)
{
    floor_obj *ob = p;
    ob->next = fl->free;
    fl->free = ob;
}

/* A bare bump pointer over one buffer, reset per request. */
typedef struct floor_bump {
    unsigned char *base, *cur, *end;
} floor_bump;

static inline void *floor_bump_alloc(floor_bump *b, size_t size)
{
    size_t need = (size + 15) & ~(size_t)15;
    if (__builtin_expect((size_t)(b->end - b->cur) < need, 0))
        return NULL;
    void *p = b->cur;
    b->cur += need;
    return p;
}

/* ------------------------------------------------------------ malloc */

/* Under LD_PRELOAD, make sure the preloaded library really provides malloc:
 * a silently ignored preload would show glibc under another name. */
static void malloc_check_preload(const bench_opts *o)
{
    const char *want = getenv("BENCH_EXPECT_MALLOC");
    if (want == NULL || *want == '\0')
        return;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL ||
        strstr(info.dli_fname, want) == NULL)
        bench_skip(o, "LD_PRELOAD did not take effect");
}

/* ------------------------------------------------------------ W1, W2 */

#define POOL_GET(p) mp_objpool_get(p)
#define POOL_PUT(p, x) mp_objpool_put(p, x)
#define POOL_FREE(p, x) mp_free(x)
#define MALLOC_GET(unused) malloc(BENCH_OBJ_SIZE)
#define MALLOC_PUT(unused, x) free(x)
#define FLOOR_GET(fl) floor_get(fl)
#define FLOOR_PUT(fl, x) floor_put(fl, x)

static mp_objpool *pool_create(const bench_opts *o, size_t size, unsigned flags)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = size, .flags = flags });
    if (p == NULL)
        die(o, "mp_objpool_create failed");
    return p;
}

static void fixed_workload(const bench_opts *o, int w2)
{
    const char *impl = o->impl;
    if (strcmp(impl, "mpool") == 0 || strcmp(impl, "mpool-st") == 0) {
        mp_objpool *p = pool_create(o, BENCH_OBJ_SIZE, impl[5] ? MP_SINGLE_THREAD : 0);
        if (w2)
            BENCH_RUN_W2(o, p, POOL_GET, POOL_PUT, NULL);
        else
            BENCH_RUN_W1(o, p, POOL_GET, POOL_PUT, NULL);
        mp_objpool_destroy(p);
    } else if (strcmp(impl, "mpool-free") == 0) {
        mp_objpool *p = pool_create(o, BENCH_OBJ_SIZE, 0);
        if (w2)
            BENCH_RUN_W2(o, p, POOL_GET, POOL_FREE, NULL);
        else
            BENCH_RUN_W1(o, p, POOL_GET, POOL_FREE, NULL);
        mp_objpool_destroy(p);
    } else if (strcmp(impl, "malloc") == 0) {
        if (w2)
            BENCH_RUN_W2(o, NULL, MALLOC_GET, MALLOC_PUT, NULL);
        else
            BENCH_RUN_W1(o, NULL, MALLOC_GET, MALLOC_PUT, NULL);
    } else { /* floor */
        floor_list fl;
        size_t count = w2 ? (size_t)count_or(o->n, BENCH_W2_N) : 64;
        floor_list_init(o, &fl, count, BENCH_OBJ_SIZE);
        floor_list *f = &fl;
        if (w2)
            BENCH_RUN_W2(o, f, FLOOR_GET, FLOOR_PUT, NULL);
        else
            BENCH_RUN_W1(o, f, FLOOR_GET, FLOOR_PUT, NULL);
        free(fl.mem);
    }
}

/* ------------------------------------------------------------ W3 */

static void w3_result(const bench_opts *o, long reqs, uint64_t dt)
{
    char extra[64];
    snprintf(extra, sizeof extra, "ns_per_req=%.1f", (double)dt / (double)reqs);
    bench_result(o, reqs * BENCH_W3_PER_REQ, dt, extra);
}

static void w3(const bench_opts *o)
{
    long reqs = count_or(o->n, BENCH_W3_N);
    const uint16_t *sizes = bench_w3_sizes();
    size_t k = 0;
    uint64_t t0;
    if (strcmp(o->impl, "mpool") == 0) {
        mp_arena *a = mp_arena_create(NULL, NULL);
        if (a == NULL)
            die(o, "mp_arena_create failed");
        t0 = bench_now_ns();
        for (long r = 0; r < reqs; r++) {
            for (int j = 0; j < BENCH_W3_PER_REQ; j++) {
                void *p = mp_alloc(a, sizes[k++ & (BENCH_W3_TABLE - 1)]);
                bench_touch(p);
            }
            mp_arena_reset(a);
        }
        w3_result(o, reqs, bench_now_ns() - t0);
        mp_arena_destroy(a);
    } else if (strcmp(o->impl, "malloc") == 0) {
        void *ptrs[BENCH_W3_PER_REQ];
        t0 = bench_now_ns();
        for (long r = 0; r < reqs; r++) {
            for (int j = 0; j < BENCH_W3_PER_REQ; j++) {
                void *p = malloc(sizes[k++ & (BENCH_W3_TABLE - 1)]);
                bench_touch(p);
                ptrs[j] = p;
            }
            for (int j = 0; j < BENCH_W3_PER_REQ; j++)
                free(ptrs[j]);
        }
        w3_result(o, reqs, bench_now_ns() - t0);
    } else { /* floor */
        size_t cap = (size_t)BENCH_W3_PER_REQ * ((BENCH_W3_MAX + 15) & ~15);
        floor_bump b;
        b.base = bench_array(o, cap);
        b.end = b.base + cap;
        t0 = bench_now_ns();
        for (long r = 0; r < reqs; r++) {
            b.cur = b.base;
            for (int j = 0; j < BENCH_W3_PER_REQ; j++) {
                void *p = floor_bump_alloc(&b, sizes[k++ & (BENCH_W3_TABLE - 1)]);
                bench_touch(p);
            }
        }
        w3_result(o, reqs, bench_now_ns() - t0);
        free(b.base);
    }
}

/* ------------------------------------------------------------ W4 */

#define FLOOR_W4_BUFS 4096u /* > ring capacity + the one each side holds */

typedef struct w4_ctx {
    bench_ring ring;
    long n;
    mp_objpool *pool;    /* mpool */
    unsigned char *bufs; /* floor */
} w4_ctx;

static BENCH_W4_CALL void *bench_w4_alloc_mpool(mp_objpool *pool) { return mp_objpool_get(pool); }
static BENCH_W4_CALL void bench_w4_free_mpool(mp_objpool *pool, void *p) { mp_objpool_put(pool, p); }
static BENCH_W4_CALL void *bench_w4_alloc_malloc(void) { return malloc(BENCH_PACKET_SIZE); }
static BENCH_W4_CALL void bench_w4_free_malloc(void *p) { free(p); }
/* The floor's "allocator": the buffer of packet i, and nothing to free. */
static BENCH_W4_CALL void *bench_w4_alloc_floor(unsigned char *bufs, long i)
{
    return bufs + (size_t)(i & (FLOOR_W4_BUFS - 1)) * BENCH_PACKET_SIZE;
}
static BENCH_W4_CALL void bench_w4_free_floor(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static void *w4_consume_mpool(void *arg)
{
    w4_ctx *c = arg;
    for (long i = 0; i < c->n; i++) {
        void *p = bench_ring_pop(&c->ring);
        bench_touch(p);
        bench_w4_free_mpool(c->pool, p);
    }
    return NULL;
}

static void *w4_consume_malloc(void *arg)
{
    w4_ctx *c = arg;
    for (long i = 0; i < c->n; i++) {
        void *p = bench_ring_pop(&c->ring);
        bench_touch(p);
        bench_w4_free_malloc(p);
    }
    return NULL;
}

static void *w4_consume_floor(void *arg)
{
    w4_ctx *c = arg;
    for (long i = 0; i < c->n; i++) {
        void *p = bench_ring_pop(&c->ring);
        bench_touch(p);
        bench_w4_free_floor(p);
    }
    return NULL;
}

static void w4(const bench_opts *o)
{
    w4_ctx *c = bench_array(o, sizeof *c);
    bench_ring_init(&c->ring);
    c->n = count_or(o->n, BENCH_W4_N);
    void *(*consume)(void *);
    int impl; /* 0 mpool, 1 malloc, 2 floor */
    if (strcmp(o->impl, "mpool") == 0) {
        impl = 0;
        c->pool = pool_create(o, BENCH_PACKET_SIZE, 0);
        mp_objpool_put(c->pool, mp_objpool_get(c->pool));
        consume = w4_consume_mpool;
    } else if (strcmp(o->impl, "malloc") == 0) {
        impl = 1;
        consume = w4_consume_malloc;
    } else {
        impl = 2;
        c->bufs = bench_array(o, (size_t)FLOOR_W4_BUFS * BENCH_PACKET_SIZE);
        consume = w4_consume_floor;
    }
    pthread_t tb;
    if (pthread_create(&tb, NULL, consume, c) != 0)
        die(o, "pthread_create failed");
    long n = c->n;
    uint64_t t0 = bench_now_ns();
    switch (impl) {
    case 0:
        for (long i = 0; i < n; i++) {
            void *p = bench_w4_alloc_mpool(c->pool);
            bench_touch(p);
            bench_ring_push(&c->ring, p);
        }
        break;
    case 1:
        for (long i = 0; i < n; i++) {
            void *p = bench_w4_alloc_malloc();
            bench_touch(p);
            bench_ring_push(&c->ring, p);
        }
        break;
    default:
        for (long i = 0; i < n; i++) {
            void *p = bench_w4_alloc_floor(c->bufs, i);
            bench_touch(p);
            bench_ring_push(&c->ring, p);
        }
        break;
    }
    pthread_join(tb, NULL);
    bench_result(o, n, bench_now_ns() - t0, NULL);
    if (c->pool != NULL)
        mp_objpool_destroy(c->pool);
    free(c->bufs);
    free(c);
}

/* ------------------------------------------------------------ W5 */

/* Size classes of the mpool W5 stand-in: multiples of 16 up to 64, then
 * quarter steps between powers of two up to 4096 (at most 25% waste). */
#define W5_NCLASS 28

typedef struct w5_pools {
    mp_objpool *pool[W5_NCLASS];
    unsigned char cls[(BENCH_W5_MAX >> 4) + 1]; /* (size + 15) / 16 -> class */
} w5_pools;

static void *w5_pool_alloc(void *ctx, size_t size)
{
    w5_pools *w = ctx;
    return mp_objpool_get(w->pool[w->cls[(size + 15) >> 4]]);
}

static void w5_pool_free(void *ctx, void *p, size_t size)
{
    w5_pools *w = ctx;
    mp_objpool_put(w->pool[w->cls[(size + 15) >> 4]], p);
}

static void *w5_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void w5_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    free(p);
}

static void w5(const bench_opts *o)
{
    if (strcmp(o->impl, "malloc") == 0) {
        bench_w5(o, w5_malloc, w5_free, NULL, NULL);
        return;
    }
    size_t class_size[W5_NCLASS];
    size_t nc = 0;
    for (size_t s = 16; s < 64; s += 16)
        class_size[nc++] = s;
    for (size_t pw = 64; pw < BENCH_W5_MAX; pw *= 2)
        for (size_t q = 4; q < 8; q++)
            class_size[nc++] = pw / 4 * q;
    class_size[nc++] = BENCH_W5_MAX;
    w5_pools *w = bench_array(o, sizeof *w);
    size_t c = 0;
    for (size_t i = 0; i <= (BENCH_W5_MAX >> 4); i++) {
        while (class_size[c] < i * 16)
            c++;
        w->cls[i] = (unsigned char)c;
    }
    for (size_t i = 0; i < nc; i++)
        w->pool[i] = pool_create(o, class_size[i], 0);
    fprintf(stderr, "mpbench w5 mpool: no general-purpose heap in mpool yet; "
                    "W5 uses one object pool per size class (%zu classes, 16..%d B)\n",
            nc, BENCH_W5_MAX);
    bench_w5(o, w5_pool_alloc, w5_pool_free, w, "note=objpools-per-size-class");
    for (size_t i = 0; i < nc; i++)
        mp_objpool_destroy(w->pool[i]);
    free(w);
}

/* ------------------------------------------------------------ heaps */

/* The heap workloads (bench.h): W1h, W3h, W5h and W6, for malloc, a heap of
 * mpool's and the floor. */

static int heap_impl(const bench_opts *o)
{
    return strcmp(o->impl, "mpool-heap") == 0 || strcmp(o->impl, "mpool-default") == 0;
}

#ifdef MPBENCH_HEAP
static mp_heap *heap_open(const bench_opts *o)
{
    mp_heap *h = strcmp(o->impl, "mpool-heap") == 0 ? mp_heap_create(NULL, NULL) : mp_heap_default();
    if (h == NULL)
        die(o, "no heap (mp_heap_create or mp_heap_default failed)");
    return h;
}

static void heap_close(mp_heap *h)
{
    if (h != mp_heap_default())
        mp_heap_destroy(h);
}

#define HEAP_GET(h) mp_heap_alloc(h, BENCH_OBJ_SIZE)
#define HEAP_PUT(h, x) mp_free(x)
#define HEAP_ALLOC(h, size) mp_heap_alloc(h, size)
#define HEAP_FREE(h, x) mp_free(x)

static void *heap_alloc_fn(void *ctx, size_t size) { return mp_heap_alloc(ctx, size); }

static void heap_free_fn(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    mp_free(p);
}
#endif

#define MALLOC_ALLOC(unused, size) malloc(size)
#define MALLOC_FREE(unused, x) free(x)
#define FLOOR_ALLOC(b, size) floor_bump_alloc(b, size)
#define FLOOR_FREE(b, x) (void)(x)

/* W3h: W3's requests, each allocation freed on its own, in allocation
 * order. One loop for every implementation. */
#define RUN_W3H(o, ctx, ALLOC, FREE, BEGIN)                                                        \
    do {                                                                                           \
        long reqs_ = count_or((o)->n, BENCH_W3_N);                                                 \
        const uint16_t *sizes_ = bench_w3_sizes();                                                 \
        void *ptrs_[BENCH_W3_PER_REQ];                                                             \
        size_t k_ = 0;                                                                             \
        uint64_t t0_ = bench_now_ns();                                                             \
        for (long r_ = 0; r_ < reqs_; r_++) {                                                      \
            BEGIN;                                                                                 \
            for (int j_ = 0; j_ < BENCH_W3_PER_REQ; j_++) {                                        \
                void *p_ = ALLOC(ctx, sizes_[k_++ & (BENCH_W3_TABLE - 1)]);                        \
                bench_touch(p_);                                                                   \
                ptrs_[j_] = p_;                                                                    \
            }                                                                                      \
            for (int j_ = 0; j_ < BENCH_W3_PER_REQ; j_++)                                          \
                FREE(ctx, ptrs_[j_]);                                                              \
        }                                                                                          \
        w3_result(o, reqs_, bench_now_ns() - t0_);                                                 \
    } while (0)

static void w1h(const bench_opts *o)
{
    if (strcmp(o->impl, "malloc") == 0) {
        BENCH_RUN_W1(o, NULL, MALLOC_GET, MALLOC_PUT, NULL);
    } else if (strcmp(o->impl, "floor") == 0) {
        fixed_workload(o, 0);
#ifdef MPBENCH_HEAP
    } else {
        mp_heap *h = heap_open(o);
        BENCH_RUN_W1(o, h, HEAP_GET, HEAP_PUT, NULL);
        heap_close(h);
#endif
    }
}

static void w3h(const bench_opts *o)
{
    if (strcmp(o->impl, "malloc") == 0) {
        RUN_W3H(o, NULL, MALLOC_ALLOC, MALLOC_FREE, (void)0);
    } else if (strcmp(o->impl, "floor") == 0) {
        size_t cap = (size_t)BENCH_W3_PER_REQ * ((BENCH_W3_MAX + 15) & ~15);
        floor_bump b;
        b.base = bench_array(o, cap);
        b.end = b.base + cap;
        floor_bump *fb = &b;
        RUN_W3H(o, fb, FLOOR_ALLOC, FLOOR_FREE, fb->cur = fb->base);
        free(b.base);
#ifdef MPBENCH_HEAP
    } else {
        mp_heap *h = heap_open(o);
        mp_free(mp_heap_alloc(h, 64)); /* first-use set-up out of the clock */
        RUN_W3H(o, h, HEAP_ALLOC, HEAP_FREE, (void)0);
        heap_close(h);
#endif
    }
}

static void heap_driven(const bench_opts *o, int w6)
{
    if (strcmp(o->impl, "malloc") == 0) {
        if (w6)
            bench_w6(o, w5_malloc, w5_free, NULL);
        else
            bench_w5(o, w5_malloc, w5_free, NULL, NULL);
#ifdef MPBENCH_HEAP
    } else {
        mp_heap *h = heap_open(o);
        if (w6)
            bench_w6(o, heap_alloc_fn, heap_free_fn, h);
        else
            bench_w5(o, heap_alloc_fn, heap_free_fn, h, NULL);
        heap_close(h);
#endif
    }
}

static void heap_workload(const bench_opts *o)
{
    const char *w = o->workload;
    if (strcmp(o->impl, "mpool") == 0 || strcmp(o->impl, "mpool-st") == 0)
        bench_skip(o, "the heap workloads are mpool-heap's and mpool-default's");
#ifndef MPBENCH_HEAP
    if (heap_impl(o))
        bench_skip(o, "this mpool has no heap (mp_heap_create is not in the library)");
#endif
    if (strcmp(o->impl, "floor") == 0 && (strcmp(w, "w5h") == 0 || strcmp(w, "w6") == 0))
        bench_skip(o, "no floor for a general-purpose heap");
    if (strcmp(w, "w1h") == 0)
        w1h(o);
    else if (strcmp(w, "w3h") == 0)
        w3h(o);
    else
        heap_driven(o, strcmp(w, "w6") == 0);
}

/* ------------------------------------------------------------ main */

static const char *const impls[] = { "mpool", "mpool-st", "mpool-free", "malloc", "floor", "mpool-heap", "mpool-default" };

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts(mp_version());
        return 0;
    }
    bench_opts o;
    bench_args_heaps(argc, argv, impls, sizeof impls / sizeof impls[0], &o);
    if (strcmp(o.impl, "malloc") == 0)
        malloc_check_preload(&o);
    if (bench_heap_workload(&o)) {
        heap_workload(&o);
        return 0;
    }
    int w = o.workload[1] - '0';
    if (heap_impl(&o))
        bench_skip(&o, "a heap: run in the heap workloads (w1h, w3h, w5h, w6)");
    if (strcmp(o.impl, "mpool-st") == 0 && w > 2)
        bench_skip(&o, "single-thread variant, measured in w1 and w2 only");
    if (strcmp(o.impl, "mpool-free") == 0 && w > 2)
        bench_skip(&o, "mp_free variant, measured in w1 and w2 only");
    if (strcmp(o.impl, "floor") == 0 && w == 5)
        bench_skip(&o, "no floor for a general-purpose heap");
    switch (w) {
    case 1:
        fixed_workload(&o, 0);
        break;
    case 2:
        fixed_workload(&o, 1);
        break;
    case 3:
        w3(&o);
        break;
    case 4:
        w4(&o);
        break;
    default:
        w5(&o);
        break;
    }
    return 0;
}
