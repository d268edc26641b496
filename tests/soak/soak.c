/*
 * soak.c - hours of a mixed workload, watching memory: `make soak`
 * (SOAK_S seconds, default 7200). Not part of CTest.
 *
 *   soak [SECONDS]     (default: $SOAK_S, else 7200)
 *   SOAK_THREAD_ROUNDS=N   rounds before a thread retires (2000; 0: never)
 *
 * Four worker threads run rounds of what a server does with mpool:
 *   - connections: objects of a shared object pool (max_free set): 8,192
 *     per worker kept all along (a few replaced each round), others held a
 *     while, some handed to the next worker through a ring and put there;
 *   - packets: get_bulk and put_bulk on a capped pool;
 *   - requests: a thread-safe child arena of a shared server arena per
 *     request, with small and large allocations, strings and a cleanup,
 *     destroyed at the end; and a long-lived arena of the worker's, reset
 *     every round;
 *   - alerts: allocs and frees on a reserve over malloc;
 *   - blocks: a shared heap's allocations of 16 B to 64 KiB, a window per
 *     worker slot replaced at random (the slot's next thread frees what
 *     the last one left), and the default heap's short-lived ones;
 *   - pools made and destroyed, and the odd trim.
 * Workers retire after a number of rounds and new threads take their place,
 * so threads come and go all the time. Every object is stamped and checked.
 *
 * Every SECONDS/300 seconds (at least 1) the main thread samples the
 * resident set (/proc/self/statm) and the bytes the long-lived pools hold
 * from the OS (bytes_mapped of each), and prints a line with them and the
 * C library's heap in use (mallinfo2: shown, not judged, as it caches).
 * The first fifth of the run is warm-up. After it, the median of the last
 * tenth of the samples must be within 5% of the median of the first tenth,
 * for the resident set and for bytes_mapped: a leak, or memory that grows
 * with the threads that came and went, fails the run. At the end every
 * counter must balance.
 */
#define _GNU_SOURCE 1
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

enum {
    WORKERS = 4,
    THREAD_ROUNDS = 2000, /* then the thread retires and a new one starts */
    CONNS = 256,          /* held by a worker at most, besides its steady ones */
    STEADY = 8192,        /* connections each worker slot keeps for the whole run */
    RING = 1024,
    PACKET_CAP = 8192,
    BULK = 32,
    ALERTS = 16,
};

#define FREE_MARK 0x46524545u
#define OUT_MARK 0x2a4f5554u

typedef struct conn {
    uint32_t mark, owner;
    uint64_t seq;
    unsigned char body[240];
} conn;

typedef struct ring {
    _Alignas(64) atomic_size_t head;
    _Alignas(64) atomic_size_t tail;
    conn *slot[RING];
} ring;

static mp_objpool *conns, *packets;
static mp_arena *server;
static mp_reserve *alerts;
static mp_heap *blocks;
enum { WINDOW = 1024 };
static char *window[WORKERS][WINDOW]; /* each slot's live blocks, passed from thread to thread */
static size_t window_size[WORKERS][WINDOW];
static ring rings[WORKERS]; /* rings[i]: into worker slot i */
static atomic_bool stop;
static atomic_size_t errors;
static atomic_ullong total_ops, total_threads;

typedef struct worker {
    int slot;
    uint32_t gen; /* the thread's number, from 1 */
    uint64_t rng, seq, ops;
    conn *held[CONNS];
    size_t nheld;
    mp_arena *own;
    bool retired;
} worker;

static worker workers[WORKERS];
static pthread_t threads[WORKERS];
static conn *steady[WORKERS][STEADY]; /* passed from each thread of a slot to the next */
static unsigned long thread_rounds;   /* 0: threads never retire */
static pthread_mutex_t retire_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t retired = PTHREAD_COND_INITIALIZER;

