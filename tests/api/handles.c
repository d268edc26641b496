/* Generational handles (MP_HANDLES), public header only: a handle derefs
 * to its object while the object is out, and to NULL + ESTALE from its put
 * on, whoever puts it and however (put, put_bulk, mp_free, the reserve
 * source, put_handle), even once the slot is out again, got by the same
 * thread or another; NULL + EINVAL for 0, garbage, random values, another
 * pool's handles and pools without MP_HANDLES; put_handle of a stale or
 * invalid handle goes to the error handler and puts nothing; a pool made
 * at a destroyed pool's address does not take its handles; counters stay
 * exact; foreach, caps, MP_SINGLE_THREAD, large objects and fork work.
 * Checked mode (a destroyed pool) is in handles_checked.c, threads in
 * handles_mt.c. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------ recording handler */

static int calls;
static char last_msg[512];
static const void *last_ptr;

static void recording(const char *msg, const void *ptr, void *arg)
{
    (void)arg;
    calls++;
    last_ptr = ptr;
    snprintf(last_msg, sizeof last_msg, "%s", msg);
}

/* Exactly one handler call since the last, starting with prefix. */
static void expect_report(const char *prefix, int line)
{
    if (calls != 1 || strncmp(last_msg, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "line %d: %d handler call(s), last \"%s\"; want one \"%s...\"\n", line, calls, last_msg, prefix);
        check_failures++;
    }
    calls = 0;
    last_msg[0] = '\0';
}
#define EXPECT_REPORT(prefix) expect_report((prefix), __LINE__)
#define EXPECT_NO_REPORT() CHECK_EQ(calls, 0)

static mp_objpool *make(const char *name, size_t size, unsigned flags)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = name, .obj_size = size,
                                                                 .flags = flags | MP_HANDLES });
    REQUIRE(p != NULL);
    return p;
}

static mp_stats stats_of(const mp_objpool *p)
{
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    return s;
}

/* deref gives NULL with errno `err`. */
static void expect_null(mp_objpool *p, mp_handle h, int err, int line)
{
    errno = 0;
    void *o = mp_objpool_deref(p, h);
    if (o != NULL || errno != err) {
        fprintf(stderr, "line %d: deref of %#llx: %p errno %d; want NULL errno %d\n", line, (unsigned long long)h, o,
                errno, err);
        check_failures++;
    }
}
#define EXPECT_NULL(p, h, err) expect_null((p), (h), (err), __LINE__)

/* ---------------------------------------------------------------- cases */

static void test_basic(void)
{
    mp_objpool *p = make("basic", 64, 0);
    char *o = mp_objpool_get(p);
    REQUIRE(o != NULL);
    mp_handle h = mp_objpool_handle(p, o);
    CHECK(h != 0);
    CHECK_EQ(mp_objpool_handle(p, o), h); /* the same, call after call */
    errno = 12345;
    CHECK_PTR_EQ(mp_objpool_deref(p, h), o);
    CHECK_EQ(errno, 12345); /* success leaves errno alone */
    memset(o, 7, 64);
    mp_objpool_put(p, o);
    EXPECT_NULL(p, h, ESTALE);
    EXPECT_NULL(p, h, ESTALE); /* and for good */
    errno = 0;
    CHECK_EQ(mp_objpool_handle(p, o), 0); /* free: no handle */
    CHECK_EQ(errno, EINVAL);
    mp_objpool_destroy(p);
}

/* The slot out again, got by the same thread (its cache is LIFO: the same
 * object comes back at once): the old handle stays stale. */
