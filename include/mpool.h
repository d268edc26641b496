/*
 * mpool.h - memory pools for C11 programs that allocate hard.
 *
 * The one public header of mpool. Every type is opaque except the option and
 * statistics structs, which are zero-initialised by default:
 *
 *     mp_objpool_opts o = { .obj_size = 64 };
 *     mp_objpool *p = mp_objpool_create(NULL, &o);
 *
 * Error convention (the same everywhere):
 *   - functions returning a pointer return NULL and set errno: ENOMEM (no
 *     memory, or a cap reached), EINVAL (a bad argument), ETIMEDOUT (a wait of
 *     positive length ran out);
 *   - functions returning int return 0 or an errno value;
 *   - misuse that would corrupt memory (a foreign pointer, a pointer given to
 *     the wrong pool, a destroyed pool) goes to the error handler, see
 *     mp_set_error_handler().
 * The library prints nothing except through the error handler and the report
 * functions that take a FILE *.
 *
 * Timeouts are relative nanoseconds: 0 = do not wait, MP_WAIT_FOREVER = no
 * limit; any other negative value is EINVAL. A wait is measured on
 * CLOCK_MONOTONIC and is never ended by a signal.
 *
 * Full documentation: docs/ in the source tree.
 */
#ifndef MPOOL_H
#define MPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MPOOL_SHARED_BUILD) && defined(__GNUC__)
#define MP_API __attribute__((visibility("default")))
#else
#define MP_API
#endif

#if defined(__GNUC__)
#define MP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MP_PRINTF(f, a)
#endif

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 1
#define MP_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library actually linked. */
MP_API const char *mp_version(void);

/*
 * The error handler receives every detected misuse: a message naming the
 * check, the pool and the pointer, and the pointer itself. The default
 * prints the message as one line to stderr and calls abort(); a leak report
 * (checked mode) is printed and the program goes on. A handler may
 * return; the pool then stays consistent and the offending call does nothing,
 * except after a detected overwrite (past the end, or after a put or free),
 * where the call goes ahead.
 * fn NULL restores the default. The handler is process-wide.
 */
typedef void mp_error_fn(const char *msg, const void *ptr, void *arg);
MP_API void mp_set_error_handler(mp_error_fn *fn, void *arg);

#define MP_WAIT_FOREVER ((int64_t)-1)

/* Flags, for the flags field of any options struct. */
#define MP_SINGLE_THREAD 0x1u /* no locks, no thread caches: one thread at a time */
#define MP_THREADSAFE    0x2u /* arenas: allow concurrent use (single-threaded by default) */
#define MP_ZERO          0x4u /* objects and allocations are handed out zeroed */
#define MP_RELEASE_ON_RESET 0x8u /* arenas: mp_arena_reset gives every block back instead of keeping some */
/* Leak policy in checked mode (docs/debugging.md): what destroying an
 * object pool or a reserve that still has objects out does (an object pool
 * that its parent arena destroys reports nothing). Default: report. */
#define MP_LEAK_ABORT    0x100u /* report through the error handler, then abort() */
#define MP_LEAK_IGNORE   0x200u /* say nothing */

/* ------------------------------------------------------------------ arenas */

/*
 * Arenas: variable-size allocations bumped out of blocks and freed all at
 * once by reset or destroy. An arena is also the parent of other pools:
 * destroying or resetting it destroys its children first (newest first),
 * then runs its cleanups (newest first), then frees its memory.
 */
typedef struct mp_arena mp_arena;
typedef struct mp_arena_opts {
    const char *name;  /* shown in reports; copied */
    size_t block_size; /* 0: a sensible default */
    size_t limit;      /* most bytes held from the OS by this arena and its child arenas; 0 = none */
    unsigned flags;    /* MP_THREADSAFE, MP_ZERO, MP_RELEASE_ON_RESET (MP_SINGLE_THREAD: the default) */
} mp_arena_opts;

MP_API mp_arena *mp_arena_create(mp_arena *parent, const mp_arena_opts *opts);
MP_API void mp_arena_destroy(mp_arena *a);
MP_API void mp_arena_reset(mp_arena *a); /* destroy children, run cleanups, free all; keep the arena */
MP_API void *mp_alloc(mp_arena *a, size_t size); /* aligned to alignof(max_align_t) */
MP_API void *mp_alloc_unaligned(mp_arena *a, size_t size);
MP_API void *mp_alloc_aligned(mp_arena *a, size_t size, size_t align);
MP_API void *mp_calloc(mp_arena *a, size_t n, size_t size);
MP_API char *mp_strdup(mp_arena *a, const char *s);
MP_API char *mp_printf(mp_arena *a, const char *fmt, ...) MP_PRINTF(2, 3);
/* large: back to the system now; the newest small one: rolled back; others: at reset */
MP_API void mp_arena_free(mp_arena *a, void *p);
MP_API int mp_cleanup_push(mp_arena *a, void (*fn)(void *), void *arg);
/* Removes the newest cleanup registered with this fn and arg without running
 * it. Returns 0, ENOENT when there is none, or EINVAL for a bad arena. */
