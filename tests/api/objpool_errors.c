/* Every bad input to the object-pool API, and misuse through the error
 * handler (public header only):
 *   - bad options: NULL + EINVAL, nothing made, no handler call;
 *   - a NULL pool or array to every function: what the header says, no
 *     crash, no handler call - except an object put to a NULL pool, which
 *     would leak silently: the handler, once per object;
 *   - put of a foreign pointer, of another pool's object, mp_free and
 *     mp_usable_size of a foreign pointer: the handler runs exactly once
 *     per misuse with the pointer, the offending call does nothing, and the
 *     pool stays consistent and usable;
 *   - mp_set_error_handler(NULL, ...) restores the default, which prints
 *     one line and aborts (checked in a forked child). */
#define _GNU_SOURCE 1
#include "check.h"
#include "flags.h"

#include <mpool.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------ recording handler */

typedef struct record {
    int calls;
    const void *ptr;  /* of the last call */
    void *arg;        /* of the last call */
    char msg[512];    /* of the last call */
} record;

static record rec;
static int handler_arg_token;

static void recording_handler(const char *msg, const void *ptr, void *arg)
{
    rec.calls++;
    rec.ptr = ptr;
    rec.arg = arg;
    snprintf(rec.msg, sizeof rec.msg, "%s", msg ? msg : "(null)");
}

static void rec_reset(void) { memset(&rec, 0, sizeof rec); }

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Exactly one handler call since the last reset, for ptr, whose message
 * starts with prefix and names the pool. */
static void expect_one(const char *what, const void *ptr, const char *prefix, const char *pool_name, int line)
{
    if (rec.calls != 1 || rec.ptr != ptr || rec.arg != &handler_arg_token || !starts_with(rec.msg, prefix) ||
        (pool_name && !strstr(rec.msg, pool_name))) {
        fprintf(stderr, "line %d: %s: %d handler call(s), ptr %p (want %p), arg %p, msg \"%s\"; want one \"%s...\"\n",
                line, what, rec.calls, rec.ptr, ptr, rec.arg, rec.msg, prefix);
        check_failures++;
    }
    rec_reset();
}
#define EXPECT_ONE(what, ptr, prefix, name) expect_one((what), (ptr), (prefix), (name), __LINE__)

static mp_stats stats_of(const mp_objpool *p)
{
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    return s;
}

static bool same_counts(mp_stats a, mp_stats b)
{
    return a.objects_in_use == b.objects_in_use && a.allocs == b.allocs && a.frees == b.frees &&
           a.bytes_in_use == b.bytes_in_use && a.bytes_mapped == b.bytes_mapped;
}

/* --------------------------------------------------------- bad options */

static size_t ctor_calls;
static void counting_ctor(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    ctor_calls++;
}

static void expect_einval(const char *what, const mp_objpool_opts *o, int line)
{
    errno = 0;
    ctor_calls = 0;
    mp_objpool *p = mp_objpool_create(NULL, o);
    int err = errno;
    if (p || err != EINVAL || ctor_calls) {
        fprintf(stderr, "line %d: %s: create gave %p, errno %d, %zu ctor calls; want NULL, EINVAL (%d), none\n", line,
                what, (void *)p, err, ctor_calls, EINVAL);
        check_failures++;
        mp_objpool_destroy(p);
    }
}
#define EXPECT_EINVAL(what, ...) expect_einval((what), &(mp_objpool_opts){ __VA_ARGS__ }, __LINE__)