static uint64_t next_rand(worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static void soak_error(const worker *w, const char *what)
{
    if (atomic_fetch_add(&errors, 1) < 10)
        fprintf(stderr, "soak: thread %u: %s (errno %d)\n", w->gen, what, errno);
}

static void conn_ctor(void *obj, void *arg)
{
    (void)arg;
    ((conn *)obj)->mark = FREE_MARK;
}

static void conn_stamp(worker *w, conn *c)
{
    if (c->mark != FREE_MARK)
        soak_error(w, "a connection handed out while not free");
    c->mark = OUT_MARK;
    c->owner = w->gen;
    c->seq = ++w->seq;
    memset(c->body, (int)(c->seq & 0xff), sizeof c->body);
}

static void conn_check(worker *w, conn *c)
{
    bool ok = c->mark == OUT_MARK;
    for (size_t i = 0; ok && i < sizeof c->body; i += 37)
        ok = c->body[i] == (unsigned char)(c->seq & 0xff);
    if (!ok)
        soak_error(w, "a connection damaged while out");
    c->mark = FREE_MARK;
}

static void conn_round(worker *w)
{
    uint64_t r = next_rand(w);
    size_t want = r % 64;
    for (size_t i = 0; i < want && w->nheld < CONNS; i++) {
        conn *c = mp_objpool_get(conns);
        if (!c) {
            soak_error(w, "get");
            return;
        }
        conn_stamp(w, c);
        w->held[w->nheld++] = c;
    }
    size_t give = w->nheld ? (r >> 8) % (w->nheld + 1) : 0;
    ring *next = &rings[(w->slot + 1) % WORKERS];
    for (size_t i = 0; i < give; i++) {
        conn *c = w->held[--w->nheld];
        size_t t = atomic_load_explicit(&next->tail, memory_order_relaxed);
        if ((r >> (16 + i % 32)) & 1 &&
            t - atomic_load_explicit(&next->head, memory_order_acquire) < RING) {
            next->slot[t % RING] = c; /* the next worker checks and puts it */
            atomic_store_explicit(&next->tail, t + 1, memory_order_release);
            continue;
        }
        conn_check(w, c);
        mp_objpool_put(conns, c);
    }
}

/* Checks and puts what the previous worker slot handed over. Several
 * threads may take turns at one slot, one at a time: the handover
 * between them is a join, so head and tail stay single-consumer and
 * single-producer. */
static void conn_drain(worker *w)
{
    ring *in = &rings[w->slot];
    size_t h = atomic_load_explicit(&in->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&in->tail, memory_order_acquire);
    for (; h != t; h++) {
        conn *c = in->slot[h % RING];
        conn_check(w, c);
        mp_objpool_put(conns, c);
    }
    atomic_store_explicit(&in->head, h, memory_order_release);
}

static void packet_round(worker *w)
{
    void *batch[BULK];
    size_t n = mp_objpool_get_bulk(packets, batch, 1 + next_rand(w) % BULK);
    for (size_t i = 0; i < n; i++)
        memset(batch[i], 0x70, 64);
    mp_objpool_put_bulk(packets, batch, n);
}

static void count_cleanup(void *arg) { ++*(size_t *)arg; }

static void request_round(worker *w)
{
    uint64_t r = next_rand(w);
    mp_arena *req = mp_arena_create(server, &(mp_arena_opts){ .name = "request", .flags = MP_THREADSAFE });
    if (!req) {
        soak_error(w, "request arena");
        return;
    }
    size_t cleaned = 0;
    if (mp_cleanup_push(req, count_cleanup, &cleaned) != 0)
        soak_error(w, "cleanup");
    for (int i = 0; i < 40; i++) {
        size_t n = 16 + (r >> (i % 48)) % 2000;
        char *p = mp_alloc(req, n);
        if (!p) {
            soak_error(w, "alloc");
            break;
        }
        memset(p, i, n);
    }
    if (r & 1) {
        char *big = mp_alloc(req, 50000 + (r >> 20) % 200000);
        if (!big)
            soak_error(w, "large alloc");
        else
            big[0] = 1;
    }
    if (!mp_printf(req, "GET /%llu HTTP/1.1", (unsigned long long)w->seq))
        soak_error(w, "printf");
    mp_arena_destroy(req);
    if (cleaned != 1)
        soak_error(w, "the request's cleanup did not run once");

    /* The worker's own arena, reset every round. */
    for (int i = 0; i < 20; i++)
        if (!mp_alloc(w->own, 100 + (size_t)i * 50))
            soak_error(w, "own arena");
    mp_arena_reset(w->own);
}

static void alert_round(worker *w)
{
    void *held[ALERTS];
    size_t n = 0;
    for (size_t i = 0; i < 1 + next_rand(w) % ALERTS; i++) {
        void *a = mp_reserve_alloc(alerts, 0);
        if (a) {
            memset(a, 0x41, 128);
            held[n++] = a;
        }
    }
    while (n)
        mp_reserve_free(alerts, held[--n]);
}

static void block_fill(char *p, size_t size, uint64_t stamp) { memset(p, (int)(stamp & 0xff), size < 64 ? size : 64); }

static void block_check(worker *w, const char *p, size_t size)
{
    for (size_t i = 1; i < (size < 64 ? size : 64); i++)
        if (p[i] != p[0]) {
            soak_error(w, "heap block changed");
            return;
        }
}

static void block_round(worker *w)
{
    for (int i = 0; i < 16; i++) {
        uint64_t r = next_rand(w);
        size_t k = r % WINDOW, size = 16 + (r >> 16) % (r % 16 ? 2048 : 65536);
        char **slot = &window[w->slot][k];
        if (*slot) {
            block_check(w, *slot, window_size[w->slot][k]);
            mp_free(*slot);
        }
        *slot = mp_heap_alloc(blocks, size);
        if (!*slot) {
            soak_error(w, "heap alloc");
            continue;
        }
        window_size[w->slot][k] = size;
        block_fill(*slot, size, r >> 40);
    }
    char *d = mp_heap_alloc(mp_heap_default(), 1 + next_rand(w) % 300);
    if (d)
        d[0] = 1;
    mp_free(d);
}

static void churn_round(worker *w)
{
    uint64_t r = next_rand(w);
    if (r % 8 == 0) { /* a short-lived pool */
        mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "temp", .obj_size = 16 + r % 500 });
        if (!p) {
            soak_error(w, "temporary pool");
            return;
        }
        void *o[50];
        size_t n = mp_objpool_get_bulk(p, o, 50);
        mp_objpool_put_bulk(p, o, n);
        mp_objpool_destroy(p);
    }
    if (r % 64 == 1)
        mp_objpool_trim(conns);
}

