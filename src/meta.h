/*
 * meta.h - layer 1: the library's own bookkeeping memory (pool structs,
 * caches, magazines, records, sets, report snapshots).
 *
 * mpool never calls malloc. Its metadata comes from memory it maps itself
 * (meta.c), so that:
 *   - trimming or destroying pools gives that memory back to the OS, not
 *     to a C library heap that keeps it;
 *   - the library can stand in for malloc (libmpool-malloc) without
 *     calling itself;
 *   - a fork() while another thread is inside mpool never leaves the child
 *     waiting on the C library's (or a sanitizer's) allocator lock.
 *
 * Contract:
 *   - mp__meta_alloc(size) returns `size` zeroed bytes aligned to 16, or
 *     NULL with errno ENOMEM. It is a fault-injection point (os.h).
 *   - mp__meta_free(p) gives back a block of mp__meta_alloc's; NULL is
 *     ignored.
 *   - Both are thread-safe and never call malloc.
 *   - mp__meta_mapped() is the bytes the allocator holds from the OS now.
 */
#ifndef MP_META_H
#define MP_META_H

#include <stddef.h>

void *mp__meta_alloc(size_t size);
void mp__meta_free(void *p);
size_t mp__meta_mapped(void);

/* fork(): the allocator's lock is a leaf lock, taken after every other. */
void mp__meta_fork_lock(void);
void mp__meta_fork_unlock(void);

#endif /* MP_META_H */
