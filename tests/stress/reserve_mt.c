/* Reserve stress: the mempool guarantee under contention. For
 * min_reserved in {1, 4, 64}, 4 x min_reserved threads each do `rounds`
 * rounds of: alloc with MP_WAIT_FOREVER, stamp the element, check the
 * stamp, free - on a source that fails every call after create, so only
 * the min_reserved elements made at create circulate, and three threads in
 * four are waiting at any time.
 *
 * Every element is checked while held: an owner table beside the elements
 * (an atomic exchange per element: it must go 0 -> me on alloc and me -> 0
 * on free) shows an element held by two threads at once deterministically,
 * and the stamp (thread id, round, a check word), written plainly, shows it
 * to TSan as a race as well. At the end everything balances: the level is
 * min_reserved again, nothing is in use, allocs == frees == threads x
 * rounds, every allocation came from the reserve, and the source still has
 * exactly the min_reserved elements out - nothing lost, nothing doubled.
 *
 * Then resize under load (the contract says resize is safe while other
 * threads alloc and free): 8 threads alloc (waiting without limit) and free
 * over a flaky source (64 calls fail, 64 succeed, ...) while another thread
 * resizes the reserve up and down; elements are made and given back all
 * the time, each with an owner word in a header before it. Every resize
 * returns 0 or ENOMEM; no element is held twice, none goes back to the
 * source while held, and at the end the books balance: the source has
 * exactly the reserve's level out, and that level is at most min_reserved.
 *
 * No timing is asserted. Usage: reserve_mt [rounds per thread], for every
 * min_reserved. Without an argument: the full run, 10000 rounds for every
 * min_reserved, except under TSan, where min_reserved 64 (256 threads, 2.56M
 * hand-offs through one contended mutex) runs 2000 rounds to stay well
 * inside CI's time; the normal and ASan builds run it in full. */
#define _GNU_SOURCE 1
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum { MIN_MAX = 64, THREADS_PER_ELEM = 4 };

typedef struct element {
    uint32_t tid;
    uint32_t round;
    uint64_t check;
    unsigned char fill[48];
} element;

/* ------------------------------------------------------------ the source */

/* Makes elements until `fail` is set (after create), then fails every call.
 * Remembers the elements it made, to tell an element's index. */
typedef struct source {
    atomic_bool fail;
    atomic_size_t calls;
    size_t made;               /* written before the threads start */
    element *elems[MIN_MAX];   /* likewise */
    atomic_size_t live;
    atomic_size_t bad_frees;
} source;

