/* limit: an arena and its child arenas never hold more than `limit` bytes
 * from the OS (bytes_mapped of the arena with its children); past it an
 * allocation fails with ENOMEM and the arena stays usable. What counts:
 * every block (its whole span) and every large allocation (header, padding
 * and size, rounded up to pages) of the arena and of every arena below it;
 * object pools below it do not count. A block that would cross the limit
 * is replaced by a smaller one when the request still fits. */
#include "check.h"

#include <mpool.h>

#include <errno.h>

#define KiB ((size_t)1024)

static mp_stats stats_of(const mp_arena *a)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    return s;
}

static mp_arena *limited(mp_arena *parent, const char *name, size_t limit)
{
    mp_arena *a = mp_arena_create(parent, &(mp_arena_opts){ .name = name, .limit = limit });
    REQUIRE(a != NULL);
    return a;
}

/* Allocates size-byte pieces until ENOMEM; returns how many it got. */
static size_t fill(mp_arena *a, size_t size, const mp_arena *watch, size_t limit)
{
    size_t n = 0;
    for (;;) {
        errno = 0;
        char *p = mp_alloc(a, size);
        if (!p) {
            CHECK_EQ(errno, ENOMEM);
            return n;
        }
        p[0] = p[size - 1] = 1;
        n++;
        if (stats_of(watch).bytes_mapped > limit) {
            CHECK(stats_of(watch).bytes_mapped <= limit);
            return n;
        }
        REQUIRE(n < 10000000);
    }
}

static void test_own_limit(void)
{
    size_t limit = 256 * KiB;
    mp_arena *a = limited(NULL, "own", limit);
    size_t n = fill(a, 1000, a, limit);
    mp_stats s = stats_of(a);
    CHECK(s.bytes_mapped <= limit);
    CHECK(s.bytes_mapped > limit - 64 * KiB);
    CHECK(n * 1000 > limit * 3 / 4); /* most of it was usable */
    CHECK(s.failures >= 1);
    /* Still usable: what fits in the room left works; a rollback frees room. */
    CHECK(mp_alloc(a, 1) != NULL || errno == ENOMEM);
    errno = 0;
    CHECK(mp_alloc(a, 200000) == NULL && errno == ENOMEM); /* a large one does not fit either */
    char *last = NULL;
    while ((last = mp_alloc(a, 16)) != NULL)
        ;
    CHECK_EQ(errno, ENOMEM);
    /* After a reset the same amount fits again, without mapping more. */
    size_t mapped = stats_of(a).bytes_mapped;
    mp_arena_reset(a);
    size_t n2 = fill(a, 1000, a, limit);
    CHECK(n2 >= n);
    CHECK(stats_of(a).bytes_mapped <= limit);
    CHECK(stats_of(a).bytes_mapped >= mapped - 64 * KiB);
    mp_arena_destroy(a);
}

