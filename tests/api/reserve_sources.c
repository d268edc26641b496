/* The sources a reserve can draw from (public header only):
 *   - the default source, malloc(elem_size) and free: every element is
 *     elem_size writable bytes, suitably aligned, and every one goes back
 *     (run under ASan and valgrind: no overflow, no leak, no double free);
 *     elements out at destroy are the caller's, who frees them;
 *   - an object pool through mp_objpool_source_alloc/_free: the pool's
 *     max_live makes the source fail, so the reserve is used; frees refill
 *     it; destroying the reserve gives its elements back to the pool;
 *   - a reserve and its object pool under one arena: the arena destroys
 *     the reserve (newest first) while the pool still lives. */
#define _GNU_SOURCE 1
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static mp_stats rstats(const mp_reserve *r)
{
    mp_stats s;
    REQUIRE(mp_reserve_stats(r, &s) == 0);
    return s;
}

static mp_stats pstats(const mp_objpool *p)
{
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    return s;
}

/* ------------------------------------------------------- default source */

static void fill(void *e, size_t size, unsigned char tag)
{
    memset(e, tag, size); /* every byte, and not one more */
}

static bool filled(const void *e, size_t size, unsigned char tag)
{
    const unsigned char *p = e;
    for (size_t i = 0; i < size; i++)
        if (p[i] != tag)
            return false;
    return true;
}

static void test_default_source(void)
{
    enum { SIZE = 100, MIN = 5, N = 40 };
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "malloc", .min_reserved = MIN,
                                                                .elem_size = SIZE });
    REQUIRE(r != NULL);
    mp_stats s = rstats(r);
    CHECK_EQ(s.reserve_level, MIN);
    CHECK_EQ(s.bytes_mapped, MIN * SIZE);

    void *e[N];
    for (int i = 0; i < N; i++) {
        e[i] = mp_reserve_alloc(r, 0);
        REQUIRE(e[i] != NULL);
        CHECK_EQ((uintptr_t)e[i] % alignof(max_align_t), 0);
        fill(e[i], SIZE, (unsigned char)i);
    }
    for (int i = 0; i < N; i++)
        CHECK(filled(e[i], SIZE, (unsigned char)i)); /* no two overlap */
    s = rstats(r);
    CHECK_EQ(s.allocs, N);
    CHECK_EQ(s.objects_in_use, N);
    CHECK_EQ(s.bytes_in_use, N * SIZE);
    CHECK_EQ(s.failures, 0);
    CHECK_EQ(s.reserve_used, 0); /* malloc did not fail */
    CHECK_EQ(s.reserve_level, MIN);

    /* Shrink and grow around the elements out. */
    CHECK_EQ(mp_reserve_resize(r, 2), 0);
    CHECK_EQ(mp_reserve_resize(r, 12), 0);
    CHECK_EQ(rstats(r).reserve_level, 12);
    CHECK_EQ(rstats(r).bytes_mapped, 12 * SIZE);
    for (int i = 0; i < N; i += 2)
        mp_reserve_free(r, e[i]);
    for (int i = 1; i < N; i += 2)
        mp_reserve_free(r, e[i]);
    s = rstats(r);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.bytes_in_use, 0);
    CHECK_EQ(s.frees, N);
    CHECK_EQ(s.reserve_level, 12);

    /* Elements out at destroy belong to the caller: free() them. */
    void *a = mp_reserve_alloc(r, 0), *b = mp_reserve_alloc(r, 0);
    REQUIRE(a && b);
    fill(a, SIZE, 0xaa);
    fill(b, SIZE, 0xbb);
    mp_reserve_destroy(r);
    CHECK(filled(a, SIZE, 0xaa) && filled(b, SIZE, 0xbb));
    free(a);
    free(b);

    /* Sizes that are not multiples of anything. */
    const size_t sizes[] = { 1, 3, 17, 4095, 70000 };
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "odd", .min_reserved = 2, .elem_size = sizes[k] });
        REQUIRE(r != NULL);
        void *x = mp_reserve_alloc(r, 0), *y = mp_reserve_alloc(r, 0), *z = mp_reserve_alloc(r, 0);
        REQUIRE(x && y && z);
        fill(x, sizes[k], 1);
        fill(y, sizes[k], 2);
        fill(z, sizes[k], 3);
        CHECK(filled(x, sizes[k], 1) && filled(y, sizes[k], 2) && filled(z, sizes[k], 3));
        mp_reserve_free(r, x);
        mp_reserve_free(r, y);
        mp_reserve_free(r, z);
        CHECK_EQ(rstats(r).bytes_mapped, 2 * sizes[k]);
        mp_reserve_destroy(r);
    }
}