static void test_reuse_same_thread(void)
{
    mp_objpool *p = make("reuse", 48, 0);
    void *o = mp_objpool_get(p);
    mp_handle h1 = mp_objpool_handle(p, o);
    mp_objpool_put(p, o);
    void *again = mp_objpool_get(p);
    CHECK_PTR_EQ(again, o);
    mp_handle h2 = mp_objpool_handle(p, again);
    CHECK(h2 != 0 && h2 != h1);
    EXPECT_NULL(p, h1, ESTALE);
    CHECK_PTR_EQ(mp_objpool_deref(p, h2), o);
    /* Many reuses of one slot: each handle stale once its object is put. */
    mp_handle prev = h2;
    for (int i = 0; i < 1000; i++) {
        mp_objpool_put(p, again);
        again = mp_objpool_get(p);
        mp_handle h = mp_objpool_handle(p, again);
        CHECK(h != prev);
        EXPECT_NULL(p, prev, ESTALE);
        CHECK_PTR_EQ(mp_objpool_deref(p, h), again);
        prev = h;
    }
    EXPECT_NULL(p, h1, ESTALE);
    mp_objpool_put(p, again);
    mp_objpool_destroy(p);
}

struct cross {
    mp_objpool *p;
    void *obj;
    mp_handle h;
};

static void *get_put_exit(void *arg)
{
    struct cross *x = arg;
    x->obj = mp_objpool_get(x->p);
    x->h = mp_objpool_handle(x->p, x->obj);
    mp_objpool_put(x->p, x->obj); /* into this thread's cache, to the pool at exit */
    return NULL;
}

static void *get_only(void *arg)
{
    struct cross *x = arg;
    x->obj = mp_objpool_get(x->p);
    x->h = mp_objpool_handle(x->p, x->obj);
    return NULL;
}

/* The slot out again in another thread: a thread gets, puts and exits (its
 * cache goes back to the pool), and this thread gets objects until it has
 * that one again. And an object got in one thread, put in another. */
static void test_reuse_other_thread(void)
{
    mp_objpool *p = make("cross", 32, 0);
    struct cross x = { .p = p };
    threads_run(1, get_put_exit, &x, 0);
    REQUIRE(x.obj != NULL && x.h != 0);
    EXPECT_NULL(p, x.h, ESTALE);
    enum { N = 4096 };
    static void *got[N];
    size_t n = mp_objpool_get_bulk(p, got, N), found = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] == x.obj) {
            found++;
            mp_handle h = mp_objpool_handle(p, got[i]);
            CHECK(h != x.h);
            CHECK_PTR_EQ(mp_objpool_deref(p, h), x.obj);
        }
    CHECK_EQ(found, 1);
    EXPECT_NULL(p, x.h, ESTALE); /* its slot is out again */
    mp_objpool_put_bulk(p, got, n);

    threads_run(1, get_only, &x, 0); /* got there, put here */
    CHECK_PTR_EQ(mp_objpool_deref(p, x.h), x.obj);
    mp_objpool_put(p, x.obj);
    EXPECT_NULL(p, x.h, ESTALE);
    mp_stats s = stats_of(p);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, s.frees);
    mp_objpool_destroy(p);
}

/* Another pool's handles, and pools without MP_HANDLES. */
static void test_other_pool(void)
{
    mp_objpool *a = make("a", 64, 0), *b = make("b", 64, 0);
    mp_objpool *plain = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "plain", .obj_size = 64 });
    REQUIRE(plain != NULL);
    void *oa = mp_objpool_get(a), *ob = mp_objpool_get(b), *op = mp_objpool_get(plain);
    mp_handle ha = mp_objpool_handle(a, oa), hb = mp_objpool_handle(b, ob);
    CHECK(ha != 0 && hb != 0 && ha != hb);
    EXPECT_NULL(b, ha, EINVAL);
    EXPECT_NULL(a, hb, EINVAL);
    EXPECT_NULL(plain, ha, EINVAL);
    errno = 0;
    CHECK_EQ(mp_objpool_handle(b, oa), 0); /* another pool's object */
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mp_objpool_handle(plain, op), 0); /* no MP_HANDLES */
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mp_objpool_handle(a, op), 0);
    CHECK_EQ(errno, EINVAL);
    char on_stack[64];
    errno = 0;
    CHECK_EQ(mp_objpool_handle(a, on_stack), 0);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mp_objpool_handle(a, (char *)oa + 8), 0); /* interior */
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mp_objpool_handle(a, NULL), 0);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mp_objpool_handle(NULL, oa), 0);
    CHECK_EQ(errno, EINVAL);
    EXPECT_NULL(NULL, ha, EINVAL);

    mp_set_error_handler(recording, NULL);
    mp_objpool_put_handle(b, ha); /* nothing put */
    EXPECT_REPORT("mpool: put of an invalid handle: objpool 'b'");
    CHECK_PTR_EQ(mp_objpool_deref(a, ha), oa);
    mp_objpool_put_handle(plain, ha);
    EXPECT_REPORT("mpool: put_handle to a pool without MP_HANDLES: objpool 'plain'");
    mp_objpool_put_handle(NULL, ha);
    EXPECT_REPORT("mpool: put to a NULL pool");
    CHECK_PTR_EQ(mp_objpool_deref(a, ha), oa);
    mp_set_error_handler(NULL, NULL);

    CHECK_EQ(stats_of(a).objects_in_use, 1);
    CHECK_EQ(stats_of(b).objects_in_use, 1);
    mp_objpool_put_handle(a, ha);
    mp_objpool_put_handle(b, hb);
    mp_objpool_put(plain, op);
    EXPECT_NULL(a, ha, ESTALE);
    EXPECT_NULL(b, hb, ESTALE);
    mp_objpool_destroy(a);
    mp_objpool_destroy(b);
    mp_objpool_destroy(plain);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* 0, and random values: never an object but the one a live handle names,
 * never a crash; errno EINVAL, or ESTALE for a value that happens to name
 * one of the pool's slots at a past generation. */
