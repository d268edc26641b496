/*
 * heap.h - layer 6: heaps, the all-purpose pool: many sizes, each freed on
 * its own. The heap's files:
 *
 *   heap.c        create, destroy, alloc/calloc/realloc/aligned, trim,
 *                 move, the default heap, the tree's callbacks
 *   heap_class.c  size classes and the size-class pools
 *   heap_large.c  allocations above the largest class: a chunk each
 *   heap_stats.c  statistics, foreach, the leak report
 *
 * Model. A request of up to MP_HEAP_SMALL_MAX bytes is served by one of
 * MP_HEAP_NCLASS size classes, each an object pool the heap makes for
 * itself on first use (mp__objpool_make): not in the tree, its chunks
 * marked MP__KIND_HEAP, its slabs charged to the heap's limit. So a size
 * class has all an object pool has: per-thread magazines (no lock and no
 * atomic read-modify-write on the fast path), a bounded depot, slabs whose
 * metadata is validated before it is written, checked mode's records,
 * the tools' events. The classes of a thread-safe heap keep their caches in
 * one block per thread (a cache group), so a heap takes one thread-cache
 * slot, not one per class. Above the largest class, an allocation gets a
 * chunk of its own, sized to a class of the same spacing, given back to the
 * chunk layer (and so to the OS past its retention) when freed.
 *
 * Classes: 8, then 16 to 128 by 16, then eight per doubling (144, 160, ...,
 * 256, 288, ..., 16384): a class is at most 12.5% larger than the largest
 * request it serves, above 128 bytes. The classes of a power of two are aligned to
 * it (up to 4096), which mp_heap_alloc_aligned uses.
 *
 * Frees come through mp_free (ptr.c), which finds the size class's pool or
 * the heap of a large allocation from the chunk registry alone.
 *
 * Locks: the heap's lock guards its class table (a class's pool is made
 * once, under it, and published with a release store) and its large list;
 * each class pool has its own. Lock order: mp__tcache_lock, tree lock, heap
 * lock, a class pool's lock, the accounting lock, the chunk lock.
 */
#ifndef MP_HEAP_H
#define MP_HEAP_H

#include "arena.h"
#include "list.h"
#include "objpool.h"
#include "sync.h"
#include "tcache.h"
#include "tree.h"

#define MP_HEAP_KIND "heap"
#define MP_HEAP_NCLASS 65                 /* classes 8 .. 16384 */
#define MP_HEAP_SMALL_MAX ((size_t)16384) /* the largest class */
#define MP_HEAP_ALIGN 16                 /* what every allocation is aligned to (8 below 16 bytes) */
/* A size class keeps at most made / MP_HEAP_FREE_SHARE free objects
 * outside the thread caches (plus a slab's worth); past that, empty slabs
 * go back to the chunk layer (and their pages, past its retention, to the
 * OS). A heap made with MP_KEEP_MEMORY keeps them all, and every idle
 * page: only a trim gives its classes' memory back. */
#define MP_HEAP_FREE_SHARE 4

_Static_assert(MP_HEAP_NCLASS <= MP_CACHE_NONE_COUNT, "a thread's block of caches fits mp__cache_none");
_Static_assert(MP_HEAP_NCLASS <= MP__CLASS_ROWS_MAX, "every class has a row in the reports");

struct mp_heap {
    mp__node node; /* first: the pool tree casts between the two */
    char node_pad[MP__HOT_OFFSET - sizeof(mp__node)];

    /* The fast path's (constant after create). */
    uint32_t fast_slot;     /* a thread-safe heap's cache group's slot, if the fast path is on and
                               it is a direct TLS entry; else 0 */
    bool fast;              /* the fast path may serve the heap (no MP_ZERO, checked mode, tools) */
    mp_objpool *cls[MP_HEAP_NCLASS]; /* the size classes, NULL until first used (acquire loads) */

    /* Configuration (constant after create). */
    unsigned flags;
    bool checked, tracked;
    bool records;           /* allocations remember their requested size (checked, tools, MP_ZERO) */
    bool is_default;        /* mp_heap_default(): never destroyed */
    mp__leak_policy leak;

    pthread_mutex_t lock;   /* the class table's making, the large list */
    mp__cache_group group;  /* thread-safe heaps: every thread's block of class caches */
    mp__acct_child acct;    /* the limit, and the parent arena's */

    /* Large allocations (under lock). */
    mp__list large;          /* the live ones */
    mp__quarantine large_quar; /* checked mode: freed ones not given back yet */
    size_t nlarge, large_bytes, large_mapped;
    size_t large_allocs, large_frees, failures;

    void *grave_next;       /* checked: the graveyard link (mp__graveyard_keep) */
};

