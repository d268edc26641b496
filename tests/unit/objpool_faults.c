/* Out-of-memory sweep for object pools (SQLite's fault simulator, applied
 * to every allocation an object pool makes). One scenario - create with
 * `initial`, many gets, a bulk get, a walk, puts one by one and in bulk,
 * trim, gets again, puts, destroy - runs with mp__os_fail_after(k) for
 * k = 1, 2, ... until a run makes fewer than k calls to the os layer, i.e.
 * completes with no failure. In every run:
 *   - each call succeeds or fails the documented way: NULL (or a short
 *     count, or 0 from foreach) with errno ENOMEM;
 *   - the one injected failure is the only one (injection is one-shot), so
 *     the same call made again succeeds and the scenario goes on with the
 *     same pool: it stayed usable;
 *   - at the end the counters balance, trim gives every byte back, and
 *     after destroy every object made was destroyed exactly once;
 *   - nothing leaks: run under valgrind --leak-check=full and ASan.
 * Thread-safe pools run each scenario in a new thread, so the thread's
 * cache table and caches are made (and may fail) inside it, and its exit
 * path runs too. Retained chunks are dropped before each run so every slab
 * comes from mp__os_reserve. The handle table, which the first handle pool
 * of a process makes, is swept in forked children (first_handle_pool). */
#define _GNU_SOURCE 1
#include "check.h"
#include "threads.h"
#include "chunk.h"
#include "os.h"

#include <mpool.h>

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

/* Object counts of the scenario, divided by a variant's `scale`. */
enum { GETS = 2000, BULK = 1500, TOTAL = GETS + BULK, AGAIN = 1000, INITIAL = 2000 /* two slabs of 48-byte objects */ };

typedef struct variant {
    const char *name;
    size_t obj_size;
    unsigned flags;
    size_t max_live;
    size_t max_free;
    bool own_thread; /* run in a new thread */
    size_t scale;    /* counts divided by this */
} variant;

typedef struct run {
    const variant *v;
    size_t ctor, dtor;
    size_t observed;  /* calls that reported ENOMEM */
    int bad_errno;    /* calls that failed with another errno */
} run;

static void ctor(void *obj, void *arg)
{
    (void)obj;
    ((run *)arg)->ctor++;
}

static void dtor(void *obj, void *arg)
{
    (void)obj;
    ((run *)arg)->dtor++;
}

/* Called after an operation failed: the error must be ENOMEM. */
static void failed(run *r, const char *what)
{
    if (errno != ENOMEM) {
        fprintf(stderr, "%s: %s failed with errno %d, not ENOMEM\n", r->v->name, what, errno);
        r->bad_errno++;
    }
    r->observed++;
}

/* A get that must succeed on its second try (one injected failure). */
static void *get_one(run *r, mp_objpool *p)
{
    errno = 0;
    void *o = mp_objpool_get(p);
    if (!o) {
        failed(r, "get");
        o = mp_objpool_get(p);
        REQUIRE(o != NULL);
    }
    return o;
}

static void visit(void *obj, void *arg)
{
    (void)obj;
    ++*(size_t *)arg;
}

static void *scenario(void *arg)
{
    run *r = arg;
    const variant *v = r->v;
    const size_t gets = GETS / v->scale, bulk = BULK / v->scale, total = gets + bulk, again = AGAIN / v->scale;
    mp_objpool_opts o = { .name = v->name, .obj_size = v->obj_size, .flags = v->flags, .max_live = v->max_live,
                          .max_free = v->max_free, .initial = INITIAL / v->scale, .ctor = ctor, .dtor = dtor,
                          .arg = r };
    errno = 0;
    mp_objpool *p = mp_objpool_create(NULL, &o);
    if (!p) {
        failed(r, "create");
        CHECK_EQ(r->ctor, r->dtor); /* whatever was made was destroyed */
        p = mp_objpool_create(NULL, &o);
        REQUIRE(p != NULL);
    }
    void **objs = malloc(total * sizeof *objs);
    REQUIRE(objs != NULL);

    for (size_t i = 0; i < gets; i++)
        objs[i] = get_one(r, p);

    errno = 0;
    size_t got = mp_objpool_get_bulk(p, objs + gets, bulk);
    if (got < bulk) {
        failed(r, "get_bulk");
        size_t more = mp_objpool_get_bulk(p, objs + gets + got, bulk - got);
        REQUIRE(got + more == bulk);
    }

    size_t seen = 0;
    errno = 0;
    size_t walked = mp_objpool_foreach(p, visit, &seen);
    if (walked == 0) {
        failed(r, "foreach");
        walked = mp_objpool_foreach(p, visit, &seen);
    }
    CHECK_EQ(walked, total);
    CHECK_EQ(seen, total);

    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    CHECK_EQ(s.objects_in_use, total);
    CHECK_EQ(s.allocs, total);
    if (r->observed && !r->bad_errno)
        CHECK(s.failures <= r->observed);

    /* Puts cannot fail: one by one (magazines flushed, maybe made), then
     * in bulk. */
    for (size_t i = 0; i < gets; i += 2)
        mp_objpool_put(p, objs[i]);
    for (size_t i = 1; i < gets; i += 2)
        mp_objpool_put(p, objs[i]);
    mp_objpool_put_bulk(p, objs + gets, bulk);
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0);

    mp_objpool_trim(p); /* this thread's cache too: every slab is empty */
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    CHECK_EQ(s.bytes_mapped, 0);

    /* The pool grows again after trim. */
    for (size_t i = 0; i < again; i++)
        objs[i] = get_one(r, p);
    mp_objpool_put_bulk(p, objs, again);

    REQUIRE(mp_objpool_stats(p, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, total + again);
    CHECK_EQ(s.frees, total + again);
    mp_objpool_trim(p);
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    CHECK_EQ(s.bytes_mapped, 0);
    mp_objpool_destroy(p);
    CHECK_EQ(r->ctor, r->dtor);
    free(objs);
    return NULL;
}

