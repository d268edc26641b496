/* Every bad input to the heap API, and misuse through the error handler
 * (public header only):
 *   - a NULL heap: allocating calls return NULL with EINVAL, int calls
 *     return EINVAL, foreach returns 0 with EINVAL, destroy and trim do
 *     nothing; no crash, and no handler call;
 *   - bad options (an unknown flag, a parent that is not a live arena):
 *     NULL with EINVAL;
 *   - sizes that overflow (n * size, sizes within 1 MiB of SIZE_MAX) and
 *     alignments that are not powers of two: NULL with EINVAL; sizes that
 *     are merely huge (2^48 and up): NULL with EINVAL or ENOMEM;
 *   - a realloc to a size that cannot be had: NULL, ENOMEM, the old block
 *     intact and still the caller's;
 *   - realloc or free of a pointer that is not the heap's (malloc, the
 *     stack, an arena, an object pool, another heap for realloc): the
 *     handler runs once with the pointer, the call does nothing, and the
 *     heaps' counters do not move (mp_free of another heap's pointer is
 *     not misuse: it goes to that heap);
 *   - mp_heap_destroy(mp_heap_default()): the handler, and the default heap
 *     goes on working.
 * After each, the heap is still usable. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "heap.h"
#include "flags.h"

#include <mpool.h>

#include <errno.h>
#include <stdbool.h>

static bool same_counts(mp_stats a, mp_stats b)
{
    return a.objects_in_use == b.objects_in_use && a.allocs == b.allocs && a.frees == b.frees &&
           a.bytes_in_use == b.bytes_in_use && a.bytes_mapped == b.bytes_mapped;
}

/* Exactly one handler call since the last reset, for ptr (NULL: any), with
 * a message that begins "mpool: " and contains `has` (NULL: anything). */
static void expect_one(const char *what, const void *ptr, const char *has, int line)
{
    if (heap_rec.calls != 1 || (ptr && heap_rec.ptr != ptr) || strncmp(heap_rec.msg, "mpool: ", 7) != 0 ||
        (has && !strstr(heap_rec.msg, has))) {
        fprintf(stderr, "line %d: %s: %d handler call(s), ptr %p (want %p), msg \"%s\"; want one%s%s\n", line,
                what, heap_rec.calls, heap_rec.ptr, ptr, heap_rec.msg, has ? " containing " : "", has ? has : "");
        check_failures++;
    }
    heap_rec_reset();
}
#define EXPECT_ONE(what, ptr, has) expect_one((what), (ptr), (has), __LINE__)

static void expect_none(const char *what, int line)
{
    if (heap_rec.calls != 0) {
        fprintf(stderr, "line %d: %s: %d unexpected handler call(s), last \"%s\"\n", line, what, heap_rec.calls,
                heap_rec.msg);
        check_failures++;
    }
    heap_rec_reset();
}
#define EXPECT_NONE(what) expect_none((what), __LINE__)

/* A call that must fail with NULL and errno `want` (or `alt`, when not 0). */
static void expect_null(const char *what, void *got, int err, int want, int alt, int line)
{
    if (got != NULL || (err != want && (alt == 0 || err != alt))) {
        fprintf(stderr, "line %d: %s: got %p, errno %d; want NULL with %d%s\n", line, what, got, err, want,
                alt ? " (or the other)" : "");
        check_failures++;
        if (got)
            mp_free(got);
    }
}
#define EXPECT_NULL(what, call, want) \
    do { errno = 0; void *got_ = (call); expect_null((what), got_, errno, (want), 0, __LINE__); } while (0)
#define EXPECT_NULL2(what, call, want, alt) \
    do { errno = 0; void *got_ = (call); expect_null((what), got_, errno, (want), (alt), __LINE__); } while (0)

static mp_heap *make(const char *name, size_t limit)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = name, .limit = limit });
    REQUIRE(h != NULL);
    return h;
}

/* Usable still: an allocation works and goes back. */
static void still_usable(mp_heap *h, int line)
{
    void *p = mp_heap_alloc(h, 200);
    if (!p) {
        fprintf(stderr, "line %d: the heap no longer allocates (errno %d)\n", line, errno);
        check_failures++;
        return;
    }
    memset(p, 1, 200);
    mp_free(p);
}
#define STILL_USABLE(h) still_usable((h), __LINE__)

static void visit_none(void *p, size_t size, void *arg)
{
    (void)p;
    (void)size;
    ++*(int *)arg;
}

