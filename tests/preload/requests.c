/*
 * requests.c - the requests a malloc replacement must get right besides
 * plain malloc and free: every alignment function, realloc chains, calloc's
 * overflow and zeroing, malloc(0), requests too large to satisfy, and
 * malloc_usable_size. run.sh runs each case with and without the allocator
 * under test preloaded; each case also checks itself, and prints one line
 * that must read the same under any correct allocator.
 *
 * A program that replaces malloc must replace all of glibc's malloc
 * functions: one it leaves out still comes from glibc, which takes the
 * memory from glibc's own heap, and the replacement's free then gets a
 * pointer it never made. A case that calls such a function first checks
 * (with dladdr) that it comes from the object malloc comes from. When it
 * does not, the case fails if MPOOL_PRELOAD_STRICT=1 (the build's drop-in)
 * and is skipped otherwise (a stand-in allocator).
 *
 * Every size that must fail passes through a volatile, so that the
 * compiler cannot decide the outcome.
 */
#define _GNU_SOURCE 1
#include "cases.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <malloc.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static size_t opaque(size_t v)
{
    volatile size_t x = v;
    return x;
}

/* The file the dynamic linker took `fn` from, or "?". */
static const char *object_of(const char *fn)
{
    void *f = dlsym(RTLD_DEFAULT, fn);
    Dl_info info;
    if (f == NULL || dladdr(f, &info) == 0 || info.dli_fname == NULL)
        return "?";
    return info.dli_fname;
}

/* The case calls `fn`: it must come from where malloc comes from. */
static void needs(const char *fn)
{
    const char *mine = object_of(fn), *mallocs = object_of("malloc");
    if (strcmp(mine, mallocs) == 0)
        return;
    const char *strict = getenv("MPOOL_PRELOAD_STRICT");
    fprintf(stderr, "%s comes from %s, malloc from %s: the allocator does not replace %s, so a program "
                    "calling it gets glibc's heap and frees into another allocator\n", fn, mine, mallocs, fn);
    if (strict != NULL && strcmp(strict, "1") == 0)
        exit(1);
    printf("SKIP %s: not provided by the allocator under test\n", fn);
    exit(77);
}

/* A byte pattern that differs between blocks (seed) and along a block. */
static unsigned char pat(uint64_t mixed_seed, size_t i)
{
    return (unsigned char)(mixed_seed + i * 131 + (i >> 9));
}

static void fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *c = p;
    uint64_t m = check_mix(seed);
    for (size_t i = 0; i < n; i++)
        c[i] = pat(m, i);
}

/* Is p[0..n) still the pattern fill wrote? */
static int intact(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *c = p;
    uint64_t m = check_mix(seed);
    for (size_t i = 0; i < n; i++)
        if (c[i] != pat(m, i)) {
            fprintf(stderr, "block %p: byte %zu of %zu is 0x%02x, want 0x%02x\n", p, i, n, c[i], pat(m, i));
            return 0;
        }
    return 1;
}

static int aligned_to(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

/* Sizes for the alignment cases: small, around a page, past the usual
 * mmap threshold. */
static const size_t sizes[] = { 1, 7, 8, 24, 100, 4095, 4097, 65537, 1048579 };
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAX_ALIGN_LOG 22 /* 4 MiB */

/* ------------------------------------------------------------- malloc(0) */

static void test_zero(void)
{
    /* glibc, jemalloc, mimalloc and tcmalloc all return a unique pointer
     * for a request of 0 bytes; programs test the result for NULL. */
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = malloc(opaque(0));
        REQUIRE(p[i] != NULL);
        for (int j = 0; j < i; j++)
            CHECK(p[i] != p[j]);
    }
    for (int i = 0; i < 64; i++)
        free(p[i]);
    void *c1 = calloc(opaque(0), 8), *c2 = calloc(8, opaque(0)), *c3 = calloc(opaque(0), opaque(0));
    CHECK(c1 != NULL && c2 != NULL && c3 != NULL);
    free(c1);
    free(c2);
    free(c3);
    void *r = realloc(NULL, opaque(0));
    CHECK(r != NULL);
    /* realloc(p, 0) frees p and returns NULL (glibc) or a new minimal
     * block: either is allowed, but not a crash. */
    r = realloc(r, opaque(0));
    free(r);
    free(NULL);
    /* Zero bytes with an alignment: NULL or an aligned pointer free takes. */
    void *a = NULL;
    CHECK_EQ(posix_memalign(&a, 64, opaque(0)), 0);
    CHECK(a == NULL || aligned_to(a, 64));
    free(a);
    printf("zero: malloc(0), calloc with a zero, realloc(NULL, 0) give unique blocks; free(NULL) ok\n");
}

