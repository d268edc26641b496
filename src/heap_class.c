/*
 * heap_class.c - layer 6: a heap's size classes (the model is in heap.h).
 *
 * Class i's size: 8 for i = 0; 16 * i for i = 1 .. 8 (16 .. 128); then,
 * with k = i - 9, b = 7 + k / 8 and m = k % 8, 2^b + (m + 1) * 2^(b - 3):
 * eight classes per doubling, each 12.5% of the doubling's base apart,
 * so a request gets a class at most 12.5% larger than itself. Large
 * allocations are spaced the same way past the last class.
 *
 * A class's pool is made on its first allocation, under the heap's lock,
 * and published with a release store that the fast paths' acquire load
 * pairs with: a thread that sees the pointer sees the pool made.
 */
#include "heap.h"
#include "fork.h"

/* The class of every size up to 1024 bytes, by (size + 7) / 8 (every
 * class below 1024 is a multiple of 8): the inline mp_heap_alloc's lookup
 * (mpool.h). A table rather than code run at start-up, so that it is
 * right before any constructor runs; unit_heap_classes checks it against
 * mp__heap_class_of. */
const unsigned char mp__heap_class8[129] = {
    0, 0, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8,
    8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 16,
    16, 17, 17, 17, 17, 18, 18, 18, 18, 19, 19, 19, 19, 20, 20, 20,
    20, 21, 21, 21, 21, 22, 22, 22, 22, 23, 23, 23, 23, 24, 24, 24,
    24, 25, 25, 25, 25, 25, 25, 25, 25, 26, 26, 26, 26, 26, 26, 26,
    26, 27, 27, 27, 27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28,
    28, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30, 30,
    30, 31, 31, 31, 31, 31, 31, 31, 31, 32, 32, 32, 32, 32, 32, 32,
    32,
};

size_t mp__heap_class_size(unsigned cls)
{
    if (cls < 9)
        return cls == 0 ? 8 : (size_t)cls * 16;
    unsigned k = cls - 9, b = 7 + k / 8, m = k % 8;
    return ((size_t)1 << b) + (size_t)(m + 1) * ((size_t)1 << (b - 3));
}

size_t mp__heap_large_size(size_t size)
{
    if (size <= MP_HEAP_SMALL_MAX) /* a small one that took a chunk for its alignment */
        return mp__align_up(size, MP_HEAP_ALIGN);
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1)); /* 2^b < size <= 2^(b+1) */
    size_t step = (size_t)1 << (b - 3), rounded;
    if (!mp__add_ok(size, step - 1, &rounded))
        return 0;
    return rounded & ~(step - 1);
}

bool mp__heap_charge(void *heap, size_t bytes) { return mp__acct_child_charge(&((mp_heap *)heap)->acct, bytes); }

void mp__heap_uncharge(void *heap, size_t bytes) { mp__acct_child_uncharge(&((mp_heap *)heap)->acct, bytes); }

/* Thread exit: a class's cache goes back to its pool (the group frees the
 * block it is in). */
static void retire_class_cache(mp__cache *c) { mp__objpool_retire_group_cache(c); }

bool mp__heap_classes_init(mp_heap *h)
{
    if (h->flags & MP_SINGLE_THREAD)
        return true;
    /* No slot left: the classes work under their locks (MP__CACHE_NONE). */
    mp__cache_group_init(&h->group, MP_HEAP_NCLASS, retire_class_cache);
    if (h->fast && h->group.slot && h->group.slot < MP__TLS_FAST)
        h->fast_slot = h->group.slot;
    return true;
}

/* The alignment of class cls's objects: a power of two's, up to a page,
 * so that mp_heap_alloc_aligned can use it; malloc's for the others. */
static size_t class_align(size_t size)
{
    if (mp__is_pow2(size))
        return size < 4096 ? size : 4096;
    return size < MP_HEAP_ALIGN ? 8 : MP_HEAP_ALIGN;
}

mp_objpool *mp__heap_class_pool(mp_heap *h, unsigned cls)
{
    mp_objpool *p = __atomic_load_n(&h->cls[cls], __ATOMIC_ACQUIRE);
    if (mp_likely(p != NULL))
        return p;
    mp__lock(&h->lock);
    p = h->cls[cls];
    if (!p) {
        size_t size = mp__heap_class_size(cls);
        bool keep = h->flags & MP_KEEP_MEMORY; /* free slabs and pages stay until a trim */
        mp__objpool_spec spec = {
            .name = h->node.name,
            .kind_name = MP_HEAP_KIND,
            .says_free = true,
            .chunk_kind = MP__KIND_HEAP,
            .obj_size = size,
            .align = class_align(size),
            .flags = h->flags & (MP_SINGLE_THREAD | MP_ZERO),
            .records = h->records,
            .free_share = keep ? 0 : MP_HEAP_FREE_SHARE,
            .return_pages = true,
            .keep_pages = keep,
            .charge = mp__heap_charge,
            .uncharge = mp__heap_uncharge,
            .acct = h,
            .group = h->group.slot ? &h->group : NULL,
            .group_index = cls,
        };
        p = mp__objpool_make(&spec);
        if (p)
            __atomic_store_n(&h->cls[cls], p, __ATOMIC_RELEASE);
    }
    mp__unlock(&h->lock);
    return p;
}

void mp__heap_classes_free(mp_heap *h)
{
    mp__lock(&mp__tcache_lock);
    for (unsigned i = 0; i < MP_HEAP_NCLASS; i++)
        if (h->cls[i])
            mp__objpool_detach_caches(h->cls[i]);
    if (h->group.slot)
        mp__cache_group_fini(&h->group);
    mp__unlock(&mp__tcache_lock);
    for (unsigned i = 0; i < MP_HEAP_NCLASS; i++) {
        if (h->cls[i])
            mp__objpool_unmake(h->cls[i]);
        h->cls[i] = NULL;
    }
}