/* The slot's steady connections: checked, and a few replaced. */
static void steady_round(worker *w)
{
    uint64_t r = next_rand(w);
    conn **set = steady[w->slot];
    for (int i = 0; i < 8; i++) {
        size_t k = (size_t)(r >> (i * 8)) % STEADY;
        conn_check(w, set[k]);
        mp_objpool_put(conns, set[k]);
        set[k] = mp_objpool_get(conns);
        if (!set[k]) {
            soak_error(w, "get");
            abort();
        }
        conn_stamp(w, set[k]);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (unsigned long round = 0; (!thread_rounds || round < thread_rounds) &&
                                  !atomic_load_explicit(&stop, memory_order_relaxed);
         round++) {
        steady_round(w);
        conn_round(w);
        conn_drain(w);
        packet_round(w);
        request_round(w);
        alert_round(w);
        block_round(w);
        churn_round(w);
        w->ops++;
        atomic_fetch_add_explicit(&total_ops, 1, memory_order_relaxed);
    }
    /* Give back what it holds (its ring is drained by its successor). */
    while (w->nheld) {
        conn *c = w->held[--w->nheld];
        conn_check(w, c);
        mp_objpool_put(conns, c);
    }
    pthread_mutex_lock(&retire_lock);
    w->retired = true;
    pthread_cond_signal(&retired);
    pthread_mutex_unlock(&retire_lock);
    return NULL;
}

static void start_worker(int slot)
{
    worker *w = &workers[slot];
    mp_arena *own = w->own;
    uint32_t gen = (uint32_t)atomic_fetch_add(&total_threads, 1) + 1;
    *w = (worker){ .slot = slot, .gen = gen, .rng = check_mix(0x50a4u + gen) | 1, .own = own };
    REQUIRE(pthread_create(&threads[slot], NULL, worker_main, w) == 0);
}

/* ------------------------------------------------------------- sampling */

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Bytes the C library's heap hands out now (0 where it cannot tell). */
static size_t heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    return mallinfo2().uordblks;
#else
    return 0;
#endif
}