_Static_assert(offsetof(mp_heap, fast_slot) == MP__HOT_OFFSET, "the heap's fast fields at MP__HOT_OFFSET");

static inline bool mp__heap_ok(const mp_heap *h, const char *what)
{
    return mp__node_ok((const mp__node *)h, MP__KIND_HEAP, what);
}

/* ------------------------------------------------------------ heap_class.c */

/* The class of a request of 1 .. MP_HEAP_SMALL_MAX bytes, and its size. */
static inline unsigned mp__heap_class_of(size_t size)
{
    if (size <= 128)
        return size <= 8 ? 0 : (unsigned)((size + 15) >> 4);
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1)); /* 2^b < size <= 2^(b+1) */
    return 9 + (b - 7) * 8 + (unsigned)((size - 1) >> (b - 3)) - 8;
}
size_t mp__heap_class_size(unsigned cls);
/* The size of the class-spaced block for a large request (past the largest
 * class); 0 when it overflows. */
size_t mp__heap_large_size(size_t size);

/* The pool of class cls, made on first use; NULL with errno ENOMEM. */
mp_objpool *mp__heap_class_pool(mp_heap *h, unsigned cls);
/* Makes the cache group and the accounting hooks ready (create). */
bool mp__heap_classes_init(mp_heap *h);
/* Detaches every class's caches and frees the group's blocks
 * (mp__tcache_lock held), then frees the pools (destroy). */
void mp__heap_classes_free(mp_heap *h);
/* The heap of a class pool (its accounting hooks' argument). */
static inline mp_heap *mp__heap_of_class(const mp_objpool *p) { return p->acct; }
/* The class pool's charge and uncharge (mp__objpool_spec). */
bool mp__heap_charge(void *heap, size_t bytes);
void mp__heap_uncharge(void *heap, size_t bytes);

/* mp_heap_alloc_aligned, recording `site` as the allocation's (checked
 * mode), for a caller that cannot end in a tail call into the heap (the
 * malloc drop-in's posix_memalign, which returns an error code). */
void *mp__heap_alloc_aligned_at(mp_heap *h, size_t size, size_t align, const void *site);

/* ------------------------------------------------------------ heap_large.c */

/* Every large allocation starts with this header, in a chunk of its own
 * (kind MP__KIND_HEAP, owner the heap, obj_size 0: what tells it from a
 * class pool's slab, whose obj_size is its stride). */
typedef struct mp__heap_large {
    mp__chunk chunk;
    mp__link link;      /* on the heap's large list */
    char *start;        /* the allocation */
    size_t usable;      /* its size class */
    size_t req;         /* bytes asked for */
    mp__objinfo info;   /* checked mode */
} mp__heap_large;

#define MP_HEAP_LARGE_HDR ((sizeof(mp__heap_large) + 63) & ~(size_t)63)
#define MP_HEAP_REMAP_MIN ((size_t)1 << 20) /* chunk bytes from which a realloc moves pages, not bytes */

void *mp__heap_large_alloc(mp_heap *h, size_t size, size_t align, bool zero, const void *site);
/* The large allocation p is the start of, or NULL. */
mp__heap_large *mp__heap_large_of(const mp_heap *h, const void *p);
void mp__heap_large_free(mp_heap *h, mp__heap_large *l, const void *site);
/* realloc of l to a large size, without copying: its chunk kept, cut or
 * grown in place, or moved by the OS. Returns the allocation (l's start,
 * or where it moved), or NULL with l unchanged when that cannot be done
 * (a heap in checked mode or under a tool, an aligned or standard-sized
 * one, the limit, or the OS): the caller copies. */
void *mp__heap_large_resize(mp_heap *h, mp__heap_large *l, size_t size);
/* Frees every large allocation (destroy; the heap is no longer shared). */
void mp__heap_large_free_all(mp_heap *h);

/* ------------------------------------------------------------ heap_stats.c */

void mp__heap_node_stats(const mp__node *n, mp_stats *out);
/* The size classes in use, for the reports (mp__node_ops.classes). */
size_t mp__heap_node_classes(const mp__node *n, mp__class_row *rows, size_t cap);
/* Reports the allocations still out when a checked heap is destroyed. */
void mp__heap_report_leaks(mp_heap *h);

/* --------------------------------------------------------------- ptr.c, heap.c */

/* mp_free's and mp_usable_size's way into a heap: p is in a chunk of kind
 * MP__KIND_HEAP whose registry entry is owner (a class pool, or the heap
 * of a large allocation). */
void mp__heap_free(mp__chunk *ch, void *owner, void *p, const void *site);
size_t mp__heap_usable(const mp__chunk *ch, const void *p);

#endif /* MP_HEAP_H */