/* ----------------------------------------------------- impossible requests */

/* Sizes no allocator can satisfy: past PTRDIFF_MAX, or past any address
 * space a 64-bit Linux process has (2^56 and up), whatever the overcommit
 * setting. */
static const size_t huge_sizes[] = { SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX,
                                     (size_t)1 << 62, (size_t)1 << 56 };
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

/* Failing with NULL is required of every allocator; setting errno to
 * ENOMEM as well (POSIX for malloc, calloc and realloc; glibc for all) is
 * required of the drop-in, and only reported for a stand-in (jemalloc 5.3,
 * for one, leaves errno alone in memalign, valloc and realloc past
 * PTRDIFF_MAX). */
static int strict_mode(void)
{
    const char *s = getenv("MPOOL_PRELOAD_STRICT");
    return s != NULL && strcmp(s, "1") == 0;
}

static int errno_misses; /* failures without ENOMEM, forgiven in a stand-in */

#define EXPECT_ENOMEM(expr, what, size)                                                                  \
    do {                                                                                                 \
        errno = 0;                                                                                       \
        void *r_ = (expr);                                                                               \
        if (r_ != NULL || errno != ENOMEM) {                                                             \
            fprintf(stderr, "%s(%zu): %p, errno %d (%s); want NULL and ENOMEM\n", what, (size_t)(size), \
                    r_, errno, strerror(errno));                                                         \
            if (r_ != NULL || strict_mode())                                                             \
                check_failures++;                                                                        \
            else                                                                                         \
                errno_misses++;                                                                          \
            free(r_);                                                                                    \
        }                                                                                                \
    } while (0)

static void test_huge(void)
{
    needs("posix_memalign");
    needs("aligned_alloc");
    needs("memalign");
    needs("valloc");
    char *keep = malloc(100);
    REQUIRE(keep != NULL);
    fill(keep, 100, 1);
    int n = 0;
    for (size_t i = 0; i < NHUGE; i++) {
        size_t s = opaque(huge_sizes[i]);
        EXPECT_ENOMEM(malloc(s), "malloc", s);
        EXPECT_ENOMEM(calloc(1, s), "calloc", s);
        EXPECT_ENOMEM(aligned_alloc(64, s & ~(size_t)63), "aligned_alloc", s & ~(size_t)63);
        EXPECT_ENOMEM(memalign(4096, s), "memalign", s);
        EXPECT_ENOMEM(valloc(s), "valloc", s);
        void *m = &n;
        int err = posix_memalign(&m, 64, s);
        if (err != ENOMEM || m != &n) {
            fprintf(stderr, "posix_memalign(64, %zu): returned %d and set the pointer to %p; want ENOMEM, "
                            "pointer untouched\n", s, err, m);
            check_failures++;
        }
        /* A failed realloc leaves the block as it was. */
        errno = 0;
        void *r = realloc(keep, s);
        if (r != NULL) {
            fprintf(stderr, "realloc(p, %zu) = %p; want NULL\n", s, r);
            check_failures++;
            keep = r;
        } else if (errno != ENOMEM) {
            fprintf(stderr, "realloc(p, %zu): NULL, errno %d; want ENOMEM\n", s, errno);
            if (strict_mode())
                check_failures++;
            else
                errno_misses++;
        }
        CHECK(intact(keep, 100, 1));
        n += 7;
    }
    free(keep);
    /* And the allocator still works. */
    void *p = malloc(opaque(1000));
    REQUIRE(p != NULL);
    fill(p, 1000, 2);
    CHECK(intact(p, 1000, 2));
    free(p);
    if (errno_misses > 0)
        fprintf(stderr, "%d of these failures left errno alone: forgiven in a stand-in, not in the drop-in\n",
                errno_misses);
    printf("huge: %d impossible requests fail%s; realloc keeps the block\n", n,
           strict_mode() ? " with ENOMEM" : "");
}

