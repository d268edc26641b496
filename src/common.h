/*
 * common.h - layer 0 (services): small helpers every layer may use: branch
 * hints, alignment arithmetic, overflow-checked size math.
 * Nothing here allocates, locks or talks to the OS.
 */
#ifndef MP_COMMON_H
#define MP_COMMON_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpool.h"

#define mp_likely(x) __builtin_expect(!!(x), 1)
#define mp_unlikely(x) __builtin_expect(!!(x), 0)
#define MP_NOINLINE __attribute__((noinline))
#define MP_COLD __attribute__((cold, noinline))

static inline bool mp__is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* x rounded up to a multiple of a (a power of two); caller checks overflow. */
static inline size_t mp__align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static inline uintptr_t mp__align_up_ptr(uintptr_t x, size_t a) { return (x + a - 1) & ~(uintptr_t)(a - 1); }

/* *out = a + b; false on overflow. */
static inline bool mp__add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* *out = a * b; false on overflow. */
static inline bool mp__mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }


#endif /* MP_COMMON_H */
