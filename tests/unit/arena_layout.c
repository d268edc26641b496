/* Arena internals: blocks and large allocations are chunks owned by the
 * arena; the large threshold is exact; a large allocation's chunk goes
 * away at mp_arena_free; a block that keeps missing requests stops being
 * searched; a reset keeps at most MP_ARENA_KEEP_BLOCKS blocks; under a
 * limit the last block is exactly as big as the room left; pointers past
 * the first chunk of a big block and over-aligned large allocations are
 * found by search; bytes_meta counts the struct, the name, the cleanup
 * records and the record table exactly. */
#include "check.h"
#include "arena.h"
#include "chunk.h"
#include "debug.h"
#include "track.h"
#include "tree.h"

static mp_stats stats_of(const mp_arena *a)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    return s;
}

static mp_arena *make(size_t block_size, size_t limit, unsigned flags)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "layout", .block_size = block_size,
                                                          .limit = limit, .flags = flags });
    REQUIRE(a != NULL);
    return a;
}

static void test_threshold(unsigned flags)
{
    mp_arena *a = make(0, 0, flags);
    size_t lmax = mp__arena_large_max(a);
    CHECK_EQ(mp__arena_block_span(a), MP_CHUNK_SIZE);
    CHECK(lmax > 8192 && lmax < MP_CHUNK_SIZE / 4);

    char *small = mp_alloc(a, lmax);
    REQUIRE(small != NULL);
    CHECK_EQ(mp__arena_larges(a), 0);
    CHECK_EQ(mp__arena_blocks(a), 1);
    mp__chunk *c = mp__chunk_lookup(small);
    REQUIRE(c != NULL);
    CHECK_EQ(c->kind, MP__KIND_ARENA);
    CHECK_PTR_EQ(c->owner, a);

    char *large = mp_alloc(a, lmax + 1);
    REQUIRE(large != NULL);
    CHECK_EQ(mp__arena_larges(a), 1);
    CHECK_EQ(mp__arena_blocks(a), 1);
    mp__chunk *lc = mp__chunk_lookup(large);
    REQUIRE(lc != NULL);
    CHECK(lc != c);
    CHECK_PTR_EQ(lc->owner, a);
    mp_arena_free(a, large);
    CHECK_EQ(mp__arena_larges(a), 0);
    CHECK(mp__chunk_lookup(large) == NULL); /* its chunk is gone */

    /* Alignment beyond a page makes a small size large. */
    char *al = mp_alloc_aligned(a, 8, 8192);
    REQUIRE(al != NULL);
    CHECK_EQ(mp__arena_larges(a), 1);
    char *al4k = mp_alloc_aligned(a, 8, 4096);
    REQUIRE(al4k != NULL);
    CHECK_EQ(mp__arena_larges(a), 1);
    CHECK_PTR_EQ(mp__chunk_lookup(al4k), c);

    /* Over-aligned large ones lie past the first chunk: found by search. */
    char *huge_al = mp_alloc_aligned(a, 100, (size_t)1 << 21);
    REQUIRE(huge_al != NULL);
    CHECK_EQ((uintptr_t)huge_al % ((size_t)1 << 21), 0);
    CHECK_EQ(mp__arena_larges(a), 2);
    mp_arena_free(a, huge_al);
    CHECK_EQ(mp__arena_larges(a), 1);
    mp_arena_reset(a);
    CHECK_EQ(mp__arena_larges(a), 0);
    CHECK(mp__chunk_lookup(al) == NULL);
    CHECK_PTR_EQ(mp__chunk_lookup(small), c); /* the block is kept */
    mp_arena_destroy(a);
    CHECK(mp__chunk_lookup(small) == NULL || mp__chunk_lookup(small)->owner != a);
}

/* Allocates from the active block (whose newest allocation is last, of
 * last_size bytes) until exactly `hole` bytes are left in it. Plain arena
 * with 4 KiB blocks: sizes are multiples of 16, so the layout is exact. */
static void fill_to(mp_arena *a, char *last, size_t last_size, size_t hole)
{
    mp__chunk *b = mp__chunk_of(last);
    char *end = (char *)b + 4096, *cur = last + last_size;
    size_t lmax = mp__arena_large_max(a) & ~(size_t)15;
    while ((size_t)(end - cur) > hole) {
        size_t n = (size_t)(end - cur) - hole;
        n = n < lmax ? n : lmax;
        char *p = mp_alloc(a, n);
        REQUIRE(p == cur);
        cur = p + n;
    }
}

/* nginx's `failed` counter: a block that misses more than 4 requests is
 * skipped by later searches. Exact layout, so plain arenas only. */
