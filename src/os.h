/*
 * os.h - layer 1 (os): the only code that talks to the operating system.
 *
 * Contract for the layers above:
 *   - mp__os_reserve(size, align) returns `size` bytes of read-write address
 *     space aligned to `align` (a power of two, >= page size), zero-filled,
 *     or NULL with errno ENOMEM. Pages are committed lazily by the kernel.
 *   - mp__os_map(size, align) is the same without being a fault point, for
 *     a caller that is one itself (mp__meta_alloc: one point per call,
 *     whether or not it maps).
 *   - mp__os_release(p, size) gives a reservation (or a page-aligned tail of
 *     one) back. It never fails observably.
 *   - mp__os_reserve_space(size) returns `size` bytes of address space
 *     (page-aligned) that may not be touched yet: no access, no memory and
 *     no commit charge; mp__os_commit(p, size) makes a page-aligned part of
 *     it read-write (zero-filled), false with errno ENOMEM. For a table
 *     whose base must never move while it grows (objpool_handle.c).
 *   - mp__os_resize(p, old_size, new_size) makes the reservation p of
 *     old_size bytes new_size bytes long (both page multiples) in place:
 *     shrinking always works; growing only where the address space after
 *     it is free (false with errno ENOMEM, p unchanged; always false on a
 *     system without mremap). Growing is a fault point.
 *   - mp__os_reserve_space_aligned(size, align) is mp__os_reserve_space at
 *     an `align` boundary (a power of two).
 *   - mp__os_move(p, old_size, new_size, to) moves the pages of the
 *     reservation p onto `to`, a reservation of new_size bytes from
 *     mp__os_reserve_space_aligned, which it replaces; the contents are
 *     kept up to the smaller size, nothing is copied, and p is gone. false
 *     (errno ENOMEM) with both unchanged when the system cannot.
 *   - mp__os_decommit(p, size) tells the OS the pages' contents are no longer
 *     needed; they stay mapped and read back as zero. p and size are
 *     page-aligned.
 *   - mp__os_now_ns() is CLOCK_MONOTONIC in nanoseconds.
 *   - mp__os_dup_high(fd) is a new descriptor of fd's file, closed on
 *     exec, numbered from 100 up (out of the way of a program that expects
 *     the lowest free numbers); -1 when there is none.
 *   - mp__os_copy_readable(dst, src, n) copies the first bytes of [src,
 *     src+n) into dst, stopping before the first page that cannot be read
 *     (unmapped, or no read access), without a fault. It returns the bytes
 *     copied, or SIZE_MAX when it cannot tell what is readable past src's
 *     own page (the system refuses the call it needs). For memory whose
 *     extent is unknown: a block another allocator made.
 *
 * Fault injection: mp__os_fail_after(n) makes the n-th following fault
 * point fail (n = 1: the next one); 0 disables it. Every call to
 * mp__os_reserve, mp__os_reserve_space, mp__os_commit and mp__meta_alloc
 * (meta.h) is a fault point, and
 * mp__os_fault_point() is the test they make: true when this call must
 * fail with ENOMEM. Every point after the failing one succeeds again.
 * Tests use it to walk every out-of-memory path. mp__os_calls() counts the
 * points passed so far.
 */
#ifndef MP_OS_H
#define MP_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

size_t mp__os_page_size(void);
void *mp__os_reserve(size_t size, size_t align);
void *mp__os_map(size_t size, size_t align);
void mp__os_release(void *p, size_t size);
void *mp__os_reserve_space(size_t size);
bool mp__os_commit(void *p, size_t size);
bool mp__os_resize(void *p, size_t old_size, size_t new_size);
void *mp__os_reserve_space_aligned(size_t size, size_t align);
bool mp__os_move(void *p, size_t old_size, size_t new_size, void *to);
void mp__os_decommit(void *p, size_t size);
int64_t mp__os_now_ns(void);
size_t mp__os_copy_readable(void *dst, const void *src, size_t n);
int mp__os_dup_high(int fd);

/* Adds a relative timeout to now; MP_WAIT_FOREVER and overflow give INT64_MAX. */
int64_t mp__os_deadline(int64_t timeout_ns);

bool mp__os_fault_point(void);
void mp__os_fail_after(unsigned long n);
unsigned long mp__os_calls(void);

#endif /* MP_OS_H */
