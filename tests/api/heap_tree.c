/* Heaps in the pool tree (public header only):
 *   - a heap created under an arena is one of its children: the arena's
 *     statistics include the heap's, and the report lists it under the
 *     arena;
 *   - resetting or destroying the arena (or an arena above it) destroys
 *     the heap and everything still in it: the heap leaves the report and
 *     its memory leaves the arena's bytes_mapped; the reset arena takes a
 *     new heap at once;
 *   - mp_heap_move gives a heap, with its live allocations, another parent
 *     (or none): the old parent's reset no longer touches it, the new
 *     parent's does; bad moves are refused and change nothing. */
#define _GNU_SOURCE 1
#include "capture.h"
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

static mp_arena *arena(mp_arena *parent, const char *name)
{
    mp_arena *a = mp_arena_create(parent, &(mp_arena_opts){ .name = name });
    REQUIRE(a != NULL);
    return a;
}

static mp_heap *make(mp_arena *parent, const char *name)
{
    mp_heap *h = mp_heap_create(parent, &(mp_heap_opts){ .name = name });
    REQUIRE(h != NULL);
    return h;
}

/* Does the JSON report of the tree under root list a heap called name? */
static bool tree_has_heap(const mp_arena *root, const char *name)
{
    char *rep = capture(mp_report_json, root), want[128];
    snprintf(want, sizeof want, "\"kind\":\"heap\",\"name\":\"%s\"", name);
    bool found = strstr(rep, want) != NULL;
    free(rep);
    return found;
}

/* Fills h with blocks of every regime (small, medium, a chunk of its own),
 * each written; returns the bytes asked for. */
static size_t populate(mp_heap *h, void **keep, size_t n)
{
    size_t req = 0;
    for (size_t i = 0; i < n; i++) {
        size_t size = i % 100 == 99 ? 3 * MiB : 16 + i * 97 % 20000;
        char *p = mp_heap_alloc(h, size);
        REQUIRE(p != NULL);
        heap_fill(p, size, i);
        req += size;
        if (keep)
            keep[i] = p;
    }
    return req;
}

static void test_child_counts(void)
{
    mp_arena *a = arena(NULL, "owner");
    mp_heap *h = make(a, "kid");
    size_t req = populate(h, NULL, 500);
    mp_stats hs = heap_stats(h), as = arena_stats(a);
    CHECK(hs.bytes_in_use >= req);
    CHECK(as.bytes_mapped >= hs.bytes_mapped);
    CHECK(as.bytes_in_use >= hs.bytes_in_use);
    CHECK(as.objects_in_use >= hs.objects_in_use);
    CHECK(tree_has_heap(a, "kid"));
    mp_arena_destroy(a);
}

static void test_reset_destroys(void)
{
    mp_arena *a = arena(NULL, "request");
    size_t empty = arena_stats(a).bytes_mapped;
    for (int round = 0; round < 3; round++) {
        mp_heap *h1 = make(a, "per-request");
        mp_heap *h2 = make(a, "second");
        populate(h1, NULL, 400);
        populate(h2, NULL, 100);
        void *kept = mp_alloc(a, 100); /* the arena's own allocation, beside them */
        REQUIRE(kept != NULL);
        CHECK(arena_stats(a).bytes_mapped >= heap_stats(h1).bytes_mapped + heap_stats(h2).bytes_mapped);
        CHECK(tree_has_heap(a, "per-request"));
        CHECK(tree_has_heap(a, "second"));
        mp_arena_reset(a);
        /* Gone, with everything in them: what the arena holds is only its
         * own (kept blocks, at most what a reset keeps). */
        CHECK(!tree_has_heap(a, "per-request"));
        CHECK(!tree_has_heap(a, "second"));
        mp_stats as = arena_stats(a);
        CHECK_EQ(as.objects_in_use, 0);
        CHECK(as.bytes_mapped <= empty + 16 * 64 * KiB);
    }
    mp_arena_destroy(a);
}