MP_API int mp_cleanup_remove(mp_arena *a, void (*fn)(void *), void *arg);
/* Moves a pool to another parent (talloc_steal); new_parent NULL makes it a
 * root. Returns 0, EINVAL for a NULL pool or a move that would make an arena
 * its own descendant, ENOMEM when the moved arena's memory would cross the
 * limit of its new parent or an ancestor (nothing moves then). */
MP_API int mp_arena_move(mp_arena *a, mp_arena *new_parent);

/* ------------------------------------------------------------ object pools */

/* Object pools: fixed-size objects, thread-safe with per-thread caches. */
typedef struct mp_objpool mp_objpool;
typedef struct mp_objpool_opts {
    const char *name;       /* shown in reports and error messages; copied */
    size_t obj_size, align; /* align 0: as malloc would align an object of obj_size (>= 8, <= alignof(max_align_t)) */
    size_t initial;         /* objects made at create */
    size_t max_free;        /* free objects kept; memory past it goes back; 0 = keep all */
    size_t max_live;        /* objects out at once; at the cap get fails with ENOMEM, get_wait waits; 0 = no cap */
    unsigned flags;         /* MP_SINGLE_THREAD, MP_ZERO, MP_LEAK_ABORT, MP_LEAK_IGNORE */
    void (*ctor)(void *obj, void *arg); /* once, when an object is first made */
    void (*dtor)(void *obj, void *arg); /* once, when its memory goes back (at the latest at destroy) */
    void *arg;
} mp_objpool_opts;

MP_API mp_objpool *mp_objpool_create(mp_arena *parent, const mp_objpool_opts *opts);
MP_API void mp_objpool_destroy(mp_objpool *p);
MP_API void *mp_objpool_get(mp_objpool *p);
MP_API void *mp_objpool_get_wait(mp_objpool *p, int64_t timeout_ns);
MP_API void mp_objpool_put(mp_objpool *p, void *obj);
/* how many it got: n unless a cap or memory ran out */
MP_API size_t mp_objpool_get_bulk(mp_objpool *p, void **objs, size_t n);
MP_API void mp_objpool_put_bulk(mp_objpool *p, void *const *objs, size_t n);
MP_API void mp_objpool_trim(mp_objpool *p); /* give cached free memory back to the OS */
MP_API int mp_objpool_move(mp_objpool *p, mp_arena *new_parent); /* as mp_arena_move */
/* Calls visit(obj, arg) for exactly the objects currently handed out (not
 * the free ones), in any mode; returns how many. The objects are gathered
 * under the pool's lock and visited after it is dropped, so visit may use
 * the pool. Other threads must not get or put on this pool during the call:
 * their thread caches are read without their cooperation (call it from a
 * quiet point, e.g. after joining workers or before shutdown). Returns 0
 * with errno EINVAL for a bad pool, ENOMEM if the list cannot be made. */
MP_API size_t mp_objpool_foreach(mp_objpool *p, void (*visit)(void *obj, void *arg), void *arg);

/* Any object-pool pointer, without its pool. mp_free(NULL) does nothing;
 * mp_usable_size(NULL) is 0. Any other pointer (malloc, arena, stack) is
 * misuse: the error handler, then nothing happens (mp_usable_size: 0). */
MP_API void mp_free(void *p);
MP_API size_t mp_usable_size(const void *p);

/* ---------------------------------------------------------------- reserves */

/*
 * Reserves: the Linux kernel mempool in user space. docs/reserves.md
 *
 * A reserve keeps min_reserved elements back from a source so that
 * allocations still succeed while the source fails. Thread-safe. The source
 * is a user alloc/free pair with its src argument, or, when alloc is NULL,
 * malloc(elem_size)/free. The source is never called with a lock held.
 *
 * create: NULL with EINVAL when opts is NULL, min_reserved is 0, neither a
 *   source nor elem_size is given, only one of alloc and free is, flags has
 *   an unknown bit, or parent is not a live arena; fills
 *   the reserve from the source (NULL with ENOMEM if it cannot, every
 *   element it got given back).
 * alloc: the source first; if it fails, an element from the reserve; if the
 *   reserve is empty, NULL with ENOMEM (timeout 0) or a wait until a free
 *   refills it, retrying the source now and then, until the timeout: NULL
 *   with ETIMEDOUT. A bad timeout (negative, not MP_WAIT_FOREVER): EINVAL.
 * free: NULL does nothing; refills the reserve when it is below
 *   min_reserved (waking one waiter), else goes back to the source.
 * resize: grows (filling from the source; ENOMEM and no change if it
 *   cannot) or shrinks (the surplus goes back); 0 or EINVAL (0 elements).
 * destroy: gives every element held back to the source. Elements still out
 *   belong to the caller (give them to the source directly). Destroying a
 *   reserve while threads wait in mp_reserve_alloc is misuse: the error
 *   handler is called and nothing happens.
 */
