/*
 * bench_dpdk.c - the benchmark workloads (bench/bench.h) over DPDK's
 * rte_mempool.
 *
 *   bench_dpdk --list
 *   bench_dpdk w1|w2|w3|w4|w5 dpdk-cache|dpdk-nocache [-n N] [-r ROUNDS]
 *
 * impls:
 *   dpdk-cache    rte_mempool_create() with a per-lcore cache of 256 objects
 *   dpdk-nocache  the same pool without cache: every get/put is on the
 *                 pool's shared multi-producer/multi-consumer ring
 * W1/W2 use 64-byte elements, W4 256-byte ones; W3 and W5 are skipped (an
 * rte_mempool holds objects of one fixed size only).
 *
 * The EAL is started without huge pages, PCI or shared config, so it needs no
 * privileges and leaves no files behind:
 *   --no-huge -m MB --no-pci --no-shconf --no-telemetry --log-level=error
 *   --file-prefix=mpbench<pid> --lcores=(0-1)@(CPUS)
 * (--in-memory would be the usual way to leave nothing behind, but DPDK 22.11
 * refuses it together with --no-huge: "Option --legacy-mem is not compatible
 * with --in-memory".) Two lcores, 0 (the main thread) and 1, both allowed on
 * every CPU this process may use, as the other programs' threads are: W4's
 * producer is the main lcore and its consumer is lcore 1 (started with
 * rte_eal_remote_launch()), so both use their per-lcore caches. If
 * rte_eal_init() fails the workload is skipped with DPDK's reason.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const impls[] = {"dpdk-cache", "dpdk-nocache"};

#define DPDK_CACHE 256u

static void die(const char *what)
{
    fprintf(stderr, "bench_dpdk: %s failed: %s\n", what, rte_strerror(rte_errno));
    exit(1);
}

/* "0-1" or "0,2,5": the CPUs this process may run on. */
static void cpu_list(char *buf, size_t len)
{
    cpu_set_t set;
    size_t used = 0;
    buf[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        snprintf(buf, len, "0");
        return;
    }
    for (int c = 0; c < CPU_SETSIZE && used + 8 < len; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set))
            e++;
        int w = e > c ? snprintf(buf + used, len - used, "%s%d-%d", used ? "," : "", c, e)
                      : snprintf(buf + used, len - used, "%s%d", used ? "," : "", c);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
        c = e;
    }
    if (used == 0)
        snprintf(buf, len, "0");
}

static char runtime_dir[4096];

static void eal_stop(void)
{
    rte_eal_cleanup();
    /* --no-shconf leaves nothing in the runtime directory; remove it (only
     * if empty, and it is this process's own: --file-prefix). */
    if (runtime_dir[0] != '\0')
        rmdir(runtime_dir);
}

/* Starts the EAL with enough heap for `elems` elements of `elt_size`; on
 * failure prints SKIP with DPDK's reason and exits. */
static void eal_start(const bench_opts *o, size_t elems, size_t elt_size)
{
    char prog[] = "bench_dpdk";
    char mem[32], prefix[64], lcores[512], cpus[400];
    size_t obj = rte_mempool_calc_obj_size((uint32_t)elt_size, 0, NULL);
    size_t mb = (elems * obj + elems * obj / 8) / (1u << 20) + 128;
    snprintf(mem, sizeof mem, "%zu", mb);
    snprintf(prefix, sizeof prefix, "--file-prefix=mpbench%ld", (long)getpid());
    cpu_list(cpus, sizeof cpus);
    snprintf(lcores, sizeof lcores, "--lcores=(0-1)@(%s)", cpus);
    char *args[] = {prog,        "--no-huge",      "-m",       mem,    "--no-pci", "--no-shconf",
                    "--no-telemetry", "--log-level=error", prefix, lcores, NULL};
    int argc = (int)(sizeof args / sizeof args[0]) - 1;

    if (rte_eal_init(argc, args) < 0) {
        char reason[256];
        snprintf(reason, sizeof reason, "rte_eal_init failed: %s", rte_strerror(rte_errno));
        const char *dir = rte_eal_get_runtime_dir(); /* may exist already: ours (--file-prefix) */
        if (dir != NULL && strstr(dir, "mpbench") != NULL)
            rmdir(dir);
        bench_skip(o, reason);
    }
    snprintf(runtime_dir, sizeof runtime_dir, "%s", rte_eal_get_runtime_dir());
    if (rte_lcore_count() < 2) {
        eal_stop();
        bench_skip(o, "the EAL started with fewer than 2 lcores");
    }
}

