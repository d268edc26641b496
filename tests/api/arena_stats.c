/* Arena statistics: every counter moves as documented (in_use, peak,
 * mapped, meta, allocs, frees, objects, failures), mp_arena_stats includes
 * the children, and mp_report / mp_report_json show each arena's own
 * counters in the tree. The same in a single-threaded and a MP_THREADSAFE
 * arena. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "capture.h"
#include "check.h"

#include <mpool.h>

#include <errno.h>

static mp_stats stats_of(const mp_arena *a)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    return s;
}

static void noop(void *arg) { (void)arg; }

static void test_counters(unsigned flags)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "counted", .flags = flags });
    REQUIRE(a != NULL);
    mp_stats s = stats_of(a);
    CHECK(s.bytes_in_use == 0 && s.bytes_peak == 0 && s.bytes_mapped == 0 && s.allocs == 0 && s.frees == 0 &&
          s.objects_in_use == 0 && s.failures == 0);
    CHECK(s.bytes_meta > 0); /* the arena struct and its name */
    size_t meta0 = s.bytes_meta;

    char *p[10];
    for (int i = 0; i < 10; i++)
        REQUIRE((p[i] = mp_alloc(a, 100)) != NULL);
    s = stats_of(a);
    CHECK_EQ(s.allocs, 10);
    CHECK_EQ(s.objects_in_use, 10);
    CHECK_EQ(s.frees, 0);
    CHECK(s.bytes_in_use >= 1000 && s.bytes_in_use <= 10 * (100 + 16 + 15)); /* with padding (and red zones under tools) */
    CHECK_EQ(s.bytes_mapped, 65536); /* one default block */
    CHECK_EQ(s.bytes_peak, s.bytes_in_use);
    CHECK(s.bytes_meta >= meta0); /* plus records, under a tool or in checked mode */
    size_t ten = s.bytes_in_use;

    /* A cleanup record counts while it is held. */
    size_t meta = s.bytes_meta;
    REQUIRE(mp_cleanup_push(a, noop, NULL) == 0);
    CHECK(stats_of(a).bytes_meta > meta);
    REQUIRE(mp_cleanup_remove(a, noop, NULL) == 0);
    CHECK_EQ(stats_of(a).bytes_meta, meta);

    mp_arena_free(a, p[9]); /* rolled back */
    s = stats_of(a);
    CHECK_EQ(s.frees, 1);
    CHECK_EQ(s.objects_in_use, 9);
    CHECK(s.bytes_in_use <= ten - 100);
    CHECK_EQ(s.bytes_peak, ten);
    mp_arena_free(a, p[3]); /* counted as freed; its space waits for the reset */
    s = stats_of(a);
    CHECK_EQ(s.frees, 2);
    CHECK_EQ(s.objects_in_use, 8);
    size_t small = s.bytes_in_use;

    char *big = mp_alloc(a, 100000); /* large: exactly its size in use */
    REQUIRE(big != NULL);
    s = stats_of(a);
    CHECK_EQ(s.bytes_in_use, small + 100000);
    CHECK(s.bytes_mapped >= 65536 + 100000 && s.bytes_mapped <= 65536 + 100000 + 8192);
    CHECK_EQ(s.allocs, 11);
    mp_arena_free(a, big);
    s = stats_of(a);
    CHECK_EQ(s.bytes_in_use, small);
    CHECK_EQ(s.bytes_mapped, 65536);
    CHECK_EQ(s.bytes_peak, small + 100000);
    CHECK_EQ(s.frees, 3);

    errno = 0;
    CHECK(mp_alloc(a, SIZE_MAX / 4) == NULL && errno == ENOMEM);
    CHECK_EQ(stats_of(a).failures, 1);

    mp_arena_reset(a);
    s = stats_of(a);
    CHECK_EQ(s.bytes_in_use, 0);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, 11);
    CHECK_EQ(s.frees, 11);
    CHECK_EQ(s.bytes_peak, small + 100000); /* the most ever */
    CHECK_EQ(s.bytes_mapped, 65536);        /* the block is kept */
    CHECK_EQ(s.failures, 1);
    mp_arena_destroy(a);
}

static void test_children_and_report(void)
{
    mp_arena *parent = mp_arena_create(NULL, &(mp_arena_opts){ .name = "parent" });
    mp_arena *child = mp_arena_create(parent, &(mp_arena_opts){ .name = "child", .flags = MP_THREADSAFE });
    mp_arena *grand = mp_arena_create(child, &(mp_arena_opts){ .name = "grandchild" });
    mp_objpool *objs = mp_objpool_create(parent, &(mp_objpool_opts){ .name = "objs", .obj_size = 48 });
    REQUIRE(parent && child && grand && objs);
    for (int i = 0; i < 3; i++)
        REQUIRE(mp_alloc(parent, 10) != NULL);
    for (int i = 0; i < 5; i++)
        REQUIRE(mp_alloc(child, 1000) != NULL);
    for (int i = 0; i < 7; i++)
        REQUIRE(mp_strdup(grand, "seven") != NULL);
    void *o = mp_objpool_get(objs);
    REQUIRE(o != NULL);

    mp_stats s = stats_of(parent), c = stats_of(child), g = stats_of(grand), os;
    REQUIRE(mp_objpool_stats(objs, &os) == 0);
    CHECK_EQ(g.allocs, 7);
    CHECK_EQ(c.allocs, 5 + 7);
    CHECK_EQ(s.allocs, 3 + 5 + 7 + os.allocs);
    CHECK_EQ(s.objects_in_use, 3 + 5 + 7 + 1);
    CHECK_EQ(c.bytes_mapped, 2 * 65536);
    CHECK_EQ(s.bytes_mapped, 3 * 65536 + os.bytes_mapped);
    CHECK(g.bytes_meta > 0);
    CHECK(c.bytes_meta > g.bytes_meta); /* the child's own and the grandchild's */
    CHECK(s.bytes_meta > c.bytes_meta + os.bytes_meta);
    CHECK_EQ(s.bytes_in_use, stats_of(parent).bytes_in_use);

    /* The report: one line per pool, each with its own counters. */
    char *text = capture(mp_report, parent);
    CHECK(strstr(text, "\narena parent ") != NULL);
    CHECK(strstr(text, "\n  arena child ") != NULL);
    CHECK(strstr(text, "\n    arena grandchild ") != NULL);
    CHECK(strstr(text, "\n  objpool objs ") != NULL);
    CHECK(strstr(text, "64.0 KiB") != NULL);
    free(text);
    char *json = capture(mp_report_json, parent);
    CHECK(strstr(json, "\"kind\":\"arena\",\"name\":\"parent\",\"stats\":{") != NULL);
    CHECK(strstr(json, "\"name\":\"child\",\"stats\":{") != NULL);
    const char *ps = strstr(json, "\"name\":\"parent\"");
    const char *cs = strstr(json, "\"name\":\"child\"");
    const char *gs = strstr(json, "\"name\":\"grandchild\"");
    REQUIRE(ps && cs && gs);
    CHECK(strstr(ps, "\"allocs\":3,") != NULL && strstr(ps, "\"allocs\":3,") < cs); /* own, not the sum */
    CHECK(strstr(cs, "\"allocs\":5,") != NULL && strstr(cs, "\"allocs\":5,") < gs);
    CHECK(strstr(gs, "\"allocs\":7,\"frees\":0") != NULL);
    free(json);

    mp_objpool_put(objs, o);
    mp_arena_destroy(parent);
}

int main(void)
{
    test_counters(0);
    test_counters(MP_THREADSAFE);
    test_counters(MP_ZERO);
    test_children_and_report();
    return check_done();
}