static void *src_alloc(void *arg)
{
    source *s = arg;
    atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
    if (atomic_load(&s->fail) || s->made == MIN_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    element *e = malloc(sizeof *e);
    REQUIRE(e != NULL);
    s->elems[s->made++] = e;
    atomic_fetch_add(&s->live, 1);
    return e;
}

static int index_of(const source *s, const void *e)
{
    for (size_t i = 0; i < s->made; i++)
        if (s->elems[i] == e)
            return (int)i;
    return -1;
}

static void src_free(void *elem, void *arg)
{
    source *s = arg;
    int i = index_of(s, elem);
    if (i < 0 || s->elems[i] == NULL) {
        atomic_fetch_add(&s->bad_frees, 1);
        return;
    }
    s->elems[i] = NULL; /* only at destroy, single-threaded */
    atomic_fetch_sub(&s->live, 1);
    free(elem);
}

/* --------------------------------------------------------------- workers */

typedef struct shared {
    mp_reserve *r;
    source *src;
    size_t rounds;
    atomic_uint owner[MIN_MAX]; /* 0, or 1 + the id of the thread holding element i */
    atomic_size_t errors;
} shared;

typedef struct worker {
    shared *sh;
    uint32_t id;
} worker;

static void fail(worker *w, const char *what, const void *e, size_t a, size_t b)
{
    if (atomic_fetch_add(&w->sh->errors, 1) < 10)
        fprintf(stderr, "thread %u: %s: element %p (%zu vs %zu)\n", w->id, what, e, a, b);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    const unsigned me = w->id + 1;
    for (uint32_t round = 0; round < sh->rounds; round++) {
        errno = 0;
        element *e = mp_reserve_alloc(sh->r, MP_WAIT_FOREVER);
        if (!e) {
            fail(w, "alloc failed", NULL, (size_t)errno, 0);
            continue;
        }
        int i = index_of(sh->src, e);
        if (i < 0) {
            fail(w, "not an element the source made", e, 0, 0);
            continue;
        }
        unsigned prev = atomic_exchange_explicit(&sh->owner[i], me, memory_order_relaxed);
        if (prev != 0)
            fail(w, "handed out while held by another thread", e, prev - 1, w->id);
        uint64_t check = check_mix(((uint64_t)w->id << 32) ^ round);
        e->tid = w->id;
        e->round = round;
        e->check = check;
        memset(e->fill, (int)(check & 0xff), sizeof e->fill);
        if ((round & 7) == 0)
            sched_yield(); /* hold it a while */
        bool ok = e->tid == w->id && e->round == round && e->check == check;
        for (size_t k = 0; ok && k < sizeof e->fill; k++)
            ok = e->fill[k] == (unsigned char)(check & 0xff);
        if (!ok)
            fail(w, "stamp changed while held", e, e->tid, w->id);
        prev = atomic_exchange_explicit(&sh->owner[i], 0, memory_order_relaxed);
        if (prev != me)
            fail(w, "owner changed while held", e, prev, me);
        mp_reserve_free(sh->r, e);
    }
    return NULL;
}

static void run(size_t min, size_t rounds)
{
    const size_t threads = THREADS_PER_ELEM * min;
    static source src;
    static shared sh;
    memset(&src, 0, sizeof src);
    memset(&sh, 0, sizeof sh);
    atomic_init(&src.fail, false);
    char name[32];
    snprintf(name, sizeof name, "stress-%zu", min);
    sh.r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = name, .min_reserved = min,
                                                       .elem_size = sizeof(element), .alloc = src_alloc,
                                                       .free = src_free, .src = &src });
    REQUIRE(sh.r != NULL);
    REQUIRE(src.made == min);
    atomic_store(&src.fail, true);
    sh.src = &src;
    sh.rounds = rounds;
    worker *w = calloc(threads, sizeof *w);
    REQUIRE(w != NULL);
    for (size_t i = 0; i < threads; i++)
        w[i] = (worker){ .sh = &sh, .id = (uint32_t)i };
    threads_run_together(threads, worker_main, w, sizeof *w);
    free(w);

    mp_stats s;
    REQUIRE(mp_reserve_stats(sh.r, &s) == 0);
    printf("%s: %zu threads x %zu rounds: allocs %zu, frees %zu, used %zu, waits %zu, timeouts %zu, "
           "source calls %zu (failures %zu), level %zu/%zu\n",
           name, threads, rounds, s.allocs, s.frees, s.reserve_used, s.waits, s.timeouts, atomic_load(&src.calls),
           s.failures, s.reserve_level, s.reserve_min);
    const size_t total = threads * rounds;
    CHECK_EQ(atomic_load(&sh.errors), 0);
    CHECK_EQ(s.reserve_level, min);
    CHECK_EQ(s.reserve_min, min);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.bytes_in_use, 0);
    CHECK_EQ(s.allocs, total);
    CHECK_EQ(s.frees, total);
    CHECK_EQ(s.reserve_used, total);
    CHECK_EQ(s.timeouts, 0);
    CHECK(s.waits <= total);
    CHECK(s.failures >= total); /* the source was asked first, every time */
    CHECK_EQ(atomic_load(&src.live), min); /* nothing lost, nothing made */
    for (size_t i = 0; i < min; i++)
        CHECK_EQ(atomic_load(&sh.owner[i]), 0);

    /* Each element is in the reserve exactly once: min distinct elements
     * come out, then nothing. */
    element *e[MIN_MAX];
    bool seen[MIN_MAX] = { false };
    for (size_t i = 0; i < min; i++) {
        e[i] = mp_reserve_alloc(sh.r, 0);
        int k = e[i] ? index_of(&src, e[i]) : -1;
        CHECK(k >= 0 && !seen[k]);
        if (k >= 0)
            seen[k] = true;
    }
    errno = 0;
    CHECK(mp_reserve_alloc(sh.r, 0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    for (size_t i = 0; i < min; i++)
        mp_reserve_free(sh.r, e[i]);
    mp_reserve_destroy(sh.r);
    CHECK_EQ(atomic_load(&src.live), 0);
    CHECK_EQ(atomic_load(&src.bad_frees), 0);
}

/* ------------------------------------------------- resize under load */

enum { RESIZE_WORKERS = 8, RESIZE_MAX = 16 };

#define BOX_LIVE 0x4c495645u /* "LIVE": made by the source, not given back */
#define BOX_DEAD 0x44454144u /* "DEAD" */

/* An element with a header the reserve never sees. */
typedef struct box {
    atomic_uint owner; /* 0, or 1 + the id of the thread holding it */
    uint32_t magic;
    uint64_t pad;
    element e;
} box;

static box *box_of(void *e) { return (box *)((char *)e - offsetof(box, e)); }

typedef struct flaky {
    atomic_size_t calls, live, made;
    atomic_size_t bad; /* give-backs of elements dead or held */
} flaky;

static void *flaky_alloc(void *arg)
{
    flaky *f = arg;
    if ((atomic_fetch_add(&f->calls, 1) >> 6) & 1) { /* 64 calls fail, 64 succeed, ... */
        errno = ENOMEM;
        return NULL;
    }
    box *b = malloc(sizeof *b);
    REQUIRE(b != NULL);
    atomic_init(&b->owner, 0);
    b->magic = BOX_LIVE;
    atomic_fetch_add(&f->live, 1);
    atomic_fetch_add(&f->made, 1);
    return &b->e;
}

static void flaky_free(void *elem, void *arg)
{
    flaky *f = arg;
    box *b = box_of(elem);
    unsigned owner = atomic_load_explicit(&b->owner, memory_order_relaxed);
    if (b->magic != BOX_LIVE || owner != 0) {
        if (atomic_fetch_add(&f->bad, 1) < 10)
            fprintf(stderr, "source: give-back of %p: magic %#x, held by %u\n", elem, b->magic, owner);
        return;
    }
    b->magic = BOX_DEAD;
    atomic_fetch_sub(&f->live, 1);
    free(b);
}

typedef struct resize_shared {
    mp_reserve *r;
    size_t rounds;
    atomic_size_t errors;
    atomic_size_t workers_left;
    atomic_size_t resizes, resize_enomem;
    pthread_barrier_t start;
} resize_shared;

typedef struct resize_worker {
    resize_shared *sh;
    uint32_t id;
} resize_worker;

static void resize_fail(resize_shared *sh, uint32_t id, const char *what, const void *e, size_t a, size_t b)
{
    if (atomic_fetch_add(&sh->errors, 1) < 10)
        fprintf(stderr, "resize phase, thread %u: %s: element %p (%zu vs %zu)\n", id, what, e, a, b);
}

static void *resize_worker_main(void *arg)
{
    resize_worker *w = arg;
    resize_shared *sh = w->sh;
    const unsigned me = w->id + 1;
    pthread_barrier_wait(&sh->start);
    for (uint32_t round = 0; round < sh->rounds; round++) {
        errno = 0;
        element *e = mp_reserve_alloc(sh->r, MP_WAIT_FOREVER);
        if (!e) {
            resize_fail(sh, w->id, "alloc failed", NULL, (size_t)errno, 0);
            continue;
        }
        box *b = box_of(e);
        if (b->magic != BOX_LIVE)
            resize_fail(sh, w->id, "handed out an element the source has back", e, b->magic, BOX_LIVE);
        unsigned prev = atomic_exchange_explicit(&b->owner, me, memory_order_relaxed);
        if (prev != 0)
            resize_fail(sh, w->id, "handed out while held by another thread", e, prev - 1, w->id);
        uint64_t check = check_mix(((uint64_t)me << 32) ^ round);
        e->tid = me;
        e->round = round;
        e->check = check;
        if ((round & 3) == 0)
            sched_yield();
        if (e->tid != me || e->round != round || e->check != check)
            resize_fail(sh, w->id, "stamp changed while held", e, e->tid, me);
        prev = atomic_exchange_explicit(&b->owner, 0, memory_order_relaxed);
        if (prev != me)
            resize_fail(sh, w->id, "owner changed while held", e, prev, me);
        mp_reserve_free(sh->r, e);
    }
    atomic_fetch_sub(&sh->workers_left, 1);
    return NULL;
}

static void *resizer_main(void *arg)
{
    resize_shared *sh = arg;
    pthread_barrier_wait(&sh->start);
    for (size_t i = 0; atomic_load(&sh->workers_left) > 0; i++) {
        size_t n = 1 + (i * 7) % RESIZE_MAX;
        int rc = mp_reserve_resize(sh->r, n);
        if (rc == ENOMEM)
            atomic_fetch_add(&sh->resize_enomem, 1);
        else if (rc != 0)
            resize_fail(sh, RESIZE_WORKERS, "resize returned neither 0 nor ENOMEM", NULL, (size_t)rc, n);
        atomic_fetch_add(&sh->resizes, 1);
        if ((i & 1) == 0)
            sched_yield();
    }
    return NULL;
}

static void run_resize(size_t rounds)
{
    static flaky f;
    static resize_shared sh;
    memset(&f, 0, sizeof f);
    memset(&sh, 0, sizeof sh);
    sh.rounds = rounds;
    atomic_store(&sh.workers_left, RESIZE_WORKERS);
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "resized", .min_reserved = 1,
                                                                .alloc = flaky_alloc, .free = flaky_free, .src = &f });
    REQUIRE(r != NULL);
    sh.r = r;
    REQUIRE(pthread_barrier_init(&sh.start, NULL, RESIZE_WORKERS + 1) == 0);
    resize_worker w[RESIZE_WORKERS];
    pthread_t workers[RESIZE_WORKERS], resizer;
    for (uint32_t i = 0; i < RESIZE_WORKERS; i++)
        w[i] = (resize_worker){ .sh = &sh, .id = i };
    threads_start(workers, RESIZE_WORKERS, resize_worker_main, w, sizeof *w);
    threads_start(&resizer, 1, resizer_main, &sh, 0);
    threads_join(workers, RESIZE_WORKERS);
    threads_join(&resizer, 1);
    pthread_barrier_destroy(&sh.start);

    mp_stats s;
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    printf("resize under load: %d threads x %zu rounds, %zu resizes (%zu ENOMEM): allocs %zu, used %zu, waits %zu, "
           "source made %zu, level %zu/%zu\n",
           RESIZE_WORKERS, rounds, atomic_load(&sh.resizes), atomic_load(&sh.resize_enomem), s.allocs,
           s.reserve_used, s.waits, atomic_load(&f.made), s.reserve_level, s.reserve_min);
    const size_t total = RESIZE_WORKERS * rounds;
    CHECK_EQ(atomic_load(&sh.errors), 0);
    CHECK_EQ(atomic_load(&f.bad), 0);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, total);
    CHECK_EQ(s.frees, total);
    CHECK_EQ(s.timeouts, 0);
    CHECK(s.reserve_level <= s.reserve_min);
    CHECK(s.reserve_min >= 1 && s.reserve_min <= RESIZE_MAX);
    CHECK_EQ(atomic_load(&f.live), s.reserve_level); /* nothing lost, nothing kept twice */
    CHECK(atomic_load(&sh.resizes) > 0);
    mp_reserve_destroy(r);
    CHECK_EQ(atomic_load(&f.live), 0);
    CHECK_EQ(atomic_load(&f.bad), 0);
}

int main(int argc, char **argv)
{
    size_t rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
    REQUIRE(argc == 1 || rounds > 0);
#if CHECK_TSAN
    const size_t rounds_64 = 2000;
#else
    const size_t rounds_64 = 10000;
#endif
    const size_t mins[] = { 1, 4, 64 }, default_rounds[] = { 10000, 10000, rounds_64 };
    for (size_t i = 0; i < sizeof mins / sizeof *mins; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        run(mins[i], rounds ? rounds : default_rounds[i]);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("  (%.2f s)\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_resize(rounds ? rounds : 20000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  (%.2f s)\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return check_done();
}