/* ------------------------------------------------------------------ calloc */

static void test_calloc(void)
{
    static const size_t overflow[][2] = {
        { SIZE_MAX, 2 }, { 2, SIZE_MAX }, { SIZE_MAX / 2 + 1, 2 }, { (size_t)1 << 32, (size_t)1 << 32 },
        { SIZE_MAX / 16 + 1, 16 }, { 3, SIZE_MAX / 3 + 1 },
    };
    size_t n_over = sizeof overflow / sizeof overflow[0];
    for (size_t i = 0; i < n_over; i++) {
        size_t a = opaque(overflow[i][0]), b = opaque(overflow[i][1]);
        EXPECT_ENOMEM(calloc(a, b), "calloc (n*size overflows)", a);
    }
    char *keep = malloc(64);
    REQUIRE(keep != NULL);
    fill(keep, 64, 3);
    for (size_t i = 0; i < n_over; i++) {
        errno = 0;
        void *r = reallocarray(keep, opaque(overflow[i][0]), opaque(overflow[i][1]));
        if (r != NULL || errno != ENOMEM) {
            fprintf(stderr, "reallocarray overflowing: %p, errno %d; want NULL and ENOMEM\n", r, errno);
            check_failures++;
        }
        if (r != NULL)
            keep = r;
    }
    CHECK(intact(keep, 64, 3));
    free(keep);
    /* calloc's memory is zero even where a freed, dirtied block is reused. */
    static const size_t zsizes[] = { 1, 16, 24, 100, 512, 4000, 4096, 70000, 140000, 1 << 20, 5 << 20 };
    int blocks = 0;
    for (size_t i = 0; i < sizeof zsizes / sizeof zsizes[0]; i++) {
        size_t s = zsizes[i];
        for (int round = 0; round < 4; round++) {
            unsigned char *d[8];
            for (int k = 0; k < 8; k++) {
                d[k] = malloc(s);
                REQUIRE(d[k] != NULL);
                memset(d[k], 0xA5, s);
            }
            for (int k = 0; k < 8; k++)
                free(d[k]);
            for (int k = 0; k < 8; k++) {
                d[k] = calloc(1, s);
                REQUIRE(d[k] != NULL);
                size_t nonzero = 0;
                for (size_t j = 0; j < s; j++)
                    nonzero += d[k][j] != 0;
                if (nonzero != 0) {
                    fprintf(stderr, "calloc(1, %zu): %zu bytes not zero\n", s, nonzero);
                    check_failures++;
                }
                memset(d[k], 0x5A, s);
                blocks++;
            }
            for (int k = 0; k < 8; k++)
                free(d[k]);
        }
    }
    printf("calloc: %zu overflowing requests fail with ENOMEM (reallocarray too); %d reused blocks zeroed\n", n_over,
           blocks);
}

/* ----------------------------------------------------------------- realloc */

#define CHAINS 8
#define CHAIN_MAX ((size_t)4 << 20)

static void test_realloc(void)
{
    needs("posix_memalign");
    /* Eight chains grown in turn, so that a block cannot always grow in
     * place, then shrunk; the prefix survives every step. */
    char *c[CHAINS] = { 0 };
    size_t len[CHAINS] = { 0 };
    for (size_t target = 1; target <= CHAIN_MAX; target = target * 3 / 2 + 1) {
        for (int k = 0; k < CHAINS; k++) {
            size_t s = target + (size_t)k * 5;
            char *p = realloc(c[k], s);
            REQUIRE(p != NULL);
            if (!intact(p, len[k], (uint64_t)k + 100)) {
                fprintf(stderr, "realloc grow %zu -> %zu lost the contents\n", len[k], s);
                check_failures++;
            }
            fill(p, s, (uint64_t)k + 100);
            c[k] = p;
            len[k] = s;
        }
    }
    for (int k = 0; k < CHAINS; k++) {
        while (len[k] > 1) {
            size_t s = len[k] / 3;
            if (s == 0)
                s = 1;
            char *p = realloc(c[k], s);
            REQUIRE(p != NULL);
            if (!intact(p, s, (uint64_t)k + 100)) {
                fprintf(stderr, "realloc shrink %zu -> %zu lost the contents\n", len[k], s);
                check_failures++;
            }
            c[k] = p;
            len[k] = s;
        }
        /* The same size again. */
        char *p = realloc(c[k], 1);
        REQUIRE(p != NULL);
        CHECK(intact(p, 1, (uint64_t)k + 100));
        free(p);
    }
    /* realloc of a block that came from posix_memalign, grown and shrunk
     * across the small and large sizes. */
    static const size_t aligns[] = { 64, 4096, 65536 };
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        void *v = NULL;
        REQUIRE(posix_memalign(&v, aligns[a], 100) == 0);
        fill(v, 100, 7 + a);
        size_t have = 100;
        static const size_t next[] = { 5000, 300000, 2000000, 40, 70000, 8 };
        for (size_t i = 0; i < sizeof next / sizeof next[0]; i++) {
            char *p = realloc(v, next[i]);
            REQUIRE(p != NULL);
            size_t keep = have < next[i] ? have : next[i];
            CHECK(intact(p, keep, 7 + a));
            fill(p, next[i], 7 + a);
            v = p;
            have = next[i];
        }
        free(v);
    }
    printf("realloc: %d chains to %zu bytes and back, and aligned blocks; contents kept\n", CHAINS, CHAIN_MAX);
}

