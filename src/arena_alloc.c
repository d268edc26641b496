/*
 * arena_alloc.c - layer 6: allocating from an arena and mp_arena_free (the
 * model is in arena.h): the public allocation calls, the inline fast
 * bump, the slow path, large allocations, and the checks of a freed
 * pointer.
 *
 * Fast path (MP__ARENA_PLAIN): bump fast.cur within fast.end, count, done;
 * freeing fast.last rolls fast.cur back. No lock, no atomic, no flag test:
 * every other arena keeps fast.cur == fast.end == NULL, so its fit check
 * fails and it takes alloc_slow, which validates, allocates small
 * (arena_bump.c) or large (here), then finishes in arena_hand_out.
 *
 * Large allocations: a chunk each, on the newest-first `larges` list
 * (under the mutex in CAS mode), counted in nlarge and large_bytes
 * (= sum of their sizes, what they add to bytes in use). mp_arena_free
 * gives one back at once, after recording the peak.
 */
#include "arena.h"
#include "track.h"

#include <stdarg.h>
#include <stdio.h>

static const char KIND[] = MP_ARENA_KIND;

typedef mp__arena_block block;

/* ---------------------------------------------------------------- large */

static void large_link(mp_arena *a, block *blk)
{
    mp__list_push(&a->larges, &blk->link);
    a->nlarge++;
    a->large_bytes += (size_t)(blk->end - blk->start);
}

static void large_unlink(mp_arena *a, block *blk)
{
    mp__list_remove(&a->larges, &blk->link);
    a->nlarge--;
    a->large_bytes -= (size_t)(blk->end - blk->start);
}

/* zero: the caller needs the allocation to read as zero (mp_calloc). A
 * chunk from the chunk cache is then cleared; a fresh one is zero already. */
static char *large_alloc(mp_arena *a, size_t size, size_t align, bool zero, mp__arena_grant *g)
{
    /* Chunks are MP_CHUNK_SIZE-aligned, so up to that the offset is known;
     * beyond it the worst case is reserved (untouched pages cost nothing). */
    size_t hdr = MP_ARENA_BLOCK_HDR;
    size_t off = align <= MP_CHUNK_SIZE ? mp__align_up(hdr, align) : hdr + align;
    size_t reserve = off + size + a->rz;
    size_t charge = mp__arena_page_round(reserve);
    if (!mp__arena_acct_charge(a, charge, charge))
        return NULL;
    /* MP_ZERO (arena_hand_out) and mp_calloc count on a large allocation
     * reading as zero; anyone else writes it before reading, so only the
     * block header needs clearing. */
    size_t zero_len = zero || a->zero ? reserve : hdr;
    mp__chunk *c = mp__chunk_alloc(reserve, zero_len, MP__KIND_ARENA, a);
    if (!c) {
        mp__arena_acct_uncharge(a, charge);
        errno = ENOMEM;
        return NULL;
    }
    block *blk = (block *)c;
    blk->large = 1;
    blk->start = (char *)mp__align_up_ptr((uintptr_t)c + hdr, align);
    blk->end = blk->start + size;
    blk->top = blk->hw = blk->end;
    blk->span = charge;
    if (a->tracked)
        mp__track_block_new(a, mp__arena_block_base(blk) + hdr, charge - hdr);
    mp__arena_lock(a);
    large_link(a, blk);
    a->allocs++;
    mp__arena_unlock(a);
    g->blk = blk;
    g->from = blk->start;
    g->large = true;
    return blk->start;
}

void mp__arena_large_free(mp_arena *a, block *blk)
{
    mp__arena_lock(a);
    mp__arena_note_peak(a);
    large_unlink(a, blk);
    mp__arena_unlock(a);
    mp__arena_block_release(a, blk);
}

/* --------------------------------------------------------- allocation */

/* The last step of every slow allocation of an arena with MP_ZERO, tools
 * or checked mode. */
static void *arena_hand_out(mp_arena *a, char *p, size_t size, const mp__arena_grant *g, const void *site)
{
    bool clean = !a->debug || mp__arena_debug_out(a, p, size, g, site);
    if (a->zero && !(g->large && !a->checked)) /* large_alloc zeroed a large one */
        memset(p, 0, size);
    if (!clean)
        mp__misuse("write to arena memory after reset or free", KIND, a->node.name, p);
    return p;
}

/* Every allocation that the inline fast path did not finish: validates,
 * then small or large, then arena_hand_out. zero: as large_alloc's. */
