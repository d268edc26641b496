/* Arenas through the public header: every contract function, the size-0
 * choice, rollback of the newest allocation, large allocations going back
 * at once, cleanups, MP_ZERO, and every bad argument (NULL arena, overflow,
 * bad alignment, bad options), each answered with NULL/errno or an errno
 * return and no crash. */
#include "check.h"
#include "flags.h"

#include <mpool.h>

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

static mp_arena *make(const char *name, unsigned flags)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = name, .flags = flags });
    REQUIRE(a != NULL);
    return a;
}

static mp_stats stats_of(const mp_arena *a)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    return s;
}

static bool aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* The index of the first byte of p[0..n) that is not zero; n if none. */
static size_t first_nonzero(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] == 0)
        i++;
    return i;
}

static void test_alloc_kinds(unsigned flags)
{
    mp_arena *a = make("kinds", flags);
    char *p = mp_alloc(a, 24);
    REQUIRE(p != NULL);
    CHECK(aligned(p, alignof(max_align_t)));
    memset(p, 0x11, 24);

    char *u1 = mp_alloc_unaligned(a, 3), *u2 = mp_alloc_unaligned(a, 5);
    REQUIRE(u1 && u2);
    memcpy(u1, "ab", 3);
    memcpy(u2, "cdef", 5);
    if (!(flags & MP_THREADSAFE) && !getenv("MPOOL_CHECK"))
        CHECK(u2 >= u1 + 3); /* packed after one another, no rounding */

    for (size_t al = 1; al <= 4096; al <<= 1) {
        char *q = mp_alloc_aligned(a, 7, al);
        REQUIRE(q != NULL);
        CHECK(aligned(q, al));
        memset(q, 0x22, 7);
    }
    char *big_al = mp_alloc_aligned(a, 100, (size_t)1 << 20); /* beyond a page: a large allocation */
    REQUIRE(big_al != NULL);
    CHECK(aligned(big_al, (size_t)1 << 20));
    memset(big_al, 0x33, 100);

    int *z = mp_calloc(a, 10, sizeof(int));
    REQUIRE(z != NULL);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(z[i], 0);
    char *zbig = mp_calloc(a, 1, 300000); /* large: zeroed too */
    REQUIRE(zbig != NULL);
    CHECK(zbig[0] == 0 && zbig[299999] == 0 && zbig[150000] == 0);

    char *s = mp_strdup(a, "hello, arena");
    CHECK_STR_EQ(s, "hello, arena");
    CHECK_STR_EQ(mp_strdup(a, ""), "");

    CHECK_STR_EQ(mp_printf(a, "%d-%s-%c", 42, "x", 'y'), "42-x-y");
    CHECK_STR_EQ(mp_printf(a, "%s", ""), "");
    /* Longer than a block, and longer than the large threshold. */
    for (size_t len = 100; len <= ((size_t)1 << 20); len *= 7) {
        char *ref = malloc(len + 1);
        REQUIRE(ref != NULL);
        for (size_t i = 0; i < len; i++)
            ref[i] = (char)('a' + i % 26);
        ref[len] = '\0';
        char *out = mp_printf(a, "<%s>", ref);
        REQUIRE(out != NULL);
        CHECK_EQ(strlen(out), len + 2);
        CHECK(out[0] == '<' && out[len + 1] == '>' && memcmp(out + 1, ref, len) == 0);
        free(ref);
    }

    /* Earlier allocations were not disturbed. */
    for (int i = 0; i < 24; i++)
        CHECK_EQ((unsigned char)p[i], 0x11);
    CHECK_STR_EQ(u1, "ab");
    CHECK_STR_EQ(u2, "cdef");
    CHECK_EQ((unsigned char)big_al[99], 0x33);
    mp_arena_destroy(a);
}

