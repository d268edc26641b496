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
 * functions that take a FILE *, and, when the environment asks for it with
 * MPOOL_SHOW_STATS=1 (or json), the report of every pool at exit, on stderr.
 *
 * Timeouts are relative nanoseconds: 0 = do not wait, MP_WAIT_FOREVER = no
 * limit; any other negative value is EINVAL. A wait is measured on
 * CLOCK_MONOTONIC and is never ended by a signal.
 *
 * Full documentation: docs/ in the source tree, and the man pages mpool(3)
 * (the reference), mpool_objpools(3), mpool_arenas(3), mpool_heaps(3),
 * mpool_reserves(3), mpool_tuning(7), mpool_debugging(7).
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
#define MP_VERSION_MINOR 2
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

/* Flags, for the flags field of the options structs. Each kind takes its
 * own; a create given any other bit fails with EINVAL:
 *   arenas        MP_SINGLE_THREAD (the default), MP_THREADSAFE, MP_ZERO, MP_RELEASE_ON_RESET
 *   object pools  MP_SINGLE_THREAD, MP_ZERO, MP_HANDLES, MP_LEAK_ABORT, MP_LEAK_IGNORE
 *   heaps         MP_SINGLE_THREAD, MP_ZERO, MP_KEEP_MEMORY, MP_LEAK_ABORT, MP_LEAK_IGNORE
 *   reserves      MP_LEAK_ABORT, MP_LEAK_IGNORE
 * (MP_SINGLE_THREAD with MP_THREADSAFE is EINVAL too.) */
#define MP_SINGLE_THREAD 0x1u /* no locks, no thread caches: one thread at a time */
#define MP_THREADSAFE    0x2u /* arenas: allow concurrent use (single-threaded by default) */
#define MP_ZERO          0x4u /* objects and allocations are handed out zeroed */
#define MP_RELEASE_ON_RESET 0x8u /* arenas: mp_arena_reset gives every block back instead of keeping some */
/* Leak policy in checked mode (docs/debugging.md): what destroying an
 * object pool or a reserve that still has objects out does (an object pool
 * that its parent arena destroys reports nothing). Default: report. */
#define MP_LEAK_ABORT    0x100u /* report through the error handler, then abort() */
#define MP_LEAK_IGNORE   0x200u /* say nothing */
#define MP_HANDLES       0x400u /* object pools: objects carry a generation (handles, below) */
/* heaps: memory freed into the size classes stays there, backed, until
 * mp_heap_trim or destroy: faster reuse, a larger resident set (docs/heaps.md) */
#define MP_KEEP_MEMORY   0x800u

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
/* aligned to alignof(max_align_t); inline (see the end of this file):
 *     void *mp_alloc(mp_arena *a, size_t size);                        */
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
    unsigned flags;         /* MP_SINGLE_THREAD, MP_ZERO, MP_HANDLES, MP_LEAK_ABORT, MP_LEAK_IGNORE */
    void (*ctor)(void *obj, void *arg); /* once, when an object is first made */
    void (*dtor)(void *obj, void *arg); /* once, when its memory goes back (at the latest at destroy) */
    void *arg;
} mp_objpool_opts;

MP_API mp_objpool *mp_objpool_create(mp_arena *parent, const mp_objpool_opts *opts);
MP_API void mp_objpool_destroy(mp_objpool *p);
/* get: an object, or NULL with errno ENOMEM (max_live reached, or no
 * memory) or EINVAL (a NULL pool). put: obj NULL does nothing. Both are
 * inline (see the end of this file):
 *     void *mp_objpool_get(mp_objpool *p);
 *     void  mp_objpool_put(mp_objpool *p, void *obj);                  */
MP_API void *mp_objpool_get_wait(mp_objpool *p, int64_t timeout_ns);
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

/*
 * Generational handles (pools created with MP_HANDLES; docs/handles.md).
 * A handle names one object for as long as it is out: once the object is
 * put back - by mp_objpool_put, put_bulk, mp_free, put_handle, from any
 * thread - every handle of it is stale for good, even after its slot is
 * handed out again. A generation is 32 bits: a handle can alias a later
 * object only after 2^32 reuses of one slot. 0 is never a handle.
 *
 * handle: the handle of obj, which must be out of p; 0 with errno EINVAL
 *   otherwise (free, foreign, another pool's, p without MP_HANDLES). Any
 *   number of calls give the same handle until obj is put.
 * deref: the object, or NULL with errno ESTALE (it was put back since) or
 *   EINVAL (0, garbage, another pool's handle, p without MP_HANDLES). O(1),
 *   no lock, from any thread. The answer is exact at the moment of the
 *   call: if another thread may put the object, use it only under a rule
 *   that keeps it out meanwhile (docs/handles.md: the owner thread puts, or
 *   a reference count in the object).
 * put_handle: puts the object; a stale or invalid handle goes to the error
 *   handler and nothing is put. Of two threads putting one handle, exactly
 *   one puts.
 * A destroyed pool is misuse for all three (reported, as for any call); a
 * pool's handles are never valid in another pool, not even one made later
 * at the same address.
 */
