/*
 * bench.h - the harness shared by every benchmark program of mpool.
 *
 * Each program (mpbench for mpool, malloc and the floor; bench_* for the
 * peers) is run as
 *
 *     prog <workload> <impl> [-n N] [-r ROUNDS]      (prog --list: its impls)
 *
 * runs one workload with one implementation, and prints exactly one RESULT
 * line (plus ROUND lines for W5 and W5h) that bench/run parses, or one SKIP line when
 * the implementation cannot run that workload. Everything the programs must
 * agree on lives here: the workload definitions and their default counts, the
 * fixed seed and its PRNG, the clock, the RSS probes, the SPSC ring W4 passes
 * packets through, and the meaning of "ops", so that ns_per_op means the same
 * thing in every program:
 *
 *   W1 ops = iterations (one get + put pair each)
 *   W2 ops = rounds * n * 2 passes (each object one get + put pair per pass)
 *   W3 ops = requests * BENCH_W3_PER_REQ allocations (extra "ns_per_req=..")
 *   W4 ops = packets
 *   W5 ops = rounds * n (extra "final_rss_kb=.. live_bytes=.. rss_per_live=..")
 * and the heap workloads (general-purpose allocation: malloc and free, or a
 * heap's alloc and mp_free):
 *   W1h ops = iterations (one alloc + free pair of 64 B each)
 *   W3h ops = requests * BENCH_W3_PER_REQ allocations (extra "ns_per_req=..")
 *   W5h ops = rounds * n (extra as W5)
 *   W6  ops = replacements, both threads together (extra "ops_per_sec=..")
 *
 * The workloads, exactly (every program does the same around its allocator):
 *   W1  n times: p = get(64 B); bench_touch(p); put(p).
 *   W2  rounds times: get n objects of 64 B into an array, bench_touch each,
 *       put them all back newest first (LIFO); get n again, touch each, put
 *       them back in the order of bench_perm(n) (made before the clock starts).
 *   W3  n requests: BENCH_W3_PER_REQ allocations whose sizes come from
 *       bench_w3_sizes() (made before the clock starts), walked cyclically
 *       across requests (index & (BENCH_W3_TABLE - 1)), bench_touch each; then
 *       release the request (a reset, or one free per allocation in
 *       allocation order).
 *   W4  thread A: n times get(256 B), bench_touch, bench_ring_push; thread B:
 *       n times bench_ring_pop, bench_touch, put. The clock runs from just
 *       before A starts producing (B already started) until both are joined.
 *   W5  bench_w5() with the implementation's allocate and free: rounds times,
 *       allocate n objects of sizes 16..4096, shuffle them, free the first
 *       90%, keep the rest alive (free them too once live bytes passed
 *       BENCH_W5_LIVE_CAP); a ROUND line after each round.
 *   W1h W1's loop (BENCH_RUN_W1) with alloc(64 B) and free.
 *   W3h W3's requests, each allocation freed on its own: BENCH_W3_PER_REQ
 *       allocations (sizes from bench_w3_sizes(), bench_touch each), then
 *       one free per allocation in allocation order.
 *   W5h W5 exactly (bench_w5(), the same counts and seed), with the heap's
 *       alloc and free. W5 is the object-pool stand-in's measurement; W5h
 *       is the heaps'. The goal for a heap: final RSS / live bytes <= 3.
 *   W6  bench_w6(): a server. Two threads, each with a window of
 *       BENCH_W6_WINDOW live allocations of 16..1024 B (filled before the
 *       clock starts), replace a random one n times each: allocate the new
 *       block, bench_touch it, and free the old one - itself, or, for one
 *       replacement in four, by passing it to the other thread through a
 *       bench_ring (each thread frees what arrives between its own
 *       replacements). The clock runs from both threads' start until both
 *       have freed everything passed to them; the RESULT line carries the
 *       process's peak RSS.
 */
#ifndef MPBENCH_H
#define MPBENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench_opts {
    const char *workload; /* "w1".."w5", or a heap workload: "w1h", "w3h", "w5h", "w6" */
    const char *impl;     /* implementation name given on the command line */
    long n;               /* main count (W1/W1h iterations, W2 objects, W3/W3h requests, W4
                             packets, W5/W5h objects per round, W6 replacements per thread);
                             0 = workload default */
    int rounds;           /* W2/W5 rounds; 0 = default */
} bench_opts;