static void test_bad_options(void)
{
    errno = 0;
    CHECK(mp_objpool_create(NULL, NULL) == NULL); /* NULL opts: all defaults, and obj_size 0 is not allowed */
    CHECK_EQ(errno, EINVAL);

    EXPECT_EINVAL("obj_size 0", .obj_size = 0);
    EXPECT_EINVAL("obj_size 0 with initial", .obj_size = 0, .initial = 10, .ctor = counting_ctor);
    EXPECT_EINVAL("obj_size SIZE_MAX", .obj_size = SIZE_MAX);
    EXPECT_EINVAL("obj_size SIZE_MAX - 1", .obj_size = SIZE_MAX - 1);
    EXPECT_EINVAL("obj_size SIZE_MAX/2", .obj_size = SIZE_MAX / 2);
    EXPECT_EINVAL("obj_size SIZE_MAX/2 + 1", .obj_size = SIZE_MAX / 2 + 1);
    EXPECT_EINVAL("obj_size SIZE_MAX - 10, align 16", .obj_size = SIZE_MAX - 10, .align = 16);
    EXPECT_EINVAL("obj_size SIZE_MAX - 4096, align 8192", .obj_size = SIZE_MAX - 4096, .align = 8192);
    EXPECT_EINVAL("obj_size SIZE_MAX with initial", .obj_size = SIZE_MAX, .initial = 1, .ctor = counting_ctor);
    /* initial * obj_size overflows: no memory could hold it. */
    EXPECT_EINVAL("initial SIZE_MAX", .obj_size = 64, .initial = SIZE_MAX, .ctor = counting_ctor);
    EXPECT_EINVAL("initial SIZE_MAX/8 of 64 bytes", .obj_size = 64, .initial = SIZE_MAX / 8, .ctor = counting_ctor);
    EXPECT_EINVAL("initial SIZE_MAX/2 of 1 MiB", .obj_size = 1 << 20, .initial = SIZE_MAX / 2, .ctor = counting_ctor);

    const size_t bad_align[] = { 3, 7, 12, 24, 96, 1000, 16383, 16385, 32768, 65536, (size_t)1 << 21,
                                 (size_t)1 << 40, SIZE_MAX / 2 + 1, SIZE_MAX };
    for (size_t i = 0; i < sizeof bad_align / sizeof *bad_align; i++) {
        char what[64];
        snprintf(what, sizeof what, "align %zu", bad_align[i]);
        EXPECT_EINVAL(what, .obj_size = 64, .align = bad_align[i]);
        EXPECT_EINVAL(what, .obj_size = 64, .align = bad_align[i], .flags = MP_SINGLE_THREAD, .initial = 4,
                      .ctor = counting_ctor);
    }
    EXPECT_EINVAL("unknown flag", .obj_size = 64, .flags = 0x80000000u);
    EXPECT_EINVAL("unknown flag 0x8", .obj_size = 64, .flags = 0x8u);
    EXPECT_EINVAL("MP_SINGLE_THREAD | MP_THREADSAFE", .obj_size = 64, .flags = MP_SINGLE_THREAD | MP_THREADSAFE);

    /* The parent must be a live arena: another kind of pool is not one. */
    mp_objpool *other = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 64 });
    REQUIRE(other != NULL);
    errno = 0;
    ctor_calls = 0;
    mp_objpool *p = mp_objpool_create((mp_arena *)(void *)other,
                                      &(mp_objpool_opts){ .obj_size = 64, .initial = 5, .ctor = counting_ctor });
    CHECK(p == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ctor_calls, 0); /* refused before anything was made */
    mp_objpool_destroy(p);
    mp_objpool_destroy(other);

    /* A size that is valid but cannot be had: create succeeds, get fails
     * with ENOMEM (or create refuses it outright); nothing crashes. */
    errno = 0;
    p = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = SIZE_MAX / 8 });
    if (p) {
        errno = 0;
        CHECK(mp_objpool_get(p) == NULL);
        CHECK_EQ(errno, ENOMEM);
        CHECK_EQ(stats_of(p).failures, 1);
        void *objs[2];
        errno = 0;
        CHECK_EQ(mp_objpool_get_bulk(p, objs, 2), 0);
        CHECK_EQ(errno, ENOMEM);
        CHECK_EQ(stats_of(p).bytes_mapped, 0);
        mp_objpool_destroy(p);
    } else {
        CHECK(errno == EINVAL || errno == ENOMEM);
    }
    errno = 0;
    CHECK(mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = SIZE_MAX / 8, .initial = 1 }) == NULL);
    CHECK(errno == EINVAL || errno == ENOMEM);

    /* A long name is truncated, not refused; the struct is not kept. */
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    mp_objpool_opts o = { .name = name, .obj_size = 10 };
    p = mp_objpool_create(NULL, &o);
    CHECK(p != NULL);
    memset(&o, 0xff, sizeof o); /* options are copied */
    memset(name, 0, sizeof name);
    void *x = mp_objpool_get(p);
    CHECK(x != NULL);
    mp_objpool_put(p, x);
    mp_objpool_destroy(p);
    CHECK_EQ(rec.calls, 0);
}

