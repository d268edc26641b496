/* Every bad input to the reserve API (public header only):
 *   - bad options: NULL + EINVAL, the source never called, nothing made;
 *   - a parent that is not a live arena: NULL + EINVAL;
 *   - a NULL reserve, a bad timeout, resize to 0, free of NULL, destroy and
 *     stats of NULL: what the contract says, nothing changed;
 *   - a source that fails during the fill at create, at each call in turn:
 *     NULL + ENOMEM and every element made is given back;
 * None of these is misuse: the error handler is never called. */
#define _GNU_SOURCE 1
#include "check.h"
#include "flags.h"

#include <mpool.h>

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

/* The counting source (src_alloc, src_free, src_has): */
#include "reserve_source.h"

/* ------------------------------------------------------ recording handler */

static int handler_calls;
static char handler_msg[512];

static void recording_handler(const char *msg, const void *ptr, void *arg)
{
    (void)ptr;
    (void)arg;
    handler_calls++;
    snprintf(handler_msg, sizeof handler_msg, "%s", msg ? msg : "(null)");
}

static mp_stats stats_of(const mp_reserve *r)
{
    mp_stats s;
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    return s;
}

static bool same_stats(mp_stats a, mp_stats b) { return memcmp(&a, &b, sizeof a) == 0; }

/* --------------------------------------------------------- bad options */

/* Bad options: NULL + EINVAL and the source never called. A bad parent:
 * NULL + EINVAL and nothing left out (the contract does not say whether the
 * source is asked before the parent is checked). */
static void expect_einval(const char *what, mp_arena *parent, const mp_reserve_opts *o, const source *s, int line)
{
    size_t calls = s ? s->calls : 0;
    errno = 0;
    mp_reserve *r = mp_reserve_create(parent, o);
    int err = errno;
    bool untouched = !s || (parent ? s->live == 0 : s->calls == calls);
    if (r || err != EINVAL || !untouched) {
        fprintf(stderr,
                "line %d: %s: create gave %p, errno %d, %zu source calls, %zu elements out; want NULL, EINVAL (%d), "
                "%s\n",
                line, what, (void *)r, err, s ? s->calls - calls : 0, s ? s->live : 0, EINVAL,
                parent ? "none out" : "no call");
        check_failures++;
        mp_reserve_destroy(r);
    }
}
#define EXPECT_EINVAL(what, parent, s, ...) \
    expect_einval((what), (parent), &(mp_reserve_opts){ __VA_ARGS__ }, (s), __LINE__)

