/* Reset reuses and never grows: a request loop of allocate-then-reset
 * reaches a steady bytes_mapped after a few requests and keeps it for
 * 10,000 requests of random sizes (fixed seed), large ones and frees
 * included. What a reset keeps is bounded (16 blocks; none with
 * MP_RELEASE_ON_RESET), and reset returns the arena to empty every time. */
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <stdint.h>

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static mp_stats stats_of(const mp_arena *a)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    return s;
}

/* One request: n allocations of mixed sizes and alignments, each touched,
 * some freed again. */
static void request(mp_arena *a)
{
    size_t n = 20 + rnd() % 300;
    void *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rnd();
        size_t size = r % 64 == 0 ? 20000 + rnd() % 200000 /* now and then a large one */
                                  : 1 + rnd() % 1500;
        char *p;
        switch (r % 5) {
        case 0: p = mp_alloc_unaligned(a, size); break;
        case 1: p = mp_alloc_aligned(a, size, (size_t)1 << (rnd() % 10)); break;
        case 2: p = mp_calloc(a, 1, size); break;
        default: p = mp_alloc(a, size); break;
        }
        REQUIRE(p != NULL);
        p[0] = 1;
        p[size - 1] = 2;
        if (r % 7 == 0) {
            mp_arena_free(a, p); /* the newest: rolled back */
        } else if (r % 11 == 0 && prev) {
            mp_arena_free(a, prev); /* an older one: kept until the reset */
            prev = NULL;
        } else {
            prev = p;
        }
    }
    if (rnd() % 4 == 0)
        REQUIRE(mp_printf(a, "request %zu", n) != NULL);
}

static void test_random_requests(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "requests" });
    REQUIRE(a != NULL);
    enum { WARMUP = 1000, CYCLES = 10000 };
    size_t warm_max = 0, late_max = 0, warm_after = 0, late_after = 0;
    for (int c = 0; c < CYCLES; c++) {
        request(a);
        size_t busy = stats_of(a).bytes_mapped;
        mp_arena_reset(a);
        mp_stats s = stats_of(a);
        CHECK_EQ(s.bytes_in_use, 0);
        CHECK_EQ(s.objects_in_use, 0);
        size_t *m = c < WARMUP ? &warm_max : &late_max;
        size_t *k = c < WARMUP ? &warm_after : &late_after;
        *m = busy > *m ? busy : *m;
        *k = s.bytes_mapped > *k ? s.bytes_mapped : *k;
        if (check_failures)
            break;
    }
    /* Steady: nothing the last 9,000 requests needed was not already held
     * (apart from their large allocations, which come and go) after the
     * first 1,000. */
    fprintf(stderr, "held while busy: %zu (warm-up) %zu (after); after reset: %zu %zu\n", warm_max, late_max,
            warm_after, late_after);
    CHECK(late_after <= warm_after);
    CHECK(warm_after <= (size_t)16 * 65536); /* the bound on what a reset keeps */
    mp_arena_destroy(a);
}

/* W3's shape: 200 allocations of 16..512 B per request. From the second
 * request on, nothing new is mapped at all. */
static void test_fixed_requests(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "w3" });
    REQUIRE(a != NULL);
    size_t first = 0;
    for (int c = 0; c < 2000; c++) {
        for (int i = 0; i < 200; i++) {
            size_t size = 16 + rnd() % 497;
            char *p = mp_alloc(a, size);
            REQUIRE(p != NULL);
            p[size - 1] = (char)i;
        }
        size_t mapped = stats_of(a).bytes_mapped;
        if (c == 1)
            first = mapped;
        else if (c > 1 && mapped != first) {
            CHECK_EQ(mapped, first);
            break;
        }
        mp_arena_reset(a);
    }
    mp_arena_destroy(a);
}

/* A reset keeps at most 16 blocks: an arena that once needed many more
 * gives the rest back. */
static void test_keep_bound(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "burst", .block_size = 16384 });
    REQUIRE(a != NULL);
    for (int i = 0; i < 4000; i++) /* about 4 MB: far more than 16 blocks */
        REQUIRE(mp_alloc(a, 1000) != NULL);
    CHECK(stats_of(a).bytes_mapped > (size_t)16 * 16384);
    mp_arena_reset(a);
    CHECK_EQ(stats_of(a).bytes_mapped, (size_t)16 * 16384);
    /* And the kept blocks are reused: the same load maps the same again. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 200; i++)
            REQUIRE(mp_alloc(a, 1000) != NULL);
        CHECK_EQ(stats_of(a).bytes_mapped, (size_t)16 * 16384);
        mp_arena_reset(a);
    }
    mp_arena_destroy(a);
}

/* MP_RELEASE_ON_RESET: a reset keeps nothing, in every arena mode, and
 * the arena works as new afterwards. The flag is for arenas only. */
static void test_release_on_reset(void)
{
    const unsigned modes[] = { 0, MP_ZERO, MP_THREADSAFE };
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){
            .name = "pooled", .block_size = 16384, .flags = modes[m] | MP_RELEASE_ON_RESET });
        REQUIRE(a != NULL);
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 100; i++) {
                unsigned char *p = mp_alloc(a, 1000);
                REQUIRE(p != NULL);
                p[0] = p[999] = (unsigned char)i;
            }
            REQUIRE(mp_alloc(a, 100000) != NULL); /* a large one too */
            CHECK(stats_of(a).bytes_mapped > 100000);
            mp_arena_reset(a);
            mp_stats s = stats_of(a);
            CHECK_EQ(s.bytes_mapped, (size_t)0);
            CHECK_EQ(s.bytes_in_use, (size_t)0);
            CHECK_EQ(s.allocs, s.frees);
            CHECK_EQ(s.allocs, (size_t)101 * (size_t)(round + 1));
        }
        unsigned char *z = mp_calloc(a, 1, 64);
        REQUIRE(z != NULL);
        CHECK_EQ(z[0] | z[63], 0);
        mp_arena_destroy(a);
    }
    errno = 0;
    CHECK(mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 64, .flags = MP_RELEASE_ON_RESET }) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(mp_reserve_create(NULL, &(mp_reserve_opts){ .min_reserved = 1, .elem_size = 64,
                                                      .flags = MP_RELEASE_ON_RESET }) == NULL);
    CHECK_EQ(errno, EINVAL);
}

int main(void)
{
    test_random_requests();
    test_fixed_requests();
    test_keep_bound();
    test_release_on_reset();
    return check_done();
}
