/* Reserves in the pool tree (public header only):
 *   - destroying the parent arena destroys the reserve: the source gets
 *     back every element the reserve held, before the arena's cleanups run;
 *     elements out stay the caller's;
 *   - resetting the parent does the same and leaves the arena usable;
 *   - a reserve deep in a tree goes when the root goes;
 *   - mp_reserve_move to another arena (or to no parent) and then the old
 *     parent destroyed: the reserve survives and works; the arenas'
 *     statistics and reports follow the move. */
#define _GNU_SOURCE 1
#include "capture.h"
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/* The counting source (src_alloc, src_free, src_has): */
#include "reserve_source.h"

static mp_reserve *make(mp_arena *parent, const char *name, size_t min, source *s, unsigned flags)
{
    mp_reserve *r = mp_reserve_create(parent, &(mp_reserve_opts){ .name = name, .min_reserved = min,
                                                                  .alloc = src_alloc, .free = src_free, .src = s,
                                                                  .flags = flags });
    REQUIRE(r != NULL);
    return r;
}

static mp_arena *arena(mp_arena *parent, const char *name)
{
    mp_arena *a = mp_arena_create(parent, &(mp_arena_opts){ .name = name });
    REQUIRE(a != NULL);
    REQUIRE(mp_alloc(a, 100) != NULL);
    return a;
}

static mp_stats astats(const mp_arena *a)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    return s;
}

static mp_stats rstats(const mp_reserve *r)
{
    mp_stats s;
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    return s;
}

/* A cleanup that records how many elements the source had out when the
 * arena ran it: the children (the reserve) must be gone by then. */
typedef struct at_cleanup {
    const source *s;
    size_t live;
    bool ran;
} at_cleanup;

static void record_live(void *arg)
{
    at_cleanup *c = arg;
    c->live = c->s->live;
    c->ran = true;
}

/* --------------------------------------------------------- destroy, reset */

static void test_parent_destroy(void)
{
    source s = { 0 };
    mp_arena *a = arena(NULL, "parent");
    at_cleanup c = { &s, SIZE_MAX, false };
    REQUIRE(mp_cleanup_push(a, record_live, &c) == 0);
    mp_reserve *r = make(a, "child", 6, &s, 0);
    CHECK_EQ(s.live, 6);
    CHECK_EQ(astats(a).reserve_level, 6);
    CHECK_EQ(astats(a).reserve_min, 6);
    /* Some traffic first: all of it comes back. */
    s.fail = true;
    void *e1 = mp_reserve_alloc(r, 0), *e2 = mp_reserve_alloc(r, 0);
    REQUIRE(e1 && e2);
    s.fail = false;
    mp_reserve_free(r, e1);
    mp_reserve_free(r, e2);
    mp_arena_destroy(a);
    CHECK(c.ran);
    CHECK_EQ(c.live, 0); /* the reserve went before the cleanups */
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.frees, 6);
    CHECK_EQ(s.bad_frees, 0);

    /* With elements out: those stay the caller's. */
    source t = { 0 };
    a = arena(NULL, "parent2");
    r = make(a, "child2", 3, &t, MP_LEAK_IGNORE);
    t.fail = true;
    void *x = mp_reserve_alloc(r, 0);
    REQUIRE(x);
    t.fail = false;
    void *y = mp_reserve_alloc(r, 0);
    REQUIRE(y);
    mp_arena_destroy(a);
    CHECK_EQ(t.live, 2);
    src_free(x, &t);
    src_free(y, &t);
    CHECK_EQ(t.live, 0);
    CHECK_EQ(t.bad_frees, 0);
}

static void test_parent_reset(void)
{
    source s = { 0 }, t = { 0 };
    mp_arena *a = arena(NULL, "resettable");
    at_cleanup c = { &s, SIZE_MAX, false };
    REQUIRE(mp_cleanup_push(a, record_live, &c) == 0);
    mp_reserve *r = make(a, "first", 4, &s, 0);
    (void)r;
    CHECK_EQ(s.live, 4);
    mp_arena_reset(a);
    CHECK(c.ran);
    CHECK_EQ(c.live, 0);
    CHECK_EQ(s.live, 0);
    CHECK_EQ(astats(a).reserve_min, 0);
    /* The arena is still usable, for reserves too. */
    r = make(a, "second", 2, &t, 0);
    CHECK_EQ(t.live, 2);
    void *e = mp_reserve_alloc(r, 0);
    REQUIRE(e);
    mp_reserve_free(r, e);
    CHECK_EQ(astats(a).reserve_min, 2);
    mp_arena_reset(a);
    CHECK_EQ(t.live, 0);
    mp_arena_destroy(a);
    CHECK_EQ(s.bad_frees + t.bad_frees, 0);
}

/* root > mid > leaf, a reserve at each level; the root goes, all go. */
static void test_deep(void)
{
    source s[3] = { { 0 } };
    mp_arena *root = arena(NULL, "root"), *mid = arena(root, "mid"), *leaf = arena(mid, "leaf");
    make(root, "r0", 1, &s[0], 0);
    make(mid, "r1", 2, &s[1], 0);
    make(leaf, "r2", 3, &s[2], 0);
    mp_stats st = astats(root);
    CHECK_EQ(st.reserve_min, 6); /* the sum over the tree */
    CHECK_EQ(st.reserve_level, 6);
    mp_arena_destroy(root);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(s[i].live, 0);
        CHECK_EQ(s[i].frees, (size_t)i + 1);
        CHECK_EQ(s[i].bad_frees, 0);
    }
}

/* ------------------------------------------------------------------ move */

static void test_move(void)
{
    source s = { 0 };
    mp_arena *a = arena(NULL, "old-home"), *b = arena(NULL, "new-home");
    mp_reserve *r = make(a, "mover", 3, &s, 0);
    CHECK_EQ(astats(a).reserve_min, 3);
    CHECK_EQ(mp_reserve_move(r, b), 0);
    CHECK_EQ(astats(a).reserve_min, 0);
    CHECK_EQ(astats(b).reserve_min, 3);
    char *ra = capture(mp_report, a), *rb = capture(mp_report, b);
    CHECK(strstr(ra, "mover") == NULL);
    CHECK(strstr(rb, "reserve mover") != NULL);
    free(ra);
    free(rb);

    mp_arena_destroy(a); /* not the reserve's parent any more */
    CHECK_EQ(s.live, 3);
    mp_stats st = rstats(r);
    CHECK_EQ(st.reserve_level, 3);
    CHECK_EQ(st.reserve_min, 3);
    s.fail = true;
    void *e = mp_reserve_alloc(r, 0);
    CHECK(e != NULL);
    mp_reserve_free(r, e);
    s.fail = false;

    /* To no parent: the new parent's destroy leaves it alone too. */
    CHECK_EQ(mp_reserve_move(r, NULL), 0);
    CHECK_EQ(astats(b).reserve_min, 0);
    mp_arena_destroy(b);
    CHECK_EQ(s.live, 3);
    CHECK_EQ(rstats(r).reserve_level, 3);
    char *all = capture(mp_report, NULL);
    CHECK(strstr(all, "reserve mover") != NULL); /* a root now */
    free(all);

    /* And back under an arena, which then takes it along. */
    mp_arena *c = arena(NULL, "last-home");
    CHECK_EQ(mp_reserve_move(r, c), 0);
    CHECK_EQ(astats(c).reserve_level, 3);
    mp_arena_destroy(c);
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.bad_frees, 0);
}

int main(void)
{
    test_parent_destroy();
    test_parent_reset();
    test_deep();
    test_move();
    return check_done();
}