/* ------------------------------------------------------- object pools */

static void test_objpool_adapters(void)
{
    /* The adapters themselves: get without waiting, put. */
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "capped", .obj_size = 64, .max_live = 2 });
    REQUIRE(p != NULL);
    void *a = mp_objpool_source_alloc(p), *b = mp_objpool_source_alloc(p);
    REQUIRE(a && b);
    errno = 0;
    CHECK(mp_objpool_source_alloc(p) == NULL); /* at the cap: fails at once, never waits */
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(pstats(p).objects_in_use, 2);
    mp_objpool_source_free(a, p);
    mp_objpool_source_free(b, p);
    CHECK_EQ(pstats(p).objects_in_use, 0);
    mp_objpool_destroy(p);
}

static void test_objpool_source(void)
{
    enum { CAP = 5, MIN = 3, OBJ = 48 };
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "backing", .obj_size = OBJ,
                                                                .max_live = CAP });
    REQUIRE(p != NULL);
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "over-pool", .min_reserved = MIN,
                                                                .elem_size = OBJ, .alloc = mp_objpool_source_alloc,
                                                                .free = mp_objpool_source_free, .src = p });
    REQUIRE(r != NULL);
    CHECK_EQ(pstats(p).objects_in_use, MIN); /* the fill came from the pool */

    /* CAP - MIN from the pool, then the pool is at its cap: MIN more from
     * the reserve, then nothing. */
    void *e[CAP];
    for (int i = 0; i < CAP; i++) {
        e[i] = mp_reserve_alloc(r, 0);
        REQUIRE(e[i] != NULL);
        fill(e[i], OBJ, (unsigned char)(i + 1));
        mp_stats s = rstats(r);
        size_t from_reserve = i < CAP - MIN ? 0 : (size_t)i - (CAP - MIN) + 1;
        CHECK_EQ(s.reserve_used, from_reserve);
        CHECK_EQ(s.failures, from_reserve);
        CHECK_EQ(s.reserve_level, MIN - from_reserve);
        CHECK_EQ(pstats(p).objects_in_use, MIN + (size_t)i + 1 < CAP ? MIN + (size_t)i + 1 : CAP);
    }
    errno = 0;
    CHECK(mp_reserve_alloc(r, 0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mp_reserve_alloc(r, 1000) == NULL);
    CHECK_EQ(errno, ETIMEDOUT);
    for (int i = 0; i < CAP; i++)
        CHECK(filled(e[i], OBJ, (unsigned char)(i + 1)));

    /* Frees refill the reserve first (the pool stays at its cap)... */
    mp_reserve_free(r, e[0]);
    CHECK_EQ(rstats(r).reserve_level, 1);
    CHECK_EQ(pstats(p).objects_in_use, CAP);
    void *again = mp_reserve_alloc(r, 0);
    CHECK_PTR_EQ(again, e[0]);
    e[0] = again;
    for (int i = 0; i < MIN; i++)
        mp_reserve_free(r, e[i]);
    CHECK_EQ(rstats(r).reserve_level, MIN);
    CHECK_EQ(pstats(p).objects_in_use, CAP);
    /* ...then go back to the pool. */
    for (int i = MIN; i < CAP; i++)
        mp_reserve_free(r, e[i]);
    CHECK_EQ(rstats(r).reserve_level, MIN);
    CHECK_EQ(pstats(p).objects_in_use, MIN);
    /* The pool has room again: it is used first. */
    void *x = mp_reserve_alloc(r, 0);
    REQUIRE(x);
    CHECK_EQ(rstats(r).reserve_level, MIN);
    CHECK_EQ(pstats(p).objects_in_use, MIN + 1);

    /* Resize within the cap works; past it, the pool fails the grow. */
    CHECK_EQ(mp_reserve_resize(r, CAP - 1), 0);
    CHECK_EQ(pstats(p).objects_in_use, CAP);
    CHECK_EQ(mp_reserve_resize(r, CAP + 1), ENOMEM);
    CHECK_EQ(rstats(r).reserve_level, CAP - 1);
    CHECK_EQ(rstats(r).reserve_min, CAP - 1);
    CHECK_EQ(pstats(p).objects_in_use, CAP);
    mp_reserve_free(r, x); /* the reserve is full: back to the pool */
    CHECK_EQ(pstats(p).objects_in_use, CAP - 1);

    /* Destroy gives the reserve's elements back to the pool. */
    void *out = mp_reserve_alloc(r, 0);
    REQUIRE(out);
    mp_reserve_free(r, out);
    mp_reserve_destroy(r);
    mp_stats ps = pstats(p);
    CHECK_EQ(ps.objects_in_use, 0);
    CHECK_EQ(ps.allocs, ps.frees);
    mp_objpool_destroy(p);
}