/* ------------------------------------------------------- aligned requests */

/* Allocates, checks and keeps one block per (alignment, size); frees them
 * all in a shuffled order at the end. */
typedef void *(*aligned_fn)(size_t align, size_t size);

static void *via_posix_memalign(size_t align, size_t size)
{
    void *p = NULL;
    int err = posix_memalign(&p, align, size);
    if (err != 0) {
        fprintf(stderr, "posix_memalign(%zu, %zu) failed: %s\n", align, size, strerror(err));
        return NULL;
    }
    return p;
}
static void *via_aligned_alloc(size_t align, size_t size) { return aligned_alloc(align, size); }
static void *via_memalign(size_t align, size_t size) { return memalign(align, size); }

static int aligned_sweep(const char *name, aligned_fn fn, size_t min_align)
{
    void *kept[(MAX_ALIGN_LOG + 1) * NSIZES];
    size_t kept_size[(MAX_ALIGN_LOG + 1) * NSIZES];
    int n = 0, aligns = 0;
    for (int lg = 0; lg <= MAX_ALIGN_LOG; lg++) {
        size_t align = (size_t)1 << lg;
        if (align < min_align)
            continue;
        aligns++;
        for (size_t i = 0; i < NSIZES; i++) {
            /* The biggest alignments with the small sizes only. */
            if (align >= ((size_t)1 << 20) && sizes[i] > 4097)
                continue;
            void *p = fn(align, sizes[i]);
            if (p == NULL) {
                fprintf(stderr, "%s(%zu, %zu) returned NULL (errno %d)\n", name, align, sizes[i], errno);
                check_failures++;
                continue;
            }
            if (!aligned_to(p, align)) {
                fprintf(stderr, "%s(%zu, %zu) = %p: not aligned\n", name, align, sizes[i], p);
                check_failures++;
            }
            size_t u = malloc_usable_size(p);
            if (u < sizes[i]) {
                fprintf(stderr, "%s(%zu, %zu): usable size %zu\n", name, align, sizes[i], u);
                check_failures++;
            }
            fill(p, sizes[i], (uint64_t)n);
            kept[n] = p;
            kept_size[n] = sizes[i];
            n++;
        }
    }
    /* Free in a scattered order, checking each block first. */
    for (int step = 0; step < n; step++) {
        int i = (step * 7) % n;
        while (kept[i] == NULL)
            i = (i + 1) % n;
        CHECK(intact(kept[i], kept_size[i], (uint64_t)i));
        free(kept[i]);
        kept[i] = NULL;
    }
    return aligns;
}

static void test_posix_memalign(void)
{
    needs("posix_memalign");
    needs("malloc_usable_size");
    int aligns = aligned_sweep("posix_memalign", via_posix_memalign, sizeof(void *));
    /* Alignments POSIX refuses: not a power of two, or not a multiple of
     * sizeof(void *). The pointer is left alone. */
    static const size_t bad[] = { 0, 1, 2, 4, 3, 12, 24, 48, 100, 4097 };
    int refused = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] == sizeof(void *))
            continue;
        void *p = &refused;
        int err = posix_memalign(&p, opaque(bad[i]), 64);
        if (err != EINVAL || p != &refused) {
            fprintf(stderr, "posix_memalign(%zu, 64): %d, pointer %p; want EINVAL and the pointer untouched\n",
                    bad[i], err, p);
            check_failures++;
            if (err == 0)
                free(p);
        }
        refused++;
    }
    printf("posix_memalign: %d alignments x %zu sizes aligned and usable; %d bad alignments refused with EINVAL\n",
           aligns, NSIZES, refused);
}

