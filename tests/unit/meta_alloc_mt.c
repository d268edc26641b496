/* The metadata allocator (src/meta.h): zeroed, 16-aligned blocks of every
 * size, freed memory given back to the OS, thread safety, and the
 * property it exists for: a destroyed pool's bookkeeping leaves the
 * process. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "meta.h"
#include "threads.h"

#include <mpool.h>

#include <stdbool.h>
#include <string.h>

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Every size from 1 to past the span's classes, and some large ones:
 * zeroed, aligned, writable to the last byte, apart from each other. */
static void test_sizes(void)
{
    enum { N = 9000 };
    static unsigned char *p[N + 1];
    for (size_t s = 1; s <= N; s++) {
        p[s] = mp__meta_alloc(s);
        REQUIRE(p[s] != NULL);
        CHECK_EQ((uintptr_t)p[s] % 16, 0);
        if (!all_zero(p[s], s)) {
            fprintf(stderr, "block of %zu not zeroed\n", s);
            check_failures++;
        }
        memset(p[s], (int)(s & 0xff) | 1, s);
    }
    for (size_t s = 1; s <= N; s++) {
        for (size_t i = 0; i < s; i++)
            if (p[s][i] != ((s & 0xff) | 1)) {
                fprintf(stderr, "block of %zu overwritten at %zu\n", s, i);
                check_failures++;
                break;
            }
        mp__meta_free(p[s]);
    }
    const size_t large[] = { 8193, 65536, 65537, 1 << 20, (1 << 20) + 3 };
    for (size_t i = 0; i < sizeof large / sizeof *large; i++) {
        unsigned char *b = mp__meta_alloc(large[i]);
        REQUIRE(b != NULL);
        CHECK(all_zero(b, large[i]));
        b[large[i] - 1] = 1;
        mp__meta_free(b);
    }
    mp__meta_free(NULL);
}

/* A freed block comes back zeroed when it is reused. */
static void test_reuse_zeroed(void)
{
    for (size_t s = 16; s <= 4096; s *= 2) {
        unsigned char *a = mp__meta_alloc(s), *keep = mp__meta_alloc(s);
        REQUIRE(a && keep);
        memset(a, 0xab, s);
        mp__meta_free(a);
        unsigned char *b = mp__meta_alloc(s);
        REQUIRE(b != NULL);
        CHECK(all_zero(b, s));
        mp__meta_free(b);
        mp__meta_free(keep);
    }
}

/* Memory goes back: after many blocks of every kind are freed, what is
 * mapped is at most one span per class more than before. */
static void test_memory_returns(void)
{
    enum { N = 20000 };
    static void *p[N];
    size_t before = mp__meta_mapped();
    for (size_t i = 0; i < N; i++) {
        p[i] = mp__meta_alloc(16 + i % 700 * 8);
        REQUIRE(p[i] != NULL);
    }
    void *big = mp__meta_alloc(4 << 20);
    REQUIRE(big != NULL);
    CHECK(mp__meta_mapped() >= before + (4 << 20));
    for (size_t i = 0; i < N; i++)
        mp__meta_free(p[i]);
    mp__meta_free(big);
    CHECK(mp__meta_mapped() <= before + 32 * 65536);
}

typedef struct churn_arg {
    unsigned seed;
    size_t bad;
} churn_arg;

/* Threads allocate, write a pattern, check it, free, in random orders. */
static void *churn(void *arg)
{
    churn_arg *c = arg;
    enum { LIVE = 256, ROUNDS = 40000 };
    unsigned char *live[LIVE] = { 0 };
    size_t size[LIVE] = { 0 };
    uint64_t x = c->seed;
    for (int r = 0; r < ROUNDS; r++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = (size_t)(x >> 33) % LIVE;
        if (live[k]) {
            for (size_t i = 0; i < size[k]; i++)
                if (live[k][i] != (unsigned char)(k + c->seed)) {
                    c->bad++;
                    break;
                }
            mp__meta_free(live[k]);
            live[k] = NULL;
        } else {
            size[k] = 1 + (size_t)(x >> 40) % (r % 64 ? 600 : 20000);
            live[k] = mp__meta_alloc(size[k]);
            if (!live[k] || !all_zero(live[k], size[k])) {
                c->bad++;
                continue;
            }
            memset(live[k], (unsigned char)(k + c->seed), size[k]);
        }
    }
    for (size_t k = 0; k < LIVE; k++)
        mp__meta_free(live[k]);
    return NULL;
}

static void test_threads(void)
{
    enum { T = 8 };
    churn_arg args[T];
    for (unsigned i = 0; i < T; i++)
        args[i] = (churn_arg){ .seed = 7 + i };
    threads_run(T, churn, args, sizeof *args);
    for (unsigned i = 0; i < T; i++)
        CHECK_EQ(args[i].bad, 0);
}

/* A pool's bookkeeping (here: per-thread caches and magazines of many
 * threads) is mapped by the library, and goes back with destroy. */
static void *touch_pool(void *arg)
{
    mp_objpool *p = arg;
    void *o[40];
    for (int i = 0; i < 40; i++)
        o[i] = mp_objpool_get(p);
    for (int i = 0; i < 40; i++)
        mp_objpool_put(p, o[i]);
    return NULL;
}

static void test_pool_bookkeeping_returns(void)
{
    size_t before = mp__meta_mapped();
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "many threads", .obj_size = 64 });
    REQUIRE(p != NULL);
    for (int round = 0; round < 8; round++)
        threads_run(8, touch_pool, p, 0);
    size_t during = mp__meta_mapped();
    CHECK(during > before); /* the pool's struct, its caches and magazines are here */
    mp_objpool_destroy(p);
    CHECK(mp__meta_mapped() <= before + 32 * 65536);
}

/* Trim gives a pool's freed bookkeeping back too: a million objects out
 * and back fill the depot's magazines; after trim, the metadata mapped is
 * where it was (give or take a span per class). */
static void test_trim_returns_bookkeeping(void)
{
    enum { N = 1 << 20 };
    void **o = malloc(N * sizeof *o);
    REQUIRE(o != NULL);
    size_t before = mp__meta_mapped();
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "big", .obj_size = 64 });
    REQUIRE(p != NULL);
    for (size_t i = 0; i < N; i++)
        REQUIRE((o[i] = mp_objpool_get(p)) != NULL);
    for (size_t i = 0; i < N; i++)
        mp_objpool_put(p, o[i]);
    CHECK(mp__meta_mapped() > before);
    mp_objpool_trim(p);
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    CHECK(mp__meta_mapped() <= before + s.bytes_meta + 32 * 65536);
    mp_objpool_destroy(p);
    CHECK(mp__meta_mapped() <= before + 32 * 65536);
    free(o);
}

static const check_case cases[] = {
    CHECK_CASE(sizes, test_sizes),
    CHECK_CASE(reuse_zeroed, test_reuse_zeroed),
    CHECK_CASE(memory_returns, test_memory_returns),
    CHECK_CASE(threads, test_threads),
    CHECK_CASE(pool_bookkeeping_returns, test_pool_bookkeeping_returns),
    CHECK_CASE(trim_returns_bookkeeping, test_trim_returns_bookkeeping),
};

int main(int argc, char **argv) { return check_cases(argc, argv, cases, CHECK_NCASES(cases)); }
