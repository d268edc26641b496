/*
 * common.h - small helpers every layer may use: branch hints, alignment
 * arithmetic, overflow-checked size math, and mutex/condvar wrappers that
 * turn "cannot happen" pthread failures into an abort instead of silence.
 * Nothing here allocates or talks to the OS.
 */
#ifndef MP_COMMON_H
#define MP_COMMON_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
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

/* Longest pool name kept (longer names are truncated in reports). */
#define MP_NAME_MAX 48

static inline bool mp__is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* x rounded up to a multiple of a (a power of two); caller checks overflow. */
static inline size_t mp__align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static inline uintptr_t mp__align_up_ptr(uintptr_t x, size_t a) { return (x + a - 1) & ~(uintptr_t)(a - 1); }

/* *out = a + b; false on overflow. */
static inline bool mp__add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* *out = a * b; false on overflow. */
static inline bool mp__mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* Copies a user-supplied name (NULL allowed) into a fixed buffer. A name
 * too long is cut before the UTF-8 character the cut would split (at most
 * 3 bytes back: no character has more continuation bytes). */
static inline void mp__copy_name(char dst[MP_NAME_MAX], const char *src, const char *fallback)
{
    const char *s = src ? src : fallback;
    size_t n = 0;
    while (n < MP_NAME_MAX - 1 && s[n])
        n++;
    for (size_t back = 0; s[n] && back < 3 && n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80; back++)
        n--;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Mutex and condvar wrappers. A failing lock/unlock means corrupted state
 * (or a destroyed object in use): abort rather than continue unlocked. */
void mp__mutex_init(pthread_mutex_t *m);
void mp__cond_init(pthread_cond_t *c); /* CLOCK_MONOTONIC */
/* Waits on c (m held) until signalled or the absolute CLOCK_MONOTONIC
 * deadline (ns; INT64_MAX = none) passes. Returns 0 or ETIMEDOUT; never
 * EINTR. Callers re-check their condition in a loop. */
int mp__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ns);

static inline void mp__lock(pthread_mutex_t *m)
{
    if (mp_unlikely(pthread_mutex_lock(m) != 0))
        abort();
}

static inline void mp__unlock(pthread_mutex_t *m)
{
    if (mp_unlikely(pthread_mutex_unlock(m) != 0))
        abort();
}

#endif /* MP_COMMON_H */