static void test_aligned_alloc(void)
{
    needs("aligned_alloc");
    needs("malloc_usable_size");
    int aligns = aligned_sweep("aligned_alloc", via_aligned_alloc, 1);
    /* Sizes that are multiples of the alignment, as C11 first required. */
    int n = 0;
    for (int lg = 3; lg <= 16; lg++) {
        size_t align = (size_t)1 << lg;
        void *p = aligned_alloc(align, align * 3);
        REQUIRE(p != NULL);
        CHECK(aligned_to(p, align));
        fill(p, align * 3, (uint64_t)lg);
        CHECK(intact(p, align * 3, (uint64_t)lg));
        free(p);
        n++;
    }
    printf("aligned_alloc: %d alignments x %zu sizes, and %d multiples of the alignment\n", aligns, NSIZES, n);
}

static void test_memalign(void)
{
    needs("memalign");
    needs("malloc_usable_size");
    int aligns = aligned_sweep("memalign", via_memalign, 1);
    printf("memalign: %d alignments x %zu sizes aligned and usable\n", aligns, NSIZES);
}

static void test_valloc(void)
{
    needs("valloc");
    needs("malloc_usable_size");
    size_t ps = page_size();
    static const size_t vs[] = { 1, 100, 4095, 4096, 4097, 65536, 1 << 20 };
    void *p[sizeof vs / sizeof vs[0]];
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        p[i] = valloc(vs[i]);
        REQUIRE(p[i] != NULL);
        CHECK(aligned_to(p[i], ps));
        CHECK(malloc_usable_size(p[i]) >= vs[i]);
        fill(p[i], vs[i], i);
    }
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        CHECK(intact(p[i], vs[i], i));
        free(p[i]);
    }
    printf("valloc: %zu sizes page-aligned\n", sizeof vs / sizeof vs[0]);
}

static void test_pvalloc(void)
{
    needs("pvalloc");
    needs("malloc_usable_size");
    size_t ps = page_size();
    static const size_t vs[] = { 1, 100, 4095, 4096, 4097, 65537 };
    void *p[sizeof vs / sizeof vs[0]];
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        /* pvalloc rounds the size up to whole pages, and all of them are
         * the caller's. */
        size_t whole = (vs[i] + ps - 1) / ps * ps;
        p[i] = pvalloc(vs[i]);
        REQUIRE(p[i] != NULL);
        CHECK(aligned_to(p[i], ps));
        CHECK(malloc_usable_size(p[i]) >= whole);
        fill(p[i], whole, i);
    }
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        CHECK(intact(p[i], (vs[i] + ps - 1) / ps * ps, i));
        free(p[i]);
    }
    printf("pvalloc: %zu sizes page-aligned, rounded up to whole pages\n", sizeof vs / sizeof vs[0]);
}

/* ------------------------------------------------------ malloc_usable_size */

static void test_usable_size(void)
{
    needs("malloc_usable_size");
    CHECK_EQ(malloc_usable_size(NULL), 0);
    /* Every size to 4 KiB, then a sparser sweep to 2 MiB; all usable bytes
     * are written while the neighbours live, so an overlap shows. */
    enum { MAXB = 4096 + 256 };
    static unsigned char *b[MAXB];
    static size_t u[MAXB];
    int n = 0;
    for (size_t s = 0; s <= 4096; s++, n++) {
        b[n] = malloc(s);
        REQUIRE(b[n] != NULL);
        u[n] = malloc_usable_size(b[n]);
        if (u[n] < s) {
            fprintf(stderr, "malloc(%zu): usable size %zu\n", s, u[n]);
            check_failures++;
        }
    }
    for (size_t s = 4097; s <= ((size_t)2 << 20) && n < MAXB; s += s / 8 + 1, n++) {
        b[n] = malloc(s);
        REQUIRE(b[n] != NULL);
        u[n] = malloc_usable_size(b[n]);
        if (u[n] < s) {
            fprintf(stderr, "malloc(%zu): usable size %zu\n", s, u[n]);
            check_failures++;
        }
    }
    for (int i = 0; i < n; i++)
        fill(b[i], u[i], (uint64_t)i);
    for (int i = 0; i < n; i++) {
        CHECK(intact(b[i], u[i], (uint64_t)i));
        free(b[i]);
    }
    /* After a shrinking realloc, the usable size covers the new size. */
    char *p = malloc(100000);
    REQUIRE(p != NULL);
    p = realloc(p, 50);
    REQUIRE(p != NULL);
    CHECK(malloc_usable_size(p) >= 50);
    free(p);
    printf("usable_size: %d blocks of 0..2 MiB, every usable byte written without overlap\n", n);
}