static void test_failed_counter(void)
{
    if (mp__track_active() || mp__checked()) {
        printf("skipped failed-counter layout (red zones change the layout)\n");
        return;
    }
    mp_arena *a = make(4096, 0, 0);
    char *p = mp_alloc(a, 16);
    mp__chunk *b1 = mp__chunk_of(p);
    fill_to(a, p, 16, 64); /* b1 keeps a 64-byte hole */

    p = mp_alloc(a, 80); /* misses b1, the active block: b2 (b1: 1 miss) */
    CHECK(mp__chunk_of(p) != b1);
    fill_to(a, p, 80, 0);

    p = mp_alloc(a, 16); /* misses b2 (full); the search finds b1's hole */
    CHECK_PTR_EQ(mp__chunk_of(p), b1);

    /* 48 bytes left in b1. Each 64-byte request misses the (full) active
     * block, then b1 (one more miss), then gets a new block, filled. */
    for (int i = 0; i < 4; i++) {
        p = mp_alloc(a, 64);
        CHECK(mp__chunk_of(p) != b1);
        fill_to(a, p, 64, 0);
    }
    /* b1 has missed 5 requests: no longer searched, although a 16-byte
     * request would fit its hole. */
    p = mp_alloc(a, 16);
    CHECK(mp__chunk_of(p) != b1);
    mp_arena_destroy(a);
}

static void test_keep_bound(unsigned flags)
{
    mp_arena *a = make(8192, 0, flags);
    for (int i = 0; i < 400; i++)
        REQUIRE(mp_alloc(a, 1000) != NULL);
    CHECK(mp__arena_blocks(a) > MP_ARENA_KEEP_BLOCKS);
    mp_arena_reset(a);
    CHECK_EQ(mp__arena_blocks(a), MP_ARENA_KEEP_BLOCKS);
    CHECK_EQ(stats_of(a).bytes_mapped, MP_ARENA_KEEP_BLOCKS * 8192);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 50; i++)
            REQUIRE(mp_alloc(a, 1000) != NULL);
        mp_arena_reset(a);
        CHECK_EQ(mp__arena_blocks(a), MP_ARENA_KEEP_BLOCKS); /* reused, not grown */
    }
    mp_arena_destroy(a);
}

static void test_limit_block(void)
{
    size_t limit = 100 * 1024;
    mp_arena *a = make(0, limit, 0);
    while (mp_alloc(a, 500))
        ;
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(mp__arena_blocks(a), 2);
    CHECK_EQ(stats_of(a).bytes_mapped, limit); /* 64 KiB + the 36 KiB that were left */
    mp_arena_destroy(a);
}

static void test_big_blocks(unsigned flags)
{
    mp_arena *a = make((size_t)1 << 20, 0, flags);
    char *p = NULL;
    for (int i = 0; i < 500; i++)
        p = mp_alloc(a, 1000);
    REQUIRE(p != NULL);
    CHECK_EQ(mp__arena_blocks(a), 1);
    CHECK(mp__chunk_lookup(p) == NULL); /* past the first 64 KiB of its chunk */
    mp_stats before = stats_of(a);
    mp_arena_free(a, p); /* the newest: found by search, rolled back */
    CHECK_EQ(stats_of(a).frees, before.frees + 1);
    CHECK(stats_of(a).bytes_in_use < before.bytes_in_use);
    CHECK_PTR_EQ(mp_alloc(a, 1000), p);
    mp_arena_destroy(a);
}

static int cleanups_ran;
static void count_cleanup(void *arg)
{
    (void)arg;
    cleanups_ran++;
}

static void test_meta(unsigned flags)
{
    mp_arena *a = make(0, 0, flags);
    bool records = mp__checked() || mp__track_active();
    size_t base = sizeof(mp_arena) + strlen("layout");
    CHECK_EQ(stats_of(a).bytes_meta, base);
    /* Records (tools or checked mode) in a table at most half full: 64
     * slots for the first 32 allocations, 256 for 100. */
    REQUIRE(mp_alloc(a, 10) != NULL);
    CHECK_EQ(stats_of(a).bytes_meta, base + (records ? 64 * sizeof(mp__ptrrec) : 0));
    for (int i = 0; i < 99; i++)
        REQUIRE(mp_alloc(a, 10) != NULL);
    size_t table = records ? 256 * sizeof(mp__ptrrec) : 0;
    CHECK_EQ(stats_of(a).bytes_meta, base + table);
    for (int i = 0; i < 3; i++)
        REQUIRE(mp_cleanup_push(a, count_cleanup, NULL) == 0);
    CHECK_EQ(stats_of(a).bytes_meta, base + table + 3 * sizeof(mp__arena_cleanup));
    mp_arena_reset(a); /* the cleanups run and go; the table is kept, empty */
    CHECK_EQ(cleanups_ran, 3);
    CHECK_EQ(stats_of(a).bytes_meta, base + table);
    mp_arena_destroy(a);
    cleanups_ran = 0;
}

int main(void)
{
    test_threshold(0);
    test_threshold(MP_THREADSAFE);
    test_threshold(MP_ZERO);
    test_failed_counter();
    test_keep_bound(0);
    test_keep_bound(MP_THREADSAFE);
    test_limit_block();
    test_big_blocks(0);
    test_big_blocks(MP_THREADSAFE);
    test_meta(0);
    test_meta(MP_THREADSAFE);
    return check_done();
}