static void test_null_heap(void)
{
    mp_heap *other = make("other", 0);
    void *live = mp_heap_alloc(other, 64);
    REQUIRE(live != NULL);
    memset(live, 7, 64);
    heap_rec_reset();

    EXPECT_NULL("alloc", mp_heap_alloc(NULL, 10), EINVAL);
    EXPECT_NULL("alloc 0", mp_heap_alloc(NULL, 0), EINVAL);
    EXPECT_NULL("calloc", mp_heap_calloc(NULL, 2, 10), EINVAL);
    EXPECT_NULL("realloc NULL", mp_heap_realloc(NULL, NULL, 10), EINVAL);
    EXPECT_NULL("aligned", mp_heap_alloc_aligned(NULL, 10, 64), EINVAL);
    EXPECT_NONE("allocating calls on a NULL heap");
    mp_stats s;
    CHECK_EQ(mp_heap_stats(NULL, &s), EINVAL);
    mp_heap *h = make("h", 0);
    CHECK_EQ(mp_heap_stats(h, NULL), EINVAL);
    CHECK_EQ(mp_heap_move(NULL, NULL), EINVAL);
    int seen = 0;
    errno = 0;
    CHECK_EQ(mp_heap_foreach(NULL, visit_none, &seen), 0);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(seen, 0);
    mp_heap_trim(NULL);
    mp_heap_destroy(NULL);
    EXPECT_NONE("int calls, trim and destroy on a NULL heap");

    /* A live block given to realloc with a NULL heap: EINVAL, and the block
     * is still the caller's, in its own heap. */
    mp_stats before = heap_stats(other);
    EXPECT_NULL("realloc of a live block, NULL heap", mp_heap_realloc(NULL, live, 100), EINVAL);
    CHECK(same_counts(before, heap_stats(other)));
    CHECK_EQ(((unsigned char *)live)[63], 7);
    heap_rec_reset();
    mp_free(live);
    HEAP_CHECK_EMPTY(other);
    mp_heap_destroy(other);
    mp_heap_destroy(h);
}

static void test_bad_options(void)
{
    EXPECT_NULL("unknown flag", mp_heap_create(NULL, &(mp_heap_opts){ .flags = 0x80000000u }), EINVAL);
    EXPECT_NULL("MP_RELEASE_ON_RESET (arenas only)", mp_heap_create(NULL, &(mp_heap_opts){ .flags = MP_RELEASE_ON_RESET }),
                EINVAL);
    /* The parent must be a live arena: an object pool is not one. */
    mp_objpool *op = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 64 });
    REQUIRE(op != NULL);
    EXPECT_NULL("objpool as parent", mp_heap_create((mp_arena *)(void *)op, NULL), EINVAL);
    mp_objpool_destroy(op);
    /* Every documented flag is accepted. */
    const unsigned good[] = { 0, MP_SINGLE_THREAD, MP_ZERO, MP_LEAK_ABORT, MP_LEAK_IGNORE,
                              MP_SINGLE_THREAD | MP_ZERO | MP_LEAK_IGNORE };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = "flags", .flags = good[i] });
        CHECK(h != NULL);
        if (h) {
            STILL_USABLE(h);
            mp_heap_destroy(h);
        }
    }
}

/* Flags: a heap's own are accepted, every other bit refused. */
static void *make_heap(unsigned flags) { return mp_heap_create(NULL, &(mp_heap_opts){ .name = "flags", .flags = flags }); }
static void end_heap(void *h) { mp_heap_destroy(h); }

static void test_flag_bits(void)
{
    flag_sweep("heap", MP_SINGLE_THREAD | MP_ZERO | MP_KEEP_MEMORY | MP_LEAK_ABORT | MP_LEAK_IGNORE, make_heap,
               end_heap);
}

