/*
 * heap_large.c - layer 6: a heap's allocations past its largest size
 * class (the model is in heap.h).
 *
 *   | mp__heap_large | pad to align | the allocation (usable bytes) | untouched |
 *   chunk                           start
 *
 * The chunk is MP_HEAP_LARGE_HDR + the padding + the class-spaced size: a
 * standard chunk up to MP_CHUNK_SIZE (the chunk layer keeps freed ones for
 * reuse), whole pages past it; pages past the allocation are never
 * touched, so never committed. Its registry entry is the heap, and its obj_size 0.
 * Freed, it goes back to the chunk layer, which may keep it for reuse
 * (bounded, chunk.h); a new allocation may get a kept chunk up to a
 * quarter larger than it needs, and is charged for the whole chunk. A
 * realloc from large to large keeps the chunk when the new size fits it
 * with at most a quarter to spare; from MP_HEAP_REMAP_MIN up, it resizes
 * the chunk in place when it can and else has the OS move its pages
 * (mp__heap_large_resize): no copy. Checked
 * mode and the memory tools take none of these paths: every chunk is new
 * and every freed one goes back, so nothing they watch is reused early.
 *
 * Under a memory tool the allocation is made accessible for exactly the
 * requested bytes. In checked mode the bytes past the request, up to the
 * class size, hold MP_FILL_REDZONE and are checked at free; the header
 * keeps the allocation's sites.
 */
#include "heap.h"
#include "os.h"
#include "track.h"

/* Where the allocation starts in a chunk, and the chunk's bytes. false
 * when they overflow. */
static bool large_geometry(size_t usable, size_t align, size_t *off, size_t *bytes)
{
    /* Chunks are MP_CHUNK_SIZE-aligned: up to that the offset is known;
     * beyond it the worst case is reserved (untouched pages cost nothing). */
    *off = align <= MP_CHUNK_SIZE ? mp__align_up(MP_HEAP_LARGE_HDR, align) : MP_HEAP_LARGE_HDR + align;
    return mp__add_ok(*off, usable, bytes) && *bytes <= SIZE_MAX - MP_CHUNK_SIZE;
}

/* Whether h's large allocations may reuse chunks and move pages (not
 * under checked mode or a memory tool: see the top of the file). */
static bool reuses_chunks(const mp_heap *h) { return !h->checked && !h->tracked; }

