/* limit: a heap never holds more than `limit` bytes from the OS
 * (bytes_mapped); past it an allocation fails with ENOMEM, counts in
 * `failures`, and the heap stays usable. A heap under an arena counts
 * against the arena's limit (and its ancestors') as a child arena does:
 * the arena's bytes_mapped includes the heap's, and what the heap holds is
 * room the arena does not have. A move that would cross a limit of the new
 * parent is refused with ENOMEM and nothing moves. What a heap made with
 * MP_KEEP_MEMORY keeps counts until it is trimmed. (public header only) */
#define _GNU_SOURCE 1
#include "cases.h"
#include "heap.h"

#include <mpool.h>

#include <errno.h>

static mp_stats arena_stats(const mp_arena *a)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    return s;
}

static mp_heap *make(mp_arena *parent, const char *name, size_t limit)
{
    mp_heap *h = mp_heap_create(parent, &(mp_heap_opts){ .name = name, .limit = limit });
    REQUIRE(h != NULL);
    return h;
}

static mp_arena *arena(mp_arena *parent, const char *name, size_t limit)
{
    mp_arena *a = mp_arena_create(parent, &(mp_arena_opts){ .name = name, .limit = limit });
    REQUIRE(a != NULL);
    return a;
}

/* Blocks of `size` from h until ENOMEM, into out[]; the bytes the watched
 * heap (or arena) holds never pass `limit`. Returns how many. */
static size_t fill(mp_heap *h, size_t size, void **out, size_t max, const mp_heap *wh, const mp_arena *wa,
                   size_t limit)
{
    size_t n = 0;
    for (;;) {
        errno = 0;
        char *p = mp_heap_alloc(h, size);
        if (!p) {
            CHECK_EQ(errno, ENOMEM);
            return n;
        }
        p[0] = p[size - 1] = 1;
        REQUIRE(n < max);
        out[n++] = p;
        size_t mapped = wh ? heap_stats(wh).bytes_mapped : arena_stats(wa).bytes_mapped;
        if (mapped > limit) {
            fprintf(stderr, "bytes_mapped %zu passed the limit %zu after %zu blocks of %zu\n", mapped, limit, n,
                    size);
            check_failures++;
            return n;
        }
    }
}

enum { MAX_BLOCKS = 100000 };
static void *blocks[MAX_BLOCKS];

static void free_all(size_t n)
{
    for (size_t i = 0; i < n; i++)
        mp_free(blocks[i]);
}

static void test_own_limit(void)
{
    const size_t limit = 1 * MiB;
    mp_heap *h = make(NULL, "own", limit);
    size_t n = fill(h, 1000, blocks, MAX_BLOCKS, h, NULL, limit);
    REQUIRE(n > 0);
    mp_stats s = heap_stats(h);
    CHECK(s.bytes_mapped <= limit);
    CHECK(n * 1000 > limit / 2); /* most of it was usable */
    CHECK(s.failures >= 1);
    CHECK_EQ(s.objects_in_use, n);
    /* A large one does not fit either; freeing makes room again. */
    errno = 0;
    CHECK(mp_heap_alloc(h, 2 * limit) == NULL && errno == ENOMEM);
    mp_free(blocks[n - 1]);
    blocks[n - 1] = mp_heap_alloc(h, 1000);
    CHECK(blocks[n - 1] != NULL);
    if (!blocks[n - 1])
        n--;
    free_all(n);
    HEAP_CHECK_EMPTY(h);
    HEAP_CHECK_TRIMMED(h);
    /* The same again, after a trim: about as many fit. */
    size_t n2 = fill(h, 1000, blocks, MAX_BLOCKS, h, NULL, limit);
    CHECK(n2 >= n * 9 / 10);
    free_all(n2);
    mp_heap_destroy(h);
}

/* A heap that keeps its memory (MP_KEEP_MEMORY) counts what it keeps
 * against its limit: once one size class has filled it and its blocks are
 * freed, another class gets nothing until a trim gives that memory back. */