/* Elements out at the reserve's destroy stay out of the pool; the caller
 * puts them back. */
static void test_objpool_out_at_destroy(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "backing2", .obj_size = 32, .max_live = 3 });
    REQUIRE(p != NULL);
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "leaves", .min_reserved = 2,
                                                                .alloc = mp_objpool_source_alloc,
                                                                .free = mp_objpool_source_free, .src = p,
                                                                .flags = MP_LEAK_IGNORE });
    REQUIRE(r != NULL);
    void *a = mp_reserve_alloc(r, 0), *b = mp_reserve_alloc(r, 0); /* one from the pool, one from the reserve */
    REQUIRE(a && b);
    CHECK_EQ(rstats(r).reserve_used, 1);
    mp_reserve_destroy(r);
    CHECK_EQ(pstats(p).objects_in_use, 2);
    mp_objpool_put(p, a);
    mp_objpool_put(p, b);
    CHECK_EQ(pstats(p).objects_in_use, 0);
    mp_objpool_destroy(p);
}

/* Pool and reserve under one arena: the reserve, newer, goes first and
 * gives its elements back to the pool, which is still there. */
static void test_under_one_arena(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "app" });
    REQUIRE(a != NULL);
    mp_objpool *p = mp_objpool_create(a, &(mp_objpool_opts){ .name = "bufs", .obj_size = 256, .max_live = 8 });
    REQUIRE(p != NULL);
    mp_reserve *r = mp_reserve_create(a, &(mp_reserve_opts){ .name = "emergency", .min_reserved = 4,
                                                             .elem_size = 256, .alloc = mp_objpool_source_alloc,
                                                             .free = mp_objpool_source_free, .src = p });
    REQUIRE(r != NULL);
    void *e[8];
    for (int i = 0; i < 8; i++)
        REQUIRE((e[i] = mp_reserve_alloc(r, 0)) != NULL);
    CHECK_EQ(rstats(r).reserve_used, 4);
    for (int i = 0; i < 8; i++)
        mp_reserve_free(r, e[i]);
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    CHECK_EQ(s.reserve_level, 4); /* the arena's totals include the reserve */
    CHECK_EQ(s.reserve_min, 4);
    CHECK_EQ(pstats(p).objects_in_use, 4);
    mp_arena_destroy(a); /* reserve first, then the pool: clean under ASan and valgrind */
}

int main(void)
{
    test_default_source();
    test_objpool_adapters();
    test_objpool_source();
    test_objpool_out_at_destroy();
    test_under_one_arena();
    return check_done();
}
