/* Size classes from 1 byte to 64 MiB and beyond (public header only):
 * for every size up to 8 KiB, for steps of about 3% up to 64 MiB, and for
 * each power of two from 16 B to 64 MiB with its neighbours, a block is
 * aligned as malloc aligns it, mp_usable_size is at least the size and, from
 * 256 B to 64 MiB, at most an eighth (plus 16 B) above it, and every usable
 * byte can be written. Blocks of one class never overlap: many of each of
 * a spread of sizes, filled at once, each keep their own bytes. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "heap.h"

#include <mpool.h>

static mp_heap *make(void)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = "classes" });
    REQUIRE(h != NULL);
    return h;
}

/* One block of `size`: checked, its first and last usable bytes written,
 * freed; the counters follow. */
static void one(mp_heap *h, size_t size)
{
    mp_stats before = heap_stats(h);
    char *p = mp_heap_alloc(h, size);
    HEAP_CHECK_BLOCK(p, size, heap_malloc_align(size));
    if (!p)
        return;
    size_t u = mp_usable_size(p);
    if (u) {
        p[0] = 1;
        p[u - 1] = 2;
        p[u / 2] = 3;
    }
    mp_stats in = heap_stats(h);
    CHECK_EQ(in.allocs, before.allocs + 1);
    CHECK_EQ(in.objects_in_use, before.objects_in_use + 1);
    CHECK(in.bytes_in_use >= before.bytes_in_use + size &&
          in.bytes_in_use <= before.bytes_in_use + heap_held_max(p, size, 1));
    mp_free(p);
    mp_stats out = heap_stats(h);
    CHECK_EQ(out.frees, before.frees + 1);
    CHECK_EQ(out.bytes_in_use, before.bytes_in_use);
}

static void test_every_small_size(void)
{
    mp_heap *h = make();
    for (size_t s = 0; s <= 8 * KiB; s++)
        one(h, s);
    HEAP_CHECK_EMPTY(h);
    mp_heap_destroy(h);
}

static void test_geometric_sizes(void)
{
    mp_heap *h = make();
    for (size_t s = 8 * KiB; s <= HEAP_CLASS_MAX; s += s / 32 + 1)
        one(h, s);
    for (size_t pw = 16; pw <= HEAP_CLASS_MAX; pw <<= 1) {
        one(h, pw - 1);
        one(h, pw);
        one(h, pw + 1);
        one(h, pw + pw / 8);
        one(h, pw + pw / 8 + 1);
    }
    /* Above the classes the contract asks only usable >= size. */
    one(h, HEAP_CLASS_MAX + 1);
    one(h, 100 * MiB + 12345);
    HEAP_CHECK_EMPTY(h);
    mp_heap_destroy(h);
}

/* The usable size is a property of the block: asked again, the same. And a
 * request of exactly the usable size fits the same class: its usable size
 * is that size. */
static void test_usable_is_class(void)
{
    mp_heap *h = make();
    for (size_t s = 1; s <= 4 * MiB; s += s / 5 + 1) {
        char *p = mp_heap_alloc(h, s);
        REQUIRE(p != NULL);
        size_t u = mp_usable_size(p);
        CHECK_EQ(mp_usable_size(p), u);
        char *q = mp_heap_alloc(h, u);
        REQUIRE(q != NULL);
        if (mp_usable_size(q) != u) {
            fprintf(stderr, "size %zu: usable %zu, but a request of %zu has usable %zu\n", s, u, u,
                    mp_usable_size(q));
            check_failures++;
        }
        mp_free(q);
        mp_free(p);
    }
    mp_heap_destroy(h);
}

/* Many blocks of each size, all live at once, each filled with its own
 * pattern: none overlaps another. */
static void test_no_overlap(void)
{
    static const size_t sizes[] = { 1, 8, 16, 17, 48, 100, 256, 257, 1000, 4096, 4097, 20000, 100000 };
    enum { PER = 300, NS = sizeof sizes / sizeof *sizes };
    static char *p[NS][PER];
    mp_heap *h = make();
    for (size_t i = 0; i < NS; i++)
        for (size_t k = 0; k < PER; k++) {
            p[i][k] = mp_heap_alloc(h, sizes[i]);
            REQUIRE(p[i][k] != NULL);
            heap_fill(p[i][k], sizes[i], i * PER + k);
        }
    size_t bad = 0;
    for (size_t i = 0; i < NS; i++)
        for (size_t k = 0; k < PER; k++)
            bad += heap_check(p[i][k], sizes[i], i * PER + k) != SIZE_MAX;
    CHECK_EQ(bad, 0);
    CHECK_EQ(heap_stats(h).objects_in_use, NS * PER);
    for (size_t i = 0; i < NS; i++)
        for (size_t k = 0; k < PER; k++)
            mp_free(p[i][k]);
    HEAP_CHECK_EMPTY(h);
    mp_heap_destroy(h);
}

static const check_case cases[] = {
    CHECK_CASE(every_small_size, test_every_small_size),
    CHECK_CASE(geometric_sizes, test_geometric_sizes),
    CHECK_CASE(usable_is_class, test_usable_is_class),
    CHECK_CASE(no_overlap, test_no_overlap),
};

int main(int argc, char **argv) { return check_cases(argc, argv, cases, CHECK_NCASES(cases)); }
