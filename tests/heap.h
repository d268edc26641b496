/*
 * heap.h - what the heap tests share: counters read with a REQUIRE, the
 * per-allocation fill pattern that tells whose bytes a block holds, the
 * alignment malloc would give, and the bounds the contract puts on
 * mp_usable_size and on the counters.
 *
 * The contract's figures, as these tests read them:
 *   - alignment "as malloc": at least 8, and alignof(max_align_t) for a
 *     request of at least that many bytes;
 *   - waste: mp_usable_size(p) >= size always; for 256 B <= size <= 64 MiB
 *     (the size classes) usable <= size + size/8 + 16; below 256 B a class
 *     may round up more, but never past 2 * size + 16;
 *   - bytes_in_use lies between the sum of the sizes asked for and the sum
 *     of the usable sizes of the live allocations (the contract may count
 *     either); objects_in_use, allocs and frees are exact, and a realloc of
 *     a live block counts one alloc and one free whether or not it moved
 *     (C's realloc frees the old object and hands out a new one);
 *   - after everything is freed and mp_heap_trim, bytes_mapped is "0 or
 *     near 0": at most HEAP_TRIM_SLACK.
 */
#ifndef MP_TEST_HEAP_H
#define MP_TEST_HEAP_H

#include "check.h"

#include <mpool.h>

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* What a trimmed, empty heap may still hold from the OS. */
#define HEAP_TRIM_SLACK (64 * KiB)
/* The largest size the waste bound applies to ("at least 64 MiB"). */
#define HEAP_CLASS_MAX (64 * MiB)

static inline mp_stats heap_stats(const mp_heap *h)
{
    mp_stats s;
    REQUIRE(mp_heap_stats(h, &s) == 0);
    return s;
}

/* The alignment malloc gives a request of `size` bytes. */
static inline size_t heap_malloc_align(size_t size)
{
    return size >= alignof(max_align_t) ? alignof(max_align_t) : 8;
}

static inline bool heap_aligned(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

/* The most mp_usable_size may report for a request of `size` bytes, or
 * SIZE_MAX where the contract says nothing (above the classes). */
static inline size_t heap_usable_max(size_t size)
{
    if (size > HEAP_CLASS_MAX)
        return SIZE_MAX;
    if (size >= 256)
        return size + size / 8 + 16;
    return 2 * size + 16;
}

/* The same for an allocation aligned to `align`: a block aligned past
 * malloc's alignment may take the power of two that holds both the size
 * and the alignment (a size class aligned to its size). */
static inline size_t heap_usable_max_aligned(size_t size, size_t align)
{
    size_t m = size > align ? size : align, pow2 = 1;
    while (pow2 < m)
        pow2 <<= 1;
    size_t by_size = heap_usable_max(size);
    return align > 16 && pow2 <= HEAP_CLASS_MAX && pow2 > by_size ? pow2 : by_size;
}

/* The most a live block of `size` bytes at p adds to bytes_in_use (its
 * size class): its usable size, unless mp_usable_size reports the request
 * itself (under Valgrind or ASan, and in checked mode, what lies past the
 * request is not the caller's), when only the class bound is known. */
static inline size_t heap_held_max(const void *p, size_t size, size_t align)
{
    size_t u = mp_usable_size(p);
    if (u != size)
        return u;
    size_t bound = heap_usable_max_aligned(size, align);
    return bound == SIZE_MAX ? size + size / 8 + 4096 : bound;
}

/* Byte i of an allocation filled with `seed`: different seeds give
 * different bytes almost everywhere, so a block that holds another
 * block's bytes, or a shifted copy of its own, is seen. */
static inline uint64_t heap_pattern_word(uint64_t seed, size_t word)
{
    uint64_t x = (seed ^ (word * 0xd6e8feb86659fd93ull)) * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 32);
}

static inline unsigned char heap_pattern_byte(uint64_t seed, size_t i)
{
    return (unsigned char)(heap_pattern_word(seed, i >> 3) >> ((i & 7) * 8));
}

static inline void heap_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = heap_pattern_word(seed, i >> 3);
        memcpy(b + i, &x, 8);
    }
    for (; i < n; i++)
        b[i] = heap_pattern_byte(seed, i);
}

/* Checks bytes [from, to) of a block filled with seed; returns the first
 * wrong offset, or SIZE_MAX. */
static inline size_t heap_check_range(const void *p, size_t from, size_t to, uint64_t seed)
{
    const unsigned char *b = p;
    size_t i = from;
    for (; i < to && (i & 7); i++)
        if (b[i] != heap_pattern_byte(seed, i))
            return i;
    for (; i + 8 <= to; i += 8) {
        uint64_t x = heap_pattern_word(seed, i >> 3);
        if (memcmp(b + i, &x, 8) != 0)
            break; /* the byte loop below finds which */
    }
    for (; i < to; i++)
        if (b[i] != heap_pattern_byte(seed, i))
            return i;
    return SIZE_MAX;
}