static MP_NOINLINE void *alloc_slow(mp_arena *a, size_t size, size_t align, bool zero, const void *site)
{
    if (!mp__arena_ok(a, "allocation from a destroyed or invalid arena"))
        return NULL;
    /* total is only an overflow guard: once size + align + header + red
     * zone + a chunk fits in size_t, large_alloc's offset, reserve, page and
     * chunk rounding cannot wrap. */
    size_t total;
    if (!mp__is_pow2(align) || !mp__add_ok(size, align, &total) ||
        !mp__add_ok(total, MP_ARENA_BLOCK_HDR + MP_REDZONE + MP_CHUNK_SIZE, &total)) {
        errno = EINVAL;
        return NULL;
    }
    if (size == 0)
        size = 1; /* a unique pointer: it takes one byte */
    if (a->debug && !mp__arena_rec_reserve(a)) {
        mp__arena_count(a, &a->failures, 1);
        return NULL;
    }
    mp__arena_grant g = { 0 };
    char *p;
    if (size <= a->large_max && align <= MP_ARENA_SMALL_ALIGN_MAX)
        p = a->mode == MP__ARENA_CAS ? mp__arena_cas_small(a, size, align, &g)
                                     : mp__arena_st_small(a, size, align, &g);
    else
        p = large_alloc(a, size, align, zero, &g);
    if (!p) {
        if (a->debug)
            mp__arena_rec_unreserve(a);
        mp__arena_count(a, &a->failures, 1);
        errno = ENOMEM;
        return NULL;
    }
    return a->post ? arena_hand_out(a, p, size, &g, site) : p;
}

/* The fast path: PLAIN arenas only (the others have cur == end == NULL, so
 * the fit check fails for them: next >= size > 0). size - 1 < large_max
 * also sends size 0 to the slow path. */
static inline bool fast_bump(mp_arena *a, size_t size, size_t align, void **out)
{
    uintptr_t p = mp__align_up_ptr((uintptr_t)a->fast.cur, align);
    uintptr_t next = p + size; /* cannot wrap once size <= large_max */
    if (mp_likely(size - 1 < a->large_max) && mp_likely(next <= (uintptr_t)a->fast.end)) {
        a->fast.cur = (char *)next;
        a->fast.last = (char *)p;
        a->allocs++;
        *out = (void *)p;
        return true;
    }
    return false;
}

/* The out-of-line mp_alloc (MPOOL_NO_INLINE builds, calls through a
 * pointer) does what the header's inline one does; that one calls
 * mp__alloc_slow for the rest. */
void *mp_alloc(mp_arena *a, size_t size)
{
    void *p;
    if (mp_likely(a != NULL) && fast_bump(a, size, MP_ARENA_ALIGN, &p))
        return p;
    return alloc_slow(a, size, MP_ARENA_ALIGN, false, __builtin_return_address(0));
}

void *mp__alloc_slow(mp_arena *a, size_t size)
{
    return alloc_slow(a, size, MP_ARENA_ALIGN, false, __builtin_return_address(0));
}

void *mp_alloc_unaligned(mp_arena *a, size_t size)
{
    void *p;
    if (mp_likely(a != NULL) && fast_bump(a, size, 1, &p))
        return p;
    return alloc_slow(a, size, 1, false, __builtin_return_address(0));
}

void *mp_alloc_aligned(mp_arena *a, size_t size, size_t align)
{
    /* Block ends are page-aligned, so an aligned start never passes one. */
    void *p;
    if (mp_likely(a != NULL) && mp__is_pow2(align) && align <= MP_ARENA_SMALL_ALIGN_MAX &&
        fast_bump(a, size, align, &p))
        return p;
    return alloc_slow(a, size, align, false, __builtin_return_address(0));
}

void *mp_calloc(mp_arena *a, size_t n, size_t size)
{
    size_t bytes;
    if (!mp__mul_ok(n, size, &bytes)) {
        errno = EINVAL;
        return NULL;
    }
    void *p;
    if (!(a != NULL && fast_bump(a, bytes, MP_ARENA_ALIGN, &p))) {
        p = alloc_slow(a, bytes, MP_ARENA_ALIGN, true, __builtin_return_address(0));
        /* MP_ZERO arenas zeroed it; a large one was zeroed by the chunk
         * layer (large_alloc), unless checked mode filled it or a tool must
         * be told it is defined. */
        if (!p || a->zero || (bytes > a->large_max && !a->debug))
            return p;
    }
    memset(p, 0, bytes);
    return p;
}

