/*
 * heap.c - libFuzzer target: heaps against a shadow model.
 *
 * Up to three heaps live at once (options from the input: MP_SINGLE_THREAD
 * or thread-safe, MP_ZERO, a limit, no parent or an arena that may be
 * reset), plus the default heap. Operations: create, destroy, alloc,
 * calloc, realloc (up and down, in place or moving, to and from NULL),
 * alloc_aligned, mp_free, trim, stats, foreach, the parent arena's reset,
 * and misuse the library must report and survive.
 *
 * Sizes run from 0 to 300 KiB (every small class, the large chunks past
 * 16 KiB, some near the class edges), alignments from 1 to 64 KiB. The
 * model knows every live block (heap, size asked, stamp) and checks:
 *   - contents: a block keeps its stamp until freed; realloc keeps the
 *     common prefix; calloc and MP_ZERO heaps give zeroes; alignment;
 *     mp_usable_size at least the size asked;
 *   - no two live blocks overlap (the newest is checked against the rest);
 *   - statistics: objects_in_use, allocs and frees exactly, bytes_in_use
 *     between the sizes asked and the usable sizes; the limit: a failure
 *     is ENOMEM only in a heap with a limit or past 256 MiB asked;
 *   - foreach visits exactly the live blocks;
 *   - misuse (a foreign pointer to mp_free and realloc, a block realloc'd
 *     into another heap, checked mode's double free) is reported once and
 *     changes nothing.
 */
#include "fuzz.h"

enum { HEAPS = 3, LIVE_MAX = 192, OPS_MAX = 400 };

typedef struct block {
    char *p;
    int heap; /* index into heaps, or HEAPS for the default heap */
    size_t size;
    uint32_t tag;
} block;

typedef struct fheap {
    mp_heap *h; /* NULL: the slot is empty */
    unsigned flags;
    size_t limit;
    bool in_arena;
    size_t allocs, frees; /* since create, as the model counts them */
} fheap;

static fheap heaps[HEAPS + 1]; /* [HEAPS]: the default heap */
static block live[LIVE_MAX];
static size_t nlive;
static mp_arena *arena;
static uint32_t next_tag;
static mp_stats default_base;

static mp_heap *heap_of(int i) { return heaps[i].h; }

static size_t pick_size(fz_input *in)
{
    switch (fz_u8(in) % 8) {
    case 0: return fz_below(in, 17);                       /* 0 .. 16 */
    case 1: return fz_below(in, 1025);                     /* the table's classes */
    case 2: return 1024 + fz_below(in, 15361);             /* up to the largest class */
    case 3: return 16384 + fz_below(in, 3) - 1;            /* its edge */
    case 4: return 16385 + fz_below(in, 300 * 1024);       /* large */
    case 5: return ((size_t)1 << fz_below(in, 15)) + fz_below(in, 3) - 1; /* powers of two and neighbours */
    default: return 1 + fz_below(in, 600);
    }
}

/* ------------------------------------------------------------- checks */

static void check_block(const block *b, const char *what)
{
    fz_verify(b->p, b->size, b->tag, what);
    FZ_CHECK(mp_usable_size(b->p) >= b->size, "%s: usable %zu < %zu", what, mp_usable_size(b->p), b->size);
}

/* The first keep bytes of a block stamped as a block of n bytes (fz_fill
 * stamps a large block at some offsets only, chosen by its size). */
static void verify_prefix(const char *p, size_t keep, size_t n, uint32_t tag, const char *what)
{
    for (size_t i = 0; i < keep; i = fz_next(n, i))
        FZ_CHECK((unsigned char)p[i] == fz_pattern(tag, i), "%s %p (%zu of %zu bytes, tag %u) damaged at %zu",
                 what, (const void *)p, keep, n, tag, i);
}

static void check_apart(const block *b)
{
    uintptr_t lo = (uintptr_t)b->p, hi = lo + (b->size ? b->size : 1);
    for (size_t i = 0; i < nlive; i++) {
        if (&live[i] == b)
            continue;
        uintptr_t l2 = (uintptr_t)live[i].p, h2 = l2 + (live[i].size ? live[i].size : 1);
        FZ_CHECK(hi <= l2 || h2 <= lo, "blocks %p+%zu and %p+%zu overlap", (void *)b->p, b->size,
                 (void *)live[i].p, live[i].size);
    }
}