typedef uint64_t mp_handle;
MP_API mp_handle mp_objpool_handle(mp_objpool *p, const void *obj);
MP_API void *mp_objpool_deref(mp_objpool *p, mp_handle h);
MP_API void mp_objpool_put_handle(mp_objpool *p, mp_handle h);

/* Any object-pool or heap pointer, without its pool, from any thread.
 * mp_free(NULL) does nothing; mp_usable_size(NULL) is 0. Any other pointer
 * (malloc, arena, stack) is misuse: the error handler, then nothing
 * happens (mp_usable_size: 0). mp_free is inline (see the end of this file):
 *     void mp_free(void *p);                                           */
MP_API size_t mp_usable_size(const void *p);

/* ------------------------------------------------------------------- heaps */

/*
 * Heaps: allocations of any size, each freed on its own (the all-purpose
 * pool), thread-safe with per-thread caches unless MP_SINGLE_THREAD.
 * docs/heaps.md
 *
 * Free a heap's allocation with mp_free(p), from any thread;
 * mp_usable_size(p) is its size class (at most 12.5% more than asked,
 * above 128 bytes). A heap can be a child of an arena: the arena's reset
 * or destroy destroys it, and its limit counts against the arena's.
 *
 * create: NULL with EINVAL for an unknown flag or a parent that is not a
 *   live arena, ENOMEM without memory.
 * alloc, calloc, alloc_aligned: aligned as malloc (16, or 8 below 16
 *   bytes); size 0 gives a unique pointer. NULL with EINVAL for a NULL
 *   heap, an n * size that overflows, an alignment that is not a power of
 *   two, or a size so large no address space could hold it; ENOMEM when the
 *   limit or the memory runs out.
 * realloc: p NULL allocates; size 0 keeps a unique pointer. In place when
 *   the size class allows; otherwise the contents move. NULL with ENOMEM
 *   (the old allocation intact) when the size cannot be had; a p that is
 *   not this heap's goes to the error handler, and NULL is returned.
 * destroy: frees every allocation still in it at once (checked mode
 *   reports them as leaks, unless its parent arena destroys it); the
 *   default heap is never destroyed (misuse).
 * foreach: visit(p, size) for each live allocation, size its usable size;
 *   the same rules as mp_objpool_foreach (no other thread may use the heap
 *   meanwhile). Returns how many, or 0 with errno EINVAL or ENOMEM.
 */
typedef struct mp_heap mp_heap;
typedef struct mp_heap_opts {
    const char *name;  /* shown in reports and error messages; copied */
    size_t limit;      /* most bytes this heap holds from the OS; 0 = none */
    unsigned flags;    /* MP_SINGLE_THREAD, MP_ZERO, MP_KEEP_MEMORY, MP_LEAK_ABORT, MP_LEAK_IGNORE */
} mp_heap_opts;

MP_API mp_heap *mp_heap_create(mp_arena *parent, const mp_heap_opts *opts); /* opts NULL: defaults */
MP_API void mp_heap_destroy(mp_heap *h);
/* inline (see the end of this file):
 *     void *mp_heap_alloc(mp_heap *h, size_t size);                   */
MP_API void *mp_heap_calloc(mp_heap *h, size_t n, size_t size);
MP_API void *mp_heap_realloc(mp_heap *h, void *p, size_t size);
MP_API void *mp_heap_alloc_aligned(mp_heap *h, size_t size, size_t align);
MP_API void mp_heap_trim(mp_heap *h); /* give every free page back to the OS now */
MP_API int mp_heap_move(mp_heap *h, mp_arena *new_parent); /* as mp_arena_move */
MP_API size_t mp_heap_foreach(mp_heap *h, void (*visit)(void *p, size_t size, void *arg), void *arg);
/* The process's heap: made on first use, never destroyed, thread-safe. */
MP_API mp_heap *mp_heap_default(void);

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
/*  void *mp_reserve_alloc(mp_reserve *r, int64_t timeout_ns);  source, then reserve, then wait
 *  void mp_reserve_free(mp_reserve *r, void *elem);            refill the reserve first, wake a waiter
 * (declared below: inline where the compiler allows) */
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
MP_API int mp_heap_stats(const mp_heap *h, mp_stats *out);
/* The tree under root, one line per pool; root NULL: every tree. */
MP_API void mp_report(FILE *out, const mp_arena *root);
/* The same tree as one line of JSON with every counter (schema in
 * docs/debugging.md): {"mpool":"MAJOR.MINOR.PATCH","pools":[{"kind":..,"name":..,
 * "stats":{..},"children":[..]}]} */
