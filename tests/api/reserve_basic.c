/* The reserve contract, single-threaded, through the public header only
 * (the Linux kernel mempool in user space):
 *   - the guarantee: with the source failing, exactly min_reserved
 *     allocations succeed; the next fails at once with timeout 0 (ENOMEM)
 *     and after the timeout with a positive one (ETIMEDOUT, having waited
 *     at least that long);
 *   - a healthy source is used first: the reserve is untouched;
 *   - free refills the reserve below min_reserved, and gives back to the
 *     source at min_reserved;
 *   - resize grows (calls the source) and shrinks (gives the surplus back);
 *     a failing grow returns ENOMEM and changes nothing;
 *   - destroy gives the reserve back to the source; elements still out stay
 *     the caller's;
 *   - every statistic, with the default source and a user source;
 *   - mp_report shows "reserve LEVEL/MIN".
 * Bad arguments are in reserve_errors.c, threads in reserve_wait_mt.c. */
#define _GNU_SOURCE 1
#include "capture.h"
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The counting source (src_alloc, src_free, src_has): */
#include "reserve_source.h"

static mp_reserve *make(const char *name, size_t min, source *s, unsigned flags)
{
    errno = 0;
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = name, .min_reserved = min,
                                                                .alloc = src_alloc, .free = src_free, .src = s,
                                                                .flags = flags });
    if (!r)
        fprintf(stderr, "create '%s' (min %zu) failed: errno %d\n", name, min, errno);
    REQUIRE(r != NULL);
    return r;
}

/* ------------------------------------------------------------- helpers */

#define ANY SIZE_MAX /* a field not checked */

/* What the statistics must say (objects_in_use is allocs - frees). */
typedef struct want {
    size_t allocs, frees, failures, used, waits, timeouts, level, min;
} want;

static mp_stats stats_of(const mp_reserve *r)
{
    mp_stats s;
    memset(&s, 0xa5, sizeof s); /* every field must be written */
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    return s;
}

static void field(const char *name, size_t got, size_t wanted, int line)
{
    if (wanted != ANY && got != wanted) {
        fprintf(stderr, "line %d: stats.%s = %zu, want %zu\n", line, name, got, wanted);
        check_failures++;
    }
}

static void expect_stats(const mp_reserve *r, want w, size_t elem_size, int line)
{
    mp_stats s = stats_of(r);
    field("allocs", s.allocs, w.allocs, line);
    field("frees", s.frees, w.frees, line);
    field("objects_in_use", s.objects_in_use, w.allocs - w.frees, line);
    field("failures", s.failures, w.failures, line);
    field("reserve_used", s.reserve_used, w.used, line);
    field("waits", s.waits, w.waits, line);
    field("timeouts", s.timeouts, w.timeouts, line);
    field("reserve_level", s.reserve_level, w.level, line);
    field("reserve_min", s.reserve_min, w.min, line);
    field("bytes_in_use", s.bytes_in_use, (w.allocs - w.frees) * elem_size, line);
    field("bytes_mapped", s.bytes_mapped, w.level * elem_size, line);
}
#define EXPECT_STATS(r, size, ...) expect_stats((r), (want){ __VA_ARGS__ }, (size), __LINE__)

/* The source's counters: calls made, elements out. */
#define EXPECT_SRC(s, calls_, live_)                                                                    \
    do {                                                                                              \
        CHECK_EQ((s)->calls, (calls_));                                                               \
        CHECK_EQ((s)->live, (live_));                                                                 \
        CHECK_EQ((s)->bad_frees, 0);                                                                  \
    } while (0)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------- guarantee */

