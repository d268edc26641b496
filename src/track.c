/*
 * track.c - Valgrind and ASan behind the seam of track.h.
 */
#include "track.h"

#if defined(MPOOL_HAVE_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define MP_VG 1
#else
#define MP_VG 0
#endif

/* ASan's interface, looked up weakly: non-NULL only when an ASan runtime is
 * linked into the process (the library's or the program's). */
void __asan_poison_memory_region(void const volatile *addr, size_t size) __attribute__((weak));
void __asan_unpoison_memory_region(void const volatile *addr, size_t size) __attribute__((weak));

static bool asan_on(void) { return __asan_poison_memory_region != NULL && __asan_unpoison_memory_region != NULL; }

static void asan_poison(const void *p, size_t size)
{
    if (asan_on())
        __asan_poison_memory_region(p, size);
}

static void asan_unpoison(const void *p, size_t size)
{
    if (asan_on())
        __asan_unpoison_memory_region(p, size);
}

/* Memcheck, not any Valgrind tool: under callgrind the pools must keep
 * their fast paths, or instruction counts would measure the slow ones.
 * Valgrind preloads one library per tool, so memcheck's shows in
 * LD_PRELOAD; MPOOL_TRACK=1 forces tracking on under any tool. */
static bool valgrind_on(void)
{
#if MP_VG
    if (!RUNNING_ON_VALGRIND)
        return false;
    const char *force = getenv("MPOOL_TRACK");
    if (force && force[0] == '1')
        return true;
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload_memcheck") != NULL;
#else
    return false;
#endif
}

bool mp__track_active(void)
{
    static int active = -1; /* decided once: the environment does not change */
    int a = __atomic_load_n(&active, __ATOMIC_RELAXED);
    if (a < 0) {
        a = asan_on() || valgrind_on();
        __atomic_store_n(&active, a, __ATOMIC_RELAXED);
    }
    return a;
}

void mp__track_pool_create(const void *pool, bool zeroed)
{
#if MP_VG
    VALGRIND_CREATE_MEMPOOL(pool, 0, zeroed);
#endif
    (void)pool;
    (void)zeroed;
}

void mp__track_pool_destroy(const void *pool)
{
#if MP_VG
    VALGRIND_DESTROY_MEMPOOL(pool);
#endif
    (void)pool;
}

void mp__track_block_new(const void *pool, void *p, size_t size)
{
    (void)pool;
#if MP_VG
    VALGRIND_MAKE_MEM_NOACCESS(p, size);
#endif
    asan_poison(p, size);
}

/* Accessible and defined: the state of memory no pool watches. */
static void unwatch(void *p, size_t size)
{
    asan_unpoison(p, size);
#if MP_VG
    VALGRIND_MAKE_MEM_DEFINED(p, size);
#endif
}

/* Defined, not just accessible: the library may still write headers
 * before unmapping, or a new owner its own. */
void mp__track_release(void *p, size_t size) { unwatch(p, size); }

void mp__track_chunk_idle(void *chunk, size_t size)
{
    if (!mp__track_active())
        return;
    char *rest = (char *)chunk + sizeof(void *);
#if MP_VG
    VALGRIND_MAKE_MEM_NOACCESS(rest, size - sizeof(void *));
#endif
    asan_poison(rest, size - sizeof(void *));
}

void mp__track_obj_out(const void *pool, void *obj, size_t size, bool defined)
{
    asan_unpoison(obj, size);
#if MP_VG
    VALGRIND_MEMPOOL_ALLOC(pool, obj, size);
    if (defined)
        VALGRIND_MAKE_MEM_DEFINED(obj, size);
#endif
    (void)pool;
    (void)defined;
}

void mp__track_obj_in(const void *pool, void *obj, size_t size)
{
#if MP_VG
    VALGRIND_MEMPOOL_FREE(pool, obj);
    VALGRIND_MAKE_MEM_NOACCESS(obj, size);
#endif
    (void)pool;
    asan_poison(obj, size);
}

void mp__track_obj_touch(void *obj, size_t size) { unwatch(obj, size); }

void mp__track_obj_hide(void *obj, size_t size)
{
#if MP_VG
    VALGRIND_MAKE_MEM_NOACCESS(obj, size);
#endif
    asan_poison(obj, size);
}