static void test_garbage(void)
{
    mp_objpool *p = make("garbage", 40, 0);
    enum { LIVE = 300 };
    void *objs[LIVE];
    mp_handle hs[LIVE];
    REQUIRE(mp_objpool_get_bulk(p, objs, LIVE) == LIVE);
    for (int i = 0; i < LIVE; i++)
        hs[i] = mp_objpool_handle(p, objs[i]);
    for (int i = 0; i < LIVE; i += 2) /* half of them stale */
        mp_objpool_put(p, objs[i]);
    EXPECT_NULL(p, 0, EINVAL);
    EXPECT_NULL(p, UINT64_MAX, EINVAL);
    EXPECT_NULL(p, (uint64_t)1 << 63, EINVAL);
    EXPECT_NULL(p, 0xffffffffull, EINVAL); /* number 0 */
    mp_set_error_handler(recording, NULL);
    mp_objpool_put_handle(p, 0);
    EXPECT_REPORT("mpool: put of an invalid handle");
    size_t stale = 0;
    for (int i = 0; i < 200000; i++) {
        uint64_t v = rng();
        if (i & 1) /* a number near the pool's, any generation */
            v = (hs[rng() % LIVE] & ~(uint64_t)0xffffffff) + ((v >> 32) % 64 << 32) + (uint32_t)v;
        errno = 0;
        void *o = mp_objpool_deref(p, v);
        if (o) {
            bool live = false;
            for (int k = 1; k < LIVE; k += 2)
                live |= hs[k] == v && objs[k] == o;
            CHECK(live);
        } else if (errno == ESTALE) {
            stale++;
        } else {
            CHECK_EQ(errno, EINVAL);
        }
        if (i % 1000 == 0) { /* put_handle of garbage: reported, nothing put */
            mp_objpool_put_handle(p, v | (uint64_t)1 << 63);
            EXPECT_REPORT("mpool: put of an invalid handle");
        }
    }
    mp_set_error_handler(NULL, NULL);
    CHECK_EQ(stats_of(p).objects_in_use, LIVE / 2);
    for (int i = 1; i < LIVE; i += 2) {
        CHECK_PTR_EQ(mp_objpool_deref(p, hs[i]), objs[i]);
        mp_objpool_put_handle(p, hs[i]);
    }
    CHECK_EQ(stats_of(p).objects_in_use, 0);
    mp_objpool_destroy(p);
}

/* put_handle puts; a second put_handle of the handle, or a put_handle
 * after a put by pointer, is reported and puts nothing; a put by pointer
 * of an object not out is a double put, reported in any mode. */