static size_t mapped_bytes(void)
{
    mp_stats s;
    size_t total = 0;
    if (mp_objpool_stats(conns, &s) == 0)
        total += s.bytes_mapped;
    if (mp_objpool_stats(packets, &s) == 0)
        total += s.bytes_mapped;
    if (mp_arena_stats(server, &s) == 0)
        total += s.bytes_mapped;
    if (mp_reserve_stats(alerts, &s) == 0)
        total += s.bytes_mapped;
    if (mp_heap_stats(blocks, &s) == 0)
        total += s.bytes_mapped;
    return total;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[from, to). */
static size_t median_of(const size_t *v, size_t from, size_t to)
{
    size_t n = to - from, *tmp = malloc(n * sizeof *tmp);
    REQUIRE(tmp != NULL);
    memcpy(tmp, v + from, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_size);
    size_t m = tmp[n / 2];
    free(tmp);
    return m;
}

/* Fails when the median of the last tenth of the samples after warm-up is
 * more than 5% over the median of the first tenth. */
static void check_growth(const char *what, const size_t *v, size_t from, size_t n)
{
    size_t span = n - from, tenth = span / 10 ? span / 10 : 1;
    if (span < 2) {
        printf("soak: too few samples after warm-up to judge %s\n", what);
        check_failures++;
        return;
    }
    size_t first = median_of(v, from, from + tenth), last = median_of(v, n - tenth, n);
    double growth = first ? ((double)last - (double)first) / (double)first * 100 : 0;
    printf("soak: %s after warm-up: %.1f MiB at first, %.1f MiB at the end (medians of %zu samples): %+.2f%%\n",
           what, first / 1048576.0, last / 1048576.0, tenth, growth);
    if (growth > 5) {
        printf("soak: FAILED: %s grew by more than 5%%\n", what);
        check_failures++;
    }
}

int main(int argc, char **argv)
{
    const char *env = getenv("SOAK_S");
    double seconds = argc > 1 ? atof(argv[1]) : env ? atof(env) : 7200;
    REQUIRE(seconds >= 10);
    double every = seconds / 300 >= 1 ? seconds / 300 : 1;

    conns = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "conns", .obj_size = sizeof(conn), .max_free = 2048,
                                                        .ctor = conn_ctor });
    packets = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "packets", .obj_size = 2048,
                                                          .max_live = PACKET_CAP });
    server = mp_arena_create(NULL, &(mp_arena_opts){ .name = "server", .flags = MP_THREADSAFE });
    alerts = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "alerts", .min_reserved = 64, .elem_size = 128 });
    blocks = mp_heap_create(NULL, &(mp_heap_opts){ .name = "blocks" });
    REQUIRE(conns && packets && server && alerts && blocks);
    const char *tr = getenv("SOAK_THREAD_ROUNDS");
    thread_rounds = tr ? strtoul(tr, NULL, 10) : THREAD_ROUNDS;
    for (int i = 0; i < WORKERS; i++) {
        workers[i].own = mp_arena_create(NULL, &(mp_arena_opts){ .name = "worker" });
        REQUIRE(workers[i].own != NULL);
        workers[i].slot = i;
        workers[i].gen = 0;
        for (int k = 0; k < STEADY; k++) {
            steady[i][k] = mp_objpool_get(conns);
            REQUIRE(steady[i][k] != NULL);
            conn_stamp(&workers[i], steady[i][k]);
        }
    }
    for (int i = 0; i < WORKERS; i++)
        start_worker(i);

    size_t cap = 256, n = 0, warm = 0;
    size_t *rss = malloc(cap * sizeof *rss), *mapped = malloc(cap * sizeof *mapped);
    REQUIRE(rss && mapped);
    double t0 = now_s(), next = t0 + every;
    printf("soak: %d workers for %.0f s, a sample every %.0f s, warm-up %.0f s\n", WORKERS, seconds, every,
           seconds / 5);
    printf("%8s %10s %12s %10s %10s %12s\n", "time s", "RSS MiB", "mapped MiB", "heap MiB", "threads", "rounds");
    while (now_s() < t0 + seconds) {
        /* Until the next sample: replace workers as they retire. */
        pthread_mutex_lock(&retire_lock);
        for (;;) {
            for (int i = 0; i < WORKERS; i++) {
                if (workers[i].retired) {
                    pthread_mutex_unlock(&retire_lock);
                    REQUIRE(pthread_join(threads[i], NULL) == 0);
                    start_worker(i);
                    pthread_mutex_lock(&retire_lock);
                }
            }
            if (now_s() >= next)
                break;
            double until = next;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts); /* the condvar's clock */
            double wait = until - now_s();
            ts.tv_sec += (time_t)wait;
            ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&retired, &retire_lock, &ts);
        }
        pthread_mutex_unlock(&retire_lock);
        next += every;
        if (n == cap) {
            cap *= 2;
            rss = realloc(rss, cap * sizeof *rss);
            mapped = realloc(mapped, cap * sizeof *mapped);
            REQUIRE(rss && mapped);
        }
        rss[n] = rss_bytes();
        mapped[n] = mapped_bytes();
        double t = now_s() - t0;
        if (t < seconds / 5)
            warm = n + 1;
        printf("%8.0f %10.1f %12.1f %10.1f %10llu %12llu%s\n", t, rss[n] / 1048576.0, mapped[n] / 1048576.0,
               heap_bytes() / 1048576.0, (unsigned long long)atomic_load(&total_threads),
               (unsigned long long)atomic_load(&total_ops),
               t < seconds / 5 ? "  (warm-up)" : "");
        fflush(stdout);
        n++;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < WORKERS; i++)
        REQUIRE(pthread_join(threads[i], NULL) == 0);
    for (int i = 0; i < WORKERS; i++) { /* what is left in the rings, and the steady ones */
        workers[i].slot = i;
        conn_drain(&workers[i]);
        for (int k = 0; k < STEADY; k++) {
            conn_check(&workers[i], steady[i][k]);
            mp_objpool_put(conns, steady[i][k]);
        }
    }

    for (int i = 0; i < WORKERS; i++)
        for (int k = 0; k < WINDOW; k++)
            mp_free(window[i][k]);
    mp_stats b;
    REQUIRE(mp_heap_stats(blocks, &b) == 0);
    CHECK_EQ(b.objects_in_use, 0);
    CHECK_EQ(b.allocs, b.frees);
    mp_heap_destroy(blocks);
    check_growth("resident set", rss, warm, n);
    check_growth("bytes mapped by the pools", mapped, warm, n);
    mp_stats c, p, a;
    REQUIRE(mp_objpool_stats(conns, &c) == 0 && mp_objpool_stats(packets, &p) == 0 &&
            mp_reserve_stats(alerts, &a) == 0);
    CHECK_EQ(c.objects_in_use, 0);
    CHECK_EQ(c.allocs, c.frees);
    CHECK_EQ(p.objects_in_use, 0);
    CHECK_EQ(a.objects_in_use, 0);
    CHECK_EQ(a.reserve_level, 64);
    CHECK_EQ(atomic_load(&errors), 0);
    printf("soak: %.0f s, %llu threads, %llu rounds, %zu connections handed out, %zu alerts\n", seconds,
           (unsigned long long)atomic_load(&total_threads), (unsigned long long)atomic_load(&total_ops), c.allocs,
           a.allocs);
    mp_reserve_destroy(alerts);
    mp_objpool_destroy(conns);
    mp_objpool_destroy(packets);
    mp_arena_destroy(server);
    for (int i = 0; i < WORKERS; i++)
        mp_arena_destroy(workers[i].own);
    free(rss);
    free(mapped);
    int rc = check_done();
    printf("soak: %s\n", rc ? "FAILED" : "passed");
    return rc;
}
