/* Unit tests of the slab layer: geometry for every size class that matters,
 * slot indexing by multiply, taking and giving slots through the bitmap,
 * and the metadata overhead bound. */
#include "check.h"
#include "slab.h"

#include <string.h>

static void test_shapes(void)
{
    mp__slab_shape sh;
    size_t sizes[] = { 1, 7, 8, 24, 64, 100, 4096, 20000, 40000, 65536, 1 << 20, 64u << 20 };
    size_t aligns[] = { 8, 16, 64, 4096 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (size_t j = 0; j < sizeof aligns / sizeof *aligns; j++) {
            REQUIRE(mp__slab_shape_for(sizes[i], aligns[j], &sh));
            CHECK(sh.stride >= sizes[i]);
            CHECK_EQ(sh.stride % aligns[j], 0);
            CHECK(sh.stride < sizes[i] + aligns[j]);
            CHECK(sh.nslots >= 1);
            CHECK_EQ(sh.slots_off % aligns[j], 0);
            CHECK(sh.slots_off < MP_CHUNK_SIZE); /* every slot starts in the first unit */
            if (sh.nslots > 1)
                CHECK(sh.slots_off + (sh.nslots - 1) * sh.stride < MP_CHUNK_SIZE);
            CHECK(sh.slots_off + sh.nslots * sh.stride <= sh.slab_size);
            CHECK_EQ(sh.slab_size % MP_CHUNK_SIZE, 0);
        }
    }
}

static void test_bad_shapes(void)
{
    mp__slab_shape sh;
    CHECK(!mp__slab_shape_for(0, 8, &sh));
    CHECK(!mp__slab_shape_for(64, 3, &sh));
    CHECK(!mp__slab_shape_for(64, 0, &sh));
    CHECK(!mp__slab_shape_for(64, MP_CHUNK_SIZE, &sh));
    CHECK(!mp__slab_shape_for(SIZE_MAX, 8, &sh));
    CHECK(!mp__slab_shape_for(SIZE_MAX / 2 + 1, 8, &sh));
}

static void test_overhead(void)
{
    /* 64-byte objects: chunk metadata under 2%. */
    mp__slab_shape sh;
    REQUIRE(mp__slab_shape_for(64, 16, &sh));
    double used = (double)sh.nslots * 64;
    CHECK(used / (double)sh.slab_size > 0.98);
}

static void test_take_give(void)
{
    mp__slab_shape sh;
    REQUIRE(mp__slab_shape_for(48, 16, &sh));
    mp__slab *s = mp__slab_new(&sh, 2, NULL);
    REQUIRE(s != NULL);
    CHECK(mp__slab_is_empty(s));
    CHECK(mp__slab_has_room(s));
    void *objs[200];
    size_t fresh;
    size_t got = mp__slab_take(s, objs, 100, &fresh);
    CHECK_EQ(got, 100);
    CHECK_EQ(fresh, 100);
    CHECK_EQ(s->nmade, 100);
    for (size_t i = 0; i < got; i++) {
        CHECK_EQ(mp__slab_index(s, objs[i]), i);
        CHECK(mp__slab_is_slot(s, objs[i]));
        CHECK_PTR_EQ(mp__slab_of(objs[i]), s);
    }
    CHECK(!mp__slab_is_slot(s, (char *)objs[3] + 1)); /* interior pointer */
    CHECK(!mp__slab_is_slot(s, mp__slab_slot(s, 150))); /* never made */
    for (size_t i = 0; i < 10; i++)
        CHECK(mp__slab_give(s, objs[i * 3]));
    CHECK(!mp__slab_give(s, objs[0])); /* already free */
    CHECK_EQ(s->nfree, 10);
    got = mp__slab_take(s, objs, 15, &fresh);
    CHECK_EQ(got, 15);
    CHECK_EQ(fresh, 5); /* the 10 free ones first, then 5 fresh */
    CHECK_EQ(s->nfree, 0);
    for (size_t i = 0; i < 10; i++)
        CHECK_EQ(mp__slab_index(s, objs[i]) % 3, 0);
    /* Drain the slab completely: all slots, then no room. */
    void **all = malloc(sizeof(void *) * s->nslots);
    got = mp__slab_take(s, all, s->nslots, &fresh);
    CHECK_EQ(got, s->nslots - 105);
    CHECK(!mp__slab_has_room(s));
    free(all);
    mp__slab_free(s);
}

static void test_index_every_slot(void)
{
    size_t strides[] = { 8, 24, 40, 72, 136, 1000, 4104, 20000 };
    for (size_t k = 0; k < sizeof strides / sizeof *strides; k++) {
        mp__slab_shape sh;
        REQUIRE(mp__slab_shape_for(strides[k], 8, &sh));
        mp__slab *s = mp__slab_new(&sh, 2, NULL);
        REQUIRE(s != NULL);
        for (uint32_t i = 0; i < s->nslots; i++)
            if (mp__slab_index(s, mp__slab_slot(s, i)) != i) {
                CHECK_EQ(mp__slab_index(s, mp__slab_slot(s, i)), i);
                break;
            }
        mp__slab_free(s);
    }
}

/* Page return with aging: a sweep gives back only the pages that were
 * idle at the sweep before and still are; a page used in between is
 * un-aged; a sweep of all gives back every idle page. */
static void test_idle_aging(void)
{
    mp__slab_shape sh;
    REQUIRE(mp__slab_shape_for(4096, 4096, &sh));
    mp__slab *s = mp__slab_new(&sh, 2, NULL);
    REQUIRE(s != NULL);
    void *objs[16];
    size_t fresh, n = mp__slab_take(s, objs, 6, &fresh);
    REQUIRE(n == 6);
    for (size_t i = 0; i < n; i++)
        memset(objs[i], 1, 4096);
    for (size_t i = 0; i < 4; i++) { /* 4 pages go idle */
        REQUIRE(mp__slab_give(s, objs[i]));
        mp__slab_note_idle(s, objs[i]);
    }
    CHECK_EQ(mp__slab_idle_pages(s), 4);
    mp__slab_return_idle(s, false); /* none aged yet: they all age */
    CHECK_EQ(mp__slab_idle_pages(s), 4);
    CHECK_EQ(s->bare, 0);
    CHECK_EQ(s->aged, s->idle);
    void *again;
    REQUIRE(mp__slab_take(s, &again, 1, &fresh) == 1); /* one page is used again */
    CHECK_EQ(mp__slab_idle_pages(s), 3);
    CHECK_EQ(s->aged, s->idle);
    mp__slab_return_idle(s, false); /* the three still idle go back */
    CHECK_EQ(mp__slab_idle_pages(s), 0);
    CHECK_EQ(__builtin_popcountll(s->bare), 3);
    REQUIRE(mp__slab_give(s, again));
    mp__slab_note_idle(s, again);
    CHECK_EQ(mp__slab_idle_pages(s), 1);
    mp__slab_return_idle(s, true); /* all: not aged, but gone */
    CHECK_EQ(mp__slab_idle_pages(s), 0);
    CHECK_EQ(__builtin_popcountll(s->bare), 4);
    CHECK_EQ(s->aged, 0);
    for (size_t i = 4; i < n; i++)
        REQUIRE(mp__slab_give(s, objs[i]));
    mp__slab_free(s);
}

int main(void)
{
    test_shapes();
    test_bad_shapes();
    test_overhead();
    test_take_give();
    test_index_every_slot();
    test_idle_aging();
    return check_done();
}