static void test_keep_memory_limit(void)
{
    const size_t limit = 1 * MiB;
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = "keep", .limit = limit, .flags = MP_KEEP_MEMORY });
    REQUIRE(h != NULL);
    size_t n = fill(h, 1000, blocks, MAX_BLOCKS, h, NULL, limit);
    REQUIRE(n > 0);
    free_all(n);
    mp_stats s = heap_stats(h);
    CHECK_EQ(s.objects_in_use, (size_t)0);
    CHECK(s.bytes_mapped > limit / 2); /* kept */
    size_t other = fill(h, 3000, blocks, MAX_BLOCKS, h, NULL, limit);
    CHECK(other * 3000 < limit / 2);
    free_all(other);
    mp_heap_trim(h);
    other = fill(h, 3000, blocks, MAX_BLOCKS, h, NULL, limit);
    CHECK(other * 3000 > limit / 2); /* most of it was usable again */
    free_all(other);
    mp_heap_destroy(h);
}

/* A large block grown by realloc past the limit: NULL with ENOMEM, the
 * block as it was; grown within it, or shrunk, the contents stay. */
static void test_realloc_large(void)
{
    const size_t limit = 4 * MiB;
    mp_heap *h = make(NULL, "realloc", limit);
    char *p = mp_heap_alloc(h, 300 * KiB);
    REQUIRE(p != NULL);
    for (size_t i = 0; i < 300 * KiB; i++)
        p[i] = (char)(i % 251);
    mp_stats before = heap_stats(h);
    errno = 0;
    CHECK(mp_heap_realloc(h, p, 5 * MiB) == NULL);
    CHECK_EQ(errno, ENOMEM);
    mp_stats after = heap_stats(h);
    CHECK_EQ(after.bytes_mapped, before.bytes_mapped);
    CHECK_EQ(after.bytes_in_use, before.bytes_in_use);
    CHECK(mp_usable_size(p) >= 300 * KiB);
    CHECK_EQ(p[300 * KiB - 1], (char)((300 * KiB - 1) % 251));
    char *q = mp_heap_realloc(h, p, 3 * MiB);
    REQUIRE(q != NULL);
    CHECK(heap_stats(h).bytes_mapped <= limit);
    char *r = mp_heap_realloc(h, q, 100 * KiB);
    REQUIRE(r != NULL);
    size_t wrong = 0;
    for (size_t i = 0; i < 100 * KiB; i++)
        wrong += r[i] != (char)(i % 251);
    CHECK_EQ(wrong, 0);
    CHECK(heap_stats(h).bytes_mapped < 1 * MiB); /* shrunk: the rest went back */
    mp_free(r);
    HEAP_CHECK_EMPTY(h);
    mp_heap_destroy(h);
}

/* Mixed sizes, and blocks with chunks of their own, under one limit. */
static void test_mixed_sizes(void)
{
    const size_t limit = 8 * MiB;
    mp_heap *h = make(NULL, "mixed", limit);
    size_t n = 0, req = 0;
    uint64_t x = 1;
    for (int fails = 0; fails < 50;) {
        x = check_mix(x);
        size_t size = x % 64 == 0 ? 1 * MiB + x % MiB : 16 + x % (64 * KiB);
        errno = 0;
        char *p = mp_heap_alloc(h, size);
        if (!p) {
            CHECK_EQ(errno, ENOMEM);
            fails++;
            continue;
        }
        p[size - 1] = 1;
        REQUIRE(n < MAX_BLOCKS);
        blocks[n++] = p;
        req += size;
        CHECK(heap_stats(h).bytes_mapped <= limit);
    }
    CHECK(req > limit / 2);
    CHECK(heap_stats(h).bytes_mapped <= limit);
    free_all(n);
    HEAP_CHECK_EMPTY(h);
    mp_heap_destroy(h);
}

