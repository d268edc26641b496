/*
 * os.c - layer 1: every system call mpool makes lives here (see os.h for
 * the contract). Linux/POSIX: mmap/munmap/madvise, sysconf, clock_gettime.
 *
 * Aligned reservation maps size + align bytes and unmaps the unaligned head
 * and tail, so the result is exactly `size` bytes at an `align` boundary.
 *
 * Reading without faulting (mp__os_copy_readable) asks the kernel to copy
 * from our own address space with process_vm_readv, which stops at a page
 * it cannot read instead of raising SIGSEGV. It copies whole iovec elements
 * or none, so the source goes in page by page.
 */
#include "common.h"
#include "os.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static atomic_ulong fail_countdown; /* 0: no fault injection */
static atomic_ulong call_count;

void mp__os_fail_after(unsigned long n) { atomic_store(&fail_countdown, n); }

unsigned long mp__os_calls(void) { return atomic_load(&call_count); }

/* True when fault injection says this call must fail. */
bool mp__os_fault_point(void)
{
    atomic_fetch_add_explicit(&call_count, 1, memory_order_relaxed);
    unsigned long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (n != 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
            return n == 1;
    }
    return false;
}

size_t mp__os_page_size(void)
{
    /* Threads may race to fill it in; they all store the same value. */
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

void *mp__os_reserve(size_t size, size_t align)
{
    if (mp__os_fault_point()) {
        errno = ENOMEM;
        return NULL;
    }
    return mp__os_map(size, align);
}

void *mp__os_map(size_t size, size_t align)
{
    size_t page = mp__os_page_size();
    if (align < page)
        align = page;
    size_t span;
    if (size == 0 || !mp__add_ok(size, align, &span)) {
        errno = ENOMEM;
        return NULL;
    }
    /* Without MAP_NORESERVE the kernel's overcommit policy answers as it
     * does for malloc: a request it cannot back fails here, with ENOMEM,
     * rather than later, when the memory is touched. */
    void *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t start = (uintptr_t)raw;
    uintptr_t aligned = mp__align_up_ptr(start, align);
    size_t head = aligned - start;
    size_t tail = span - head - size;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((void *)(aligned + size), tail);
    return (void *)aligned;
}

void mp__os_release(void *p, size_t size)
{
    if (p && size)
        munmap(p, size);
}

void *mp__os_reserve_space(size_t size)
{
    if (mp__os_fault_point()) {
        errno = ENOMEM;
        return NULL;
    }
    /* PROT_NONE: the kernel charges nothing until a part is made writable. */
    void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

bool mp__os_commit(void *p, size_t size)
{
    if (mp__os_fault_point() || mprotect(p, size, PROT_READ | PROT_WRITE) != 0) {
        errno = ENOMEM;
        return false;
    }
    return true;
}

bool mp__os_resize(void *p, size_t old_size, size_t new_size)
{
    if (new_size <= old_size) {
        mp__os_release((char *)p + new_size, old_size - new_size);
        return true;
    }
#ifdef MREMAP_MAYMOVE
    /* Without MREMAP_MAYMOVE: only where the address space after p is free. */
    if (!mp__os_fault_point() && mremap(p, old_size, new_size, 0) != MAP_FAILED)
        return true;
#endif
    errno = ENOMEM;
    return false;
}

void *mp__os_reserve_space_aligned(size_t size, size_t align)
{
    size_t page = mp__os_page_size(), span;
    if (align < page)
        align = page;
    if (!mp__add_ok(size, align, &span)) {
        errno = ENOMEM;
        return NULL;
    }
    char *raw = mp__os_reserve_space(span);
    if (!raw)
        return NULL;
    char *aligned = (char *)mp__align_up_ptr((uintptr_t)raw, align);
    mp__os_release(raw, (size_t)(aligned - raw));
    mp__os_release(aligned + size, span - (size_t)(aligned - raw) - size);
    return aligned;
}

bool mp__os_move(void *p, size_t old_size, size_t new_size, void *to)
{
#ifdef MREMAP_FIXED
    /* MREMAP_FIXED replaces the reservation at `to` with p's pages. */
    if (mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED)
        return true;
#else
    (void)p, (void)old_size, (void)new_size, (void)to;
#endif
    errno = ENOMEM;
    return false;
}

void mp__os_decommit(void *p, size_t size)
{
    if (p && size)
        madvise(p, size, MADV_DONTNEED);
}

int64_t mp__os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mp__os_deadline(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return INT64_MAX;
    int64_t now = mp__os_now_ns();
    return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

/* Pages per process_vm_readv call (IOV_MAX on Linux is 1024). */
#define COPY_BATCH 64

size_t mp__os_copy_readable(void *dst, const void *src, size_t n)
{
    size_t page = mp__os_page_size();
    uintptr_t s = (uintptr_t)src;
    size_t first = page - (s & (page - 1)); /* src's own page is readable: src points into it */
    if (n <= first) {
        memcpy(dst, src, n);
        return n;
    }
    size_t done = 0;
    pid_t self = getpid();
    while (done < n) {
        struct iovec remote[COPY_BATCH];
        size_t k = 0, want = 0;
        while (k < COPY_BATCH && done + want < n) {
            uintptr_t at = s + done + want;
            size_t len = page - (at & (page - 1));
            if (len > n - done - want)
                len = n - done - want;
            remote[k++] = (struct iovec){ (void *)at, len };
            want += len;
        }
        struct iovec local = { (char *)dst + done, want };
        ssize_t got = process_vm_readv(self, &local, 1, remote, k, 0);
        if (got < 0 && errno != EFAULT)
            return done == 0 ? SIZE_MAX : done; /* ENOSYS, EPERM: not allowed here */
        if (got <= 0)
            return done;
        done += (size_t)got;
        if ((size_t)got < want)
            return done;
    }
    return done;
}

int mp__os_dup_high(int fd)
{
    return fcntl(fd, F_DUPFD_CLOEXEC, 100);
}