static void check_stats(int i)
{
    fheap *f = &heaps[i];
    if (!f->h)
        return;
    mp_stats s;
    FZ_CHECK(mp_heap_stats(f->h, &s) == 0, "stats");
    size_t count = 0, asked = 0;
    for (size_t k = 0; k < nlive; k++)
        if (live[k].heap == i) {
            count++;
            asked += live[k].size;
        }
    if (i == HEAPS) { /* the default heap: other code may use it, so counts are relative */
        FZ_CHECK(s.allocs - default_base.allocs == f->allocs && s.frees - default_base.frees == f->frees,
                 "default heap: allocs %zu frees %zu, model %zu %zu", s.allocs - default_base.allocs,
                 s.frees - default_base.frees, f->allocs, f->frees);
        return;
    }
    FZ_CHECK(s.objects_in_use == count, "heap %d: objects_in_use %zu, model %zu", i, s.objects_in_use, count);
    FZ_CHECK(s.allocs == f->allocs && s.frees == f->frees, "heap %d: allocs %zu frees %zu, model %zu %zu", i,
             s.allocs, s.frees, f->allocs, f->frees);
    FZ_CHECK(s.bytes_in_use >= asked, "heap %d: bytes_in_use %zu < %zu asked", i, s.bytes_in_use, asked);
    FZ_CHECK(s.bytes_mapped >= s.bytes_in_use, "heap %d: mapped %zu < in use %zu", i, s.bytes_mapped,
             s.bytes_in_use);
}

/* ---------------------------------------------------------- operations */

static void forget_heap(int i)
{
    size_t k = 0;
    for (size_t j = 0; j < nlive; j++)
        if (live[j].heap != i)
            live[k++] = live[j];
    nlive = k;
    heaps[i] = (fheap){ 0 };
}

static void op_create(fz_input *in)
{
    int i = (int)fz_below(in, HEAPS);
    if (heaps[i].h)
        return;
    uint8_t o = fz_u8(in);
    unsigned flags = (o & 1 ? MP_SINGLE_THREAD : 0) | (o & 2 ? MP_ZERO : 0);
    size_t limit = o & 4 ? (size_t)(64 + fz_below(in, 4096)) * 1024 : 0;
    bool in_arena = (o & 8) != 0;
    if (in_arena && !arena) {
        arena = mp_arena_create(NULL, &(mp_arena_opts){ .name = "fuzz-parent" });
        FZ_CHECK(arena != NULL, "arena create");
    }
    mp_heap *h = mp_heap_create(in_arena ? arena : NULL,
                                &(mp_heap_opts){ .name = "fuzz", .limit = limit, .flags = flags | MP_LEAK_IGNORE });
    FZ_CHECK(h != NULL, "heap create: errno %d", errno);
    heaps[i] = (fheap){ .h = h, .flags = flags, .limit = limit, .in_arena = in_arena };
}

static void op_destroy(int i)
{
    mp_heap_destroy(heaps[i].h);
    fz_reported_nothing("destroy");
    forget_heap(i);
}

static void took(int i, char *p, size_t size, bool zeroed, size_t align)
{
    if (align > 1)
        FZ_CHECK(((uintptr_t)p & (align - 1)) == 0, "block %p not aligned to %zu", (void *)p, align);
    else
        FZ_CHECK(((uintptr_t)p & (size >= 16 ? 15 : 7)) == 0, "block %p of %zu misaligned", (void *)p, size);
    if (zeroed || (heaps[i].flags & MP_ZERO))
        FZ_CHECK(fz_all_zero(p, size), "block of %zu not zeroed", size);
    block *b = &live[nlive++];
    *b = (block){ .p = p, .heap = i, .size = size, .tag = ++next_tag };
    fz_fill(p, size, b->tag);
    check_apart(b);
    heaps[i].allocs++;
}

static void failed(int i, size_t size, const char *what)
{
    FZ_CHECK(errno == ENOMEM, "%s of %zu: errno %d", what, size, errno);
    FZ_CHECK(heaps[i].limit || heaps[i].in_arena || size > ((size_t)256 << 20), "%s of %zu failed without a limit",
             what, size);
}

static void op_alloc(fz_input *in, int kind)
{
    int i = (int)fz_below(in, HEAPS + 1);
    if (!heaps[i].h || nlive == LIVE_MAX)
        return;
    size_t size = pick_size(in), align = 1;
    char *p;
    errno = 0;
    if (kind == 0) {
        p = mp_heap_alloc(heaps[i].h, size);
    } else if (kind == 1) {
        size_t n = 1 + fz_below(in, 8);
        size = size / n * n;
        p = mp_heap_calloc(heaps[i].h, n, size / n);
    } else {
        align = (size_t)1 << fz_below(in, 17);
        p = mp_heap_alloc_aligned(heaps[i].h, size, align);
    }
    fz_reported_nothing("alloc");
    if (!p) {
        failed(i, size, "alloc");
        return;
    }
    took(i, p, size, kind == 1, align);
}

static void op_free(fz_input *in)
{
    if (!nlive)
        return;
    size_t k = fz_below(in, nlive);
    check_block(&live[k], "free");
    mp_free(live[k].p);
    fz_reported_nothing("free");
    heaps[live[k].heap].frees++;
    live[k] = live[--nlive];
}