typedef struct mp_reserve mp_reserve;
typedef struct mp_reserve_opts {
    const char *name;
    size_t min_reserved; /* elements held back for when the source fails */
    size_t elem_size;    /* default source: the system allocator */
    void *(*alloc)(void *src);
    void (*free)(void *elem, void *src);
    void *src;      /* or a source of your own; elem_size then optional: at most the
                       element's real size (byte counts, checked-mode fill, tools) */
    unsigned flags; /* MP_LEAK_ABORT, MP_LEAK_IGNORE */
} mp_reserve_opts;

MP_API mp_reserve *mp_reserve_create(mp_arena *parent, const mp_reserve_opts *opts);
MP_API void *mp_reserve_alloc(mp_reserve *r, int64_t timeout_ns); /* source, then reserve, then wait */
MP_API void mp_reserve_free(mp_reserve *r, void *elem);           /* refill the reserve first, wake a waiter */
MP_API int mp_reserve_resize(mp_reserve *r, size_t min_reserved);
MP_API void mp_reserve_destroy(mp_reserve *r);
MP_API int mp_reserve_move(mp_reserve *r, mp_arena *new_parent); /* as mp_arena_move */

/* An object pool as a reserve's source:
 *     mp_reserve_opts o = { .min_reserved = 16, .alloc = mp_objpool_source_alloc,
 *                           .free = mp_objpool_source_free, .src = pool };   */
MP_API void *mp_objpool_source_alloc(void *objpool);
MP_API void mp_objpool_source_free(void *elem, void *objpool);

/* -------------------------------------------------------------- statistics */

typedef struct mp_stats {
    size_t bytes_in_use, bytes_peak, bytes_mapped; /* handed out now, most ever, held from the OS */
    size_t objects_in_use, allocs, frees;
    size_t waits, timeouts, failures; /* reserves: failures counts the source's failed allocations */
    /* reserves only (0 elsewhere) */
    size_t reserve_level; /* elements held in the reserve now */
    size_t reserve_min;   /* min_reserved */
    size_t reserve_used;  /* allocations served from the reserve because the source failed */
    /* Bookkeeping memory the pool holds besides bytes_mapped: its own
     * structures, thread caches and magazines, checked-mode records. */
    size_t bytes_meta;
} mp_stats;

MP_API int mp_arena_stats(const mp_arena *a, mp_stats *out); /* includes children */
MP_API int mp_objpool_stats(const mp_objpool *p, mp_stats *out);
MP_API int mp_reserve_stats(const mp_reserve *r, mp_stats *out);
/* The tree under root, one line per pool; root NULL: every tree. */
MP_API void mp_report(FILE *out, const mp_arena *root);
/* The same tree as one line of JSON with every counter (schema in
 * docs/debugging.md): {"mpool":"0.1.0","pools":[{"kind":..,"name":..,
 * "stats":{..},"children":[..]}]} */
MP_API void mp_report_json(FILE *out, const mp_arena *root);

/* ------------------------------------------------------------------- heaps */

/*
 * Heaps: allocations of any size, each freed on its own (the all-purpose
 * pool), thread-safe with per-thread caches. mp_free(p) and
 * mp_usable_size(p) take heap pointers too, from any thread.
 */
typedef struct mp_heap mp_heap;
typedef struct mp_heap_opts {
    const char *name;
    size_t limit;   /* most bytes this heap holds from the OS; 0 = none */
    unsigned flags; /* MP_SINGLE_THREAD, MP_ZERO, MP_LEAK_ABORT, MP_LEAK_IGNORE */
} mp_heap_opts;

MP_API mp_heap *mp_heap_create(mp_arena *parent, const mp_heap_opts *opts); /* opts NULL: defaults */
MP_API void mp_heap_destroy(mp_heap *h); /* frees every allocation still in it, at once */
MP_API void *mp_heap_alloc(mp_heap *h, size_t size); /* aligned as malloc; size 0: a unique pointer */
MP_API void *mp_heap_calloc(mp_heap *h, size_t n, size_t size);
MP_API void *mp_heap_realloc(mp_heap *h, void *p, size_t size); /* p NULL: alloc; in place when the class allows */
MP_API void *mp_heap_alloc_aligned(mp_heap *h, size_t size, size_t align);
MP_API void mp_heap_trim(mp_heap *h); /* give free memory back to the OS */
MP_API int mp_heap_stats(const mp_heap *h, mp_stats *out);
MP_API int mp_heap_move(mp_heap *h, mp_arena *new_parent); /* as mp_arena_move */
/* Calls visit for the live allocations only; returns how many. */
MP_API size_t mp_heap_foreach(mp_heap *h, void (*visit)(void *p, size_t size, void *arg), void *arg);
MP_API mp_heap *mp_heap_default(void); /* the process heap: never destroyed, thread-safe */

#ifdef __cplusplus
}
#endif
#endif /* MPOOL_H */
