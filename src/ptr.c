/*
 * ptr.c - layer 6: mp_free and mp_usable_size, for a pointer without its
 * pool. The chunk registry (chunk.h) finds the chunk of any pointer mpool
 * handed out, without touching memory that may be unmapped; the chunk's
 * kind says whose the pointer is, and its owner which pool: an object
 * pool, a heap's size class (an object pool the heap made), or a heap (a
 * large allocation).
 */
#include "chunk.h"
#include "error.h"
#include "heap.h"
#include "objpool.h"
#include "ptr.h"
#include "tcache.h"

/* Everything mp_free's fast path does not finish: a full cache, a pool
 * the fast paths may not serve (checked, tracked, capped...), NULL, and
 * pointers mpool never handed out. */
static MP_NOINLINE void free_slow(void *ptr, const void *site)
{
    if (!ptr)
        return;
    mp__chunk *ch = mp__chunk_lookup(ptr);
    if (ch && ch->kind == MP__KIND_OBJPOOL)
        mp__objpool_free_slow(ch->owner, ptr, site);
    else if (ch && ch->kind == MP__KIND_HEAP)
        mp__heap_free(ch, ch->owner, ptr, site);
    else if (!ch && mp__free_foreign) /* the malloc drop-in's (ptr.h) */
        mp__free_foreign(ptr, site);
    else
        mp__misuse("mp_free of a pointer not from an object pool or a heap", NULL, NULL, ptr);
}

void mp__free_slow(void *ptr) { free_slow(ptr, __builtin_return_address(0)); }

/* The out-of-line mp_free (MPOOL_NO_INLINE builds, calls through a
 * pointer), the inline one's twin (mpool.h): the registry's entry for the
 * pointer's chunk base is its owner, and says that a live chunk starts
 * there; a slab's is tagged, so ownership needs no other check. The object
 * goes onto the cache the pool's inline put would use (a thread-safe
 * pool's in the calling thread, a plain single-threaded pool's own; for
 * any other pool that cache is detached, top == end, and the slow path
 * does the rest). */
void mp_free(void *ptr)
{
    uintptr_t entry = (uintptr_t)mp__chunk_reg_entry((uintptr_t)ptr & ~(uintptr_t)MP_CHUNK_MASK);
    if (mp_likely(entry & MP__REG_SLAB)) {
        mp_objpool *p = (mp_objpool *)(entry - MP__REG_SLAB);
        mp__cache *c = p->fast_slot ? (mp__cache *)((char *)mp__tls_fast[p->fast_slot] + p->cache_off)
                                    : &p->own_cache;
        void **top = c->top;
        if (mp_likely(top < c->end)) {
            *top = ptr;
            mp__sttop(&c->top, top + 1);
            return;
        }
    }
    free_slow(ptr, __builtin_return_address(0));
}

size_t mp_usable_size(const void *ptr)
{
    if (!ptr)
        return 0;
    mp__chunk *ch = mp__chunk_lookup(ptr);
    if (ch && ch->kind == MP__KIND_HEAP)
        return mp__heap_usable(ch, ptr);
    if (!ch || ch->kind != MP__KIND_OBJPOOL) {
        mp__misuse("mp_usable_size of a pointer not from an object pool or a heap", NULL, NULL, ptr);
        return 0;
    }
    const mp_objpool *p = ch->owner;
    /* Checked pools guard the bytes past obj_size with a red zone, and memory
     * tools (tracked pools) mark exactly obj_size bytes accessible: only
     * those are usable there. */
    return p->checked || p->tracked ? p->obj_size : ch->obj_size;
}