MP_API void mp_report_json(FILE *out, const mp_arena *root);

/* ==================================================================
 * Internal: the inline fast paths. Nothing below is for the user, and
 * names starting with mp__ may change in any release.
 *
 * mp_objpool_get, mp_objpool_put, mp_alloc, mp_heap_alloc, mp_free,
 * mp_reserve_alloc and mp_reserve_free are inline: the common case (an
 * object in the calling thread's cache, or in a single-threaded pool's
 * own; room in the arena's active block; a block of the request's size
 * class in the thread's cache; room in the cache of the freed object's
 * pool; a reserve's source that delivers, counted in the thread's own
 * counts) is a few instructions in the caller, and everything else a call
 * into the library. The structs below are the only part of a pool's layout the
 * inline code sees: the library's structs start with them at
 * MP__HOT_OFFSET (checked when the library is built). They are part of the
 * ABI: a change of them changes MP_ABI_VERSION, and with it the shared
 * library's soname (libmpool.so.MP_ABI_VERSION).
 *
 * With MPOOL_NO_INLINE defined before mpool.h is included (or on the
 * command line), the seven are plain calls. The functions are
 * exported either way, so taking their address, dlsym and other
 * languages' bindings work.
 * ================================================================== */

#define MP_ABI_VERSION 1

/* The fields of a thread's cache of free objects (or a single-threaded
 * pool's own) that the inline paths touch. top: one past the last object
 * loaded, with a NULL guard before the first, so top[-1] is NULL when it is
 * empty; end: where the magazine ends (top == end: full, or detached);
 * verified: base of the chunk last checked to be the pool's; allocs: gets
 * served here. Only the owning thread writes top and allocs. */
typedef struct mp__cache_hot {
    void **top;
    void **end;
    uintptr_t verified;
    size_t allocs;
} mp__cache_hot;

/* An object pool, at MP__HOT_OFFSET. fast_slot: the entry of mp__tls_fast
 * that holds the calling thread's cache for a thread-safe pool; 0: look at
 * own instead, a MP_SINGLE_THREAD pool's cache (detached in a pool the
 * inline paths may not serve). */
typedef struct mp__objpool_hot {
    uint32_t fast_slot;
    uint32_t cache_off; /* a heap's size class: its cache's offset in the thread's block */
    mp__cache_hot own;
} mp__objpool_hot;

/* A heap, at MP__HOT_OFFSET. fast_slot: the entry of mp__tls_fast that
 * holds the calling thread's block of caches, one per size class, each
 * MP__CACHE_STRIDE bytes (the first bytes an mp__cache_hot); 0: the
 * library serves the heap (single-threaded, zeroing, checked, watched). */
typedef struct mp__heap_hot {
    uint32_t fast_slot;
    uint32_t reserved_;
} mp__heap_hot;

/* A reserve, at MP__HOT_OFFSET: its source, and where the calling thread
 * counts. fast_slot: the entry of mp__tls_fast that holds the calling
 * thread's counts (an mp__reserve_counts); 0: the library serves every
 * call (checked mode, or no direct entry was free). free_locked (read
 * with acquire): frees must go to the library, which refills the reserve. */
typedef struct mp__reserve_hot {
    void *(*src_alloc)(void *src);
    void (*src_free)(void *elem, void *src);
    void *src;
    uint32_t fast_slot;
    unsigned char free_locked;
} mp__reserve_hot;

/* A thread's counts for a reserve, its entry of mp__tls_fast. top and end
 * sit where an mp__cache_hot has them, so that the entry every thread
 * starts with (a detached cache: top == end) reads as "no counts of its own
 * yet"; a thread's own has top < end. Only the owning thread writes allocs
 * and frees. */
typedef struct mp__reserve_counts {
    void **top;
    void **end;
    size_t allocs;
    size_t frees;
} mp__reserve_counts;