/* A limit that is not a multiple of the block: the last block is smaller. */
static void test_smaller_block(void)
{
    size_t limit = 100 * KiB; /* one 64 KiB block, then room for a 36 KiB one */
    mp_arena *a = limited(NULL, "partial", limit);
    size_t n = fill(a, 1000, a, limit);
    mp_stats s = stats_of(a);
    CHECK(s.bytes_mapped > 64 * KiB);
    CHECK(s.bytes_mapped <= limit);
    CHECK(n * 1008 > 90 * KiB);
    mp_arena_destroy(a);

    /* Below one standard block: the first block is small. */
    a = limited(NULL, "tiny", 20 * KiB);
    CHECK(mp_alloc(a, 1000) != NULL);
    CHECK(stats_of(a).bytes_mapped <= 20 * KiB);
    mp_arena_destroy(a);

    /* Below one page: nothing fits, every allocation fails, and that is all. */
    a = limited(NULL, "none", 100);
    errno = 0;
    CHECK(mp_alloc(a, 1) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(mp_strdup(a, "x") == NULL && errno == ENOMEM);
    CHECK_EQ(stats_of(a).bytes_mapped, 0);
    CHECK_EQ(mp_cleanup_push(a, free, NULL), 0); /* not memory from the OS */
    CHECK_EQ(mp_cleanup_remove(a, free, NULL), 0);
    mp_arena_destroy(a);
}

static void test_large(void)
{
    size_t limit = 512 * KiB;
    mp_arena *a = limited(NULL, "large", limit);
    char *x = mp_alloc(a, 300 * KiB);
    REQUIRE(x != NULL);
    CHECK(stats_of(a).bytes_mapped >= 300 * KiB);
    errno = 0;
    CHECK(mp_alloc(a, 300 * KiB) == NULL && errno == ENOMEM);
    mp_arena_free(a, x); /* back at once, and so is its charge */
    CHECK_EQ(stats_of(a).bytes_mapped, 0);
    char *y = mp_alloc(a, 300 * KiB);
    CHECK(y != NULL);
    char *z = mp_alloc_aligned(a, 64, 128 * KiB); /* alignment padding counts too */
    CHECK(z != NULL);
    CHECK(stats_of(a).bytes_mapped <= limit);
    errno = 0;
    CHECK(mp_alloc_aligned(a, 64, 256 * KiB) == NULL && errno == ENOMEM);
    mp_arena_reset(a);
    CHECK_EQ(stats_of(a).bytes_mapped, 0);
    mp_arena_destroy(a);
}

/* The limit covers child arenas (at any depth), not object pools. */
static void test_children(void)
{
    size_t limit = 512 * KiB;
    mp_arena *p = limited(NULL, "parent", limit);
    mp_arena *c1 = limited(p, "c1", 0);
    mp_arena *c2 = limited(p, "c2", 128 * KiB);
    mp_arena *g = limited(c1, "grandchild", 0);
    mp_objpool *op = mp_objpool_create(p, &(mp_objpool_opts){ .name = "objs", .obj_size = 4096, .initial = 200 });
    REQUIRE(op != NULL); /* 800 KiB of objects: beyond the limit, but not counted */

    size_t n2 = fill(c2, 1000, c2, 128 * KiB); /* c2's own limit first */
    CHECK(n2 > 0);
    CHECK(stats_of(c2).bytes_mapped <= 128 * KiB);
    mp_stats os;
    REQUIRE(mp_objpool_stats(op, &os) == 0);
    size_t ng = fill(g, 1000, p, limit + os.bytes_mapped);
    CHECK(ng > 0);
    errno = 0;
    CHECK(mp_alloc(c1, 1000) == NULL && errno == ENOMEM); /* less than a page left under p */
    size_t arenas = stats_of(c1).bytes_mapped + stats_of(c2).bytes_mapped; /* c1 includes g */
    CHECK_EQ(stats_of(p).bytes_mapped, arenas + os.bytes_mapped); /* p holds nothing itself yet */
    CHECK(arenas <= limit);
    CHECK(arenas > limit - 64 * KiB);
    errno = 0;
    CHECK(mp_alloc(p, 30000) == NULL && errno == ENOMEM);

    /* Destroying a child gives its share back to its ancestors. */
    mp_arena_destroy(c1);
    CHECK(mp_alloc(p, 30000) != NULL);
    size_t n = fill(p, 1000, p, limit + os.bytes_mapped);
    CHECK(n > 100);
    mp_arena_destroy(p);
}

static int moved_log;
static void moved_cleanup(void *arg) { moved_log += (int)(intptr_t)arg; }

/* A move charges the new ancestors: refused with ENOMEM if it would take
 * one past its limit, and then nothing changed. */
static void test_move(void)
{
    mp_arena *small = limited(NULL, "small", 128 * KiB);
    mp_arena *big = limited(NULL, "big", 0);
    mp_arena *heavy = limited(big, "heavy", 0);
    mp_arena *light = limited(big, "light", 0);
    REQUIRE(mp_alloc(heavy, 200 * KiB) != NULL);
    REQUIRE(mp_alloc(light, 100) != NULL);
    REQUIRE(mp_cleanup_push(heavy, moved_cleanup, (void *)1) == 0);
    CHECK_EQ(mp_arena_move(heavy, small), ENOMEM);
    CHECK_EQ(mp_arena_move(light, small), 0);
    CHECK_EQ(stats_of(small).bytes_mapped, stats_of(light).bytes_mapped);
    /* light's charge moved: small has room for 64 KiB less now. */
    size_t n = fill(small, 1000, small, 128 * KiB);
    CHECK(n > 0);
    CHECK(stats_of(small).bytes_mapped <= 128 * KiB);
    /* heavy is still big's child: destroying big destroys it. */
    moved_log = 0;
    mp_arena_destroy(big);
    CHECK_EQ(moved_log, 1);
    /* light moves out again, and its charge leaves small: room for more. */
    errno = 0;
    CHECK(mp_alloc(small, 30000) == NULL && errno == ENOMEM);
    CHECK_EQ(mp_arena_move(light, NULL), 0);
    CHECK(mp_alloc(small, 30000) != NULL);
    CHECK(stats_of(small).bytes_mapped <= 128 * KiB);
    mp_arena_destroy(light);
    mp_arena_destroy(small);
}

int main(void)
{
    test_own_limit();
    test_smaller_block();
    test_large();
    test_children();
    test_move();
    return check_done();
}
