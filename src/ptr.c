/*
 * ptr.c - layer 6: mp_free and mp_usable_size, for a pointer without its
 * pool. The chunk registry (chunk.h) finds the chunk of any pointer mpool
 * handed out, without touching memory that may be unmapped; the chunk's
 * kind says whose the pointer is, and its owner which pool.
 */
#include "chunk.h"
#include "error.h"
#include "objpool.h"

void mp_free(void *ptr)
{
    if (!ptr)
        return;
    mp__chunk *ch = mp__chunk_lookup(ptr);
    if (!ch || ch->kind != MP__KIND_OBJPOOL) {
        mp__misuse("mp_free of a pointer not from an object pool", NULL, NULL, ptr);
        return;
    }
    mp_objpool *p = ch->owner;
    if (p->checked || p->tracked)
        mp__objpool_free_slow(p, ptr, __builtin_return_address(0));
    else
        mp_objpool_put(p, ptr);
}

size_t mp_usable_size(const void *ptr)
{
    if (!ptr)
        return 0;
    mp__chunk *ch = mp__chunk_lookup(ptr);
    if (!ch || ch->kind != MP__KIND_OBJPOOL) {
        mp__misuse("mp_usable_size of a pointer not from an object pool", NULL, NULL, ptr);
        return 0;
    }
    const mp_objpool *p = ch->owner;
    /* Checked pools guard the bytes past obj_size with a red zone, and memory
     * tools (tracked pools) mark exactly obj_size bytes accessible: only
     * those are usable there. */
    return p->checked || p->tracked ? p->obj_size : ch->obj_size;
}