static void op_realloc(fz_input *in)
{
    if (!nlive)
        return;
    size_t k = fz_below(in, nlive);
    block *b = &live[k];
    check_block(b, "realloc");
    size_t size = fz_u8(in) & 1 ? b->size + fz_below(in, 64) : pick_size(in);
    errno = 0;
    char *q = mp_heap_realloc(heap_of(b->heap), b->p, size);
    fz_reported_nothing("realloc");
    if (!q) {
        failed(b->heap, size, "realloc");
        check_block(b, "a failed realloc's block"); /* intact */
        return;
    }
    size_t keep = b->size < size ? b->size : size;
    verify_prefix(q, keep, b->size, b->tag, "realloc's prefix");
    if ((heaps[b->heap].flags & MP_ZERO) && size > b->size)
        FZ_CHECK(fz_all_zero(q + b->size, size - b->size), "MP_ZERO realloc growth not zeroed");
    b->p = q;
    b->size = size;
    b->tag = ++next_tag;
    fz_fill(q, size, b->tag);
    check_apart(b);
    heaps[b->heap].allocs++;
    heaps[b->heap].frees++;
}

static void count_visit(void *p, size_t size, void *arg)
{
    (void)p;
    (void)size;
    ++*(size_t *)arg;
}

static void op_foreach(fz_input *in)
{
    int i = (int)fz_below(in, HEAPS);
    if (!heaps[i].h)
        return;
    size_t n = 0, want = 0;
    for (size_t k = 0; k < nlive; k++)
        want += live[k].heap == i;
    size_t r = mp_heap_foreach(heaps[i].h, count_visit, &n);
    FZ_CHECK(r == want && n == want, "foreach: %zu visits, returned %zu, model %zu", n, r, want);
}

static void op_arena_reset(void)
{
    if (!arena)
        return;
    mp_arena_reset(arena); /* destroys the heaps under it, blocks and all */
    fz_reported_nothing("arena reset");
    for (int i = 0; i < HEAPS; i++)
        if (heaps[i].h && heaps[i].in_arena)
            forget_heap(i);
}

static void op_misuse(fz_input *in)
{
    static char not_ours[64];
    switch (fz_u8(in) % 3) {
    case 0:
        mp_free(not_ours + 8);
        fz_reported("foreign free", "mpool: mp_free of a pointer not from", NULL);
        break;
    case 1: {
        int i = (int)fz_below(in, HEAPS);
        if (!heaps[i].h)
            return;
        FZ_CHECK(mp_heap_realloc(heaps[i].h, not_ours, 10) == NULL, "foreign realloc");
        fz_reported("foreign realloc", "mpool: realloc of a pointer not from mpool", NULL);
        break;
    }
    default: {
        if (!nlive)
            return;
        block *b = &live[fz_below(in, nlive)];
        int other = (b->heap + 1) % HEAPS;
        if (!heaps[other].h || other == b->heap || b->heap == HEAPS)
            return;
        FZ_CHECK(mp_heap_realloc(heaps[other].h, b->p, b->size + 1) == NULL, "realloc into another heap");
        fz_reported("realloc into another heap", "mpool: realloc of a pointer from another pool", NULL);
        check_block(b, "a block realloc'd into the wrong heap");
        break;
    }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = { data, data + size };
    memset(heaps, 0, sizeof heaps);
    nlive = 0;
    next_tag = 0;
    arena = NULL;
    heaps[HEAPS].h = mp_heap_default();
    FZ_CHECK(mp_heap_stats(heaps[HEAPS].h, &default_base) == 0, "default heap stats");
    fz_expect_none();
    for (int ops = 0; ops < OPS_MAX && fz_more(&in); ops++) {
        uint8_t op = fz_u8(&in);
        switch (op % 12) {
        case 0: op_create(&in); break;
        case 1: {
            int i = (int)fz_below(&in, HEAPS);
            if (heaps[i].h)
                op_destroy(i);
            break;
        }
        case 2:
        case 3: op_alloc(&in, 0); break;
        case 4: op_alloc(&in, 1); break;
        case 5: op_alloc(&in, 2); break;
        case 6:
        case 7: op_free(&in); break;
        case 8: op_realloc(&in); break;
        case 9: op_foreach(&in); break;
        case 10: {
            int i = (int)fz_below(&in, HEAPS + 1);
            if (heaps[i].h)
                mp_heap_trim(heaps[i].h);
            break;
        }
        default:
            if (op & 0x10)
                op_arena_reset();
            else
                op_misuse(&in);
        }
        check_stats((int)(op >> 4) % (HEAPS + 1));
    }
    /* Everything goes: every block checked and freed, every heap destroyed. */
    while (nlive) {
        check_block(&live[nlive - 1], "final free");
        heaps[live[nlive - 1].heap].frees++;
        mp_free(live[--nlive].p);
    }
    for (int i = 0; i <= HEAPS; i++)
        check_stats(i);
    for (int i = 0; i < HEAPS; i++)
        if (heaps[i].h && !heaps[i].in_arena)
            mp_heap_destroy(heaps[i].h);
    if (arena)
        mp_arena_destroy(arena);
    fz_reported_nothing("the end");
    return 0;
}