/* Parses argv: prog <workload> <impl> [-n N] [-r ROUNDS]. Exits 2 with a
 * usage line on bad input. A program answers `prog --list` itself before
 * calling this. */
void bench_parse(int argc, char **argv, bench_opts *o);
/* The command line of a program that offers the implementations impls[0..n):
 * answers `--list` (prints them, exits 0), parses the rest with bench_parse,
 * and exits 2 when o->impl is none of them. A heap workload gets a SKIP line
 * (a program that runs them calls bench_args_heaps instead). */
void bench_args(int argc, char **argv, const char *const *impls, size_t n, bench_opts *o);
void bench_args_heaps(int argc, char **argv, const char *const *impls, size_t n, bench_opts *o);
/* Is o's workload one of the heap workloads (W1h, W3h, W5h, W6)? */
int bench_heap_workload(const bench_opts *o);
uint64_t bench_now_ns(void);          /* CLOCK_MONOTONIC */
long bench_rss_kb(void);              /* current RSS from /proc/self/statm */
long bench_peak_rss_kb(void);         /* getrusage ru_maxrss */
uint64_t bench_rand(uint64_t *state); /* fixed-seed PRNG (splitmix64) */
void bench_touch(void *p);            /* writes one byte through a volatile pointer */

/* Prints the one result line the run script parses:
 * RESULT workload=w1 impl=mpool ops=50000000 ns_per_op=3.210 peak_rss_kb=1234 [extra]
 * extra (may be NULL) is appended verbatim, e.g. "ns_per_req=812.3" or
 * "final_rss_kb=.. live_bytes=..". */
void bench_result(const bench_opts *o, long ops, uint64_t elapsed_ns, const char *extra);
/* W5 per-round line: ROUND workload=w5 impl=.. round=3 rss_kb=.. live_bytes=.. */
void bench_round(const bench_opts *o, int round, long rss_kb, size_t live_bytes);
/* Prints "SKIP impl=<impl> workload=<w> reason=<text>" on stdout and exits 0:
 * for a workload the implementation does not fit, or a peer that cannot start. */
void bench_skip(const bench_opts *o, const char *reason);

/* The workload definitions shared by every program (defaults). */
#define BENCH_W1_N 50000000L  /* get 64 B, touch one byte, put */
#define BENCH_W2_N 1000000L   /* objects per round, 64 B: get all, put all LIFO; then get all,
                                 put all in a shuffled order */
#define BENCH_W2_ROUNDS 10
#define BENCH_W3_N 100000L    /* requests, 200 allocations each of random size 16..512 (seed
                                 fixed), touch each, then release all */
#define BENCH_W3_PER_REQ 200
#define BENCH_W4_N 10000000L  /* packets of 256 B through a bounded SPSC ring from thread A
                                 (alloc) to thread B (free) */
#define BENCH_W5_N 500000L    /* per round: allocate N random sizes 16..4096, free a random
                                 90% (survivors live on) */
#define BENCH_W5_ROUNDS 20
#define BENCH_W5_LIVE_CAP (200u << 20) /* stop keeping new survivors past ~200 MB live */
#define BENCH_W6_N 4000000L   /* replacements per thread, of a window of BENCH_W6_WINDOW live
                                 allocations of 16..1024 B; one in 4 freed by the other thread */
#define BENCH_W6_WINDOW 10000
#define BENCH_SEED 0x9e3779b97f4a7c15ull

#define BENCH_OBJ_SIZE 64     /* W1, W2 */
#define BENCH_PACKET_SIZE 256 /* W4 */
#define BENCH_W3_MIN 16       /* W3 sizes, inclusive */
#define BENCH_W3_MAX 512
#define BENCH_W3_TABLE 65536u /* W3 size table length, a power of two */
#define BENCH_W5_MIN 16       /* W5 sizes, inclusive */
#define BENCH_W5_MAX 4096
#define BENCH_W6_MIN 16       /* W6 sizes, inclusive */
#define BENCH_W6_MAX 1024
#define BENCH_W6_REMOTE 4     /* one free in this many goes to the other thread */