/* A limit too small for anything: every allocation fails, and that is all. */
static void test_tiny_limit(void)
{
    mp_heap *h = make(NULL, "tiny", 100);
    errno = 0;
    CHECK(mp_heap_alloc(h, 1) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(mp_heap_calloc(h, 1, 1) == NULL && errno == ENOMEM);
    CHECK_EQ(heap_stats(h).bytes_mapped, 0);
    CHECK_EQ(heap_stats(h).objects_in_use, 0);
    mp_heap_destroy(h);
}

/* A heap counts against its parent arena's limit. */
static void test_parent_limit(void)
{
    const size_t limit = 2 * MiB;
    mp_arena *a = arena(NULL, "parent", limit);
    mp_heap *h = make(a, "child", 0);
    size_t n = fill(h, 1000, blocks, MAX_BLOCKS, NULL, a, limit);
    CHECK(n * 1000 > limit / 2);
    mp_stats as = arena_stats(a);
    CHECK(as.bytes_mapped <= limit);
    CHECK(as.bytes_mapped >= heap_stats(h).bytes_mapped); /* the arena's figure includes its child's */
    CHECK(heap_stats(h).failures >= 1);
    /* The arena has no room left for a large allocation of its own. */
    errno = 0;
    CHECK(mp_alloc(a, 200 * KiB) == NULL && errno == ENOMEM);
    /* What the heap gives back is the arena's room again. */
    free_all(n);
    HEAP_CHECK_TRIMMED(h);
    CHECK(mp_alloc(a, 200 * KiB) != NULL);
    CHECK(arena_stats(a).bytes_mapped <= limit);
    mp_arena_destroy(a); /* destroys h */
}

/* At any depth, and with the heap's own limit below its ancestors'. */
static void test_nested(void)
{
    mp_arena *root = arena(NULL, "root", 4 * MiB);
    mp_arena *mid = arena(root, "mid", 0);
    mp_heap *h = make(mid, "deep", 0);
    size_t n = fill(h, 4000, blocks, MAX_BLOCKS, NULL, root, 4 * MiB);
    CHECK(n * 4000 > 2 * MiB);
    CHECK(arena_stats(root).bytes_mapped <= 4 * MiB);
    free_all(n);

    mp_heap *own = make(mid, "own first", 512 * KiB);
    size_t m = fill(own, 4000, blocks, MAX_BLOCKS, own, NULL, 512 * KiB);
    CHECK(m * 4000 > 256 * KiB);
    CHECK(heap_stats(own).bytes_mapped <= 512 * KiB);
    CHECK(mp_heap_alloc(h, 4000) != NULL); /* the root still has room: the heap's own limit stopped it */
    free_all(m);
    mp_arena_destroy(root);
}

/* A move charges the new parent: refused if it would cross its limit. */
static void test_move(void)
{
    mp_heap *h = make(NULL, "mover", 0);
    size_t n = 0;
    for (; n < 1000; n++)
        REQUIRE((blocks[n] = mp_heap_alloc(h, 1000)) != NULL); /* about 1 MiB */
    mp_arena *small = arena(NULL, "small", 512 * KiB);
    mp_arena *big = arena(NULL, "big", 8 * MiB);
    CHECK_EQ(mp_heap_move(h, small), ENOMEM);
    CHECK(arena_stats(small).bytes_mapped == 0);
    mp_arena_destroy(small); /* h was not moved: it survives */
    CHECK_EQ(heap_stats(h).objects_in_use, 1000);
    CHECK_EQ(mp_heap_move(h, big), 0);
    CHECK(arena_stats(big).bytes_mapped >= heap_stats(h).bytes_mapped);
    /* big has 8 MiB less what h holds. */
    errno = 0;
    CHECK(mp_alloc(big, 8 * MiB - 64 * KiB) == NULL && errno == ENOMEM);
    CHECK_EQ(mp_heap_move(h, NULL), 0);
    CHECK(mp_alloc(big, 4 * MiB) != NULL);
    free_all(n);
    mp_arena_destroy(big);
    mp_heap_destroy(h);
}

static const check_case cases[] = {
    CHECK_CASE(own_limit, test_own_limit),
    CHECK_CASE(keep_memory_limit, test_keep_memory_limit),
    CHECK_CASE(realloc_large, test_realloc_large),
    CHECK_CASE(mixed_sizes, test_mixed_sizes),
    CHECK_CASE(tiny_limit, test_tiny_limit),
    CHECK_CASE(parent_limit, test_parent_limit),
    CHECK_CASE(nested, test_nested),
    CHECK_CASE(move, test_move),
};

int main(int argc, char **argv)
{
    setenv("MPOOL_QUARANTINE", "0", 0); /* trim must give every free byte back */
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