/* Size 0: a unique, non-NULL pointer (it takes one byte). */
static void test_size_zero(void)
{
    mp_arena *a = make("zero-size", 0);
    void *p = mp_alloc(a, 0), *q = mp_alloc(a, 0);
    void *u = mp_alloc_unaligned(a, 0), *v = mp_alloc_unaligned(a, 0);
    void *w = mp_alloc_aligned(a, 0, 64), *c = mp_calloc(a, 0, 8), *d = mp_calloc(a, 8, 0);
    CHECK(p && q && u && v && w && c && d);
    CHECK(p != q && u != v && p != u && q != w && c != d);
    CHECK(aligned(w, 64));
    mp_arena_free(a, q); /* freeing one is fine */
    mp_stats s = stats_of(a);
    CHECK_EQ(s.allocs, 7);
    CHECK_EQ(s.frees, 1);
    mp_arena_destroy(a);
}

/* The newest small allocation rolls back; others wait for the reset;
 * large ones go back at once. */
static void test_free(unsigned flags)
{
    mp_arena *a = make("free", flags);
    char *x = mp_alloc(a, 100);
    char *y = mp_alloc(a, 200);
    REQUIRE(x && y);
    mp_stats before = stats_of(a);
    mp_arena_free(a, y); /* newest: rolled back */
    mp_stats after = stats_of(a);
    CHECK(after.bytes_in_use < before.bytes_in_use);
    CHECK_EQ(after.frees, 1);
    CHECK_EQ(after.objects_in_use, 1);
    char *y2 = mp_alloc(a, 200);
    CHECK_PTR_EQ(y2, y); /* reused its place */

    char *z = mp_alloc(a, 50);
    mp_arena_free(a, y2); /* not the newest: kept until reset */
    char *z2 = mp_alloc(a, 50);
    CHECK(z2 != y2);
    CHECK(z2 > z);
    mp_arena_free(a, x);
    CHECK_EQ(stats_of(a).objects_in_use, 2);

    size_t mapped0 = stats_of(a).bytes_mapped;
    char *big = mp_alloc(a, 1 << 20);
    REQUIRE(big != NULL);
    memset(big, 7, 1 << 20);
    CHECK(stats_of(a).bytes_mapped >= mapped0 + (1 << 20));
    mp_arena_free(a, big); /* back to the OS now */
    CHECK_EQ(stats_of(a).bytes_mapped, mapped0);

    mp_arena_free(a, NULL); /* nothing */
    mp_arena_reset(a);
    mp_stats r = stats_of(a);
    CHECK_EQ(r.objects_in_use, 0);
    CHECK_EQ(r.bytes_in_use, 0);
    CHECK_EQ(r.allocs, r.frees);
    mp_arena_destroy(a);
}

static int cleanup_log[16], cleanup_n;
static void note(void *arg) { cleanup_log[cleanup_n++] = (int)(intptr_t)arg; }
static void other(void *arg) { cleanup_log[cleanup_n++] = 100 + (int)(intptr_t)arg; }

static void test_cleanups(void)
{
    mp_arena *a = make("cleanups", 0);
    cleanup_n = 0;
    CHECK_EQ(mp_cleanup_push(a, note, (void *)1), 0);
    CHECK_EQ(mp_cleanup_push(a, note, (void *)2), 0);
    CHECK_EQ(mp_cleanup_push(a, other, (void *)2), 0);
    CHECK_EQ(mp_cleanup_push(a, note, (void *)2), 0);
    CHECK_EQ(mp_cleanup_push(a, note, (void *)3), 0);
    CHECK_EQ(mp_cleanup_remove(a, note, (void *)2), 0); /* the newest (note, 2) */
    CHECK_EQ(mp_cleanup_remove(a, note, (void *)9), ENOENT);
    CHECK_EQ(mp_cleanup_remove(a, other, (void *)1), ENOENT);
    mp_arena_reset(a); /* newest first */
    CHECK_EQ(cleanup_n, 4);
    CHECK_EQ(cleanup_log[0], 3);
    CHECK_EQ(cleanup_log[1], 102);
    CHECK_EQ(cleanup_log[2], 2);
    CHECK_EQ(cleanup_log[3], 1);
    mp_arena_reset(a); /* run once only */
    CHECK_EQ(cleanup_n, 4);
    CHECK_EQ(mp_cleanup_push(a, note, (void *)7), 0);
    mp_arena_destroy(a);
    CHECK_EQ(cleanup_n, 5);
    CHECK_EQ(cleanup_log[4], 7);
}