static void test_put_handle(void)
{
    mp_objpool *p = make("ph", 100, 0);
    void *o = mp_objpool_get(p), *keep = mp_objpool_get(p);
    mp_handle h = mp_objpool_handle(p, o);
    mp_objpool_put_handle(p, h);
    EXPECT_NULL(p, h, ESTALE);
    mp_stats s = stats_of(p);
    CHECK_EQ(s.allocs, 2);
    CHECK_EQ(s.frees, 1);
    mp_set_error_handler(recording, NULL);
    mp_objpool_put_handle(p, h);
    CHECK(last_ptr == (const void *)(uintptr_t)h); /* the handler sees the handle */
    EXPECT_REPORT("mpool: put of a stale handle (its object was put back): objpool 'ph'");
    void *again = mp_objpool_get(p); /* o's slot out again: h is still stale */
    CHECK_PTR_EQ(again, o);
    mp_objpool_put_handle(p, h);
    EXPECT_REPORT("mpool: put of a stale handle");
    CHECK_PTR_EQ(mp_objpool_deref(p, mp_objpool_handle(p, again)), again);
    mp_objpool_put(p, again);
    mp_objpool_put(p, again); /* a double put */
    EXPECT_REPORT("mpool: double put: objpool 'ph'");
    mp_free(again);
    EXPECT_REPORT("mpool: double put");
    mp_handle hk = mp_objpool_handle(p, keep);
    mp_objpool_put(p, keep);
    mp_objpool_put_handle(p, hk);
    EXPECT_REPORT("mpool: put of a stale handle");
    mp_set_error_handler(NULL, NULL);
    s = stats_of(p);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, 3);
    CHECK_EQ(s.frees, 3);
    mp_objpool_destroy(p);
}

/* Every way an object goes back makes its handle stale; every way one
 * comes out gives it a handle. */
static void test_every_path(void)
{
    mp_objpool *p = make("paths", 24, 0);
    enum { N = 40 };
    void *o[N];
    mp_handle h[N];
    for (int round = 0; round < 5; round++) {
        size_t got = mp_objpool_get_bulk(p, o, N / 2);
        CHECK_EQ(got, N / 2);
        o[N / 2] = mp_objpool_get_wait(p, 0);
        o[N / 2 + 1] = mp_objpool_source_alloc(p);
        for (int i = N / 2 + 2; i < N; i++)
            o[i] = mp_objpool_get(p);
        for (int i = 0; i < N; i++) {
            h[i] = mp_objpool_handle(p, o[i]);
            CHECK(h[i] != 0);
            CHECK_PTR_EQ(mp_objpool_deref(p, h[i]), o[i]);
        }
        mp_objpool_put_bulk(p, o, 8);
        for (int i = 8; i < 16; i++)
            mp_objpool_put(p, o[i]);
        for (int i = 16; i < 24; i++)
            mp_free(o[i]);
        for (int i = 24; i < 32; i++)
            mp_objpool_source_free(o[i], p);
        for (int i = 32; i < N; i++)
            mp_objpool_put_handle(p, h[i]);
        for (int i = 0; i < N; i++)
            EXPECT_NULL(p, h[i], ESTALE);
    }
    mp_stats s = stats_of(p);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, 5 * N);
    CHECK_EQ(s.frees, 5 * N);
    mp_objpool_destroy(p);
}

static size_t visits;
static mp_objpool *visited_pool;
static void visit(void *obj, void *arg)
{
    (void)arg;
    visits++;
    mp_handle h = mp_objpool_handle(visited_pool, obj);
    CHECK(h != 0);
    CHECK_PTR_EQ(mp_objpool_deref(visited_pool, h), obj);
}

static void test_foreach(void)
{
    mp_objpool *p = make("each", 72, 0);
    void *o[100];
    REQUIRE(mp_objpool_get_bulk(p, o, 100) == 100);
    for (int i = 0; i < 100; i += 3)
        mp_objpool_put(p, o[i]);
    visited_pool = p;
    visits = 0;
    CHECK_EQ(mp_objpool_foreach(p, visit, NULL), 66);
    CHECK_EQ(visits, 66);
    for (int i = 0; i < 100; i++)
        if (i % 3)
            mp_objpool_put(p, o[i]);
    mp_objpool_destroy(p);
}

