/*
 * malloc.c - the drop-in's exported functions (dropin.h has the model):
 * the C and POSIX allocation functions, glibc's extras, and the __libc_
 * names that tools reach with dlsym. Each checks its arguments as glibc
 * does and sets errno as glibc does (ENOMEM for any size no object can
 * have, EINVAL for a bad alignment; posix_memalign returns its error and
 * leaves errno alone), then goes to the default heap.
 *
 * Where the answer is the heap's, the call into it is the function's last
 * act (a tail call): the heap then records our caller as the allocation
 * site. Only the functions of this file are exported
 * (mpool-malloc.map); C++'s operator new and delete reach them through
 * malloc and free.
 */
#include "dropin.h"

#include <malloc.h>

#define API __attribute__((visibility("default")))

/* glibc's aliases, for programs and tools that call them by name. */
API void *__libc_malloc(size_t n);
API void __libc_free(void *p);
API void *__libc_calloc(size_t n, size_t size);
API void *__libc_realloc(void *p, size_t n);
API void *__libc_memalign(size_t align, size_t n);
API void *__libc_valloc(size_t n);
API void *__libc_pvalloc(size_t n);
API void cfree(void *p);

/* malloc past its fast path: the checks of mp__malloc_enter, then the
 * heap. Reached by a tail call, and making one. */
static MP_NOINLINE void *alloc_entered(size_t n)
{
    void *p = mp__malloc_enter(n, 0);
    if (p != MP_MALLOC_GO)
        return p;
    return mp_heap_alloc(mp__malloc_heap, n);
}

/* malloc, for every function of this file that needs it: a call to the
 * exported one would go through the PLT (any earlier definition of
 * malloc in the process would get it). */
static inline void *alloc(size_t n)
{
    if (mp__malloc_quick(n))
        return mp_heap_alloc(mp__malloc_heap, n);
    return alloc_entered(n);
}

API void *malloc(size_t n)
{
    return alloc(n);
}

API void free(void *p)
{
    mp_free(p); /* NULL, and pointers mpool never handed out: ptr.h */
}

API void *calloc(size_t n, size_t size)
{
    size_t bytes;
    if (mp_unlikely(!mp__mul_ok(n, size, &bytes))) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = mp__malloc_begin(bytes, 0);
    if (p != MP_MALLOC_GO)
        return p; /* a bootstrap block is zero */
    return mp_heap_calloc(mp__malloc_heap, n, size);
}

/* realloc, for realloc and reallocarray. Always inlined: the return
 * address it passes on, and the one the heap records, is then theirs. */
static inline __attribute__((always_inline)) void *resize(void *p, size_t n)
{
    if (!p)
        return alloc(n);
    if (n == 0) { /* as glibc: free, and NULL */
        mp_free(p);
        return NULL;
    }
    if (mp_unlikely(!mp__malloc_ours(p)))
        return mp__malloc_realloc_foreign(p, n, __builtin_return_address(0));
    void *q = mp__malloc_begin(n, 0);
    if (q != MP_MALLOC_GO) {
        if (q) /* a bootstrap block, while the thread starts: p stays */
            memcpy(q, p, n < mp_usable_size(p) ? n : mp_usable_size(p));
        return q;
    }
    return mp_heap_realloc(mp__malloc_heap, p, n);
}

API void *realloc(void *p, size_t n)
{
    return resize(p, n);
}

API void *reallocarray(void *p, size_t n, size_t size)
{
    size_t bytes;
    if (mp_unlikely(!mp__mul_ok(n, size, &bytes))) {
        errno = ENOMEM;
        return NULL;
    }
    return resize(p, bytes);
}

/* An allocation aligned to align (a power of two). Up to MP_HEAP_ALIGN,
 * a request of at least align bytes is aligned to it: the heap's classes
 * are 8-aligned below 16 bytes, 16-aligned from there. */
static inline void *aligned(size_t align, size_t n)
{
    if (align <= MP_HEAP_ALIGN)
        return alloc(n > align ? n : align);
    void *p = mp__malloc_enter(n, align);
    if (p != MP_MALLOC_GO)
        return p;
    return mp_heap_alloc_aligned(mp__malloc_heap, n, align);
}

API void *aligned_alloc(size_t align, size_t n)
{
    if (mp_unlikely(!mp__is_pow2(align))) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(align, n);
}

API void *memalign(size_t align, size_t n)
{
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!mp__is_pow2(align) && align > MP_HEAP_ALIGN) /* as glibc: the next power of two */
        align = (size_t)1 << (64 - __builtin_clzll(align));
    return aligned(align, n);
}

/* aligned() for posix_memalign, which cannot end in a tail call (it
 * returns an error code): the heap is told the caller's site. */
static MP_NOINLINE void *aligned_at(size_t align, size_t n, const void *site)
{
    void *p = mp__malloc_enter(n, align);
    if (p != MP_MALLOC_GO)
        return p;
    return mp__heap_alloc_aligned_at(mp__malloc_heap, n, align, site);
}

API int posix_memalign(void **out, size_t align, size_t n)
{
    if (!mp__is_pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = aligned_at(align, n, __builtin_return_address(0));
    int err = p ? 0 : errno;
    errno = saved;
    if (p)
        *out = p;
    return err;
}

API void *valloc(size_t n)
{
    return aligned(mp__os_page_size(), n);
}

API void *pvalloc(size_t n)
{
    size_t page = mp__os_page_size(), whole;
    if (!mp__add_ok(n, page - 1, &whole)) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned(page, whole & ~(page - 1));
}

API size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (mp_unlikely(!mp__malloc_ours(p)))
        return mp__malloc_usable_foreign(p);
    return mp_usable_size(p);
}

/* Gives the default heap's free memory back to the OS; 1 as glibc's when
 * there was a heap to trim. */
API int malloc_trim(size_t pad)
{
    (void)pad;
    mp_heap *h = __atomic_load_n(&mp__malloc_heap, __ATOMIC_ACQUIRE);
    if (!h)
        return 0;
    mp_heap_trim(h);
    return 1;
}

/* The alias has the attributes of its target (copy: gcc's warning asks
 * for them; clang has no such warning). */
#if defined(__GNUC__) && !defined(__clang__)
#define ALIAS(name) __attribute__((alias(#name), copy(name)))
#else
#define ALIAS(name) __attribute__((alias(#name)))
#endif
void *__libc_malloc(size_t n) ALIAS(malloc);
void __libc_free(void *p) ALIAS(free);
void cfree(void *p) ALIAS(free);
void *__libc_calloc(size_t n, size_t size) ALIAS(calloc);
void *__libc_realloc(void *p, size_t n) ALIAS(realloc);
void *__libc_memalign(size_t align, size_t n) ALIAS(memalign);
void *__libc_valloc(size_t n) ALIAS(valloc);
void *__libc_pvalloc(size_t n) ALIAS(pvalloc);