/* The whole block when it is small, else its first and last 4 KiB and one
 * byte in every 4093 between (multi-MiB blocks, thousands of times). */
static inline size_t heap_check(const void *p, size_t n, uint64_t seed)
{
    if (n <= 16 * KiB)
        return heap_check_range(p, 0, n, seed);
    size_t bad = heap_check_range(p, 0, 4 * KiB, seed);
    if (bad == SIZE_MAX)
        bad = heap_check_range(p, n - 4 * KiB, n, seed);
    for (size_t i = 4 * KiB; bad == SIZE_MAX && i < n - 4 * KiB; i += 4093)
        bad = heap_check_range(p, i, i + 1, seed);
    return bad;
}

static inline bool heap_all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* One live allocation's promises at once: not NULL, aligned, usable size
 * within bounds. Reports the line of the caller. */
static inline void heap_check_block(const void *p, size_t size, size_t align, int line)
{
    if (p == NULL) {
        fprintf(stderr, "line %d: allocation of %zu bytes returned NULL\n", line, size);
        check_failures++;
        return;
    }
    if (!heap_aligned(p, align)) {
        fprintf(stderr, "line %d: %p (%zu bytes) is not aligned to %zu\n", line, p, size, align);
        check_failures++;
    }
    size_t u = mp_usable_size(p);
    if (u < size || u > heap_usable_max_aligned(size, align)) {
        fprintf(stderr, "line %d: mp_usable_size %zu for %zu bytes; want %zu..%zu\n", line, u, size, size,
                heap_usable_max_aligned(size, align));
        check_failures++;
    }
}
#define HEAP_CHECK_BLOCK(p, size, align) heap_check_block((p), (size), (align), __LINE__)

/* The counters of a heap whose live allocations are `count` blocks whose
 * requested sizes sum to `req` and usable sizes to `usable`, after
 * `allocs` allocations and `frees` frees. */
static inline void heap_check_counts(const mp_heap *h, size_t count, size_t req, size_t usable, size_t allocs,
                                     size_t frees, int line)
{
    mp_stats s = heap_stats(h);
    if (s.objects_in_use != count || s.allocs != allocs || s.frees != frees || s.bytes_in_use < req ||
        s.bytes_in_use > usable || s.bytes_peak < s.bytes_in_use || s.bytes_mapped < s.bytes_in_use) {
        fprintf(stderr,
                "line %d: stats: objects_in_use %zu allocs %zu frees %zu bytes_in_use %zu peak %zu mapped %zu; "
                "want %zu, %zu, %zu, in_use in %zu..%zu <= peak, mapped\n",
                line, s.objects_in_use, s.allocs, s.frees, s.bytes_in_use, s.bytes_peak, s.bytes_mapped, count,
                allocs, frees, req, usable);
        check_failures++;
    }
}
#define HEAP_CHECK_COUNTS(h, count, req, usable, allocs, frees)                                        \
    heap_check_counts((h), (count), (req), (usable), (allocs), (frees), __LINE__)

/* Empty: nothing live, as many frees as allocs. */
static inline void heap_check_empty(const mp_heap *h, int line)
{
    mp_stats s = heap_stats(h);
    if (s.objects_in_use != 0 || s.bytes_in_use != 0 || s.allocs != s.frees) {
        fprintf(stderr, "line %d: not empty: objects_in_use %zu bytes_in_use %zu allocs %zu frees %zu\n", line,
                s.objects_in_use, s.bytes_in_use, s.allocs, s.frees);
        check_failures++;
    }
}
#define HEAP_CHECK_EMPTY(h) heap_check_empty((h), __LINE__)

/* Trimmed and empty: nothing held from the OS, or near nothing. */
static inline void heap_check_trimmed(mp_heap *h, int line)
{
    mp_heap_trim(h);
    mp_stats s = heap_stats(h);
    if (s.bytes_mapped > HEAP_TRIM_SLACK) {
        fprintf(stderr, "line %d: bytes_mapped %zu after freeing everything and mp_heap_trim; want <= %zu\n",
                line, s.bytes_mapped, HEAP_TRIM_SLACK);
        check_failures++;
    }
}
#define HEAP_CHECK_TRIMMED(h) heap_check_trimmed((h), __LINE__)

/* A recording error handler: the number of calls since the last
 * heap_rec_reset, and the last message and pointer. */
typedef struct heap_record {
    int calls;
    const void *ptr;
    char msg[512];
} heap_record;

static heap_record heap_rec;

static inline void heap_recording_handler(const char *msg, const void *ptr, void *arg)
{
    (void)arg;
    heap_rec.calls++;
    heap_rec.ptr = ptr;
    snprintf(heap_rec.msg, sizeof heap_rec.msg, "%s", msg ? msg : "(null)");
}

static inline void heap_rec_reset(void) { memset(&heap_rec, 0, sizeof heap_rec); }

#endif /* MP_TEST_HEAP_H */