/* Runs the scenario once with the k-th os-layer call failing (k = 0: no
 * injection). Returns how many os-layer calls it made. */
static unsigned long run_once(const variant *v, unsigned long k, run *r)
{
    *r = (run){ .v = v };
    mp__chunk_release_retained();
    unsigned long before = mp__os_calls();
    mp__os_fail_after(k);
    if (v->own_thread)
        threads_run(1, scenario, r, 0);
    else
        scenario(r);
    unsigned long calls = mp__os_calls() - before;
    mp__os_fail_after(0);
    return calls;
}

static void sweep(const variant *v)
{
    run r;
    unsigned long clean_calls = run_once(v, 0, &r);
    CHECK_EQ(r.observed, 0);
    unsigned long k, observed_runs = 0;
    for (k = 1;; k++) {
        unsigned long calls = run_once(v, k, &r);
        CHECK_EQ(r.bad_errno, 0);
        CHECK(r.observed <= 1); /* one injected failure, seen at most once */
        observed_runs += r.observed != 0;
        if (calls < k) /* the countdown never reached zero: a clean run */
            break;
        REQUIRE(k < 100000);
    }
    CHECK(k > 1);
    CHECK(observed_runs > 0); /* some failures reach the caller, others are absorbed */
    printf("%-24s %lu os-layer calls in a clean run; %lu injection points, %lu reported ENOMEM\n", v->name,
           clean_calls, k - 1, observed_runs);
}

/* The first handle pool of a process reserves the handle table and makes
 * its first pages writable: each os-layer call failing in turn, in a child
 * that has made no handle pool yet. Each call fails with ENOMEM at most
 * once, and the same call then succeeds. */
static void first_handle_pool(void)
{
    for (unsigned long k = 1; k <= 24; k++) {
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mp_objpool_opts o = { .name = "first", .obj_size = 48, .flags = MP_HANDLES };
            mp__os_fail_after(k);
            errno = 0;
            mp_objpool *p = mp_objpool_create(NULL, &o);
            if (!p && (errno != ENOMEM || !(p = mp_objpool_create(NULL, &o))))
                _exit(2);
            errno = 0;
            void *obj = mp_objpool_get(p);
            if (!obj && (errno != ENOMEM || !(obj = mp_objpool_get(p))))
                _exit(3);
            mp_handle h = mp_objpool_handle(p, obj);
            if (!h || mp_objpool_deref(p, h) != obj)
                _exit(4);
            mp_objpool_put_handle(p, h);
            if (mp_objpool_deref(p, h) != NULL)
                _exit(5);
            mp_objpool_destroy(p);
            _exit(0);
        }
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "first handle pool, failing os-layer call %lu: status %#x\n", k, status);
            check_failures++;
        }
    }
}

int main(void)
{
    first_handle_pool(); /* before any handle pool of this process */
    /* In checked mode (MPOOL_CHECK=1) freed objects wait in a quarantine
     * that trim does not release; these tests assert that trim gives every
     * free byte back, so they run without one unless told otherwise. */
    setenv("MPOOL_QUARANTINE", "0", 0);
    const variant variants[] = {
        { "thread-safe", 48, 0, 0, 0, true, 1 },
        { "thread-safe, main", 48, 0, 0, 0, false, 1 },
        { "single-thread", 48, MP_SINGLE_THREAD, 0, 0, false, 1 },
        { "capped", 48, 0, TOTAL + 10, 0, true, 1 },
        { "max_free, zero", 100, MP_ZERO, 0, 64, true, 1 },
        { "large objects", 100000, 0, 0, 0, true, 100 },
        /* Handle pools: the handle table's reservation and growth too. */
        { "handles", 48, MP_HANDLES, 0, 0, true, 1 },
        { "handles, single, capped", 48, MP_HANDLES | MP_SINGLE_THREAD, TOTAL + 10, 0, false, 1 },
        { "handles, large objects", 100000, MP_HANDLES, 0, 0, true, 100 },
    };
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
        sweep(&variants[i]);
    return check_done();
}