char *mp_strdup(mp_arena *a, const char *s)
{
    if (!s) {
        errno = EINVAL;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    void *d;
    if (!(a != NULL && fast_bump(a, n, 1, &d)) && !(d = alloc_slow(a, n, 1, false, __builtin_return_address(0))))
        return NULL;
    memcpy(d, s, n);
    return d;
}

static char *arena_vprintf(mp_arena *a, const char *fmt, va_list ap, const void *site)
{
    if (!mp__arena_ok(a, "allocation from a destroyed or invalid arena"))
        return NULL;
    if (!fmt) {
        errno = EINVAL;
        return NULL;
    }
    va_list aq;
    int n;
    if (a->mode == MP__ARENA_PLAIN && a->fast.cur) {
        /* Print straight into the free space; most strings fit. Only a
         * plain arena may: elsewhere that space is shared or watched. */
        char *cur = a->fast.cur;
        size_t room = (size_t)(a->fast.end - cur);
        room = room < a->large_max ? room : a->large_max;
        va_copy(aq, ap);
        n = vsnprintf(cur, room, fmt, aq);
        va_end(aq);
        if (n >= 0 && (size_t)n < room) {
            a->fast.cur = cur + n + 1;
            a->fast.last = cur;
            a->allocs++;
            return cur;
        }
    } else {
        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
    }
    if (n < 0) {
        errno = EINVAL; /* an encoding error, or longer than INT_MAX */
        return NULL;
    }
    char *s = alloc_slow(a, (size_t)n + 1, 1, false, site);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *mp_printf(mp_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = arena_vprintf(a, fmt, ap, __builtin_return_address(0));
    va_end(ap);
    return s;
}

/* ------------------------------------------------------------------ free */

/* The block of a list containing p, or NULL. */
static block *list_containing(const mp__list *l, const char *p)
{
    for (block *blk = mp__arena_block_at(l->head); blk; blk = mp__arena_block_next(blk))
        if (p >= mp__arena_block_base(blk) && p < blk->end)
            return blk;
    return NULL;
}

/* A small or large block of a containing p, searched (for pointers past
 * the first MP_CHUNK_SIZE bytes of a big block or aligned large one). */
static block *find_containing(mp_arena *a, const char *p)
{
    block *blk = list_containing(&a->blocks, p);
    return blk ? blk : list_containing(&a->larges, p);
}

/* The always-on checks of a pointer given to mp_arena_free: its block, or
 * NULL after reporting misuse. The header is read without the lock (CAS
 * mode): a block is released only by a reset or destroy, which have the
 * arena to themselves, or, for a large one, by freeing its allocation,
 * which the caller holds. */
static block *block_of(mp_arena *a, char *p)
{
    const char *name = a->node.name;
    mp__chunk *c = mp__chunk_lookup(p);
    block *blk;
    if (c && c->owner != a) {
        char from[160];
        mp__owner_detail(from, sizeof from, c);
        const char *check = c->kind == MP__KIND_ARENA ? "free of a pointer from another arena"
                                                       : "free of a pointer from another pool";
        mp__misuse_detail(check, KIND, name, p, from);
        return NULL;
    }
    if (c) {
        blk = (block *)c;
    } else {
        mp__arena_lock(a);
        blk = find_containing(a, p);
        mp__arena_unlock(a);
        if (!blk) {
            mp__misuse("free of a pointer not from this arena", KIND, name, p);
            return NULL;
        }
    }
    if (blk->large ? p != blk->start : (p < blk->start || p >= mp__arena_block_top(a, blk))) {
        mp__misuse(blk->large ? "free of an interior pointer" : "free of a pointer not handed out", KIND, name, p);
        return NULL;
    }
    return blk;
}

void mp_arena_free(mp_arena *a, void *ptr)
{
    if (!ptr)
        return;
    if (!mp__arena_ok(a, "free to a destroyed or invalid arena"))
        return;
    char *p = ptr;
    if (a->mode == MP__ARENA_PLAIN && p == a->fast.last) { /* the newest: roll back */
        mp__arena_note_peak(a);
        a->fast.cur = p;
        a->fast.last = NULL;
        a->frees++;
        return;
    }
    block *blk = block_of(a, p);
    if (!blk)
        return;
    if (a->debug) {
        mp__arena_debug_free(a, blk, p, __builtin_return_address(0));
        return;
    }
    if (blk->large)
        mp__arena_large_free(a, blk);
    else
        mp__arena_rollback(a, blk, p); /* else its space waits for the reset */
    mp__arena_count(a, &a->frees, 1);
}