/* An arena, at MP__HOT_OFFSET: the bump pointer of its active block (cur
 * up to end; both NULL in an arena the inline path may not serve), its
 * newest allocation (for rollback), its count of allocations, and the
 * largest size bumped out of a block. */
typedef struct mp__arena_hot {
    char *cur;
    char *end;
    char *last;
    size_t allocs;
    size_t large_max;
} mp__arena_hot;

#define MP__HOT_OFFSET 128
#define MP__CHUNK_MASK ((uintptr_t)0xffff) /* chunks are 64 KiB-aligned */
#define MP__TLS_FAST 32
#define MP__CACHE_STRIDE 88
#define MP__HEAP_SMALL_MAX 16384 /* the largest size class */

/* The chunk registry: for each 64 KiB-aligned address where a live chunk
 * of mpool starts, its owner; NULL elsewhere. Two levels over 47-bit user
 * addresses (address >> 32, then the next 16 bits); a leaf is made on
 * first use, never freed. An object pool's slab (a heap's size class is
 * one) has its pool as owner, tagged with MP__REG_SLAB (bit 1, set in no
 * other entry); an entry with bit 0 set is an alias, not an owner. Written by the library under its
 * lock, read by anyone with acquire loads. */
#define MP__REG_L1_SHIFT 32
#define MP__REG_L1_COUNT ((uintptr_t)1 << (47 - MP__REG_L1_SHIFT))
#define MP__REG_LEAF_SLOTS ((uintptr_t)1 << (MP__REG_L1_SHIFT - 16))
#define MP__REG_SLAB ((uintptr_t)2)
#define MP__REG_TAGS ((uintptr_t)3)
typedef struct mp__reg_leaf {
    void *owner[MP__REG_LEAF_SLOTS];
} mp__reg_leaf;
MP_API extern mp__reg_leaf *mp__registry[MP__REG_L1_COUNT];

#if defined(__GNUC__)
/* Each thread's caches of the first MP__TLS_FAST - 1 thread-safe pools:
 * a small array of static TLS, so that the library can still be loaded
 * with dlopen. */
MP_API extern __thread mp__cache_hot *mp__tls_fast[MP__TLS_FAST] __attribute__((tls_model("initial-exec")));
#endif

/* The rest of get and put, in the library; they take the caller's site
 * from their own return address. put_unverified: c has room, but obj is
 * in another chunk than c last checked to be p's. */
MP_API void *mp__objpool_get_slow(mp_objpool *p);
MP_API void mp__objpool_put_slow(mp_objpool *p, void *obj);
MP_API void mp__objpool_put_unverified(mp_objpool *p, mp__cache_hot *c, void *obj);
MP_API void *mp__alloc_slow(mp_arena *a, size_t size);
MP_API void *mp__heap_alloc_slow(mp_heap *h, size_t size);
MP_API void mp__free_slow(void *p);
MP_API void *mp__reserve_alloc_slow(mp_reserve *r, int64_t timeout_ns);
MP_API void *mp__reserve_alloc_failed(mp_reserve *r, int64_t timeout_ns);
MP_API void *mp__reserve_count_alloc(mp_reserve *r, void *elem);
MP_API void mp__reserve_free_slow(mp_reserve *r, void *elem);
/* The size class of every request of 1 .. 1024 bytes, by (size + 7) / 8. */
MP_API extern const unsigned char mp__heap_class8[129];

/* The size class of a request of 1 .. MP__HEAP_SMALL_MAX bytes: 8; 16 to
 * 128 by 16; then eight per doubling. */
static inline unsigned mp__heap_class(size_t size)
{
    if (__builtin_constant_p(size) && size <= 128) /* a constant: folded to one */
        return size <= 8 ? 0 : (unsigned)((size + 15) >> 4);
    if (size <= 1024)
        return mp__heap_class8[(size + 7) >> 3];
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1)); /* 2^b < size <= 2^(b+1) */
    return 9 + (b - 7) * 8 + (unsigned)((size - 1) >> (b - 3)) - 8;
}

#if !defined(MPOOL_NO_INLINE) && !defined(MPOOL_SHARED_BUILD) && defined(__GNUC__)

/* Always inlined: they are a few instructions, and a call would cost more
 * than they do. */
#define MP__INLINE static inline __attribute__((always_inline))

MP__INLINE mp__objpool_hot *mp__objpool_hot_of(mp_objpool *p)
{
    return (mp__objpool_hot *)(void *)((char *)p + MP__HOT_OFFSET);
}