static void test_destroy_destroys(void)
{
    for (int depth = 1; depth <= 3; depth++) {
        mp_arena *root = arena(NULL, "root"), *parent = root;
        for (int d = 1; d < depth; d++)
            parent = arena(parent, "level");
        mp_heap *h = make(parent, "deep");
        populate(h, NULL, 300);
        CHECK(tree_has_heap(root, "deep"));
        CHECK(arena_stats(root).bytes_mapped >= heap_stats(h).bytes_mapped);
        mp_arena_destroy(root); /* and with it h and its 300 blocks */
    }
}

/* After a move, the old parent's reset leaves the heap alone. */
static void test_move(void)
{
    enum { N = 200 };
    void *keep[N];
    mp_arena *a1 = arena(NULL, "first"), *a2 = arena(NULL, "second");
    mp_heap *h = make(a1, "mover");
    populate(h, keep, N);
    mp_stats before = heap_stats(h);
    CHECK_EQ(mp_heap_move(h, a2), 0);
    CHECK(!tree_has_heap(a1, "mover"));
    CHECK(tree_has_heap(a2, "mover"));
    CHECK(arena_stats(a2).bytes_mapped >= before.bytes_mapped);
    mp_arena_reset(a1);
    /* Still alive, every block still whole. */
    mp_stats after = heap_stats(h);
    CHECK_EQ(after.objects_in_use, before.objects_in_use);
    CHECK_EQ(after.bytes_in_use, before.bytes_in_use);
    for (size_t i = 0; i < N; i++) {
        size_t size = i % 100 == 99 ? 3 * MiB : 16 + i * 97 % 20000;
        CHECK_EQ(heap_check(keep[i], size, i), SIZE_MAX);
    }
    /* To the root, and back under a1: a2's destroy then leaves it. */
    CHECK_EQ(mp_heap_move(h, NULL), 0);
    CHECK(!tree_has_heap(a2, "mover"));
    CHECK_EQ(mp_heap_move(h, a1), 0);
    mp_arena_destroy(a2);
    CHECK_EQ(heap_stats(h).objects_in_use, N);
    for (size_t i = 0; i < N; i += 2)
        mp_free(keep[i]);
    CHECK_EQ(heap_stats(h).objects_in_use, N / 2);
    mp_arena_destroy(a1); /* h goes with it, the other half still in it */
}

static void test_bad_moves(void)
{
    mp_heap *h = make(NULL, "h");
    void *p = mp_heap_alloc(h, 100);
    REQUIRE(p != NULL);
    mp_objpool *op = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 32 });
    REQUIRE(op != NULL);
    CHECK_EQ(mp_heap_move(h, (mp_arena *)(void *)op), EINVAL); /* not an arena */
    CHECK_EQ(mp_heap_move(NULL, NULL), EINVAL);
    /* The default heap is never destroyed, so no arena may own it. */
    mp_arena *a = arena(NULL, "would-be owner");
    CHECK(mp_heap_move(mp_heap_default(), a) != 0);
    mp_arena_destroy(a);
    void *q = mp_heap_alloc(mp_heap_default(), 10);
    CHECK(q != NULL);
    mp_free(q);
    CHECK_EQ(heap_stats(h).objects_in_use, 1);
    mp_free(p);
    mp_objpool_destroy(op);
    mp_heap_destroy(h);
}

/* A heap destroyed by hand leaves its parent's list of children. */
static void test_destroy_child_by_hand(void)
{
    mp_arena *a = arena(NULL, "parent");
    mp_heap *h = make(a, "short-lived");
    populate(h, NULL, 50);
    mp_heap_destroy(h);
    CHECK(!tree_has_heap(a, "short-lived"));
    mp_arena_reset(a); /* must not touch h again */
    mp_heap *again = make(a, "after");
    CHECK(tree_has_heap(a, "after"));
    mp_arena_destroy(a);
    (void)again;
}

static const check_case cases[] = {
    CHECK_CASE(child_counts, test_child_counts),
    CHECK_CASE(reset_destroys, test_reset_destroys),
    CHECK_CASE(destroy_destroys, test_destroy_destroys),
    CHECK_CASE(move, test_move),
    CHECK_CASE(bad_moves, test_bad_moves),
    CHECK_CASE(destroy_child_by_hand, test_destroy_child_by_hand),
};

int main(int argc, char **argv) { return check_cases(argc, argv, cases, CHECK_NCASES(cases)); }