static void test_bad_options(void)
{
    source s = { .fail_errno = ENOMEM };
    expect_einval("NULL opts", NULL, NULL, NULL, __LINE__);
    EXPECT_EINVAL("all zero", NULL, NULL);
    EXPECT_EINVAL("min_reserved 0, default source", NULL, NULL, .elem_size = 16);
    EXPECT_EINVAL("min_reserved 0, user source", NULL, &s, .alloc = src_alloc, .free = src_free, .src = &s);
    EXPECT_EINVAL("min_reserved 0, user source, elem_size", NULL, &s, .elem_size = 32, .alloc = src_alloc,
                  .free = src_free, .src = &s);
    EXPECT_EINVAL("no source, elem_size 0", NULL, NULL, .min_reserved = 4);
    EXPECT_EINVAL("no source, elem_size 0, a src pointer", NULL, &s, .min_reserved = 4, .src = &s);
    EXPECT_EINVAL("alloc without free", NULL, &s, .min_reserved = 4, .alloc = src_alloc, .src = &s);
    EXPECT_EINVAL("alloc without free, elem_size", NULL, &s, .min_reserved = 4, .elem_size = 32,
                  .alloc = src_alloc, .src = &s);
    EXPECT_EINVAL("free without alloc", NULL, &s, .min_reserved = 4, .free = src_free, .src = &s);
    EXPECT_EINVAL("free without alloc, elem_size", NULL, &s, .min_reserved = 4, .elem_size = 32, .free = src_free,
                  .src = &s);
    EXPECT_EINVAL("unknown flag", NULL, &s, .min_reserved = 4, .alloc = src_alloc, .free = src_free, .src = &s,
                  .flags = 0x80000000u);
    CHECK_EQ(s.calls, 0);

    /* The parent must be a live arena: other kinds of pool are not. */
    mp_objpool *pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 32 });
    REQUIRE(pool != NULL);
    EXPECT_EINVAL("objpool as parent", (mp_arena *)(void *)pool, &s, .min_reserved = 2, .alloc = src_alloc,
                  .free = src_free, .src = &s);
    mp_objpool_destroy(pool);
    mp_reserve *other = mp_reserve_create(NULL, &(mp_reserve_opts){ .min_reserved = 1, .elem_size = 8 });
    REQUIRE(other != NULL);
    EXPECT_EINVAL("reserve as parent", (mp_arena *)(void *)other, &s, .min_reserved = 2, .alloc = src_alloc,
                  .free = src_free, .src = &s);
    EXPECT_EINVAL("reserve as parent, default source", (mp_arena *)(void *)other, NULL, .min_reserved = 2,
                  .elem_size = 8);
    mp_reserve_destroy(other);
    /* Zeroed memory is no arena either. */
    static alignas(64) unsigned char zeros[4096];
    EXPECT_EINVAL("zeroed memory as parent", (mp_arena *)(void *)zeros, &s, .min_reserved = 2, .alloc = src_alloc,
                  .free = src_free, .src = &s);
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.bad_frees, 0);

    /* Valid: a user source with elem_size 0; the default source with one. */
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .min_reserved = 1, .alloc = src_alloc,
                                                                .free = src_free, .src = &s });
    CHECK(r != NULL);
    CHECK_EQ(s.live, 1);
    mp_reserve_destroy(r);
    CHECK_EQ(s.live, 0);
    /* The src pointer may be NULL: it is only passed through. */
    r = mp_reserve_create(NULL, &(mp_reserve_opts){ .min_reserved = 1, .elem_size = 1 });
    CHECK(r != NULL);
    mp_reserve_destroy(r);

    /* A long name is truncated, not refused; the options are copied. */
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    mp_reserve_opts o = { .name = name, .min_reserved = 2, .alloc = src_alloc, .free = src_free, .src = &s };
    r = mp_reserve_create(NULL, &o);
    CHECK(r != NULL);
    memset(&o, 0, sizeof o);
    memset(name, 0, sizeof name);
    if (r) {
        void *e = mp_reserve_alloc(r, 0);
        CHECK(e != NULL);
        mp_reserve_free(r, e);
        mp_reserve_destroy(r);
    }
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.bad_frees, 0);
}

/* ----------------------------------------------------------- NULL args */

static void test_bad_arguments(void)
{
    source s = { .fail_errno = ENOMEM };
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "args", .min_reserved = 3, .alloc = src_alloc,
                                                                .free = src_free, .src = &s });
    REQUIRE(r != NULL);
    s.fail = true;
    void *e = mp_reserve_alloc(r, 0);
    REQUIRE(e != NULL);
    mp_stats before = stats_of(r);
    size_t calls = s.calls;

    errno = 0;
    CHECK(mp_reserve_alloc(NULL, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_reserve_alloc(NULL, 1000) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_reserve_alloc(NULL, MP_WAIT_FOREVER) == NULL);
    CHECK_EQ(errno, EINVAL);

    /* Negative timeouts other than MP_WAIT_FOREVER: refused before anything
     * is done (the reserve still holds elements, the source is not asked). */
    const int64_t bad_timeouts[] = { -2, -3, -1000, -1000000000, INT64_MIN, INT64_MIN + 1 };
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof *bad_timeouts; i++) {
        errno = 0;
        void *x = mp_reserve_alloc(r, bad_timeouts[i]);
        int err = errno;
        if (x || err != EINVAL) {
            fprintf(stderr, "alloc with timeout %lld gave %p, errno %d; want NULL, EINVAL\n",
                    (long long)bad_timeouts[i], x, err);
            check_failures++;
        }
    }
    CHECK_EQ(s.calls, calls);

    mp_reserve_free(r, NULL); /* nothing */
    mp_reserve_free(NULL, NULL);
    mp_reserve_destroy(NULL);

    mp_stats st;
    CHECK_EQ(mp_reserve_stats(NULL, &st), EINVAL);
    CHECK_EQ(mp_reserve_stats(r, NULL), EINVAL);
    CHECK_EQ(mp_reserve_stats(NULL, NULL), EINVAL);

    CHECK_EQ(mp_reserve_resize(r, 0), EINVAL);
    CHECK_EQ(mp_reserve_resize(NULL, 0), EINVAL);
    CHECK_EQ(mp_reserve_resize(NULL, 4), EINVAL);
    CHECK_EQ(mp_reserve_move(NULL, NULL), EINVAL);
    mp_objpool *pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 16 });
    REQUIRE(pool);
    CHECK_EQ(mp_reserve_move(r, (mp_arena *)(void *)pool), EINVAL); /* not an arena */
    mp_objpool_destroy(pool);
    CHECK_EQ(s.calls, calls);

    /* Nothing changed. */
    mp_stats after = stats_of(r);
    CHECK(same_stats(before, after));
    if (!same_stats(before, after))
        fprintf(stderr, "stats changed: allocs %zu->%zu frees %zu->%zu level %zu->%zu min %zu->%zu\n", before.allocs,
                after.allocs, before.frees, after.frees, before.reserve_level, after.reserve_level, before.reserve_min,
                after.reserve_min);
    CHECK_EQ(after.reserve_level, 2);
    CHECK_EQ(after.reserve_min, 3);
    mp_reserve_free(r, e);
    mp_reserve_destroy(r);
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.bad_frees, 0);
}