static void test_overflow(void)
{
    mp_heap *h = make("overflow", 0);
    const size_t near[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX - 4095, SIZE_MAX - 65536,
                            SIZE_MAX - MiB + 1 };
    char *live = mp_heap_alloc(h, 300);
    REQUIRE(live != NULL);
    heap_fill(live, 300, 5);
    for (size_t i = 0; i < sizeof near / sizeof *near; i++) {
        size_t s = near[i];
        EXPECT_NULL("alloc near SIZE_MAX", mp_heap_alloc(h, s), EINVAL);
        EXPECT_NULL("calloc near SIZE_MAX", mp_heap_calloc(h, 1, s), EINVAL);
        EXPECT_NULL("calloc near SIZE_MAX", mp_heap_calloc(h, s, 1), EINVAL);
        EXPECT_NULL("aligned near SIZE_MAX", mp_heap_alloc_aligned(h, s, 64), EINVAL);
        EXPECT_NULL("realloc(NULL) near SIZE_MAX", mp_heap_realloc(h, NULL, s), EINVAL);
        EXPECT_NULL("realloc near SIZE_MAX", mp_heap_realloc(h, live, s), EINVAL);
    }
    /* n * size overflows. */
    const size_t pairs[][2] = { { SIZE_MAX, 2 }, { 2, SIZE_MAX / 2 + 1 }, { (size_t)1 << 32, (size_t)1 << 32 },
                                { SIZE_MAX, SIZE_MAX }, { SIZE_MAX / 16 + 1, 16 }, { 3, SIZE_MAX / 3 + 1 } };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        EXPECT_NULL("calloc n * size overflows", mp_heap_calloc(h, pairs[i][0], pairs[i][1]), EINVAL);
    /* Huge but not overflowing: no memory holds it. */
    const size_t huge[] = { (size_t)1 << 48, (size_t)1 << 56, SIZE_MAX / 2, SIZE_MAX / 2 + 1, SIZE_MAX - 2 * MiB };
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        EXPECT_NULL2("alloc huge", mp_heap_alloc(h, huge[i]), EINVAL, ENOMEM);
        EXPECT_NULL2("realloc huge", mp_heap_realloc(h, live, huge[i]), EINVAL, ENOMEM);
        EXPECT_NULL2("aligned huge", mp_heap_alloc_aligned(h, huge[i], 4096), EINVAL, ENOMEM);
    }
    /* The block survived every failed realloc, and is still the heap's. */
    CHECK_EQ(heap_check(live, 300, 5), SIZE_MAX);
    HEAP_CHECK_COUNTS(h, 1, 300, heap_held_max(live, 300, 1), 1, 0);
    live = mp_heap_realloc(h, live, 600);
    REQUIRE(live != NULL);
    CHECK_EQ(heap_check(live, 300, 5), SIZE_MAX);
    mp_free(live);
    STILL_USABLE(h);
    mp_heap_destroy(h);
}

static void test_bad_alignment(void)
{
    mp_heap *h = make("align", 0);
    const size_t bad[] = { 0, 3, 5, 6, 7, 12, 24, 48, 96, 1000, 4095, 4097, 65535, ((size_t)1 << 40) + 1,
                           SIZE_MAX / 2, SIZE_MAX };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        EXPECT_NULL("alignment not a power of two", mp_heap_alloc_aligned(h, 64, bad[i]), EINVAL);
        EXPECT_NULL("alignment not a power of two, size 0", mp_heap_alloc_aligned(h, 0, bad[i]), EINVAL);
    }
    /* Powers of two too big for any memory. */
    EXPECT_NULL2("alignment 2^62", mp_heap_alloc_aligned(h, 1, (size_t)1 << 62), EINVAL, ENOMEM);
    EXPECT_NULL2("alignment 2^63", mp_heap_alloc_aligned(h, 1, (size_t)1 << 63), EINVAL, ENOMEM);
    HEAP_CHECK_COUNTS(h, 0, 0, 0, 0, 0);
    STILL_USABLE(h);
    mp_heap_destroy(h);
}

/* A realloc the heap's limit cannot hold: ENOMEM, the old block intact. */
static void test_realloc_enomem(void)
{
    mp_heap *h = make("capped", 1 * MiB);
    char *p = mp_heap_alloc(h, 1000);
    REQUIRE(p != NULL);
    heap_fill(p, 1000, 77);
    mp_stats before = heap_stats(h);
    EXPECT_NULL("realloc past the limit", mp_heap_realloc(h, p, 4 * MiB), ENOMEM);
    EXPECT_NULL("alloc past the limit", mp_heap_alloc(h, 4 * MiB), ENOMEM);
    EXPECT_NULL("calloc past the limit", mp_heap_calloc(h, 4, MiB), ENOMEM);
    EXPECT_NULL("aligned past the limit", mp_heap_alloc_aligned(h, 4 * MiB, 4096), ENOMEM);
    mp_stats after = heap_stats(h);
    CHECK(same_counts(before, after));
    CHECK(after.failures >= before.failures + 4);
    CHECK_EQ(heap_check(p, 1000, 77), SIZE_MAX);
    CHECK(mp_usable_size(p) >= 1000);
    p = mp_heap_realloc(h, p, 5000); /* one that fits */
    REQUIRE(p != NULL);
    CHECK_EQ(heap_check(p, 1000, 77), SIZE_MAX);
    mp_free(p);
    HEAP_CHECK_EMPTY(h);
    mp_heap_destroy(h);
}

