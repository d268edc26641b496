/*
 * meta.c - layer 1: the metadata allocator (see meta.h).
 *
 * Small blocks (up to META_SMALL_MAX bytes) come from spans: META_SPAN
 * bytes mapped at a META_SPAN-aligned address, a header, then blocks of
 * one size class. Classes are 16 bytes apart up to 128, then four per
 * power of two (waste under 25%). A span hands out its never-used blocks
 * in address order (so pages are touched only as they are needed) and
 * reuses freed ones first, linked through their first word.
 *
 * Larger blocks are a mapping each, with the same header at its start:
 * either kind is found from a block's address by masking it down to
 * META_SPAN (a large block starts within the first META_SPAN bytes).
 *
 * Memory goes back at once: a span whose last block is freed is unmapped
 * unless it is the only span of its class with room (one empty span per
 * class is kept, so a block allocated and freed over and over does not
 * map and unmap each time); a large block is unmapped when freed.
 *
 * Locking: one mutex guards every class list and header. Metadata is
 * allocated on slow paths only (pool creation, a thread's first use, slab
 * growth in checked mode, sets growing), so one lock does not contend.
 * Mapping a large block happens outside it.
 *
 * Under LeakSanitizer every span and large block is a root region (its
 * leak scan reads only globals, stacks and malloc'd memory, and metadata
 * may hold the only reference to a caller's malloc'd block: a cleanup's
 * argument, say). Registering happens under the lock, which fork() takes.
 */
#include "meta.h"
#include "common.h"
#include "os.h"
#include "sync.h"
#include "track.h"

#include <errno.h>
#include <string.h>

#define META_SPAN ((size_t)1 << 16)
#define META_MAGIC 0x6d657461u /* "meta" */
#define META_LARGE UINT32_MAX  /* span.cls of a large block */
#define META_NCLASS 32
#define META_SMALL_MAX ((size_t)8192)

typedef struct span {
    uint32_t magic;
    uint32_t cls;            /* class index, or META_LARGE */
    size_t bytes;            /* bytes mapped */
    struct span *prev, *next; /* in its class's list of spans with room */
    void *free;              /* freed blocks, linked through their first word */
    char *fresh, *end;       /* never-used blocks: [fresh, end) */
    size_t used;             /* blocks handed out */
    bool listed;             /* on its class's list */
} span;

/* Blocks start here: a multiple of 16 past the span's start. */
#define META_HDR ((sizeof(span) + 63) & ~(size_t)63)

typedef struct meta_class {
    span *room; /* spans with a free or never-used block */
} meta_class;

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static meta_class classes[META_NCLASS];
static size_t mapped; /* under meta_lock */

/* The class of a small request (1..META_SMALL_MAX bytes). */
static unsigned class_of(size_t size)
{
    if (size <= 128)
        return (unsigned)((size + 15) / 16) - 1;
    size_t s = size - 1;
    unsigned e = 63u - (unsigned)__builtin_clzll(s); /* 7 and up */
    return 8 + (e - 7) * 4 + (unsigned)((s >> (e - 2)) & 3);
}

static size_t class_size(unsigned cls)
{
    if (cls < 8)
        return (size_t)(cls + 1) * 16;
    unsigned k = cls - 8, e = 7 + k / 4;
    return (size_t)(5 + k % 4) << (e - 2);
}

static void list_add(meta_class *c, span *s)
{
    s->prev = NULL;
    s->next = c->room;
    if (c->room)
        c->room->prev = s;
    c->room = s;
    s->listed = true;
}

static void list_remove(meta_class *c, span *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->room = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->listed = false;
}

/* A new span for class cls, on its list; NULL when the OS says no. */
static span *span_new(unsigned cls)
{
    span *s = mp__os_map(META_SPAN, META_SPAN);
    if (!s)
        return NULL;
    size_t size = class_size(cls);
    s->magic = META_MAGIC;
    s->cls = cls;
    s->bytes = META_SPAN;
    s->fresh = (char *)s + META_HDR;
    s->end = s->fresh + (META_SPAN - META_HDR) / size * size;
    mapped += META_SPAN;
    mp__track_chunk_used(s, META_SPAN);
    list_add(&classes[cls], s);
    return s;
}

/* Takes s out of the books (meta_lock held); the caller unmaps it after
 * dropping the lock. */
static void span_forget(span *s)
{
    mapped -= s->bytes;
    mp__track_chunk_unused(s, s->bytes);
    s->magic = 0;
}

static void *small_alloc(size_t size)
{
    unsigned cls = class_of(size);
    meta_class *c = &classes[cls];
    mp__lock(&meta_lock);
    span *s = c->room ? c->room : span_new(cls);
    if (!s) {
        mp__unlock(&meta_lock);
        errno = ENOMEM;
        return NULL;
    }
    void *p;
    bool reused = s->free != NULL;
    if (reused) {
        p = s->free;
        s->free = *(void **)p;
    } else {
        p = s->fresh;
        s->fresh += class_size(cls);
    }
    s->used++;
    if (!s->free && s->fresh == s->end)
        list_remove(c, s);
    mp__unlock(&meta_lock);
    if (reused) /* never-used blocks are still as the OS gave them: zero */
        memset(p, 0, class_size(cls));
    return p;
}

static void *large_alloc(size_t size)
{
    size_t bytes;
    if (!mp__add_ok(size, META_HDR, &bytes) || bytes > SIZE_MAX - META_SPAN) {
        errno = ENOMEM;
        return NULL;
    }
    bytes = mp__align_up(bytes, mp__os_page_size());
    span *s = mp__os_map(bytes, META_SPAN);
    if (!s)
        return NULL;
    s->magic = META_MAGIC;
    s->cls = META_LARGE;
    s->bytes = bytes;
    mp__lock(&meta_lock);
    mapped += bytes;
    mp__track_chunk_used(s, bytes);
    mp__unlock(&meta_lock);
    return (char *)s + META_HDR;
}

void *mp__meta_alloc(size_t size)
{
    if (mp__os_fault_point()) {
        errno = ENOMEM;
        return NULL;
    }
    if (size == 0)
        size = 1;
    return size <= META_SMALL_MAX ? small_alloc(size) : large_alloc(size);
}

void mp__meta_free(void *p)
{
    if (!p)
        return;
    span *s = (span *)((uintptr_t)p & ~(uintptr_t)(META_SPAN - 1));
    if (s->magic != META_MAGIC) /* not a block of ours: an internal error */
        abort();
    bool unmap = false;
    mp__lock(&meta_lock);
    if (s->cls == META_LARGE) {
        span_forget(s);
        unmap = true;
    } else {
        meta_class *c = &classes[s->cls];
        *(void **)p = s->free;
        s->free = p;
        s->used--;
        if (!s->listed)
            list_add(c, s);
        if (s->used == 0 && (s->prev || s->next)) { /* empty, and not the class's only span with room */
            list_remove(c, s);
            span_forget(s);
            unmap = true;
        }
    }
    size_t bytes = s->bytes;
    mp__unlock(&meta_lock);
    if (unmap)
        mp__os_release(s, bytes);
}

size_t mp__meta_mapped(void)
{
    mp__lock(&meta_lock);
    size_t n = mapped;
    mp__unlock(&meta_lock);
    return n;
}

void mp__meta_fork_lock(void) { mp__lock(&meta_lock); }
void mp__meta_fork_unlock(void) { mp__unlock(&meta_lock); }
