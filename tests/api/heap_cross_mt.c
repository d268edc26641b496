/* Eight threads freeing each other's allocations (public header only).
 *
 * Every thread has an inbox, a bounded ring the other seven push into.
 * Each thread allocates blocks of mixed sizes (mostly 16..2048 B, some
 * aligned, one in 200 a chunk of its own of 128 KiB..1 MiB), fills each
 * with a pattern that names it, and pushes it to a random other thread's
 * inbox; between its own allocations, and after them until every block of
 * every thread is freed, it empties its inbox: it checks each block's
 * pattern and mp_free's it. So every free is a cross-thread free, through
 * mp_free, of a block another thread's cache may still be full of.
 *
 * After joining: the heap's counters are exact (allocs = frees = blocks
 * made, nothing in use), and trim gives (nearly) every byte back: the
 * threads' caches were retired at their exit. Cases: a created heap, and
 * the default heap (its counters compared as differences). Fewer blocks
 * under a sanitizer or memcheck. No sleeps: a thread that finds an inbox
 * full empties its own and yields. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "heap.h"
#include "threads.h"

#include <mpool.h>

enum { THREADS = 8, INBOX = 256 };

typedef struct block {
    char *p;
    size_t size;
    uint64_t seed; /* origin thread << 32 | sequence */
} block;

typedef struct inbox {
    pthread_mutex_t lock;
    block ring[INBOX];
    size_t head, tail; /* free-running */
} inbox;

static struct {
    mp_heap *h;
    size_t per_thread;
    inbox in[THREADS];
    atomic_size_t freed;          /* blocks freed, by all threads */
    atomic_size_t bad;            /* patterns that did not match */
    atomic_size_t own;            /* blocks a thread freed that it had made itself (must stay 0) */
    atomic_size_t failed;         /* allocations that returned NULL */
} g;

static bool inbox_push(inbox *b, block x)
{
    pthread_mutex_lock(&b->lock);
    bool ok = b->tail - b->head < INBOX;
    if (ok)
        b->ring[b->tail++ % INBOX] = x;
    pthread_mutex_unlock(&b->lock);
    return ok;
}

static bool inbox_pop(inbox *b, block *x)
{
    pthread_mutex_lock(&b->lock);
    bool ok = b->tail != b->head;
    if (ok)
        *x = b->ring[b->head++ % INBOX];
    pthread_mutex_unlock(&b->lock);
    return ok;
}

/* Bytes of a block that carry its pattern: all of a small one, the first
 * and last 4 KiB of a large one. */
static void mark(const block *b)
{
    if (b->size <= 8 * KiB) {
        heap_fill(b->p, b->size, b->seed);
    } else {
        heap_fill(b->p, 4 * KiB, b->seed);
        heap_fill(b->p + b->size - 4 * KiB, 4 * KiB, b->seed ^ 1);
    }
}

static bool marked(const block *b)
{
    if (b->size <= 8 * KiB)
        return heap_check_range(b->p, 0, b->size, b->seed) == SIZE_MAX;
    return heap_check_range(b->p, 0, 4 * KiB, b->seed) == SIZE_MAX &&
           heap_check_range(b->p + b->size - 4 * KiB, 0, 4 * KiB, b->seed ^ 1) == SIZE_MAX;
}

/* Empties (at most `max` of) my inbox: checks and frees. */
static size_t drain(unsigned me, size_t max)
{
    size_t n = 0;
    block b;
    while (n < max && inbox_pop(&g.in[me], &b)) {
        if (!marked(&b))
            atomic_fetch_add(&g.bad, 1);
        if (b.seed >> 32 == me)
            atomic_fetch_add(&g.own, 1);
        mp_free(b.p);
        atomic_fetch_add(&g.freed, 1);
        n++;
    }
    return n;
}

static void *thread_main(void *arg)
{
    unsigned me = *(const unsigned *)arg;
    uint64_t rng = me + 1;
    for (size_t i = 0; i < g.per_thread; i++) {
        uint64_t r = check_mix(++rng + ((uint64_t)me << 40));
        block b = { .seed = (uint64_t)me << 32 | i };
        if (r % 200 == 0) {
            b.size = 128 * KiB + (r >> 8) % (896 * KiB);
            b.p = mp_heap_alloc(g.h, b.size);
        } else if (r % 10 == 1) {
            b.size = 16 + (r >> 8) % 2033;
            b.p = mp_heap_alloc_aligned(g.h, b.size, 64);
        } else {
            b.size = 16 + (r >> 8) % 2033;
            b.p = mp_heap_alloc(g.h, b.size);
        }
        if (!b.p) {
            atomic_fetch_add(&g.failed, 1);
            continue;
        }
        mark(&b);
        unsigned to = (me + 1 + (unsigned)((r >> 32) % (THREADS - 1))) % THREADS;
        while (!inbox_push(&g.in[to], b))
            if (drain(me, INBOX) == 0)
                sched_yield();
        drain(me, 2);
    }
    /* Until every thread's every block is freed, mine to free may still come. */
    size_t total = THREADS * g.per_thread;
    while (atomic_load(&g.freed) + atomic_load(&g.failed) < total)
        if (drain(me, INBOX) == 0)
            sched_yield();
    return NULL;
}

static void run(mp_heap *h, bool created)
{
    g.h = h;
    g.per_thread = check_tool_attached() || CHECK_TSAN ? 3000 : 40000;
    atomic_init(&g.freed, 0);
    atomic_init(&g.bad, 0);
    atomic_init(&g.own, 0);
    atomic_init(&g.failed, 0);
    for (int i = 0; i < THREADS; i++) {
        REQUIRE(pthread_mutex_init(&g.in[i].lock, NULL) == 0);
        g.in[i].head = g.in[i].tail = 0;
    }
    mp_stats before = heap_stats(h);
    unsigned ids[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        ids[i] = i;
    threads_run_together(THREADS, thread_main, ids, sizeof *ids);
    size_t total = THREADS * g.per_thread;
    CHECK_EQ(atomic_load(&g.failed), 0);
    CHECK_EQ(atomic_load(&g.freed), total);
    CHECK_EQ(atomic_load(&g.bad), 0);
    CHECK_EQ(atomic_load(&g.own), 0);
    mp_stats after = heap_stats(h);
    CHECK_EQ(after.allocs - before.allocs, total);
    CHECK_EQ(after.frees - before.frees, total);
    CHECK_EQ(after.objects_in_use, before.objects_in_use);
    CHECK_EQ(after.bytes_in_use, before.bytes_in_use);
    if (created) {
        HEAP_CHECK_EMPTY(h);
        HEAP_CHECK_TRIMMED(h);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_mutex_destroy(&g.in[i].lock);
}

static void test_created(void)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = "shared" });
    REQUIRE(h != NULL);
    run(h, true);
    mp_heap_destroy(h);
}

static void test_default(void) { run(mp_heap_default(), false); }

static const check_case cases[] = {
    CHECK_CASE(created, test_created),
    CHECK_CASE(default, test_default),
};

int main(int argc, char **argv)
{
    setenv("MPOOL_QUARANTINE", "0", 0); /* trim must give every free byte back */
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