MP__INLINE void *mp_objpool_get(mp_objpool *p)
{
    if (__builtin_expect(p != NULL, 1)) {
        mp__objpool_hot *h = mp__objpool_hot_of(p);
        if (h->fast_slot) { /* a thread-safe pool: the calling thread's cache */
            mp__cache_hot *c = mp__tls_fast[h->fast_slot];
            void **top = c->top;
            void *obj = top[-1]; /* NULL (the guard) when the cache is empty */
            if (__builtin_expect(obj != NULL, 1)) {
                /* Statistics read these from other threads: single stores,
                 * never a read-modify-write. */
                __atomic_store_n(&c->top, top - 1, __ATOMIC_RELAXED);
                __atomic_store_n(&c->allocs, c->allocs + 1, __ATOMIC_RELAXED);
                return obj;
            }
        } else { /* a single-threaded pool's own cache (detached in any other) */
            void **top = h->own.top;
            void *obj = top[-1];
            if (__builtin_expect(obj != NULL, 1)) {
                h->own.top = top - 1;
                h->own.allocs++;
                return obj;
            }
        }
    }
    return mp__objpool_get_slow(p);
}

MP__INLINE void mp_objpool_put(mp_objpool *p, void *obj)
{
    if (__builtin_expect(p != NULL, 1)) {
        mp__objpool_hot *h = mp__objpool_hot_of(p);
        uintptr_t chunk = (uintptr_t)obj & ~MP__CHUNK_MASK;
        if (h->fast_slot) {
            mp__cache_hot *c = mp__tls_fast[h->fast_slot];
            void **top = c->top;
            if (__builtin_expect(top < c->end, 1)) {
                if (__builtin_expect(chunk == __atomic_load_n(&c->verified, __ATOMIC_RELAXED), 1)) {
                    *top = obj;
                    __atomic_store_n(&c->top, top + 1, __ATOMIC_RELAXED);
                    return;
                }
                mp__objpool_put_unverified(p, c, obj);
                return;
            }
        } else {
            void **top = h->own.top;
            if (__builtin_expect(top < h->own.end, 1)) {
                if (__builtin_expect(chunk == h->own.verified, 1)) {
                    *top = obj;
                    h->own.top = top + 1;
                    return;
                }
                mp__objpool_put_unverified(p, &h->own, obj);
                return;
            }
        }
    }
    mp__objpool_put_slow(p, obj);
}

MP__INLINE void *mp_alloc(mp_arena *a, size_t size)
{
    if (__builtin_expect(a != NULL, 1)) {
        mp__arena_hot *h = (mp__arena_hot *)(void *)((char *)a + MP__HOT_OFFSET);
        const uintptr_t align = __alignof__(max_align_t);
        uintptr_t p = ((uintptr_t)h->cur + align - 1) & ~(align - 1);
        uintptr_t next = p + size; /* cannot wrap once size <= large_max */
        /* size - 1 < large_max also sends size 0 to the library. */
        if (__builtin_expect(size - 1 < h->large_max && next <= (uintptr_t)h->end, 1)) {
            h->cur = (char *)next;
            h->last = (char *)p;
            h->allocs++;
            return (void *)p;
        }
    }
    return mp__alloc_slow(a, size);
}

MP__INLINE void *mp_heap_alloc(mp_heap *h, size_t size)
{
    /* size - 1 < max also sends size 0 to the library. */
    if (__builtin_expect(h != NULL, 1) && __builtin_expect(size - 1 < MP__HEAP_SMALL_MAX, 1)) {
        const mp__heap_hot *hh = (const mp__heap_hot *)(const void *)((const char *)h + MP__HOT_OFFSET);
        if (__builtin_expect(hh->fast_slot != 0, 1)) {
            mp__cache_hot *c = (mp__cache_hot *)(void *)((char *)mp__tls_fast[hh->fast_slot] +
                                                         (size_t)mp__heap_class(size) * MP__CACHE_STRIDE);
            void **top = c->top;
            void *obj = top[-1]; /* NULL (the guard) when the cache is empty */
            if (__builtin_expect(obj != NULL, 1)) {
                __atomic_store_n(&c->top, top - 1, __ATOMIC_RELAXED);
                __atomic_store_n(&c->allocs, c->allocs + 1, __ATOMIC_RELAXED);
                return obj;
            }
        }
    }
    return mp__heap_alloc_slow(h, size);
}