/* A negative timeout other than MP_WAIT_FOREVER is a bad argument, at the
 * cap or not; it was once taken as "forever", so at the cap this test
 * would hang (and time out) instead of failing at once. */
static void test_bad_timeout(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 32, .max_live = 1 });
    REQUIRE(p != NULL);
    const int64_t bad[] = { -2, -1000, INT64_MIN };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        CHECK(mp_objpool_get_wait(p, bad[i]) == NULL);
        CHECK_EQ(errno, EINVAL);
    }
    void *obj = mp_objpool_get(p); /* the bad calls took no place */
    REQUIRE(obj != NULL);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        CHECK(mp_objpool_get_wait(p, bad[i]) == NULL);
        CHECK_EQ(errno, EINVAL);
    }
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    CHECK_EQ(s.waits, 0);
    CHECK_EQ(s.objects_in_use, 1);
    mp_objpool_put(p, obj);
    mp_objpool_destroy(p);
}

/* ------------------------------------------------------------ NULL args */

static void visit_nothing(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
}

static void test_null_pool(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 32 });
    REQUIRE(p != NULL);
    void *obj = mp_objpool_get(p);
    REQUIRE(obj != NULL);
    void *objs[4] = { obj, NULL, NULL, NULL };
    mp_stats s;

    mp_objpool_destroy(NULL);
    errno = 0;
    CHECK(mp_objpool_get(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_objpool_get_wait(NULL, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_objpool_get_wait(NULL, 1000) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_objpool_get_wait(NULL, MP_WAIT_FOREVER) == NULL);
    CHECK_EQ(errno, EINVAL);
    /* An object given to no pool would stay out of its own for good: misuse,
     * reported; obj stays out of p. */
    mp_objpool_put(NULL, obj);
    EXPECT_ONE("put to a NULL pool", obj, "mpool: put to a NULL pool: objpool '': ", NULL);
    mp_objpool_put(NULL, NULL);
    errno = 0;
    CHECK_EQ(mp_objpool_get_bulk(NULL, objs, 4), 0);
    CHECK_EQ(errno, EINVAL);
    CHECK_PTR_EQ(objs[0], obj); /* untouched */
    mp_objpool_put_bulk(NULL, objs, 4); /* once, for its one object */
    EXPECT_ONE("put_bulk to a NULL pool", obj, "mpool: put to a NULL pool: objpool '': ", NULL);
    mp_objpool_put_bulk(NULL, NULL, 4);
    mp_objpool_trim(NULL);
    CHECK_EQ(mp_objpool_stats(NULL, &s), EINVAL);
    CHECK_EQ(mp_objpool_stats(p, NULL), EINVAL);
    CHECK_EQ(mp_objpool_stats(NULL, NULL), EINVAL);
    CHECK_EQ(mp_objpool_move(NULL, NULL), EINVAL);
    errno = 0;
    CHECK_EQ(mp_objpool_foreach(NULL, visit_nothing, NULL), 0);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(mp_objpool_foreach(p, NULL, NULL), 0);
    CHECK_EQ(errno, EINVAL);
    mp_free(NULL);
    CHECK_EQ(mp_usable_size(NULL), 0);

    /* NULL objects and arrays with a live pool. */
    mp_objpool_put(p, NULL);
    errno = 0;
    CHECK_EQ(mp_objpool_get_bulk(p, NULL, 3), 0);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_objpool_get_bulk(p, NULL, 0), 0);
    mp_objpool_put_bulk(p, NULL, 3);
    void *nulls[3] = { NULL, NULL, NULL };
    mp_objpool_put_bulk(p, nulls, 3);

    s = stats_of(p);
    CHECK_EQ(s.objects_in_use, 1); /* none of the above touched obj */
    CHECK_EQ(s.allocs, 1);
    CHECK_EQ(s.frees, 0);
    CHECK_EQ(rec.calls, 0);        /* the other bad arguments are not misuse */
    mp_objpool_put(p, obj);
    CHECK_EQ(stats_of(p).objects_in_use, 0);
    mp_objpool_destroy(p);

    /* In a capped pool, put(p, NULL) and NULL entries of put_bulk do
     * nothing either: in particular they release no place under the cap. */
    p = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 8, .max_live = 1 });
    REQUIRE(p != NULL);
    obj = mp_objpool_get(p);
    mp_objpool_put(p, NULL);
    void *two[2] = { NULL, NULL };
    mp_objpool_put_bulk(p, two, 2);
    errno = 0;
    CHECK(mp_objpool_get(p) == NULL); /* still at the cap */
    CHECK_EQ(errno, ENOMEM);
    mp_objpool_put(p, obj);
    mp_objpool_destroy(p);
    CHECK_EQ(rec.calls, 0);
}