static struct rte_mempool *pool_make(unsigned cache, size_t elems, size_t elt_size)
{
    struct rte_mempool *mp = rte_mempool_create("mpbench", (unsigned)elems, (unsigned)elt_size, cache, 0,
                                                NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
    if (mp == NULL)
        die("rte_mempool_create");
    return mp;
}

/* Always inline: rte_mempool_get is inline code, and a call around it would
 * be counted as DPDK's (GCC stopped inlining get1 at four call sites). */
__attribute__((always_inline)) static inline void *get1(struct rte_mempool *mp)
{
    void *p;
    if (rte_mempool_get(mp, &p) != 0) {
        fprintf(stderr, "bench_dpdk: rte_mempool_get: pool empty\n");
        exit(1);
    }
    return p;
}

/* Elements beyond the live ones that the per-lcore caches may hold
 * (each cache can grow to 1.5 times its size before it flushes). */
static size_t cache_slack(unsigned cache)
{
    return cache == 0 ? 0 : 2 * (3 * (size_t)cache / 2 + 1) + 64;
}

/* W1 and W2: bench.h's loops over these. */
#define MEMPOOL_GET(mp) get1(mp)
#define MEMPOOL_PUT(mp, p) rte_mempool_put(mp, p)

static BENCH_W4_CALL int bench_w4_alloc(struct rte_mempool *mp, void **p) { return rte_mempool_get(mp, p); }
static BENCH_W4_CALL void bench_w4_free(struct rte_mempool *mp, void *p) { rte_mempool_put(mp, p); }

/* W4: the main lcore is A (allocates), lcore 1 is B (frees). */
struct w4_ctx {
    bench_ring ring;
    struct rte_mempool *mp;
    long n;
};

static int w4_consumer(void *arg)
{
    struct w4_ctx *c = arg;
    for (long i = 0; i < c->n; i++) {
        void *p = bench_ring_pop(&c->ring);
        bench_touch(p);
        bench_w4_free(c->mp, p);
    }
    return 0;
}

static void w4(const bench_opts *o, struct rte_mempool *mp)
{
    struct w4_ctx *c = aligned_alloc(64, sizeof *c);
    if (c == NULL) {
        fprintf(stderr, "bench_dpdk: aligned_alloc failed\n");
        exit(1);
    }
    bench_ring_init(&c->ring);
    c->mp = mp;
    c->n = o->n > 0 ? o->n : BENCH_W4_N;
    unsigned worker = rte_get_next_lcore(rte_lcore_id(), 1, 0);
    if (worker >= RTE_MAX_LCORE || rte_eal_remote_launch(w4_consumer, c, worker) != 0) {
        fprintf(stderr, "bench_dpdk: cannot launch the consumer lcore\n");
        exit(1);
    }

    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < c->n; i++) {
        void *p;
        /* Packets in flight are bounded by the ring, but the consumer's cache
         * may hold freed ones back for a while: wait for them, never fail. */
        while (bench_w4_alloc(mp, &p) != 0)
            bench_yield();
        bench_touch(p);
        bench_ring_push(&c->ring, p);
    }
    rte_eal_wait_lcore(worker);
    uint64_t t1 = bench_now_ns();

    long n = c->n;
    free(c);
    bench_result(o, n, t1 - t0, NULL);
}

int main(int argc, char **argv)
{
    bench_opts o;
    bench_args(argc, argv, impls, sizeof impls / sizeof impls[0], &o);
    unsigned cache = strcmp(o.impl, "dpdk-cache") == 0 ? DPDK_CACHE : 0;

    size_t elems, elt_size;
    switch (o.workload[1]) {
    case '1':
        elt_size = BENCH_OBJ_SIZE;
        elems = 4095;
        break;
    case '2':
        elt_size = BENCH_OBJ_SIZE;
        elems = (size_t)(o.n > 0 ? o.n : BENCH_W2_N) + cache_slack(cache);
        break;
    case '4':
        elt_size = BENCH_PACKET_SIZE;
        elems = 16383; /* ring (1024) + two caches, with room to spare */
        break;
    default:
        bench_skip(&o, "rte_mempool holds objects of one fixed size only (W3/W5 need variable sizes)");
        return 0;
    }

    eal_start(&o, elems, elt_size);
    struct rte_mempool *mp = pool_make(cache, elems, elt_size);
    switch (o.workload[1]) {
    case '1':
        BENCH_RUN_W1(&o, mp, MEMPOOL_GET, MEMPOOL_PUT, NULL);
        break;
    case '2':
        BENCH_RUN_W2(&o, mp, MEMPOOL_GET, MEMPOOL_PUT, NULL);
        break;
    case '4':
        w4(&o, mp);
        break;
    }
    rte_mempool_free(mp);
    eal_stop();
    return 0;
}