/* ------------------------------------------------- memory crossing libc */

static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    REQUIRE(n >= 0 && s != NULL);
    return s;
}

static int only_f(const struct dirent *d) { return d->d_name[0] == 'f'; }

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

static void test_libc(void)
{
    /* glibc allocates with the malloc in use (through its PLT), and frees
     * what the program hands it: both directions must meet one allocator.
     * run.sh runs this in a scratch directory. */
    char *a = strdup("allocated by libc");
    char *b = strndup("allocated by libc, cut", 17);
    CHECK_STR_EQ(a, b);
    free(a);
    free(b);
    char *s = fmt("%s-%d-%0*d", "asprintf", 42, 300, 7);
    CHECK_EQ(strlen(s), strlen("asprintf-42-") + 300);
    free(s);

    /* Files: stdio's buffers, getline growing a buffer we allocated. */
    FILE *f = fopen("lines.txt", "w");
    REQUIRE(f != NULL);
    char xs[700];
    memset(xs, 'x', sizeof xs);
    for (int i = 0; i < 2000; i++)
        fprintf(f, "%d %.*s\n", i, i % 700, xs);
    REQUIRE(fclose(f) == 0);
    f = fopen("lines.txt", "r");
    REQUIRE(f != NULL);
    size_t cap = 4;
    char *line = malloc(cap); /* ours; getline reallocs it */
    REQUIRE(line != NULL);
    long total = 0;
    int lines = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        total += len;
        lines++;
    }
    free(line);
    fclose(f);
    CHECK_EQ(lines, 2000);

    /* open_memstream: libc grows the buffer, we free it. */
    char *buf = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&buf, &size);
    REQUIRE(m != NULL);
    for (int i = 0; i < 10000; i++)
        fprintf(m, "%d,", i);
    REQUIRE(fclose(m) == 0);
    CHECK(size > 40000 && buf != NULL && strncmp(buf, "0,1,2,", 6) == 0);
    free(buf);

    /* realpath, scandir, glob, regex: each returns memory we free, or frees
     * it through its own call. */
    char *rp = realpath(".", NULL);
    CHECK(rp != NULL && rp[0] == '/');
    free(rp);
    for (int i = 0; i < 30; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%02d", i);
        FILE *t = fopen(name, "w");
        REQUIRE(t != NULL);
        fclose(t);
    }
    struct dirent **ents = NULL;
    int nents = scandir(".", &ents, only_f, alphasort);
    CHECK_EQ(nents, 30);
    for (int i = 0; i < nents; i++)
        free(ents[i]);
    free(ents);
    glob_t g;
    CHECK_EQ(glob("f1*", 0, NULL, &g), 0);
    CHECK_EQ(g.gl_pathc, 10);
    globfree(&g);
    regex_t re;
    CHECK_EQ(regcomp(&re, "^([a-z]+)-([0-9]+)(-[a-z]*)*$", REG_EXTENDED), 0);
    regmatch_t mt[4];
    CHECK_EQ(regexec(&re, "alloc-1234-x-yz", 4, mt, 0), 0);
    CHECK_EQ(mt[2].rm_so, 6);
    regfree(&re);

    /* qsort of a big array (glibc's takes a temporary buffer with malloc). */
    size_t nq = 200000;
    unsigned *q = malloc(nq * sizeof *q);
    REQUIRE(q != NULL);
    for (size_t i = 0; i < nq; i++)
        q[i] = (unsigned)check_mix(i);
    qsort(q, nq, sizeof *q, cmp_unsigned);
    size_t sorted = 1;
    for (size_t i = 1; i < nq; i++)
        sorted += q[i - 1] <= q[i];
    CHECK_EQ(sorted, nq);
    free(q);
    printf("libc: strdup, asprintf, getline (%d lines, %ld bytes), open_memstream, realpath, scandir, glob, regex\n",
           lines, total);
}

