/*
 * slab.c - layer 3: slab geometry, the free bitmap, taking and giving slots
 * (see slab.h for the layout and invariants).
 */
#include "slab.h"
#include "os.h"

#define WORD_BITS 64

static size_t bitmap_words(size_t nslots) { return (nslots + WORD_BITS - 1) / WORD_BITS; }

/* Header bytes (struct + bitmap) for a slab of nslots, before alignment. */
static size_t header_bytes(size_t nslots) { return sizeof(mp__slab) + bitmap_words(nslots) * sizeof(uint64_t); }

bool mp__slab_shape_for(size_t obj_size, size_t align, mp__slab_shape *out)
{
    if (obj_size == 0 || !mp__is_pow2(align) || align > MP_CHUNK_SIZE / 4)
        return false;
    size_t stride;
    if (obj_size > SIZE_MAX / 2 || !mp__add_ok(obj_size, align - 1, &stride))
        return false;
    stride &= ~(align - 1);
    /* Standard slab: as many slots as fit one chunk. The bitmap size depends
     * on the slot count, which depends on the header: start from an upper
     * bound and shrink until it fits. */
    size_t n = (MP_CHUNK_SIZE - sizeof(mp__slab)) / stride;
    while (n > 0) {
        size_t off = mp__align_up(header_bytes(n), align);
        if (off + n * stride <= MP_CHUNK_SIZE)
            break;
        n--;
    }
    if (n > 0) {
        *out = (mp__slab_shape){ .stride = stride, .align = align, .slab_size = MP_CHUNK_SIZE,
                                 .slots_off = mp__align_up(header_bytes(n), align), .nslots = (uint32_t)n };
        return true;
    }
    /* A slab of its own: one slot, starting within the first chunk unit. */
    size_t off = mp__align_up(header_bytes(1), align);
    size_t total;
    if (!mp__add_ok(off, stride, &total) || total > SIZE_MAX - MP_CHUNK_SIZE)
        return false;
    *out = (mp__slab_shape){ .stride = stride, .align = align, .slab_size = mp__align_up(total, MP_CHUNK_SIZE),
                             .slots_off = off, .nslots = 1 };
    return true;
}

mp__slab *mp__slab_new(const mp__slab_shape *shape, uint32_t kind, void *owner)
{
    /* Only the header and the free bitmap must start zeroed; slots are
     * written before they are read. */
    mp__slab *s = (mp__slab *)mp__chunk_alloc_slab(shape->slab_size, shape->slots_off, kind, owner);
    if (!s)
        return NULL;
    s->chunk.obj_size = shape->stride;
    s->link.prev = s->link.next = NULL;
    s->records = NULL;
    s->slots = (char *)s + shape->slots_off;
    s->nslots = shape->nslots;
    s->nmade = 0;
    s->nfree = 0;
    s->hbase = 0;
    s->recip = ((uint64_t)1 << 32) / shape->stride + 1;
    s->idle = s->aged = s->bare = 0;
    /* The bitmap is all zero (mp__chunk_alloc zeroed up to slots_off). */
    return s;
}

void mp__slab_free(mp__slab *s) { mp__chunk_free(&s->chunk); }

/* ------------------------------------------------------------ page return */

/* Pages are tracked in a 64-bit mask: slabs past 64 pages (a slab of its
 * own, one slot, released whole when freed) return none. */
#define MASK_PAGES 64

/* The pages slot i overlaps: [*first, *last], offsets from the slab start. */
static void slot_pages(const mp__slab *s, uint32_t i, size_t page, size_t *first, size_t *last)
{
    size_t start = (size_t)(s->slots - (char *)s) + (size_t)i * s->chunk.obj_size;
    *first = start / page;
    *last = (start + s->chunk.obj_size - 1) / page;
}