/* A size in [lo, hi] from the PRNG. */
static inline size_t bench_rand_size(uint64_t *state, size_t lo, size_t hi)
{
    return lo + (size_t)(bench_rand(state) % (hi - lo + 1));
}

/* W2's shuffled order: a permutation of 0..n-1 from BENCH_SEED (malloc'd;
 * exits on no memory). */
uint32_t *bench_perm(size_t n);
/* W3's sizes: BENCH_W3_TABLE sizes in [BENCH_W3_MIN, BENCH_W3_MAX] from
 * BENCH_SEED (made on the first call, kept for the life of the process). */
const uint16_t *bench_w3_sizes(void);

/* W5, the same driver for every implementation: does the whole workload
 * (ROUND lines, then the RESULT line, with note appended to its extra when
 * not NULL, e.g. "note=objpools-per-size-class") and returns. alloc returns
 * NULL on failure (the driver then exits 1); free gets the size asked for. */
typedef void *bench_alloc_fn(void *ctx, size_t size);
typedef void bench_free_fn(void *ctx, void *p, size_t size);
void bench_w5(const bench_opts *o, bench_alloc_fn *alloc, bench_free_fn *free_fn, void *ctx,
              const char *note);
/* W6, the same driver for every implementation: runs the two threads, prints
 * the RESULT line and returns. alloc and free_fn must be thread-safe (free_fn
 * is called with size 0: the size is not kept); alloc returning NULL makes
 * the driver exit 1. */
void bench_w6(const bench_opts *o, bench_alloc_fn *alloc, bench_free_fn *free_fn, void *ctx);

/* Memory for a program's own arrays: 64-byte aligned, zeroed (so its page
 * faults come before the clock starts), size rounded up to 64. Exits 1 when
 * there is none. */
void *bench_array(const bench_opts *o, size_t size);

/*
 * W1 and W2, written once for every program so that the code around the
 * allocator's calls is the same in all of them. GET(ctx) is an expression
 * that gives one BENCH_OBJ_SIZE object (a program whose allocator can fail
 * checks inside it), PUT(ctx, p) gives p back; extra goes to bench_result
 * (NULL for none). Macros, not functions taking function pointers: the calls
 * expand in the loop, where an indirect call per operation would be measured
 * as the allocator's.
 */
#define BENCH_RUN_W1(o, ctx, GET, PUT, extra)                                                      \
    do {                                                                                           \
        long n_ = (o)->n ? (o)->n : BENCH_W1_N;                                                    \
        PUT(ctx, GET(ctx)); /* first-use set-up out of the clock */                               \
        uint64_t t0_ = bench_now_ns();                                                             \
        for (long i_ = 0; i_ < n_; i_++) {                                                         \
            void *p_ = GET(ctx);                                                                   \
            bench_touch(p_);                                                                       \
            PUT(ctx, p_);                                                                          \
        }                                                                                          \
        bench_result(o, n_, bench_now_ns() - t0_, extra);                                          \
    } while (0)

#define BENCH_RUN_W2(o, ctx, GET, PUT, extra)                                                      \
    do {                                                                                           \
        size_t n_ = (size_t)((o)->n ? (o)->n : BENCH_W2_N);                                        \
        int r_ = (o)->rounds ? (o)->rounds : BENCH_W2_ROUNDS;                                      \
        void **objs_ = bench_array(o, n_ * sizeof *objs_);                                         \
        uint32_t *perm_ = bench_perm(n_);                                                          \
        uint64_t t0_ = bench_now_ns();                                                             \
        for (int k_ = 0; k_ < r_; k_++) {                                                          \
            for (size_t i_ = 0; i_ < n_; i_++) {                                                   \
                void *p_ = GET(ctx);                                                               \
                bench_touch(p_);                                                                   \
                objs_[i_] = p_;                                                                    \
            }                                                                                      \
            for (size_t i_ = n_; i_ > 0; i_--)                                                     \
                PUT(ctx, objs_[i_ - 1]);                                                           \
            for (size_t i_ = 0; i_ < n_; i_++) {                                                   \
                void *p_ = GET(ctx);                                                               \
                bench_touch(p_);                                                                   \
                objs_[i_] = p_;                                                                    \
            }                                                                                      \
            for (size_t i_ = 0; i_ < n_; i_++)                                                     \
                PUT(ctx, objs_[perm_[i_]]);                                                        \
        }                                                                                          \
        uint64_t dt_ = bench_now_ns() - t0_;                                                       \
        bench_result(o, (long)n_ * r_ * 2, dt_, extra);                                            \
        free(perm_);                                                                               \
        free(objs_);                                                                               \
    } while (0)