/* The registry says whose p is without reading memory p points into: a
 * slab's entry is its pool, tagged (no other entry has that bit set); a
 * thread-safe pool's hot fields say where the calling thread's cache of it
 * is. Everything else (a single-threaded pool's object, a large block, a
 * full cache, NULL, a foreign pointer) goes to the library. Objects are
 * validated when they leave the cache for their slab. */
MP__INLINE void mp_free(void *p)
{
    uintptr_t base = (uintptr_t)p & ~MP__CHUNK_MASK;
    uintptr_t l1 = base >> MP__REG_L1_SHIFT;
    if (__builtin_expect(l1 < MP__REG_L1_COUNT, 1)) {
        mp__reg_leaf *leaf = __atomic_load_n(&mp__registry[l1], __ATOMIC_ACQUIRE);
        if (__builtin_expect(leaf != NULL, 1)) {
            uintptr_t e = (uintptr_t)__atomic_load_n(&leaf->owner[(base >> 16) & (MP__REG_LEAF_SLOTS - 1)],
                                                     __ATOMIC_ACQUIRE);
            const mp__objpool_hot *h = (const mp__objpool_hot *)(const void *)(e - MP__REG_SLAB + MP__HOT_OFFSET);
            if (__builtin_expect((e & MP__REG_SLAB) != 0, 1) && __builtin_expect(h->fast_slot != 0, 1)) {
                mp__cache_hot *c = (mp__cache_hot *)(void *)((char *)mp__tls_fast[h->fast_slot] + h->cache_off);
                void **top = c->top;
                if (__builtin_expect(top < c->end, 1)) {
                    *top = p;
                    __atomic_store_n(&c->top, top + 1, __ATOMIC_RELAXED);
                    return;
                }
            }
        }
    }
    mp__free_slow(p);
}

/* The source is asked first, so a healthy one costs a call and a count;
 * a failure (which takes from the reserve or waits), a thread without
 * counts yet, a reserve below its minimum (a free refills it), a checked
 * reserve and bad arguments go to the library. */
MP__INLINE void *mp_reserve_alloc(mp_reserve *r, int64_t timeout_ns)
{
    if (__builtin_expect(r != NULL, 1) && __builtin_expect(timeout_ns >= MP_WAIT_FOREVER, 1)) {
        const mp__reserve_hot *h = (const mp__reserve_hot *)(const void *)((const char *)r + MP__HOT_OFFSET);
        if (__builtin_expect(h->fast_slot != 0, 1)) {
            void *e = h->src_alloc(h->src);
            if (__builtin_expect(e == NULL, 0))
                return mp__reserve_alloc_failed(r, timeout_ns);
            mp__reserve_counts *c = (mp__reserve_counts *)(void *)mp__tls_fast[h->fast_slot];
            if (__builtin_expect(c->top < c->end, 1)) {
                __atomic_store_n(&c->allocs, c->allocs + 1, __ATOMIC_RELAXED);
                return e;
            }
            return mp__reserve_count_alloc(r, e); /* no counts yet: the library makes them */
        }
    }
    return mp__reserve_alloc_slow(r, timeout_ns);
}

MP__INLINE void mp_reserve_free(mp_reserve *r, void *elem)
{
    if (elem == NULL)
        return;
    if (__builtin_expect(r != NULL, 1)) {
        mp__reserve_hot *h = (mp__reserve_hot *)(void *)((char *)r + MP__HOT_OFFSET);
        if (__builtin_expect(h->fast_slot != 0, 1) && !__atomic_load_n(&h->free_locked, __ATOMIC_ACQUIRE)) {
            mp__reserve_counts *c = (mp__reserve_counts *)(void *)mp__tls_fast[h->fast_slot];
            if (__builtin_expect(c->top < c->end, 1)) {
                __atomic_store_n(&c->frees, c->frees + 1, __ATOMIC_RELAXED);
                h->src_free(elem, h->src);
                return;
            }
        }
    }
    mp__reserve_free_slow(r, elem);
}

#else
MP_API void *mp_reserve_alloc(mp_reserve *r, int64_t timeout_ns);
MP_API void mp_reserve_free(mp_reserve *r, void *elem);
MP_API void *mp_objpool_get(mp_objpool *p);
MP_API void mp_objpool_put(mp_objpool *p, void *obj);
MP_API void *mp_alloc(mp_arena *a, size_t size);
MP_API void *mp_heap_alloc(mp_heap *h, size_t size);
MP_API void mp_free(void *p);
#endif

#ifdef __cplusplus
}
#endif
#endif /* MPOOL_H */