/* Un-marks the pages of the n slots in objs: they are in use again. */
static void cover_pages(mp__slab *s, void *const *objs, size_t n)
{
    size_t page = mp__os_page_size();
    for (size_t k = 0; k < n; k++) {
        size_t first, last;
        slot_pages(s, mp__slab_index(s, objs[k]), page, &first, &last);
        for (size_t q = first; q <= last && q < MASK_PAGES; q++) {
            s->idle &= ~((uint64_t)1 << q);
            s->aged &= ~((uint64_t)1 << q);
            s->bare &= ~((uint64_t)1 << q);
        }
    }
}

/* True when no made slot overlapping page q is in use. */
static bool page_unused(const mp__slab *s, size_t q, size_t page)
{
    size_t off = (size_t)(s->slots - (char *)s), stride = s->chunk.obj_size;
    size_t lo = q * page, hi = lo + page - 1;
    if (hi < off)
        return false; /* all header */
    uint32_t j0 = lo > off ? (uint32_t)((lo - off) / stride) : 0;
    uint32_t j1 = (uint32_t)((hi - off) / stride);
    uint32_t made = s->nmade;
    if (j1 >= made)
        j1 = made ? made - 1 : 0;
    for (uint32_t j = j0; j <= j1 && j < made; j++)
        if (!(s->freemap[j / WORD_BITS] & ((uint64_t)1 << (j % WORD_BITS))))
            return false;
    return true;
}

void mp__slab_note_idle(mp__slab *s, const void *obj)
{
    size_t page = mp__os_page_size(), first, last;
    slot_pages(s, mp__slab_index(s, obj), page, &first, &last);
    if (first == 0)
        first = 1;
    if (last >= MASK_PAGES)
        last = MASK_PAGES - 1;
    for (size_t q = first; q <= last; q++) {
        uint64_t bit = (uint64_t)1 << q;
        if (!((s->idle | s->bare) & bit) && page_unused(s, q, page))
            s->idle |= bit;
    }
}

void mp__slab_return_idle(mp__slab *s, bool all)
{
    size_t page = mp__os_page_size();
    uint64_t gone = all ? s->idle : s->aged, idle = gone;
    while (idle) {
        unsigned from = (unsigned)__builtin_ctzll(idle);
        unsigned run = (unsigned)__builtin_ctzll(~(idle >> from)); /* idle < 2^64: a clear bit exists above */
        mp__os_decommit((char *)s + (size_t)from * page, (size_t)run * page);
        idle &= run < 64 ? ~((((uint64_t)1 << run) - 1) << from) : 0;
    }
    s->bare |= gone;
    s->idle &= ~gone;
    s->aged = s->idle;
}

size_t mp__slab_take(mp__slab *s, void **out, size_t n, size_t *fresh)
{
    size_t stride = s->chunk.obj_size;
    /* Free slots first (already made), lowest address first. A refill takes
     * a whole magazine here, so the loop is kept to the bare minimum per
     * object: the bound (n, or every free slot) is fixed up front and
     * nfree is updated once at the end. */
    size_t lim = n < s->nfree ? n : s->nfree, words = bitmap_words(s->nmade);
    void **o = out, **end = out + lim;
    for (size_t w = 0; o != end && w < words; w++) {
        uint64_t bits = s->freemap[w];
        char *word_base = s->slots + w * WORD_BITS * stride;
        for (; bits != 0; bits &= bits - 1) {
            if (o == end)
                break;
            *o++ = word_base + (size_t)(unsigned)__builtin_ctzll(bits) * stride;
        }
        s->freemap[w] = bits;
    }
    size_t got = (size_t)(o - out);
    s->nfree -= (uint32_t)got;
    size_t made_before = got;
    uint32_t made = s->nmade;
    while (got < n && made < s->nslots)
        out[got++] = mp__slab_slot(s, made++);
    __atomic_store_n(&s->nmade, made, __ATOMIC_RELAXED); /* read unlocked by mp__slab_is_slot */
    *fresh = got - made_before;
    if (mp_unlikely((s->idle | s->bare) != 0))
        cover_pages(s, out, got);
    return got;
}


void mp__slab_make_free(mp__slab *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        s->freemap[i / WORD_BITS] |= (uint64_t)1 << (i % WORD_BITS);
    s->nmade = n;
    s->nfree = n;
}
