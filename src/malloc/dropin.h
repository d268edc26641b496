/*
 * dropin.h - the malloc drop-in: malloc and its family over the default
 * heap (mp_heap_default), as libmpool-malloc.so (LD_PRELOAD, or linked) and
 * as the static library mpool::malloc. Above the library: it uses the
 * public API and a few internals (the chunk registry, the heap's thread
 * caches, the leak walk), and the library never calls it, except through
 * the weak hook of ptr.h. Its files:
 *
 *   malloc.c   the exported functions: glibc's argument rules and errno,
 *              then the heap
 *   boot.c     start-up: the environment, the process's first call and
 *              each thread's, the bootstrap allocator for calls made while
 *              those are under way, trimming (MPOOL_TRIM_MS)
 *   foreign.c  pointers mpool never handed out (free, realloc, usable size)
 *   exit.c     MPOOL_SHOW_STATS and checked mode's leak report, at exit
 *
 * The fast path. A small request (1 .. MP_HEAP_SMALL_MAX bytes) from a
 * thread that is set up goes straight to mp_heap_alloc: one thread-local
 * countdown (mp__malloc_left) says both "set up" and "not yet time to look
 * at the clock". Everything else takes mp__malloc_enter first. The calls
 * into the heap are tail calls, so the heap records the program's return
 * address as the allocation site (checked mode), not ours.
 *
 * Recursion. mpool never calls malloc, but the C library may, inside a
 * call mpool makes while a thread or the process starts: pthread_once,
 * pthread_atfork, pthread_setspecific (its second-level key table). While
 * a thread is in such a start (mp__malloc_busy), its requests come from the
 * bootstrap allocator: a static area handed out once, never reused.
 */
#ifndef MP_MALLOC_DROPIN_H
#define MP_MALLOC_DROPIN_H

#include "common.h"
#include "heap.h"

#define MP_MALLOC_IE __attribute__((tls_model("initial-exec")))

/* The default heap, once the process's first call made it (NULL before). */
extern mp_heap *mp__malloc_heap;

/* Calls this thread may make before it takes mp__malloc_enter again: 0
 * until its first call set it up. */
extern __thread uint32_t mp__malloc_left MP_MALLOC_IE;

/* A small request on a set-up thread, counted down: go straight to the heap. */
static inline bool mp__malloc_quick(size_t n)
{
    uint32_t left = mp__malloc_left;
    if (mp_likely(n - 1 < MP_HEAP_SMALL_MAX) && mp_likely(left > 1)) {
        mp__malloc_left = left - 1;
        return true;
    }
    return false;
}

/* Everything a request of n bytes aligned to align (0: malloc's) needs
 * before it goes to the heap: a size no object can have (ENOMEM), the
 * process's and the thread's start, the countdown's end (trimming).
 * Returns MP_MALLOC_GO: go to mp__malloc_heap; anything else is the answer
 * (NULL with errno set, or a bootstrap block while the thread starts).
 * The answer is returned, not stored through a pointer: a caller whose
 * local has its address taken cannot make the tail call into the heap. */
#define MP_MALLOC_GO ((void *)1)
void *mp__malloc_enter(size_t n, size_t align);

/* MP_MALLOC_GO for a quick request, else mp__malloc_enter's answer. */
static inline void *mp__malloc_begin(size_t n, size_t align)
{
    return mp__malloc_quick(n) ? MP_MALLOC_GO : mp__malloc_enter(n, align);
}

/* The bootstrap allocator (boot.c): blocks of a static area, zeroed, never
 * reused; NULL with ENOMEM once it is used up or for an alignment past a
 * page. */
void *mp__malloc_boot_alloc(size_t n, size_t align);
/* True when p is in the bootstrap area; *size is then its block's size. */
bool mp__malloc_is_boot(const void *p, size_t *size);

/* Is p (not NULL) in a live chunk of mpool's? Lock-free, reads nothing
 * that may be unmapped. */
static inline bool mp__malloc_ours(const void *p)
{
    return mp__chunk_reg_entry((uintptr_t)p & ~(uintptr_t)MP_CHUNK_MASK) != NULL;
}

/* foreign.c: realloc and malloc_usable_size of a pointer mpool never
 * handed out (free's is mp__free_foreign, ptr.h). */
void *mp__malloc_realloc_foreign(void *p, size_t n, const void *site);
size_t mp__malloc_usable_foreign(const void *p);
/* Frees mpool never handed out, so far. */
size_t mp__malloc_foreign_count(void);

/* The environment, read once by the process's first call (boot.c). */
typedef struct mp__malloc_env {
    bool show_stats; /* MPOOL_SHOW_STATS=1 */
    int64_t trim_ns; /* MPOOL_TRIM_MS, in ns; -1: unset */
    int report_fd;   /* with either report at exit: the standard error the
                        process started with, kept (many programs close
                        stderr at exit); -1: none */
} mp__malloc_env;
extern mp__malloc_env mp__malloc_env_read;

/* Bytes the bootstrap allocator has handed out. */
size_t mp__malloc_boot_used(void);

/* What exit.c prints at exit, called by boot.c's destructor. */
void mp__malloc_at_exit(void);

#endif /* MP_MALLOC_DROPIN_H */