/* --------------------------------------------------------------- misuse */

static void misuse_in(unsigned flags, size_t max_live)
{
    mp_objpool *a = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "alpha", .obj_size = 48, .flags = flags,
                                                               .max_live = max_live });
    mp_objpool *b = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "beta", .obj_size = 48, .flags = flags });
    REQUIRE(a && b);
    /* Enough objects to be at a capped pool's cap, and to have the
     * ownership check's cache warm. */
    enum { N = 8 };
    void *objs[N];
    size_t n = max_live && max_live < N ? max_live : N;
    CHECK_EQ(mp_objpool_get_bulk(a, objs, n), n);
    mp_objpool_put(a, objs[0]);
    objs[0] = mp_objpool_get(a);
    REQUIRE(objs[0] != NULL);
    void *theirs = mp_objpool_get(b);
    REQUIRE(theirs != NULL);
    mp_stats sa = stats_of(a), sb = stats_of(b);

    /* A malloc'd pointer. */
    char *m = malloc(48);
    REQUIRE(m != NULL);
    mp_objpool_put(a, m);
    EXPECT_ONE("put of a malloc'd pointer", m, "mpool: put of a pointer not from mpool: objpool 'alpha': ", NULL);
    /* A stack pointer. */
    char local[64];
    mp_objpool_put(a, local);
    EXPECT_ONE("put of a stack pointer", local, "mpool: put of a pointer not from mpool: objpool 'alpha': ", NULL);
    /* An object of another pool. */
    mp_objpool_put(a, theirs);
    CHECK(strstr(rec.msg, ": it is from objpool 'beta'") != NULL); /* names where it came from */
    EXPECT_ONE("put of another pool's object", theirs, "mpool: put of a pointer from another pool: objpool 'alpha': ",
               NULL);
    /* In bulk: each bad pointer once, the good ones go back. */
    void *mixed[3] = { m, objs[1], theirs };
    mp_objpool_put_bulk(a, mixed, 3);
    CHECK_EQ(rec.calls, 2);
    rec_reset();
    objs[1] = mp_objpool_get(a); /* the good one went back; take it out again */
    REQUIRE(objs[1] != NULL);
    /* Without the pool. */
    mp_free(m);
    EXPECT_ONE("mp_free of a malloc'd pointer", m, "mpool: mp_free of a pointer not from an object pool or a heap: ", NULL);
    mp_free(local);
    EXPECT_ONE("mp_free of a stack pointer", local, "mpool: mp_free of a pointer not from an object pool or a heap: ", NULL);
    CHECK_EQ(mp_usable_size(m), 0);
    EXPECT_ONE("mp_usable_size of a malloc'd pointer", m, "mpool: mp_usable_size of a pointer not from an object pool or a heap: ",
               NULL);
    free(m);

    /* The offending calls did nothing (objs[1] went back and out again). */
    mp_stats sa2 = stats_of(a), sb2 = stats_of(b);
    sa.allocs++;
    sa.frees++;
    CHECK(same_counts(sa, sa2));
    CHECK(same_counts(sb, sb2));
    CHECK_EQ(sa2.objects_in_use, n);
    if (max_live && n == max_live) {
        errno = 0;
        CHECK(mp_objpool_get(a) == NULL); /* a refused put released no place under the cap */
        CHECK_EQ(errno, ENOMEM);
    }
    /* And both pools still work: every object goes back where it belongs. */
    mp_objpool_put_bulk(a, objs, n);
    mp_objpool_put(b, theirs);
    CHECK_EQ(stats_of(a).objects_in_use, 0);
    CHECK_EQ(stats_of(b).objects_in_use, 0);
    CHECK_EQ(stats_of(a).frees, stats_of(a).allocs);
    void *again[N];
    CHECK_EQ(mp_objpool_get_bulk(a, again, n), n);
    mp_objpool_put_bulk(a, again, n);
    CHECK_EQ(rec.calls, 0);
    mp_objpool_destroy(a);
    mp_objpool_destroy(b);
}