/* W4's allocator calls are made through functions named bench_w4_alloc*
 * and bench_w4_free*, kept out of line, so that `make bench-instr` counts
 * only them (callgrind --toggle-collect): the ring's spin-waits, which
 * depend on how the two threads happen to be scheduled, are not counted. */
#define BENCH_W4_CALL __attribute__((noinline))

/* Spin-wait hint for the ring. */
static inline void bench_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
/* Gives the CPU away (2 shared cores: a spinning side must let the other run). */
void bench_yield(void);
/* One wait of a ring side whose other side is behind: the first 64 calls of a
 * wait (*spins counts them) pause, the rest yield. No sleep: a sleep lasts at
 * least the timer slack (50 us), longer than the other side takes to fill or
 * drain the whole ring, so both sides ended up sleeping in turn and W4
 * measured the timer instead of the allocator (glibc went from 50 to 500
 * ns/packet). */
void bench_wait(unsigned *spins);

/*
 * W4's ring: a bounded single-producer single-consumer ring of void *.
 * head is written only by the consumer, tail only by the producer; each side
 * keeps a cached copy of the other's index so it reads the other's line only
 * when the ring looks full (producer) or empty (consumer). The release store
 * of tail publishes the slot written before it (pairs with the consumer's
 * acquire load of tail); the release store of head hands the slot back (pairs
 * with the producer's acquire load of head). Indices run free; the capacity
 * is a power of two. A waiting side calls bench_wait (pause, then yield).
 */
#define BENCH_RING_CAP 1024u

typedef struct bench_ring {
    _Alignas(64) _Atomic size_t head; /* next slot to pop; the consumer writes it */
    size_t tail_cache;                /* the consumer's last view of tail */
    _Alignas(64) _Atomic size_t tail; /* next slot to push; the producer writes it */
    size_t head_cache;                /* the producer's last view of head */
    _Alignas(64) void *slot[BENCH_RING_CAP];
} bench_ring;

static inline void bench_ring_init(bench_ring *r)
{
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->tail_cache = 0;
    r->head_cache = 0;
}

/* Producer side: push p, waiting while the ring is full. */
static inline void bench_ring_push(bench_ring *r, void *p)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    unsigned spins = 0;
    while (t - r->head_cache >= BENCH_RING_CAP) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_cache < BENCH_RING_CAP)
            break;
        bench_wait(&spins);
    }
    r->slot[t & (BENCH_RING_CAP - 1)] = p;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}

/* Producer side without waiting: 0 when the ring is full. */
static inline int bench_ring_try_push(bench_ring *r, void *p)
{
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_cache >= BENCH_RING_CAP) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_cache >= BENCH_RING_CAP)
            return 0;
    }
    r->slot[t & (BENCH_RING_CAP - 1)] = p;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 1;
}

/* Consumer side without waiting: NULL when the ring is empty (never push
 * NULL through a ring popped this way). */
static inline void *bench_ring_try_pop(bench_ring *r)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == r->tail_cache) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h == r->tail_cache)
            return NULL;
    }
    void *p = r->slot[h & (BENCH_RING_CAP - 1)];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return p;
}

/* Consumer side: pop one pointer, waiting while the ring is empty. */
static inline void *bench_ring_pop(bench_ring *r)
{
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    unsigned spins = 0;
    while (h == r->tail_cache) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h != r->tail_cache)
            break;
        bench_wait(&spins);
    }
    void *p = r->slot[h & (BENCH_RING_CAP - 1)];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return p;
}

#endif /* MPBENCH_H */
