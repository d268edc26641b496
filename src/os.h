/*
 * os.h - the os layer: the only code that talks to the operating system.
 *
 * Contract for the layers above:
 *   - mp__os_reserve(size, align) returns `size` bytes of read-write address
 *     space aligned to `align` (a power of two, >= page size), zero-filled,
 *     or NULL with errno ENOMEM. Pages are committed lazily by the kernel.
 *   - mp__os_release(p, size) gives a reservation (or a page-aligned tail of
 *     one) back. It never fails observably.
 *   - mp__os_decommit(p, size) tells the OS the pages' contents are no longer
 *     needed; they stay mapped and read back as zero. p and size are
 *     page-aligned.
 *   - mp__os_now_ns() is CLOCK_MONOTONIC in nanoseconds.
 *
 * Fault injection: mp__os_fail_after(n) makes the n-th following call to
 * mp__os_reserve or mp__meta_alloc fail (n = 1: the next one); 0 disables
 * it. Every call after the failing one succeeds again. Tests use it to walk
 * every out-of-memory path. mp__os_calls() counts the calls made so far.
 */
#ifndef MP_OS_H
#define MP_OS_H

#include <stddef.h>
#include <stdint.h>

size_t mp__os_page_size(void);
void *mp__os_reserve(size_t size, size_t align);
void mp__os_release(void *p, size_t size);
void mp__os_decommit(void *p, size_t size);
int64_t mp__os_now_ns(void);

/* Adds a relative timeout to now; MP_WAIT_FOREVER and overflow give INT64_MAX. */
int64_t mp__os_deadline(int64_t timeout_ns);

/* Library metadata (pool structs, caches, magazines): calloc/free, counted
 * and subject to fault injection like mp__os_reserve, so every
 * out-of-memory path can be walked. mp__meta_alloc returns zeroed memory. */
void *mp__meta_alloc(size_t size);
void mp__meta_free(void *p);

void mp__os_fail_after(unsigned long n);
unsigned long mp__os_calls(void);

#endif /* MP_OS_H */