/* A double put to a capped pool outside checked mode: the cap's count of
 * objects out went below zero, wrapped, and every get failed with ENOMEM
 * from then on, silently. It is reported (checked mode reports the double
 * put itself, first) and the pool keeps serving gets. Not under a memory
 * tool: memcheck reports the second put itself, as it should. */
static void test_double_put_capped(void)
{
    if (check_tool_attached())
        return;
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "capped", .obj_size = 32, .max_live = 2 });
    REQUIRE(p != NULL);
    void *obj = mp_objpool_get(p);
    REQUIRE(obj != NULL);
    rec_reset();
    mp_objpool_put(p, obj);
    CHECK_EQ(rec.calls, 0);
    mp_objpool_put(p, obj);
    CHECK_EQ(rec.calls, 1);
    CHECK(starts_with(rec.msg, "mpool: put with no object out (a double put?): objpool 'capped'") ||
          starts_with(rec.msg, "mpool: double put: objpool 'capped'"));
    rec_reset();
    errno = 0;
    void *again = mp_objpool_get(p);
    CHECK(again != NULL);
    CHECK_EQ(errno, 0);
    mp_objpool_put(p, again);
    CHECK_EQ(rec.calls, 0);
    mp_objpool_destroy(p);
}

static void test_misuse(void)
{
    mp_set_error_handler(recording_handler, &handler_arg_token);
    rec_reset();
    misuse_in(0, 0);
    misuse_in(MP_SINGLE_THREAD, 0);
    misuse_in(MP_ZERO, 0);
    misuse_in(0, 8);
    misuse_in(0, 100);
    misuse_in(MP_SINGLE_THREAD, 8);
    test_double_put_capped();
    test_null_pool(); /* with the recording handler installed: silent but for a put to NULL */
}

/* ---------------------------------------------------- default handler */

static void foreign_put_in_child(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "dflt", .obj_size = 16 });
    char *m = malloc(16);
    if (!p || !m)
        _exit(5);
    mp_objpool_put(p, m);
    _exit(0); /* reached only if the default handler returned */
}

/* Forks; the child installs a recording handler, then restores the
 * default with fn NULL, then puts a foreign pointer. */
static void test_default_restored(void)
{
    int errs[2];
    REQUIRE(pipe(errs) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(errs[0]);
        dup2(errs[1], 2);
        mp_set_error_handler(recording_handler, &handler_arg_token);
        mp_set_error_handler(NULL, &handler_arg_token); /* the arg is ignored: the default is back */
        foreign_put_in_child();
    }
    close(errs[1]);
    char err[1024];
    size_t len = 0;
    ssize_t r;
    while (len + 1 < sizeof err && (r = read(errs[0], err + len, sizeof err - 1 - len)) > 0)
        len += (size_t)r;
    err[len] = '\0';
    close(errs[0]);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(starts_with(err, "mpool: put of a pointer not from mpool: objpool 'dflt': 0x"));
    char *nl = strchr(err, '\n');
    CHECK(nl != NULL && nl[1] == '\0'); /* exactly one line */
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) || !starts_with(err, "mpool: put"))
        fprintf(stderr, "default handler: status %#x, stderr \"%s\"\n", status, err);
}

/* Flags: an object pool's own are accepted, every other bit refused. */
static void *make_objpool(unsigned flags)
{
    return mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "flags", .obj_size = 64, .flags = flags });
}
static void end_objpool(void *p) { mp_objpool_destroy(p); }

int main(void)
{
    test_bad_options();
    flag_sweep("objpool", MP_SINGLE_THREAD | MP_ZERO | MP_LEAK_ABORT | MP_LEAK_IGNORE | MP_HANDLES, make_objpool,
               end_objpool);
    test_bad_timeout();
    test_misuse();
    test_default_restored();
    /* Restoring the default in this process too: no handler call stays
     * recorded, and correct use still says nothing. */
    mp_set_error_handler(NULL, NULL);
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 8 });
    REQUIRE(p != NULL);
    void *o = mp_objpool_get(p);
    mp_objpool_put(p, o);
    mp_objpool_destroy(p);
    return check_done();
}