/* A capped pool: put_handle gives the place back (get_wait can go on). */
static void test_cap(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "capped", .obj_size = 16, .max_live = 2,
                                                                 .flags = MP_HANDLES });
    REQUIRE(p != NULL);
    void *a = mp_objpool_get(p), *b = mp_objpool_get(p);
    errno = 0;
    CHECK(mp_objpool_get(p) == NULL && errno == ENOMEM);
    mp_objpool_put_handle(p, mp_objpool_handle(p, a));
    void *c = mp_objpool_get_wait(p, 1000000);
    CHECK(c != NULL);
    mp_handle hb = mp_objpool_handle(p, b);
    mp_set_error_handler(recording, NULL);
    mp_objpool_put(p, b);
    mp_objpool_put_handle(p, hb); /* stale: no place released twice */
    EXPECT_REPORT("mpool: put of a stale handle");
    mp_set_error_handler(NULL, NULL);
    void *d = mp_objpool_get(p);
    CHECK(d != NULL);
    errno = 0;
    CHECK(mp_objpool_get(p) == NULL && errno == ENOMEM);
    mp_objpool_put(p, c);
    mp_objpool_put(p, d);
    CHECK_EQ(stats_of(p).objects_in_use, 0);
    mp_objpool_destroy(p);
}

static void test_single_thread_and_zero(void)
{
    mp_objpool *p = make("st", 200, MP_SINGLE_THREAD | MP_ZERO);
    for (int i = 0; i < 3000; i++) {
        unsigned char *o = mp_objpool_get(p);
        CHECK(o[0] == 0 && o[199] == 0);
        mp_handle h = mp_objpool_handle(p, o);
        CHECK_PTR_EQ(mp_objpool_deref(p, h), o);
        memset(o, 0xab, 200);
        if (i & 1)
            mp_objpool_put_handle(p, h);
        else
            mp_objpool_put(p, o);
        EXPECT_NULL(p, h, ESTALE);
    }
    mp_objpool_destroy(p);
}

/* Objects with a slab each, slabs given back (max_free, trim) and made
 * again: old handles stay stale, and the pool's share of the handle table
 * does not grow with the churn. */
static void test_large_churn(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "big", .obj_size = 100000, .max_free = 2,
                                                                 .flags = MP_HANDLES });
    REQUIRE(p != NULL);
    enum { N = 20 };
    void *o[N];
    mp_handle old[N];
    size_t meta = 0;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < N; i++) {
            o[i] = mp_objpool_get(p);
            REQUIRE(o[i] != NULL);
            mp_handle h = mp_objpool_handle(p, o[i]);
            CHECK_PTR_EQ(mp_objpool_deref(p, h), o[i]);
            if (round)
                EXPECT_NULL(p, old[i], ESTALE);
            old[i] = h;
        }
        mp_stats s = stats_of(p);
        if (round == 1)
            meta = s.bytes_meta;
        if (round > 1)
            CHECK_EQ(s.bytes_meta, meta);
        for (int i = 0; i < N; i++)
            mp_objpool_put(p, o[i]);
        mp_objpool_trim(p);
        CHECK_EQ(stats_of(p).bytes_mapped, 0);
        for (int i = 0; i < N; i++)
            EXPECT_NULL(p, old[i], ESTALE);
    }
    mp_objpool_destroy(p);
}

/* The table's share is in bytes_meta: 16 bytes per slot of a handle
 * pool's slabs, nothing for other pools. */
static void test_stats_meta(void)
{
    mp_objpool *h = make("counted", 64, 0);
    mp_objpool *plain = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "counted", .obj_size = 64 });
    void *a = mp_objpool_get(h), *b = mp_objpool_get(plain);
    mp_stats sh = stats_of(h), sp = stats_of(plain);
    CHECK(sh.bytes_meta >= sp.bytes_meta + 1020 * 16);
    CHECK(sh.bytes_meta <= sp.bytes_meta + 1024 * 16 + 1024);
    CHECK_EQ(sh.bytes_mapped, sp.bytes_mapped);
    mp_objpool_put(h, a);
    mp_objpool_put(plain, b);
    mp_objpool_destroy(h);
    mp_objpool_destroy(plain);
}

