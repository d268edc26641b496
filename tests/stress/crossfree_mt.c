/* Stress at scale: 32 threads x 50M operations each on shared object pools
 * and a reserve, with a quarter of everything freed by another thread than
 * the one that got it.
 *
 * Four thread-safe object pools (16, 64, 200 and 3000 bytes; the 200-byte
 * one capped with max_live and max_free) and a reserve whose source is a
 * fifth, capped pool (so the reserve really is used while other threads
 * hold the pool's objects). Each thread, with a random sequence of its
 * own, gets (get, get_bulk, mp_reserve_alloc) and gives back (put,
 * put_bulk, mp_free, mp_reserve_free), holding up to 64 items; one item in
 * four goes to another thread instead, through a single-producer,
 * single-consumer ring per pair of threads, and that thread checks and
 * frees it. An operation is one get or one give-back of one item (a bulk
 * call counts each item).
 *
 * Every item carries a stamp: the thread that got it, a sequence number, a
 * check word derived from both, and a fill. The getter checks the item was
 * marked free (handed out twice shows here) and stamps it; whoever frees
 * it checks the whole stamp first. Capped pools count their objects out
 * in a shared counter that must never pass max_live. At the end the
 * counters balance in every pool (allocs == frees, nothing in use), the
 * reserve is back at its minimum with its source holding exactly the
 * reserve's elements, every object made is destroyed exactly once, and
 * trim gives every byte back.
 *
 * Size: MPOOL_STRESS_SCALE (a number, default 1) multiplies the operations
 * per thread: 1 is the full 50M (1.6G in all: about a minute on two
 * cores). Under a sanitizer the default scale is 1/100 (ASan) or 1/400
 * (TSan), to keep CI short; the variable overrides it. The thread count is
 * always 32. Seeds are fixed (thread i starts from check_mix(0xc705 + i))
 * and printed with any failure; nothing depends on timing. */
#define _GNU_SOURCE 1
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum {
    THREADS = 32,
    POOLS = 4,
    HOLD_MAX = 64,
    RING = 512, /* per pair of threads: a power of two */
    BULK_MAX = 8,
    CAP = 600,        /* max_live of the capped pool */
    SRC_CAP = 32,     /* max_live of the reserve's source pool */
    RESERVE_MIN = 16, /* min_reserved */
};
#define FULL_OPS 50000000ull

#define FREE_MARK 0x46524545u /* "FREE": set by the ctor and before every give-back */
#define OUT_MARK 0x2a4f5554u  /* "*OUT": set by the getter */

static const size_t sizes[POOLS + 1] = { 16, 64, 200, 3000, 48 }; /* the last: the reserve's source */

/* The head of every item (the smallest is 16 bytes: mark, tid, seq). */
typedef struct item {
    uint32_t mark;
    uint16_t tid;
    uint16_t kind; /* 0..POOLS-1: that pool; POOLS: the reserve */
    uint64_t seq;
} item;

typedef struct ring {
    _Alignas(64) atomic_size_t head;
    _Alignas(64) atomic_size_t tail;
    item *slot[RING];
} ring;

typedef struct shared {
    mp_objpool *pools[POOLS + 1];
    mp_reserve *reserve;
    uint64_t ops; /* per thread */
    ring rings[THREADS][THREADS]; /* [from][to] */
    pthread_barrier_t done;
    atomic_size_t capped_out, over_cap;
    atomic_size_t errors;
    atomic_size_t ctor, dtor;
    atomic_size_t handed_off;
} shared;

static shared sh;

typedef struct worker {
    uint32_t id;
    uint64_t seed, rng, seq;
    uint64_t ops, gets, frees;
    item *held[HOLD_MAX];
    size_t nheld;
} worker;

static worker workers[THREADS];

