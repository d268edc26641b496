/*
 * track.h - layer 0 (services): the one seam between the pools and memory
 * tools.
 *
 * Every pool kind reports here when an object goes out (handed to the user)
 * or comes in (given back), when it gets a new block of memory, and when it
 * resets or destroys. The seam maps those events to:
 *   - Valgrind memcheck client requests (mempools, MAKE_MEM_*), compiled in
 *     when <valgrind/memcheck.h> was found at build time; each costs a few
 *     instructions when the program does not run under Valgrind;
 *   - AddressSanitizer manual poisoning, found at run time through weak
 *     references, so it works when the library is built with ASan and also
 *     when only the program using it is.
 *
 * Every hook is inline. Pools ask mp__track_active() once, at create, and
 * keep the answer: when it is false their fast paths never reach the seam,
 * and a hook called anyway (the chunk layer's) does nothing but test the
 * answer. When it is true pools do every get and put in their slow paths,
 * which call the seam.
 *
 * Rules for callers: memory the seam marked no-access is never read or
 * written by the library (free objects hold no links: free lists live in
 * magazines and bitmaps outside the objects). Before memory goes back to the
 * OS or to another pool kind, the caller calls mp__track_release() so no
 * poisoning outlives the mapping.
 */
#ifndef MP_TRACK_H
#define MP_TRACK_H

#include "common.h"

#if defined(MPOOL_HAVE_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define MP_TRACK_VG 1
#else
#define MP_TRACK_VG 0
#endif

/* ASan keeps one shadow state per 8 bytes, and changes it with a plain
 * read-modify-write: two objects sharing 8 bytes, handed out and taken back
 * on two threads at once, could lose each other's state (a false report on
 * a live object). Watched pools therefore keep objects this far apart. */
#define MP_TRACK_GRAIN 8

/* ASan's interface, looked up weakly: non-NULL only when an ASan runtime is
 * linked into the process (the library's or the program's). */
void __asan_poison_memory_region(void const volatile *addr, size_t size) __attribute__((weak));
void __asan_unpoison_memory_region(void const volatile *addr, size_t size) __attribute__((weak));

/* LeakSanitizer's interface, looked up weakly likewise. Its leak scan reads
 * globals, stacks and malloc'd blocks but not other mappings: a malloc'd
 * block referenced only from a pool object, or the library's own metadata
 * referenced only from a slab header, would be reported as leaked. Chunks
 * are therefore registered as root regions while they are in use. */
void __lsan_register_root_region(const void *p, size_t size) __attribute__((weak));
void __lsan_unregister_root_region(const void *p, size_t size) __attribute__((weak));

/* -1 until decided (track.c), then 0 or 1; never changes again. */
extern int mp__track_state;
bool mp__track_decide(void);

/* True when Valgrind memcheck or an ASan runtime is watching this process. */
static inline bool mp__track_active(void)
{
    int s = __atomic_load_n(&mp__track_state, __ATOMIC_RELAXED);
    return mp_likely(s >= 0) ? s != 0 : mp__track_decide();
}

static inline bool mp__track_asan(void)
{
    return __asan_poison_memory_region != NULL && __asan_unpoison_memory_region != NULL;
}

static inline void mp__track_poison(const void *p, size_t size)
{
    if (mp__track_asan())
        __asan_poison_memory_region(p, size);
}

static inline void mp__track_unpoison(const void *p, size_t size)
{
    if (mp__track_asan())
        __asan_unpoison_memory_region(p, size);
}

/* A pool (any unique address) starts or stops handing out objects. */
static inline void mp__track_pool_create(const void *pool, bool zeroed)
{
#if MP_TRACK_VG
    VALGRIND_CREATE_MEMPOOL(pool, 0, zeroed);
#endif
    (void)pool;
    (void)zeroed;
}

static inline void mp__track_pool_destroy(const void *pool)
{
#if MP_TRACK_VG
    VALGRIND_DESTROY_MEMPOOL(pool);
#endif
    (void)pool;
}

/* Memory a pool owns but has not handed out: no access until handed out. */
static inline void mp__track_block_new(const void *pool, void *p, size_t size)
{
    (void)pool;
#if MP_TRACK_VG
    VALGRIND_MAKE_MEM_NOACCESS(p, size);
#endif
    mp__track_poison(p, size);
}

/* The library itself needs to read or write a no-access object (a dtor at
 * release, a fill check): make it accessible and defined. */
static inline void mp__track_obj_touch(void *obj, size_t size)
{
    mp__track_unpoison(obj, size);
#if MP_TRACK_VG
    VALGRIND_MAKE_MEM_DEFINED(obj, size);
#endif
}

/* Memory about to be given back (to the OS or the chunk layer): defined,
 * not just accessible, as the library may still write headers before
 * unmapping, or a new owner its own. */
static inline void mp__track_release(void *p, size_t size)
{
    if (mp__track_active())
        mp__track_obj_touch(p, size);
}

/* A chunk goes into use, or out of use (the same p and size). */
static inline void mp__track_chunk_used(const void *chunk, size_t size)
{
    if (__lsan_register_root_region && __lsan_unregister_root_region)
        __lsan_register_root_region(chunk, size);
}

static inline void mp__track_chunk_unused(const void *chunk, size_t size)
{
    if (__lsan_register_root_region && __lsan_unregister_root_region)
        __lsan_unregister_root_region(chunk, size);
}

/* A free chunk the chunk layer keeps for reuse: no access but its first
 * word (the free-list link), so that a stale pointer into a destroyed pool
 * is reported rather than read. mp__track_release undoes it. */
static inline void mp__track_chunk_idle(void *chunk, size_t size)
{
    if (!mp__track_active())
        return;
    char *rest = (char *)chunk + sizeof(void *);
#if MP_TRACK_VG
    VALGRIND_MAKE_MEM_NOACCESS(rest, size - sizeof(void *));
#endif
    mp__track_poison(rest, size - sizeof(void *));
}

/* An object of `size` bytes goes out to the user. `defined`: its contents
 * are meaningful (constructed, or zeroed) rather than stale. */
static inline void mp__track_obj_out(const void *pool, void *obj, size_t size, bool defined)
{
    mp__track_unpoison(obj, size);
#if MP_TRACK_VG
    VALGRIND_MEMPOOL_ALLOC(pool, obj, size);
    if (defined)
        VALGRIND_MAKE_MEM_DEFINED(obj, size);
#endif
    (void)pool;
    (void)defined;
}

/* An object comes back: no access until it goes out again. */
static inline void mp__track_obj_in(const void *pool, void *obj, size_t size)
{
#if MP_TRACK_VG
    VALGRIND_MEMPOOL_FREE(pool, obj);
    VALGRIND_MAKE_MEM_NOACCESS(obj, size);
#endif
    (void)pool;
    mp__track_poison(obj, size);
}

/* A free object the library touched (after its ctor ran) becomes
 * no-access again, without any mempool event. */
static inline void mp__track_obj_hide(void *obj, size_t size)
{
#if MP_TRACK_VG
    VALGRIND_MAKE_MEM_NOACCESS(obj, size);
#endif
    mp__track_poison(obj, size);
}

#endif /* MP_TRACK_H */