static void test_guarantee(void)
{
    enum { MIN = 4 };
    source s = { .size = 32 };
    mp_reserve *r = make("guard", MIN, &s, 0);
    EXPECT_SRC(&s, MIN, MIN); /* create filled the reserve */
    EXPECT_STATS(r, 0, .level = MIN, .min = MIN);

    s.fail = true;
    void *e[MIN];
    for (size_t i = 0; i < MIN; i++) {
        errno = 0;
        e[i] = mp_reserve_alloc(r, 0);
        REQUIRE(e[i] != NULL);
        CHECK(src_has(&s, e[i])); /* one the source made at create */
        for (size_t j = 0; j < i; j++)
            CHECK(e[i] != e[j]);
        CHECK_EQ(s.calls, MIN + i + 1); /* the source was asked first */
        EXPECT_STATS(r, 0, .allocs = i + 1, .failures = i + 1, .used = i + 1, .level = MIN - 1 - i, .min = MIN);
    }
    /* Empty: no wait means ENOMEM at once. */
    errno = 0;
    CHECK(mp_reserve_alloc(r, 0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(s.calls, 2 * MIN + 1);
    EXPECT_STATS(r, 0, .allocs = MIN, .failures = MIN + 1, .used = MIN, .level = 0, .min = MIN);

    /* A positive wait runs out: ETIMEDOUT, and not before the deadline. */
    const int64_t timeout = 2 * 1000 * 1000;
    int64_t t0 = now_ns();
    errno = 0;
    void *none = mp_reserve_alloc(r, timeout);
    int err = errno;
    int64_t waited = now_ns() - t0;
    CHECK(none == NULL);
    CHECK_EQ(err, ETIMEDOUT);
    if (waited < timeout) {
        fprintf(stderr, "a %lld ns wait returned after %lld ns\n", (long long)timeout, (long long)waited);
        check_failures++;
    }
    CHECK(s.calls >= 2 * MIN + 2); /* at least the first try; maybe retries while waiting */
    EXPECT_STATS(r, 0, .allocs = MIN, .failures = ANY, .used = MIN, .waits = 1, .timeouts = 1, .level = 0,
                 .min = MIN);
    errno = 0;
    CHECK(mp_reserve_alloc(r, 1) == NULL); /* 1 ns: still a positive wait */
    CHECK_EQ(errno, ETIMEDOUT);
    EXPECT_STATS(r, 0, .allocs = MIN, .failures = ANY, .used = MIN, .waits = 2, .timeouts = 2, .level = 0,
                 .min = MIN);
    /* Every source call since create failed, in an alloc call: each one is
     * a failure, retries during the waits included. */
    size_t failures = stats_of(r).failures;
    CHECK_EQ(failures, s.calls - MIN);

    /* A free refills the reserve; the next allocation gets that element. */
    size_t calls = s.calls;
    mp_reserve_free(r, e[2]);
    EXPECT_SRC(&s, calls, MIN); /* it stayed in the reserve */
    EXPECT_STATS(r, 0, .allocs = MIN, .frees = 1, .failures = failures, .used = MIN, .waits = 2, .timeouts = 2,
                 .level = 1, .min = MIN);
    void *again = mp_reserve_alloc(r, 0);
    CHECK_PTR_EQ(again, e[2]);
    EXPECT_STATS(r, 0, .allocs = MIN + 1, .frees = 1, .failures = failures + 1, .used = MIN + 1, .waits = 2,
                 .timeouts = 2, .level = 0, .min = MIN);
    e[2] = again;

    /* All back: the reserve is full again, the source has them all. */
    for (size_t i = 0; i < MIN; i++)
        mp_reserve_free(r, e[i]);
    EXPECT_SRC(&s, calls + 1, MIN);
    CHECK_EQ(s.frees, 0);
    EXPECT_STATS(r, 0, .allocs = MIN + 1, .frees = MIN + 1, .failures = failures + 1, .used = MIN + 1, .waits = 2,
                 .timeouts = 2, .level = MIN, .min = MIN);

    /* MP_WAIT_FOREVER with an element in the reserve: no wait at all. */
    void *x = mp_reserve_alloc(r, MP_WAIT_FOREVER);
    CHECK(x != NULL);
    mp_reserve_free(r, x);
    EXPECT_STATS(r, 0, .allocs = MIN + 2, .frees = MIN + 2, .failures = failures + 2, .used = MIN + 2, .waits = 2,
                 .timeouts = 2, .level = MIN, .min = MIN);
    mp_reserve_destroy(r);
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.frees, MIN);
    CHECK_EQ(s.bad_frees, 0);
}

/* ------------------------------------------- the source first, then back */

static void test_source_first(void)
{
    enum { MIN = 3 };
    source s = { .size = 16 };
    mp_reserve *r = make("healthy", MIN, &s, 0);
    /* Healthy: each allocation is a new element from the source. */
    void *a = mp_reserve_alloc(r, 0), *b = mp_reserve_alloc(r, MP_WAIT_FOREVER);
    REQUIRE(a && b);
    EXPECT_SRC(&s, MIN + 2, MIN + 2);
    EXPECT_STATS(r, 0, .allocs = 2, .level = MIN, .min = MIN);
    /* At min_reserved, a free goes back to the source. */
    mp_reserve_free(r, a);
    EXPECT_SRC(&s, MIN + 2, MIN + 1);
    CHECK_EQ(s.frees, 1);
    CHECK(!src_has(&s, a));
    EXPECT_STATS(r, 0, .allocs = 2, .frees = 1, .level = MIN, .min = MIN);

    /* Below min_reserved, a free refills the reserve whatever the element's
     * history: here one the source made after create. */
    s.fail = true;
    void *c = mp_reserve_alloc(r, 0), *d = mp_reserve_alloc(r, 0);
    REQUIRE(c && d);
    EXPECT_STATS(r, 0, .allocs = 4, .frees = 1, .failures = 2, .used = 2, .level = MIN - 2, .min = MIN);
    s.fail = false;
    mp_reserve_free(r, b);
    EXPECT_STATS(r, 0, .allocs = 4, .frees = 2, .failures = 2, .used = 2, .level = MIN - 1, .min = MIN);
    CHECK(src_has(&s, b));
    mp_reserve_free(r, c);
    EXPECT_STATS(r, 0, .allocs = 4, .frees = 3, .failures = 2, .used = 2, .level = MIN, .min = MIN);
    mp_reserve_free(r, d); /* full again: to the source */
    EXPECT_STATS(r, 0, .allocs = 4, .frees = 4, .failures = 2, .used = 2, .level = MIN, .min = MIN);
    EXPECT_SRC(&s, MIN + 4, MIN);
    CHECK_EQ(s.frees, 2);
    mp_reserve_free(r, NULL); /* nothing */
    EXPECT_STATS(r, 0, .allocs = 4, .frees = 4, .failures = 2, .used = 2, .level = MIN, .min = MIN);
    mp_reserve_destroy(r);
    EXPECT_SRC(&s, MIN + 4, 0);
}

/* --------------------------------------------------------------- resize */

static void test_resize(void)
{
    source s = { .size = 24 };
    mp_reserve *r = make("resize", 2, &s, 0);
    EXPECT_SRC(&s, 2, 2);

    /* Grow from full. */
    CHECK_EQ(mp_reserve_resize(r, 6), 0);
    EXPECT_SRC(&s, 6, 6);
    EXPECT_STATS(r, 0, .level = 6, .min = 6);
    /* The same size: nothing to do. */
    CHECK_EQ(mp_reserve_resize(r, 6), 0);
    EXPECT_SRC(&s, 6, 6);
    EXPECT_STATS(r, 0, .level = 6, .min = 6);

    /* Grow with elements out: the reserve itself is filled to n. */
    s.fail = true;
    void *a = mp_reserve_alloc(r, 0), *b = mp_reserve_alloc(r, 0);
    REQUIRE(a && b);
    s.fail = false;
    EXPECT_STATS(r, 0, .allocs = 2, .failures = 2, .used = 2, .level = 4, .min = 6);
    CHECK_EQ(mp_reserve_resize(r, 8), 0);
    EXPECT_SRC(&s, 8 + 4, 10);
    EXPECT_STATS(r, 0, .allocs = 2, .failures = 2, .used = 2, .level = 8, .min = 8);
    mp_reserve_free(r, a); /* full: to the source */
    mp_reserve_free(r, b);
    EXPECT_SRC(&s, 12, 8);
    EXPECT_STATS(r, 0, .allocs = 2, .frees = 2, .failures = 2, .used = 2, .level = 8, .min = 8);

    /* Shrink: the surplus goes back at once. */
    CHECK_EQ(mp_reserve_resize(r, 3), 0);
    EXPECT_SRC(&s, 12, 3);
    CHECK_EQ(s.frees, 2 + 5);
    EXPECT_STATS(r, 0, .allocs = 2, .frees = 2, .failures = 2, .used = 2, .level = 3, .min = 3);

    /* Shrink below min with the reserve already lower: only min changes. */
    s.fail = true;
    void *e[3];
    for (int i = 0; i < 3; i++)
        REQUIRE((e[i] = mp_reserve_alloc(r, 0)) != NULL);
    EXPECT_STATS(r, 0, .allocs = 5, .frees = 2, .failures = 5, .used = 5, .level = 0, .min = 3);
    CHECK_EQ(mp_reserve_resize(r, 2), 0);
    EXPECT_SRC(&s, 15, 3); /* no source call for a shrink */
    EXPECT_STATS(r, 0, .allocs = 5, .frees = 2, .failures = 5, .used = 5, .level = 0, .min = 2);
    for (int i = 0; i < 3; i++)
        mp_reserve_free(r, e[i]); /* two refill the reserve, the third goes back */
    EXPECT_SRC(&s, 15, 2);
    EXPECT_STATS(r, 0, .allocs = 5, .frees = 5, .failures = 5, .used = 5, .level = 2, .min = 2);

    /* A grow the source cannot complete: ENOMEM, what it got goes back, and
     * nothing changes. */
    s.fail = false;
    s.fail_at = s.calls + 3; /* the third call of the grow fails */
    size_t frees = s.frees;
    CHECK_EQ(mp_reserve_resize(r, 7), ENOMEM);
    CHECK_EQ(s.calls, 15 + 3);
    CHECK_EQ(s.live, 2);
    CHECK_EQ(s.frees, frees + 2);
    EXPECT_STATS(r, 0, .allocs = 5, .frees = 5, .failures = 5, .used = 5, .level = 2, .min = 2);
    /* The first call failing. */
    s.fail = true;
    CHECK_EQ(mp_reserve_resize(r, 3), ENOMEM);
    CHECK_EQ(s.live, 2);
    EXPECT_STATS(r, 0, .allocs = 5, .frees = 5, .failures = 5, .used = 5, .level = 2, .min = 2);
    /* Still min 2: two allocations from the reserve, then ENOMEM. */
    void *p = mp_reserve_alloc(r, 0), *q = mp_reserve_alloc(r, 0);
    CHECK(p && q);
    errno = 0;
    CHECK(mp_reserve_alloc(r, 0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    mp_reserve_free(r, p);
    mp_reserve_free(r, q);
    /* And it grows once the source is back. */
    s.fail = false;
    s.fail_at = 0;
    CHECK_EQ(mp_reserve_resize(r, 5), 0);
    EXPECT_STATS(r, 0, .allocs = 7, .frees = 7, .failures = 8, .used = 7, .level = 5, .min = 5);
    CHECK_EQ(s.live, 5);
    mp_reserve_destroy(r);
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.bad_frees, 0);
}

/* -------------------------------------------------------------- destroy */

static void test_destroy(void)
{
    /* Everything back in the reserve: destroy gives it all to the source. */
    source s = { .size = 8 };
    mp_reserve *r = make("all-in", 5, &s, 0);
    s.fail = true;
    void *a = mp_reserve_alloc(r, 0), *b = mp_reserve_alloc(r, 0);
    REQUIRE(a && b);
    s.fail = false;
    void *c = mp_reserve_alloc(r, 0);
    REQUIRE(c);
    mp_reserve_free(r, a);
    mp_reserve_free(r, b);
    mp_reserve_free(r, c);
    CHECK_EQ(s.live, 5);
    mp_reserve_destroy(r);
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.frees, 6);
    CHECK_EQ(s.bad_frees, 0);

    /* Elements out at destroy stay out: the caller gives them back to the
     * source itself. */
    source t = { .size = 8 };
    r = make("some-out", 4, &t, MP_LEAK_IGNORE);
    t.fail = true;
    void *x = mp_reserve_alloc(r, 0), *y = mp_reserve_alloc(r, 0);
    REQUIRE(x && y);
    t.fail = false;
    void *z = mp_reserve_alloc(r, 0);
    REQUIRE(z);
    CHECK_EQ(t.live, 5);
    mp_reserve_destroy(r);
    CHECK_EQ(t.live, 3); /* the reserve's two went back, the three out did not */
    CHECK(src_has(&t, x) && src_has(&t, y) && src_has(&t, z));
    src_free(x, &t);
    src_free(y, &t);
    src_free(z, &t);
    CHECK_EQ(t.live, 0);
    CHECK_EQ(t.bad_frees, 0);

    mp_reserve_destroy(NULL); /* nothing */
}

/* ---------------------------------------------------------------- stats */

static void test_stats_bytes(void)
{
    /* The default source: malloc(elem_size) and free. */
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "dflt", .min_reserved = 3, .elem_size = 24 });
    REQUIRE(r != NULL);
    EXPECT_STATS(r, 24, .level = 3, .min = 3);
    void *a = mp_reserve_alloc(r, 0), *b = mp_reserve_alloc(r, 0);
    REQUIRE(a && b);
    memset(a, 1, 24);
    memset(b, 2, 24);
    EXPECT_STATS(r, 24, .allocs = 2, .level = 3, .min = 3); /* malloc did not fail */
    mp_reserve_free(r, a);
    EXPECT_STATS(r, 24, .allocs = 2, .frees = 1, .level = 3, .min = 3);
    size_t meta = stats_of(r).bytes_meta;
    CHECK(meta > 0); /* the reserve, its name, its array of elements */
    CHECK_EQ(mp_reserve_resize(r, 5), 0);
    CHECK(stats_of(r).bytes_meta > meta); /* a longer array */
    EXPECT_STATS(r, 24, .allocs = 2, .frees = 1, .level = 5, .min = 5);
    mp_reserve_free(r, b);
    EXPECT_STATS(r, 24, .allocs = 2, .frees = 2, .level = 5, .min = 5);
    mp_reserve_destroy(r);

    /* A user source: elem_size only feeds the byte counts. */
    source s = { .size = 40 };
    r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "sized", .min_reserved = 2, .elem_size = 40,
                                                   .alloc = src_alloc, .free = src_free, .src = &s });
    REQUIRE(r != NULL);
    EXPECT_SRC(&s, 2, 2);
    s.fail = true;
    void *x = mp_reserve_alloc(r, 0);
    REQUIRE(x);
    EXPECT_STATS(r, 40, .allocs = 1, .failures = 1, .used = 1, .level = 1, .min = 2);
    s.fail = false;
    void *y = mp_reserve_alloc(r, 0);
    REQUIRE(y);
    EXPECT_STATS(r, 40, .allocs = 2, .failures = 1, .used = 1, .level = 1, .min = 2);
    mp_reserve_free(r, x);
    mp_reserve_free(r, y);
    EXPECT_STATS(r, 40, .allocs = 2, .frees = 2, .failures = 1, .used = 1, .level = 2, .min = 2);
    mp_reserve_destroy(r);
    EXPECT_SRC(&s, 4, 0);

    /* A user source without elem_size: no byte counts. */
    source t = { .size = 40 };
    r = make("unsized", 2, &t, 0);
    void *z = mp_reserve_alloc(r, 0);
    REQUIRE(z);
    EXPECT_STATS(r, 0, .allocs = 1, .level = 2, .min = 2);
    mp_reserve_free(r, z);
    mp_reserve_destroy(r);
    EXPECT_SRC(&t, 3, 0);
}