/* ------------------------------------------------------------ all mixed */

static uint64_t lcg_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Mostly small, some medium, a few large and rare very large requests. */
static size_t mixed_size(uint64_t *rng)
{
    uint64_t r = lcg_next(rng) % 10000;
    if (r < 8000)
        return 1 + lcg_next(rng) % 256;
    if (r < 9800)
        return 257 + lcg_next(rng) % 8000;
    if (r < 9990)
        return 8193 + lcg_next(rng) % 120000;
    return ((size_t)1 << 20) + lcg_next(rng) % ((size_t)3 << 20);
}

#define SLOTS 4096
#define MIXED_OPS 200000

static void test_mixed(void)
{
    needs("posix_memalign");
    needs("aligned_alloc");
    needs("memalign");
    needs("valloc");
    static void *slot[SLOTS];
    static size_t len[SLOTS];
    static uint64_t seed[SLOTS];
    uint64_t rng = 12345;
    long bad = 0;
    for (int op = 0; op < MIXED_OPS; op++) {
        int i = (int)(lcg_next(&rng) % SLOTS);
        if (slot[i] == NULL) {
            size_t s = mixed_size(&rng);
            uint64_t how = lcg_next(&rng) % 20;
            void *p = NULL;
            if (how < 10) {
                p = malloc(s);
            } else if (how < 14) {
                p = calloc(1, s);
                REQUIRE(p != NULL);
                for (size_t k = 0; k < s; k++)
                    bad += ((unsigned char *)p)[k] != 0;
            } else if (how < 16) {
                REQUIRE(posix_memalign(&p, (size_t)16 << (lcg_next(&rng) % 9), s) == 0);
            } else if (how < 18) {
                size_t a = (size_t)8 << (lcg_next(&rng) % 10);
                p = aligned_alloc(a, (s + a - 1) / a * a);
            } else if (how < 19) {
                p = memalign((size_t)1 << (lcg_next(&rng) % 13), s);
            } else {
                p = valloc(s);
            }
            REQUIRE(p != NULL);
            slot[i] = p;
            len[i] = s;
            seed[i] = (uint64_t)op;
            fill(p, s, seed[i]);
        } else {
            if (!intact(slot[i], len[i], seed[i]))
                bad++;
            if (lcg_next(&rng) % 5 < 3) {
                free(slot[i]);
                slot[i] = NULL;
            } else {
                size_t s = mixed_size(&rng);
                char *p = realloc(slot[i], s);
                REQUIRE(p != NULL);
                if (!intact(p, s < len[i] ? s : len[i], seed[i]))
                    bad++;
                slot[i] = p;
                len[i] = s;
                seed[i] = (uint64_t)op;
                fill(p, s, seed[i]);
            }
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i] != NULL && !intact(slot[i], len[i], seed[i]))
            bad++;
        free(slot[i]);
    }
    CHECK_EQ(bad, 0);
    printf("mixed: %d operations on %d slots with every allocation function; every block intact\n", MIXED_OPS,
           SLOTS);
}

/* --------------------------------------------- freed on another thread */

#define XQ_CAP 1024
#define X_PRODUCERS 2
#define X_CONSUMERS 2
#define X_PER_PRODUCER 100000

/* The head of every block passed between threads: who made it and how big
 * it is, so that the consumer can check it. */
typedef struct xhead {
    uint64_t seed;
    size_t size;
} xhead;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    xhead *q[XQ_CAP];
    size_t head, count;
    int producers_left;
} xq = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 }, 0, 0,
         X_PRODUCERS };

static atomic_long x_bad; /* blocks found changed */