void *mp__heap_large_alloc(mp_heap *h, size_t size, size_t align, bool zero, const void *site)
{
    size_t usable = mp__heap_large_size(size), off, bytes;
    if (!usable || !large_geometry(usable, align, &off, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t charge = bytes <= MP_CHUNK_SIZE ? MP_CHUNK_SIZE : mp__align_up(bytes, mp__os_page_size());
    if (!mp__heap_charge(h, charge)) {
        mp__lock(&h->lock);
        h->failures++;
        mp__unlock(&h->lock);
        errno = ENOMEM;
        return NULL;
    }
    /* A fresh chunk is zero; one the chunk layer kept is cleared as far as
     * needed: the header always, the allocation when it must read zero. */
    bool must_zero = zero || (h->flags & MP_ZERO);
    size_t zero_len = must_zero ? off + size : MP_HEAP_LARGE_HDR;
    mp__chunk *c = reuses_chunks(h) ? mp__chunk_alloc_fit(bytes, charge + charge / 4, zero_len, MP__KIND_HEAP, h)
                                    : mp__chunk_alloc(bytes, zero_len, MP__KIND_HEAP, h);
    if (c && c->size > charge && !mp__heap_charge(h, c->size - charge))
        c = mp__chunk_resize(c, charge); /* a kept chunk larger than the limit allows: cut to size */
    if (!c) {
        mp__heap_uncharge(h, charge);
        mp__lock(&h->lock);
        h->failures++;
        mp__unlock(&h->lock);
        errno = ENOMEM;
        return NULL;
    }
    mp__heap_large *l = (mp__heap_large *)c;
    l->start = (char *)mp__align_up_ptr((uintptr_t)c + MP_HEAP_LARGE_HDR, align);
    if ((uintptr_t)l->start - (uintptr_t)c >= MP_CHUNK_SIZE && !mp__chunk_alias(c, (uintptr_t)l->start)) {
        mp__chunk_free(c);
        mp__heap_uncharge(h, charge);
        errno = ENOMEM;
        return NULL;
    }
    l->usable = usable;
    l->req = size;
    l->info = (mp__objinfo){ .state = MP_OBJ_OUT, .alloc_site = site, .req = size };
    if (h->checked)
        memset(l->start + size, MP_FILL_REDZONE, usable - size);
    if (h->tracked) {
        mp__track_block_new(h, l->start, usable);
        mp__track_obj_out(h, l->start, size, must_zero);
    }
    mp__lock(&h->lock);
    mp__list_push(&h->large, &l->link);
    h->nlarge++;
    h->large_bytes += usable;
    h->large_mapped += c->size;
    h->large_allocs++;
    mp__unlock(&h->lock);
    return l->start;
}

mp__heap_large *mp__heap_large_of(const mp_heap *h, const void *p)
{
    mp__chunk *c = mp__chunk_lookup(p);
    if (!c || c->kind != MP__KIND_HEAP || c->obj_size != 0 || c->owner != h)
        return NULL;
    mp__heap_large *l = (mp__heap_large *)c;
    return l->start == p ? l : NULL;
}

static void large_release(mp_heap *h, mp__heap_large *l)
{
    size_t size = l->chunk.size;
    mp__lock(&h->lock);
    h->large_mapped -= size;
    mp__unlock(&h->lock);
    if (h->tracked)
        mp__track_release(l, size);
    if (reuses_chunks(h))
        mp__chunk_free_cached(&l->chunk);
    else
        mp__chunk_free(&l->chunk);
    mp__heap_uncharge(h, size);
}

/* The chunk bytes a large allocation of `usable` bytes at offset off
 * needs: whole pages; 0 when that is no more than a standard chunk, which
 * is never resized. */
static size_t resized_bytes(size_t off, size_t usable)
{
    size_t bytes;
    if (!mp__add_ok(off, usable, &bytes) || bytes <= MP_CHUNK_SIZE || bytes > SIZE_MAX - MP_CHUNK_SIZE)
        return 0;
    return mp__align_up(bytes, mp__os_page_size());
}

void *mp__heap_large_resize(mp_heap *h, mp__heap_large *l, size_t size)
{
    size_t usable = mp__heap_large_size(size), off = (size_t)(l->start - (char *)l);
    size_t old_size = l->chunk.size, need = usable ? resized_bytes(off, usable) : 0;
    if (!reuses_chunks(h) || !need || old_size <= MP_CHUNK_SIZE || l->chunk.alias)
        return NULL;
    /* Kept as it is when it fits without wasting more than a quarter. */
    size_t new_size = need <= old_size && old_size - need <= old_size / 4 ? old_size : need;
    /* Else resized by the OS only when copying would cost more: each call
     * that unmaps or moves pages makes every CPU flush its TLB. */
    if (new_size != old_size && new_size < MP_HEAP_REMAP_MIN && old_size < MP_HEAP_REMAP_MIN)
        return NULL;
    if (new_size > old_size && !mp__heap_charge(h, new_size - old_size))
        return NULL;
    mp__heap_large *n = l;
    if (new_size != old_size) {
        /* Off the list while it may move: the list links live in the chunk. */
        mp__lock(&h->lock);
        mp__list_remove(&h->large, &l->link);
        mp__unlock(&h->lock);
        n = (mp__heap_large *)mp__chunk_resize(&l->chunk, new_size);
        if (!n) {
            n = l;
            new_size = old_size;
        }
        n->start = (char *)n + off;
        mp__lock(&h->lock);
        mp__list_push(&h->large, &n->link);
        mp__unlock(&h->lock);
        if (new_size < old_size)
            mp__heap_uncharge(h, old_size - new_size);
        if (n == l && new_size == old_size && need > old_size) {
            mp__heap_uncharge(h, need - old_size);
            return NULL; /* the OS could not: the caller copies */
        }
    }
    if ((h->flags & MP_ZERO) && size > n->req)
        memset(n->start + n->req, 0, size - n->req);
    mp__lock(&h->lock);
    h->large_bytes += usable - n->usable;
    h->large_mapped += new_size - old_size;
    h->large_allocs++; /* as a realloc that moves counts */
    h->large_frees++;
    mp__unlock(&h->lock);
    n->usable = usable;
    n->req = n->info.req = size;
    return n->start;
}

/* Checked mode: a freed large allocation waits in the quarantine, filled
 * with MP_FILL_FREED and still registered, so that a second free of it is
 * named as one, and a write to it is seen when it leaves. Returns the one
 * that leaves (to be given back), or NULL. */
static mp__heap_large *checked_free(mp_heap *h, mp__heap_large *l, const void *site)
{
    if (h->tracked) /* the tools see it freed already: the library reads it */
        mp__track_obj_touch(l->start, l->usable);
    if (!mp__filled(l->start + l->req, l->usable - l->req, MP_FILL_REDZONE))
        mp__misuse_obj("write past the end of an allocation", MP_HEAP_KIND, h->node.name, l->start, &l->info);
    l->info.state = MP_OBJ_FREE;
    l->info.free_site = site;
    memset(l->start, MP_FILL_FREED, l->usable);
    if (h->tracked)
        mp__track_obj_hide(l->start, l->usable);
    mp__lock(&h->lock);
    mp__heap_large *out = mp__quarantine_push(&h->large_quar, l);
    mp__unlock(&h->lock);
    if (out && out->info.state == MP_OBJ_FREE) {
        if (h->tracked)
            mp__track_obj_touch(out->start, out->usable);
        if (!mp__filled(out->start, out->usable, MP_FILL_FREED))
            mp__misuse_obj("write to a freed allocation", MP_HEAP_KIND, h->node.name, out->start, &out->info);
    }
    return out;
}

void mp__heap_large_free(mp_heap *h, mp__heap_large *l, const void *site)
{
    if (l->info.state == MP_OBJ_FREE) { /* still in the quarantine: checked mode */
        mp__misuse_obj("double free", MP_HEAP_KIND, h->node.name, l->start, &l->info);
        return;
    }
    if (h->tracked)
        mp__track_obj_in(h, l->start, l->usable);
    mp__lock(&h->lock);
    mp__list_remove(&h->large, &l->link);
    h->nlarge--;
    h->large_bytes -= l->usable;
    h->large_frees++;
    mp__unlock(&h->lock);
    if (h->checked && !(l = checked_free(h, l, site)))
        return;
    large_release(h, l);
}

void mp__heap_large_free_all(mp_heap *h)
{
    while (h->large.head) {
        mp__heap_large *l = mp__list_entry(h->large.head, mp__heap_large, link);
        mp__list_remove(&h->large, &l->link);
        if (h->tracked)
            mp__track_obj_in(h, l->start, l->usable);
        large_release(h, l);
    }
    for (size_t i = 0; i < h->large_quar.len; i++)
        large_release(h, mp__quarantine_at(&h->large_quar, i));
    mp__quarantine_fini(&h->large_quar);
    h->nlarge = h->large_bytes = h->large_mapped = 0;
}