static uint64_t next_rand(worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static void fail(worker *w, const char *what, const item *it)
{
    if (atomic_fetch_add(&sh.errors, 1) >= 10)
        return;
    if (it)
        fprintf(stderr, "thread %u (seed %#llx), op %llu: %s: item %p mark %#x tid %u kind %u seq %llu\n", w->id,
                (unsigned long long)w->seed, (unsigned long long)w->ops, what, (const void *)it, it->mark, it->tid,
                it->kind, (unsigned long long)it->seq);
    else
        fprintf(stderr, "thread %u (seed %#llx), op %llu: %s (errno %d)\n", w->id, (unsigned long long)w->seed,
                (unsigned long long)w->ops, what, errno);
}

static void obj_ctor(void *obj, void *arg)
{
    (void)arg;
    ((item *)obj)->mark = FREE_MARK;
    atomic_fetch_add_explicit(&sh.ctor, 1, memory_order_relaxed);
}

static void obj_dtor(void *obj, void *arg)
{
    (void)arg;
    if (((item *)obj)->mark != FREE_MARK)
        atomic_fetch_add(&sh.errors, 1);
    atomic_fetch_add_explicit(&sh.dtor, 1, memory_order_relaxed);
}

static size_t size_of(unsigned kind) { return sizes[kind]; }

/* The rest of the item (up to 64 bytes) holds its check word, repeated:
 * check_mix of its seq and tid. */
static size_t fill_len(unsigned kind) { return size_of(kind) < 64 ? size_of(kind) : 64; }

static void took(worker *w, item *it, unsigned kind)
{
    /* A reserve's element may come from the reserve, which in checked
     * mode fills it: only objects are checked for the mark (an element
     * held twice shows when its stamp is checked). */
    if (kind < POOLS && it->mark != FREE_MARK)
        fail(w, "handed out while not free", it);
    it->mark = OUT_MARK;
    it->tid = (uint16_t)w->id;
    it->kind = (uint16_t)kind;
    it->seq = ++w->seq;
    uint64_t check = check_mix(it->seq ^ it->tid);
    for (size_t i = sizeof *it; i < fill_len(kind); i += 8)
        memcpy((char *)it + i, &check, 8);
    w->held[w->nheld++] = it;
    w->gets++;
    w->ops++;
}

/* Checks the stamp of an item got by thread tid; marks it free. */
static void verify(worker *w, item *it, uint32_t tid)
{
    bool ok = it->mark == OUT_MARK && it->tid == tid && it->kind <= POOLS;
    uint64_t check = check_mix(it->seq ^ it->tid), got;
    for (size_t i = sizeof *it; ok && i < fill_len(it->kind); i += 8) {
        memcpy(&got, (char *)it + i, 8);
        ok = got == check;
    }
    if (!ok)
        fail(w, "stamp damaged while out", it);
    it->mark = FREE_MARK;
}

static void give_back(worker *w, item *it, uint64_t r)
{
    w->frees++;
    w->ops++;
    if (it->kind == POOLS) {
        mp_reserve_free(sh.reserve, it);
        return;
    }
    if (it->kind == 2)
        atomic_fetch_sub_explicit(&sh.capped_out, 1, memory_order_relaxed);
    if (r & 1)
        mp_free(it);
    else
        mp_objpool_put(sh.pools[it->kind], it);
}

static void do_get(worker *w, uint64_t r)
{
    unsigned kind = (unsigned)((r >> 8) % (POOLS + 1));
    item *got[BULK_MAX];
    size_t n = 0;
    errno = 0;
    if (kind == POOLS) {
        got[0] = mp_reserve_alloc(sh.reserve, 0);
        n = got[0] != NULL;
        if (!n && errno != ENOMEM)
            fail(w, "reserve alloc failed without ENOMEM", NULL);
    } else if ((r >> 12) % 4 == 0) {
        size_t want = 1 + (r >> 16) % BULK_MAX;
        if (want > HOLD_MAX - w->nheld)
            want = HOLD_MAX - w->nheld;
        n = mp_objpool_get_bulk(sh.pools[kind], (void **)got, want);
        if (n < want && (kind != 2 || errno != ENOMEM))
            fail(w, "short get_bulk", NULL);
    } else {
        got[0] = mp_objpool_get(sh.pools[kind]);
        n = got[0] != NULL;
        if (!n && (kind != 2 || errno != ENOMEM))
            fail(w, "get failed", NULL);
    }
    if (kind == 2 && n && atomic_fetch_add_explicit(&sh.capped_out, n, memory_order_relaxed) + n > CAP)
        atomic_fetch_add(&sh.over_cap, 1);
    for (size_t i = 0; i < n; i++)
        took(w, got[i], kind);
}

static void do_give(worker *w, uint64_t r)
{
    size_t i = (size_t)(r >> 24) % w->nheld;
    item *it = w->held[i];
    w->held[i] = w->held[--w->nheld];
    if ((r >> 4) % 4 == 0) { /* to another thread */
        uint32_t to = (uint32_t)((w->id + 1 + (r >> 40) % (THREADS - 1)) % THREADS);
        ring *q = &sh.rings[w->id][to];
        size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (t - atomic_load_explicit(&q->head, memory_order_acquire) < RING) {
            q->slot[t % RING] = it;
            atomic_store_explicit(&q->tail, t + 1, memory_order_release); /* pairs with drain's acquire */
            atomic_fetch_add_explicit(&sh.handed_off, 1, memory_order_relaxed);
            return;
        }
    }
    verify(w, it, w->id);
    if (it->kind < POOLS && (r >> 30) % 8 == 0) { /* put_bulk of this one and more of its pool */
        item *batch[BULK_MAX] = { it };
        size_t n = 1;
        for (size_t k = 0; k < w->nheld && n < BULK_MAX;) {
            if (w->held[k]->kind == it->kind) {
                batch[n] = w->held[k];
                w->held[k] = w->held[--w->nheld];
                verify(w, batch[n], w->id);
                n++;
            } else {
                k++;
            }
        }
        if (it->kind == 2)
            atomic_fetch_sub_explicit(&sh.capped_out, n, memory_order_relaxed);
        mp_objpool_put_bulk(sh.pools[it->kind], (void *const *)batch, n);
        w->frees += n;
        w->ops += n;
        return;
    }
    give_back(w, it, r >> 33);
}

/* Checks and frees what other threads handed this one. */
static void drain(worker *w)
{
    for (uint32_t from = 0; from < THREADS; from++) {
        ring *q = &sh.rings[from][w->id];
        size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
        size_t t = atomic_load_explicit(&q->tail, memory_order_acquire); /* pairs with do_give's release */
        for (; h != t; h++) {
            item *it = q->slot[h % RING];
            verify(w, it, from);
            give_back(w, it, h);
        }
        atomic_store_explicit(&q->head, h, memory_order_release); /* pairs with do_give's acquire */
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    uint64_t n = 0;
    while (w->ops < sh.ops) {
        uint64_t r = next_rand(w);
        if (w->nheld == 0 || (w->nheld < HOLD_MAX && (r & 2)))
            do_get(w, r);
        else
            do_give(w, r);
        if ((++n & 31) == 0)
            drain(w);
    }
    while (w->nheld) {
        item *it = w->held[--w->nheld];
        verify(w, it, w->id);
        give_back(w, it, w->nheld);
    }
    pthread_barrier_wait(&sh.done); /* nobody hands off any more */
    drain(w);
    return NULL;
}

static double scale(void)
{
    const char *s = getenv("MPOOL_STRESS_SCALE");
    if (s && *s)
        return strtod(s, NULL);
#if defined(__SANITIZE_THREAD__)
    return 1.0 / 400;
#elif defined(__SANITIZE_ADDRESS__)
    return 1.0 / 100;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return 1.0 / 400;
#elif __has_feature(address_sanitizer)
    return 1.0 / 100;
#endif
#endif
    return 1;
}

int main(void)
{
    double sc = scale();
    REQUIRE(sc > 0);
    sh.ops = (uint64_t)(FULL_OPS * sc);
    if (sh.ops < 1000)
        sh.ops = 1000;
    for (unsigned k = 0; k <= POOLS; k++) {
        char name[16];
        snprintf(name, sizeof name, "cross%u", k);
        sh.pools[k] = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = name, .obj_size = sizes[k],
                                                                  .max_live = k == 2 ? CAP : k == POOLS ? SRC_CAP : 0,
                                                                  .max_free = k == 2 ? 256 : 0, .ctor = obj_ctor,
                                                                  .dtor = obj_dtor });
        REQUIRE(sh.pools[k] != NULL);
    }
    sh.reserve = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "cross-reserve", .min_reserved = RESERVE_MIN,
                                                              .elem_size = sizes[POOLS],
                                                              .alloc = mp_objpool_source_alloc,
                                                              .free = mp_objpool_source_free, .src = sh.pools[POOLS] });
    REQUIRE(sh.reserve != NULL);
    REQUIRE(pthread_barrier_init(&sh.done, NULL, THREADS) == 0);
    for (uint32_t i = 0; i < THREADS; i++) {
        uint64_t seed = check_mix(0xc705u + i) | 1;
        workers[i] = (worker){ .id = i, .seed = seed, .rng = seed };
    }
    threads_run_together(THREADS, worker_main, workers, sizeof *workers);
    pthread_barrier_destroy(&sh.done);

    uint64_t ops = 0, gets = 0, frees = 0;
    for (int i = 0; i < THREADS; i++) {
        ops += workers[i].ops;
        gets += workers[i].gets;
        frees += workers[i].frees;
    }
    size_t allocs = 0, puts = 0;
    for (unsigned k = 0; k < POOLS; k++) {
        mp_stats s;
        REQUIRE(mp_objpool_stats(sh.pools[k], &s) == 0);
        CHECK_EQ(s.objects_in_use, 0);
        CHECK_EQ(s.allocs, s.frees);
        allocs += s.allocs;
        puts += s.frees;
    }
    mp_stats rs, src;
    REQUIRE(mp_reserve_stats(sh.reserve, &rs) == 0);
    REQUIRE(mp_objpool_stats(sh.pools[POOLS], &src) == 0);
    CHECK_EQ(rs.objects_in_use, 0);
    CHECK_EQ(rs.allocs, rs.frees);
    CHECK_EQ(rs.reserve_level, RESERVE_MIN);
    CHECK_EQ(src.objects_in_use, RESERVE_MIN); /* the source has out exactly what the reserve holds */
    CHECK_EQ(allocs + rs.allocs, gets);
    CHECK_EQ(puts + rs.frees, frees);
    CHECK_EQ(gets, frees);
    CHECK(ops >= sh.ops * THREADS);
    CHECK(atomic_load(&sh.handed_off) > 0);
    CHECK_EQ(atomic_load(&sh.over_cap), 0);
    CHECK_EQ(atomic_load(&sh.errors), 0);
    printf("%d threads x %llu operations (%llu in all): %llu items, %zu handed to another thread, reserve used "
           "%zu times, source failed %zu times\n",
           THREADS, (unsigned long long)sh.ops, (unsigned long long)ops, (unsigned long long)gets,
           atomic_load(&sh.handed_off), rs.reserve_used, rs.failures);

    mp_reserve_destroy(sh.reserve);
    for (unsigned k = 0; k <= POOLS; k++) {
        mp_objpool_trim(sh.pools[k]);
        mp_stats s;
        REQUIRE(mp_objpool_stats(sh.pools[k], &s) == 0);
        CHECK_EQ(s.objects_in_use, 0);
        CHECK_EQ(s.bytes_mapped, 0); /* the exited threads' caches came back */
        mp_objpool_destroy(sh.pools[k]);
    }
    CHECK_EQ(atomic_load(&sh.ctor), atomic_load(&sh.dtor));
    CHECK_EQ(atomic_load(&sh.errors), 0);
    return check_done();
}