/* ----------------------------------------------- failing fill at create */

static void test_create_fill_fails(void)
{
    enum { MIN = 6 };
    const int errnos[] = { ENOMEM, EIO, 0 };
    for (size_t j = 0; j < sizeof errnos / sizeof *errnos; j++) {
        for (size_t k = 1; k <= MIN; k++) {
            source s = { .fail_at = k, .fail_errno = errnos[j] };
            errno = 0;
            mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "fill", .min_reserved = MIN,
                                                                        .alloc = src_alloc, .free = src_free,
                                                                        .src = &s });
            int err = errno;
            if (r || err != ENOMEM || s.live != 0 || s.calls < k || s.calls > MIN || s.bad_frees) {
                fprintf(stderr,
                        "fill failing at call %zu (source errno %d): create gave %p, errno %d, source: %zu calls, "
                        "%zu live, %zu bad frees; want NULL, ENOMEM, %zu..%d calls, 0 live\n",
                        k, errnos[j], (void *)r, err, s.calls, s.live, s.bad_frees, k, MIN);
                check_failures++;
                mp_reserve_destroy(r);
            }
            CHECK_EQ(s.frees, s.calls - 1); /* every element made (all calls but the failed one) went back */
        }
    }
    /* A source that always fails: nothing made. */
    source s = { .fail = true, .fail_errno = ENOMEM };
    errno = 0;
    CHECK(mp_reserve_create(NULL, &(mp_reserve_opts){ .min_reserved = 1, .alloc = src_alloc, .free = src_free,
                                                      .src = &s }) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(s.live, 0);

    /* Under an arena: a failed create leaves nothing in the arena. */
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "fill-parent" });
    REQUIRE(a);
    source t = { .fail_at = 3, .fail_errno = ENOMEM };
    errno = 0;
    CHECK(mp_reserve_create(a, &(mp_reserve_opts){ .min_reserved = 4, .alloc = src_alloc, .free = src_free,
                                                   .src = &t }) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(t.live, 0);
    mp_stats st;
    REQUIRE(mp_arena_stats(a, &st) == 0);
    CHECK_EQ(st.reserve_min, 0);
    CHECK_EQ(st.reserve_level, 0);
    mp_arena_destroy(a);
    CHECK_EQ(t.live, 0);
    CHECK_EQ(t.bad_frees, 0);

    /* Failures at alloc: ENOMEM whatever errno the source left. */
    source u = { .fail_errno = EIO };
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .min_reserved = 1, .alloc = src_alloc,
                                                                .free = src_free, .src = &u });
    REQUIRE(r);
    u.fail = true;
    void *e = mp_reserve_alloc(r, 0);
    CHECK(e != NULL);
    errno = 0;
    CHECK(mp_reserve_alloc(r, 0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mp_reserve_alloc(r, 1000) == NULL);
    CHECK_EQ(errno, ETIMEDOUT);
    CHECK_EQ(mp_reserve_resize(r, 2), ENOMEM);
    mp_reserve_free(r, e);
    mp_reserve_destroy(r);
    CHECK_EQ(u.live, 0);
}

/* Flags: a reserve's own are accepted, every other bit refused. */
static void *make_reserve(unsigned flags)
{
    return mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "flags", .min_reserved = 2, .elem_size = 32,
                                                        .flags = flags });
}
static void end_reserve(void *r) { mp_reserve_destroy(r); }

int main(void)
{
    mp_set_error_handler(recording_handler, NULL);
    test_bad_options();
    flag_sweep("reserve", MP_LEAK_ABORT | MP_LEAK_IGNORE, make_reserve, end_reserve);
    test_bad_arguments();
    test_create_fill_fails();
    mp_set_error_handler(NULL, NULL);
    if (handler_calls) {
        fprintf(stderr, "%d error handler call(s) for bad arguments; the last: \"%s\"\n", handler_calls,
                handler_msg);
        check_failures++;
    }
    return check_done();
}