/* MP_ZERO: everything handed out is zero, also memory reused after a
 * reset or a rollback. */
static void test_zero(unsigned extra)
{
    mp_arena *a = make("zeroed", MP_ZERO | extra);
    for (int round = 0; round < 3; round++) {
        for (size_t size = 1; size < 5000; size = size * 3 + 1) {
            unsigned char *p = mp_alloc(a, size);
            REQUIRE(p != NULL);
            for (size_t i = 0; i < size; i++)
                if (p[i] != 0) {
                    CHECK_EQ(p[i], 0);
                    break;
                }
            memset(p, 0xab, size);
        }
        unsigned char *s = mp_alloc_unaligned(a, 33);
        memset(s, 0xcd, 33);
        mp_arena_free(a, s);
        s = mp_alloc_unaligned(a, 33);
        CHECK(s[0] == 0 && s[32] == 0);
        memset(s, 0xcd, 33);
        mp_arena_reset(a);
    }
    mp_arena_destroy(a);
}

/* A large allocation's memory comes back through the chunk cache with the
 * last user's bytes in it: mp_calloc and MP_ZERO arenas must still read
 * zero (mp_alloc on a plain arena need not). */
static void test_large_reads_zero(unsigned flags)
{
    enum { LARGE = 40000 }; /* above the default large threshold, within one chunk */
    mp_arena *a = make("large zero", flags);
    for (int round = 0; round < 3; round++) {
        unsigned char *p = mp_alloc(a, LARGE);
        REQUIRE(p != NULL);
        if (flags & MP_ZERO)
            CHECK(first_nonzero(p, LARGE) == LARGE);
        memset(p, 0xab, LARGE);
        mp_arena_free(a, p);
        unsigned char *q = mp_calloc(a, 1, LARGE);
        REQUIRE(q != NULL);
        CHECK_EQ(first_nonzero(q, LARGE), LARGE);
        memset(q, 0xab, LARGE);
        mp_arena_free(a, q);
    }
    CHECK_EQ(stats_of(a).bytes_in_use, 0);
    mp_arena_destroy(a);
}