/* A pool made where a destroyed one was (the library's metadata reuses the
 * memory; likely, not certain): the old pool's handles name nothing in it,
 * whatever it hands out, and put_handle of one is refused. */
static void test_pool_reused(void)
{
    mp_objpool *a = make("first", 64, 0);
    enum { N = 50 };
    void *o[N];
    mp_handle ha[N];
    for (int i = 0; i < N; i++) {
        o[i] = mp_objpool_get(a);
        ha[i] = mp_objpool_handle(a, o[i]);
    }
    for (int i = 0; i < N / 2; i++)
        mp_objpool_put(a, o[i]);
    mp_objpool_destroy(a); /* half still out: their handles die with it */
    mp_objpool *b = make("second", 64, 0);
    if (b != a)
        fprintf(stderr, "note: the second pool is not at the first's address (%p, %p)\n", (void *)a, (void *)b);
    void *ob[N];
    REQUIRE(mp_objpool_get_bulk(b, ob, N) == N); /* likely the first's chunk and numbers again */
    mp_set_error_handler(recording, NULL);
    for (int i = 0; i < N; i++) {
        errno = 0;
        CHECK(mp_objpool_deref(b, ha[i]) == NULL);
        CHECK(errno == ESTALE || errno == EINVAL);
        mp_objpool_put_handle(b, ha[i]);
        CHECK_EQ(calls, 1);
        calls = 0;
    }
    mp_set_error_handler(NULL, NULL);
    CHECK_EQ(stats_of(b).objects_in_use, N);
    for (int i = 0; i < N; i++)
        CHECK_PTR_EQ(mp_objpool_deref(b, mp_objpool_handle(b, ob[i])), ob[i]);
    mp_objpool_put_bulk(b, ob, N);
    mp_objpool_destroy(b);
}

/* fork: the child has the parent's handles, its puts are its own. */
static void test_fork(void)
{
    mp_objpool *p = make("forked", 64, 0);
    void *o = mp_objpool_get(p), *gone = mp_objpool_get(p);
    mp_handle h = mp_objpool_handle(p, o), hg = mp_objpool_handle(p, gone);
    mp_objpool_put(p, gone);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        bad |= mp_objpool_deref(p, h) != o;
        bad |= mp_objpool_deref(p, hg) != NULL || errno != ESTALE;
        mp_objpool_put_handle(p, h);
        bad |= mp_objpool_deref(p, h) != NULL;
        void *n = mp_objpool_get(p);
        bad |= mp_objpool_deref(p, mp_objpool_handle(p, n)) != n;
        mp_objpool_put(p, n);
        mp_objpool_destroy(p);
        _exit(bad ? 1 : 0);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_PTR_EQ(mp_objpool_deref(p, h), o); /* the child's put was its own */
    mp_objpool_put_handle(p, h);
    mp_objpool_destroy(p);
}

static const check_case cases[] = {
    CHECK_CASE(basic, test_basic),
    CHECK_CASE(reuse_same_thread, test_reuse_same_thread),
    CHECK_CASE(reuse_other_thread, test_reuse_other_thread),
    CHECK_CASE(other_pool, test_other_pool),
    CHECK_CASE(garbage, test_garbage),
    CHECK_CASE(put_handle, test_put_handle),
    CHECK_CASE(every_path, test_every_path),
    CHECK_CASE(foreach, test_foreach),
    CHECK_CASE(cap, test_cap),
    CHECK_CASE(single_thread_and_zero, test_single_thread_and_zero),
    CHECK_CASE(large_churn, test_large_churn),
    CHECK_CASE(stats_meta, test_stats_meta),
    CHECK_CASE(pool_reused, test_pool_reused),
    CHECK_CASE(fork, test_fork),
};

int main(int argc, char **argv)
{
    /* Some cases need an object put to come back at once, as it does
     * outside checked mode: no quarantine in checked mode either (unless
     * told otherwise). */
    setenv("MPOOL_QUARANTINE", "0", 0);
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