static void *x_producer(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg, rng = 99 + id;
    for (uint64_t n = 0; n < X_PER_PRODUCER; n++) {
        size_t s = sizeof(xhead) + mixed_size(&rng) % 20000;
        xhead *h = NULL;
        switch (lcg_next(&rng) % 4) {
        case 0: h = malloc(s); break;
        case 1: h = calloc(1, s); break;
        case 2: REQUIRE(posix_memalign((void **)&h, 256, s) == 0); break;
        default: h = aligned_alloc(64, (s + 63) / 64 * 64); break;
        }
        REQUIRE(h != NULL);
        h->seed = id << 32 | n;
        h->size = s;
        fill(h + 1, s - sizeof *h, h->seed);
        pthread_mutex_lock(&xq.lock);
        while (xq.count == XQ_CAP)
            pthread_cond_wait(&xq.not_full, &xq.lock);
        xq.q[(xq.head + xq.count) % XQ_CAP] = h;
        xq.count++;
        pthread_cond_signal(&xq.not_empty);
        pthread_mutex_unlock(&xq.lock);
    }
    pthread_mutex_lock(&xq.lock);
    xq.producers_left--;
    pthread_cond_broadcast(&xq.not_empty);
    pthread_mutex_unlock(&xq.lock);
    return NULL;
}

static void *x_consumer(void *arg)
{
    long *got = arg;
    for (;;) {
        pthread_mutex_lock(&xq.lock);
        while (xq.count == 0 && xq.producers_left > 0)
            pthread_cond_wait(&xq.not_empty, &xq.lock);
        if (xq.count == 0) {
            pthread_mutex_unlock(&xq.lock);
            return NULL;
        }
        xhead *h = xq.q[xq.head];
        xq.head = (xq.head + 1) % XQ_CAP;
        xq.count--;
        pthread_cond_signal(&xq.not_full);
        pthread_mutex_unlock(&xq.lock);
        if (!intact(h + 1, h->size - sizeof *h, h->seed))
            atomic_fetch_add(&x_bad, 1);
        /* Every fourth block is resized here before it goes. */
        if ((h->seed & 3) == 0) {
            xhead *r = realloc(h, h->size * 2);
            REQUIRE(r != NULL);
            if (!intact(r + 1, r->size - sizeof *r, r->seed))
                atomic_fetch_add(&x_bad, 1);
            h = r;
        }
        free(h);
        (*got)++;
    }
}

static void test_cross_free(void)
{
    needs("posix_memalign");
    needs("aligned_alloc");
    pthread_t p[X_PRODUCERS], c[X_CONSUMERS];
    long got[X_CONSUMERS] = { 0 };
    for (int i = 0; i < X_CONSUMERS; i++)
        REQUIRE(pthread_create(&c[i], NULL, x_consumer, &got[i]) == 0);
    for (int i = 0; i < X_PRODUCERS; i++)
        REQUIRE(pthread_create(&p[i], NULL, x_producer, (void *)(uintptr_t)i) == 0);
    long total = 0;
    for (int i = 0; i < X_PRODUCERS; i++)
        REQUIRE(pthread_join(p[i], NULL) == 0);
    for (int i = 0; i < X_CONSUMERS; i++) {
        REQUIRE(pthread_join(c[i], NULL) == 0);
        total += got[i];
    }
    CHECK_EQ(total, (long)X_PRODUCERS * X_PER_PRODUCER);
    CHECK_EQ(atomic_load(&x_bad), 0);
    printf("cross_free: %ld blocks made on %d threads, checked and freed (some resized first) on %d others\n", total,
           X_PRODUCERS, X_CONSUMERS);
}

static const check_case cases[] = {
    CHECK_CASE(zero, test_zero),
    CHECK_CASE(huge, test_huge),
    CHECK_CASE(calloc, test_calloc),
    CHECK_CASE(realloc, test_realloc),
    CHECK_CASE(posix_memalign, test_posix_memalign),
    CHECK_CASE(aligned_alloc, test_aligned_alloc),
    CHECK_CASE(memalign, test_memalign),
    CHECK_CASE(valloc, test_valloc),
    CHECK_CASE(pvalloc, test_pvalloc),
    CHECK_CASE(usable_size, test_usable_size),
    CHECK_CASE(libc, test_libc),
    CHECK_CASE(mixed, test_mixed),
    CHECK_CASE(cross_free, test_cross_free),
};

int main(int argc, char **argv)
{
    int r = check_cases(argc, argv, cases, CHECK_NCASES(cases));
    fflush(stdout);
    return r;
}