static void test_bad_input(void)
{
    /* A NULL arena. */
    errno = 0;
    CHECK(mp_alloc(NULL, 8) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_alloc_unaligned(NULL, 8) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_alloc_aligned(NULL, 8, 8) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_calloc(NULL, 2, 8) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_strdup(NULL, "x") == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_printf(NULL, "x") == NULL && errno == EINVAL);
    CHECK_EQ(mp_cleanup_push(NULL, note, NULL), EINVAL);
    CHECK_EQ(mp_cleanup_remove(NULL, note, NULL), EINVAL);
    CHECK_EQ(mp_arena_move(NULL, NULL), EINVAL);
    mp_stats s;
    CHECK_EQ(mp_arena_stats(NULL, &s), EINVAL);
    mp_arena_free(NULL, NULL);
    errno = 0;
    mp_arena_free(NULL, &s);
    CHECK_EQ(errno, EINVAL);
    mp_arena_reset(NULL);
    mp_arena_destroy(NULL);

    mp_arena *a = make("bad", 0);
    /* Overflow of n * size, size + alignment; alignment not a power of two. */
    errno = 0;
    CHECK(mp_calloc(a, SIZE_MAX / 2, 3) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_calloc(a, (size_t)1 << 33, (size_t)1 << 33) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_alloc(a, SIZE_MAX) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_alloc(a, SIZE_MAX - 8) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_alloc_unaligned(a, SIZE_MAX) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_alloc_aligned(a, SIZE_MAX - 4096, 8192) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_alloc_aligned(a, SIZE_MAX / 2 + 1, (size_t)1 << 63) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_alloc_aligned(a, 16, (size_t)1 << 62) == NULL && errno == ENOMEM); /* valid, but too big */
    size_t bad_aligns[] = { 0, 3, 12, 24, 4095, 65537, SIZE_MAX };
    for (size_t i = 0; i < sizeof bad_aligns / sizeof *bad_aligns; i++) {
        errno = 0;
        CHECK(mp_alloc_aligned(a, 16, bad_aligns[i]) == NULL);
        CHECK_EQ(errno, EINVAL);
    }
    /* Too big to map: ENOMEM, and the arena is fine afterwards. */
    errno = 0;
    CHECK(mp_alloc(a, SIZE_MAX / 4) == NULL && errno == ENOMEM);
    CHECK_EQ(stats_of(a).failures, 2);
    CHECK(mp_alloc(a, 10) != NULL);
    errno = 0;
    CHECK(mp_strdup(a, NULL) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_printf(a, NULL) == NULL && errno == EINVAL);
    CHECK_EQ(mp_cleanup_push(a, NULL, NULL), EINVAL);
    CHECK_EQ(mp_arena_stats(a, NULL), EINVAL);
    mp_arena_destroy(a);

    /* Bad options. */
    errno = 0;
    CHECK(mp_arena_create(NULL, &(mp_arena_opts){ .flags = 0x80000 }) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(mp_arena_create(NULL, &(mp_arena_opts){ .flags = MP_THREADSAFE | MP_SINGLE_THREAD }) == NULL &&
          errno == EINVAL);
    for (unsigned leak = MP_LEAK_ABORT; leak <= MP_LEAK_IGNORE; leak <<= 1) { /* arenas never report leaks */
        errno = 0;
        CHECK(mp_arena_create(NULL, &(mp_arena_opts){ .flags = leak }) == NULL && errno == EINVAL);
    }
    errno = 0;
    CHECK(mp_arena_create(NULL, &(mp_arena_opts){ .block_size = (size_t)1 << 40 }) == NULL && errno == EINVAL);
    mp_arena *d = mp_arena_create(NULL, NULL); /* NULL options: defaults */
    REQUIRE(d != NULL);
    CHECK(mp_alloc(d, 1) != NULL);
    mp_arena_destroy(d);
    mp_arena *tiny = mp_arena_create(NULL, &(mp_arena_opts){ .block_size = 1 }); /* rounded up to a page */
    REQUIRE(tiny != NULL);
    for (int i = 0; i < 100; i++)
        CHECK(mp_alloc(tiny, 500) != NULL);
    mp_arena_destroy(tiny);
}

/* Flags: an arena's own are accepted, every other bit refused. */
static void *make_arena(unsigned flags) { return mp_arena_create(NULL, &(mp_arena_opts){ .name = "flags", .flags = flags }); }
static void end_arena(void *a) { mp_arena_destroy(a); }

int main(void)
{
    flag_sweep("arena", MP_SINGLE_THREAD | MP_THREADSAFE | MP_ZERO | MP_RELEASE_ON_RESET, make_arena, end_arena);
    unsigned modes[] = { 0, MP_THREADSAFE, MP_ZERO, MP_SINGLE_THREAD };
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        test_alloc_kinds(modes[i]);
        test_free(modes[i]);
    }
    test_size_zero();
    test_cleanups();
    test_zero(0);
    test_zero(MP_THREADSAFE);
    test_large_reads_zero(0);
    test_large_reads_zero(MP_THREADSAFE);
    test_large_reads_zero(MP_ZERO);
    test_bad_input();
    return check_done();
}