/* --------------------------------------------------------------- report */

/* The report line of the pool named name ("" if none). */
static void line_of(const char *text, const char *label, char *line, size_t cap)
{
    line[0] = '\0';
    const char *p = strstr(text, label);
    if (!p)
        return;
    while (p > text && p[-1] != '\n')
        p--;
    size_t n = strcspn(p, "\n");
    n = n < cap - 1 ? n : cap - 1;
    memcpy(line, p, n);
    line[n] = '\0';
}

static void expect_line(const mp_arena *root, const char *label, const char *needle, int lineno)
{
    char *text = capture(mp_report, root);
    char line[512];
    line_of(text, label, line, sizeof line);
    if (!strstr(line, needle)) {
        fprintf(stderr, "line %d: report line for \"%s\" is \"%s\"; want it to contain \"%s\"\nreport:\n%s", lineno,
                label, line, needle, text);
        check_failures++;
    }
    free(text);
}
#define EXPECT_LINE(root, label, want) expect_line((root), (label), (want), __LINE__)

static void test_report(void)
{
    source s = { .size = 16 };
    mp_reserve *r = make("rep-basic", 4, &s, 0);
    EXPECT_LINE(NULL, "reserve rep-basic", "reserve 4/4");
    EXPECT_LINE(NULL, "reserve rep-basic", "reserve 4/4, used 0, waits 0, timeouts 0");
    s.fail = true;
    void *e = mp_reserve_alloc(r, 0);
    REQUIRE(e);
    EXPECT_LINE(NULL, "reserve rep-basic", "reserve 3/4, used 1, waits 0, timeouts 0");
    mp_reserve_free(r, e);
    CHECK_EQ(mp_reserve_resize(r, 2), 0);
    EXPECT_LINE(NULL, "reserve rep-basic", "reserve 2/2, used 1");
    mp_reserve_destroy(r);
    char *text = capture(mp_report, NULL);
    CHECK(strstr(text, "rep-basic") == NULL); /* gone from the report */
    free(text);

    /* Under an arena: in that arena's report. */
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "rep-parent" });
    REQUIRE(a);
    source t = { .size = 16 };
    r = mp_reserve_create(a, &(mp_reserve_opts){ .name = "rep-child", .min_reserved = 3, .alloc = src_alloc,
                                                .free = src_free, .src = &t });
    REQUIRE(r);
    EXPECT_LINE(a, "reserve rep-child", "reserve 3/3");
    mp_arena_destroy(a);
    CHECK_EQ(t.live, 0);
}

int main(void)
{
    test_guarantee();
    test_source_first();
    test_resize();
    test_destroy();
    test_stats_bytes();
    test_report();
    return check_done();
}