/* Pointers that are not the heap's. */
static void test_foreign_pointers(void)
{
    mp_heap *h = make("dst", 0), *other = make("src", 0);
    mp_set_error_handler(heap_recording_handler, NULL);
    heap_rec_reset();
    void *mine = mp_heap_alloc(h, 100), *theirs = mp_heap_alloc(other, 100);
    REQUIRE(mine && theirs);
    heap_fill(theirs, 100, 3);
    mp_stats h0 = heap_stats(h), o0 = heap_stats(other);

    char *m = malloc(100);
    REQUIRE(m != NULL);
    int on_stack[16];
    mp_arena *a = mp_arena_create(NULL, NULL);
    REQUIRE(a != NULL);
    void *from_arena = mp_alloc(a, 100);
    mp_objpool *op = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 100 });
    REQUIRE(op != NULL);
    void *from_pool = mp_objpool_get(op);
    REQUIRE(from_arena && from_pool);

    mp_free(m);
    EXPECT_ONE("mp_free of a malloc pointer", m, NULL);
    mp_free(on_stack);
    EXPECT_ONE("mp_free of a stack pointer", on_stack, NULL);
    CHECK_EQ(mp_usable_size(m), 0);
    EXPECT_ONE("mp_usable_size of a malloc pointer", m, NULL);

    CHECK(mp_heap_realloc(h, m, 200) == NULL);
    EXPECT_ONE("realloc of a malloc pointer", m, "'dst'");
    CHECK(mp_heap_realloc(h, on_stack, 200) == NULL);
    EXPECT_ONE("realloc of a stack pointer", on_stack, "'dst'");
    CHECK(mp_heap_realloc(h, from_arena, 200) == NULL);
    EXPECT_ONE("realloc of an arena pointer", from_arena, "'dst'");
    CHECK(mp_heap_realloc(h, from_pool, 200) == NULL);
    EXPECT_ONE("realloc of an object-pool pointer", from_pool, "'dst'");
    CHECK(mp_heap_realloc(h, theirs, 200) == NULL);
    EXPECT_ONE("realloc of another heap's pointer", theirs, "'dst'");

    /* Nothing moved; the other heap's block is still whole and its own. */
    CHECK(same_counts(h0, heap_stats(h)));
    CHECK(same_counts(o0, heap_stats(other)));
    CHECK_EQ(heap_check(theirs, 100, 3), SIZE_MAX);
    mp_stats ps;
    REQUIRE(mp_objpool_stats(op, &ps) == 0);
    CHECK_EQ(ps.objects_in_use, 1);

    /* mp_free of another heap's pointer is no misuse: mp_free finds it. */
    mp_free(theirs);
    EXPECT_NONE("mp_free of a heap pointer");
    HEAP_CHECK_EMPTY(other);
    mp_free(mine);
    HEAP_CHECK_EMPTY(h);
    STILL_USABLE(h);
    STILL_USABLE(other);
    EXPECT_NONE("correct use afterwards");

    free(m);
    mp_objpool_put(op, from_pool);
    mp_objpool_destroy(op);
    mp_arena_destroy(a);
    mp_heap_destroy(h);
    mp_heap_destroy(other);
    mp_set_error_handler(NULL, NULL);
}

/* The default heap is never destroyed: a destroy of it is misuse. */
static void test_destroy_default(void)
{
    mp_set_error_handler(heap_recording_handler, NULL);
    heap_rec_reset();
    mp_heap *d = mp_heap_default();
    REQUIRE(d != NULL);
    void *p = mp_heap_alloc(d, 100);
    REQUIRE(p != NULL);
    memset(p, 9, 100);
    mp_stats before = heap_stats(d);
    mp_heap_destroy(d);
    EXPECT_ONE("mp_heap_destroy(mp_heap_default())", NULL, NULL);
    CHECK_PTR_EQ(mp_heap_default(), d);
    CHECK(same_counts(before, heap_stats(d)));
    CHECK_EQ(((unsigned char *)p)[99], 9);
    mp_free(p);
    STILL_USABLE(d);
    EXPECT_NONE("the default heap afterwards");
    mp_set_error_handler(NULL, NULL);
}

static const check_case cases[] = {
    CHECK_CASE(null_heap, test_null_heap),
    CHECK_CASE(bad_options, test_bad_options),
    CHECK_CASE(flag_bits, test_flag_bits),
    CHECK_CASE(overflow, test_overflow),
    CHECK_CASE(bad_alignment, test_bad_alignment),
    CHECK_CASE(realloc_enomem, test_realloc_enomem),
    CHECK_CASE(foreign_pointers, test_foreign_pointers),
    CHECK_CASE(destroy_default, test_destroy_default),
};

int main(int argc, char **argv)
{
    /* The NULL-heap calls must not reach the handler: record from the start. */
    mp_set_error_handler(heap_recording_handler, NULL);
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
