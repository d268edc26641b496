/*
 * check.h - the assertions every test program uses. A failed check prints
 * file, line, the expression and both values, and the program exits 1 at the
 * end (CHECK) or at once (REQUIRE). Tests end with `return check_done();`.
 */
#ifndef MP_TEST_CHECK_H
#define MP_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            check_failures++;                                                          \
        }                                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        long long va_ = (long long)(a), vb_ = (long long)(b);                          \
        if (va_ != vb_) {                                                              \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n",       \
                    __FILE__, __LINE__, #a, #b, va_, vb_);                             \
            check_failures++;                                                          \
        }                                                                              \
    } while (0)

#define CHECK_PTR_EQ(a, b)                                                             \
    do {                                                                               \
        const void *pa_ = (a), *pb_ = (b);                                             \
        if (pa_ != pb_) {                                                              \
            fprintf(stderr, "%s:%d: CHECK_PTR_EQ failed: %s == %s (%p vs %p)\n",       \
                    __FILE__, __LINE__, #a, #b, pa_, pb_);                             \
            check_failures++;                                                          \
        }                                                                              \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                             \
    do {                                                                               \
        const char *sa_ = (a), *sb_ = (b);                                             \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                   \
            fprintf(stderr, "%s:%d: CHECK_STR_EQ failed: %s == %s (\"%s\" vs \"%s\")\n", \
                    __FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)"); \
            check_failures++;                                                          \
        }                                                                              \
    } while (0)

#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* A 64-bit mixer (MurmurHash3's finaliser): stress tests derive each
 * object's check word from what they wrote into it. */
static inline uint64_t check_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* CHECK_ASAN, CHECK_TSAN: 1 in a program built with that sanitizer. gcc
 * defines __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__; clang (before 17)
 * answers only __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define CHECK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_ASAN 1
#endif
#endif
#ifndef CHECK_ASAN
#define CHECK_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define CHECK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHECK_TSAN 1
#endif
#endif
#ifndef CHECK_TSAN
#define CHECK_TSAN 0
#endif

/* True under ASan or memcheck: the tool itself stops a write to freed pool
 * memory or past an object before checked mode can see it (tests/tools
 * checks the tools), so the tests of those checked-mode reports skip. */
static inline int check_tool_attached(void)
{
#if CHECK_ASAN
    return 1;
#else
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload_memcheck");
#endif
}

static inline int check_done(void)
{
    if (check_failures)
        fprintf(stderr, "%d check(s) failed\n", check_failures);
    return check_failures ? 1 : 0;
}

#endif
