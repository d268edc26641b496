/*
 * arena.c - layer 5: arenas (seeds 001, 003, 004): variable-size
 * allocations bumped out of blocks, freed all at once by reset or destroy,
 * and the parent of other pools.
 *
 * Layout. An arena is a struct from mp__meta_alloc (so it can outlive its
 * memory in the checked-mode graveyard) and two lists of chunks, each chunk
 * starting with a `block` header (which starts with the mp__chunk header,
 * kind MP__KIND_ARENA, owner the arena):
 *
 *   small blocks:  | block | small allocations, bumped upwards ... | unused |
 *                  base    start                     top          end
 *   large:         | block | pad | the allocation | (red zone) |
 *                  base          start            end
 *
 * A small block spans `span` bytes (block_size rounded up to pages; 64 KiB
 * by default) inside a chunk of the next multiple of MP_CHUNK_SIZE; bytes
 * past `end` are never touched, so never committed. Requests up to
 * large_max (a quarter of a block's room) with alignment up to 4096 are
 * small; anything else is large: a chunk of its own, on the `large` list,
 * given back to the OS by mp_arena_free at once.
 *
 * Small blocks are one doubly linked list, in this order:
 *   first ... search ... act | spares ...
 * blocks before `act` hold allocations (their tops move only when a
 * search fills them further or a rollback frees their newest allocation),
 * `act` is the block the bump pointer is in, spares (kept by a reset) are
 * empty. `search` (single-threaded modes; CAS mode never searches) is the
 * oldest block still worth trying when a request misses `act`: it moves
 * past a block once that block has missed more than FAIL_MAX requests
 * (seed 001's `failed` counter); a younger block that missed as often is
 * still tried until every block before it has been passed.
 *
 * Modes, fixed at create:
 *   PLAIN  single-threaded, no tools, no checked mode, no MP_ZERO: the
 *          inline fast path bumps fast.cur inside fast.end.
 *   SLOW   single-threaded with MP_ZERO, tools or checked mode: the same
 *          bump, in `slow`, always through the out-of-line path.
 *   CAS    MP_THREADSAFE: each block's {last, top} offsets are one 64-bit
 *          word bumped with compare-and-swap; the mutex is taken only to
 *          switch blocks, for large allocations, cleanups and records.
 * Non-PLAIN arenas keep fast.cur == fast.end == NULL, so the fast path's
 * fit check fails for them without testing a flag.
 *
 * Concurrency (CAS mode). Lock-free: the bump (acquire CAS on the word of
 * the block published in ts_act with release), the rollback (release CAS,
 * only while the word still names p as newest), the blocks' nallocs and the
 * arena's frees/failures counters. Under the arena mutex: the block list,
 * act, the large list, cleanups, records and hw, and allocs, peak,
 * nblocks and growing. bytes_peak is exact only in the single-threaded
 * modes: a CAS rollback is lock-free and does not record the peak first,
 * so there it is sampled at large frees, resets and stats, a lower bound.
 * Lock order: tree lock, then arena mutex (stats), then acct_lock; no
 * lock is held while the chunk layer or the OS is called, nor while a
 * cleanup, a child's destroy or the error handler runs. Reset and destroy
 * need the arena to themselves.
 *
 * Invariants (single-threaded modes):
 *   - start <= top <= end for every block; act's top is bump->cur while it
 *     is active, blk->top otherwise;
 *   - blk->last (bump->last for act) is the start of the newest allocation
 *     in that block still live, or NULL: freeing exactly it rolls top back;
 *   - closed_used == sum over blocks before act of (top - start);
 *   - in use == closed_used + (bump->cur - act->start) + large_bytes; it
 *     only decreases at a rollback, a large free or a reset, each of which
 *     first records the peak, so bytes_peak is exact.
 *
 * Tree and order: an arena owns its children (mp__node, any pool kind).
 * Reset and destroy run: children (newest first), cleanups (newest first),
 * children made by those cleanups, then memory. Reset keeps the oldest
 * MP_ARENA_KEEP_BLOCKS small blocks for reuse (none with MP_RELEASE_ON_RESET)
 * and gives back the rest and every large allocation.
 *
 * Limits. `held` is what the arena itself is charged: span for each small
 * block, header + padding + size rounded up to pages for each large one.
 * `total` = held + the totals of its child arenas. Charging walks
 * acct_parent (the parent arena; kept here because the tree detaches a
 * child before destroying it) under acct_lock, a leaf lock: every arena on
 * the way with a limit must stay within it, else nothing is charged.
 *
 * Tools and checked mode (decided at create). Tracked arenas (Valgrind or
 * ASan present) tell track.h about every block (no access), allocation
 * (out), free, reset and release, and leave MP_REDZONE no-access bytes
 * after each allocation. Checked arenas fill those red zones with
 * MP_FILL_REDZONE and check them at free/reset, fill freed and reset memory
 * with MP_FILL_FREED and check it when handed out again ([top, hw) of each
 * block holds the fill), fill new allocations with MP_FILL_NEW, keep
 * destroyed arenas in a graveyard, and reject interior and double frees.
 * Both keep a record per allocation (a hash table in metadata, never inside
 * arena memory).
 */
#include "arena.h"
#include "chunk.h"
#include "debug.h"
#include "error.h"
#include "os.h"
#include "track.h"
#include "tree.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>

#define ARENA_ALIGN alignof(max_align_t) /* mp_alloc's alignment */
#define BLOCK_DEFAULT MP_CHUNK_SIZE       /* span of a block when block_size is 0 */
#define BLOCK_MAX ((size_t)1 << 30)       /* largest block_size: offsets fit 32 bits */
#define FAIL_MAX 4                        /* misses before a block is no longer searched */
#define LAST_NONE 0xffffffffu             /* CAS word: no newest allocation known */

typedef struct block block;
struct block {
    mp__chunk chunk; /* first: kind MP__KIND_ARENA, owner the arena */
    uint32_t large;  /* 1: one large allocation; 0: small allocations */
    uint32_t failed; /* requests this block could not take (search) */
    block *prev, *next;
    char *start;     /* first usable byte (large: the allocation) */
    char *end;       /* one past the last usable byte (large: of the allocation) */
    char *top;       /* next free byte (single-threaded, when not act) */
    char *last;      /* newest live allocation here, NULL: unknown (idem) */
    char *hw;        /* checked: [top, hw) holds MP_FILL_FREED */
    size_t span;     /* bytes charged for this block */
    uint64_t word;   /* CAS mode: last offset << 32 | top offset (atomic) */
    size_t nallocs;  /* CAS mode: allocations bumped here since reset (atomic) */
};

#define BLOCK_HDR ((sizeof(block) + 63) & ~(size_t)63)

typedef struct bump {
    char *cur;  /* next free byte of act */
    char *end;  /* act->end */
    char *last; /* newest live allocation in act, or NULL */
} bump;

typedef struct cleanup {
    struct cleanup *next; /* older */
    void (*fn)(void *);
    void *arg;
} cleanup;

/* Checked/tracked record of one allocation. */
typedef struct rec {
    char *p;          /* the allocation; NULL: empty slot */
    size_t size;      /* bytes asked for (at least 1) */
    bool large;
    mp__objinfo info; /* state and sites (debug.h) */
} rec;

typedef enum arena_mode { MODE_PLAIN, MODE_SLOW, MODE_CAS } arena_mode;

struct mp_arena {
    mp__node node; /* first: the pool tree casts between the two */

    /* Fast path (MODE_PLAIN only; NULL, NULL otherwise). */
    bump fast;
    size_t allocs;    /* allocations (CAS: those not counted in blocks' nallocs; under the lock) */
    size_t large_max; /* largest small allocation */

    /* Configuration (constant after create). */
    arena_mode mode;
    bool ts;          /* MP_THREADSAFE: lock below used */
    bool zero;        /* MP_ZERO */
    bool release;     /* MP_RELEASE_ON_RESET: a reset keeps no block */
    bool tracked;     /* memory tools watch: every event to track.h */
    bool checked;     /* checked mode */
    bool debug;       /* tracked || checked: records kept */
    bool post;        /* debug || zero: hand_out has work to do */
    size_t rz;        /* bytes left after each allocation (debug: MP_REDZONE) */
    size_t span;      /* bytes of a standard block */
    size_t limit;     /* 0: none */

    pthread_mutex_t lock; /* CAS mode: guards everything below but the atomics,
                             busy, and the accounting fields (acct_lock) */
    bool busy;            /* a reset or destroy is running; no lock: only the thread
                             running it (and the callbacks it calls) reads it */

    /* Small blocks. */
    block *first;            /* the list, oldest first */
    block *act;              /* the block being bumped */
    block *search;           /* oldest block still searched (single-threaded modes) */
    block *ts_act;           /* CAS mode: act, published with release (atomic) */
    bump slow;               /* MODE_SLOW: the bump of act */
    size_t nblocks;
    bool growing;            /* CAS mode: a thread is making a new block for act */
    pthread_cond_t grown;    /* CAS mode: signalled when growing turns false */
    size_t closed_used;      /* single-threaded: used bytes of blocks before act */

    /* Large allocations. */
    block *large;
    size_t nlarge, large_bytes;

    cleanup *cleanups; /* newest first */

    /* Accounting (acct_lock). */
    mp_arena *acct_parent;
    size_t held;  /* bytes charged to this arena (atomic reads) */
    size_t total; /* held + child arenas' totals */

    /* Statistics. */
    size_t peak;            /* most bytes in use seen (see note_peak) */
    size_t frees, failures; /* atomic in CAS mode */

    /* Records (debug arenas). */
    /* recs: an open-addressing table keyed by address, rcap slots (0 or a
     * power of two, kept at least twice rn + rpending); rn: slots in use
     * (live allocations and freed ones not rolled back); rpending:
     * allocations between rec_reserve and hand_out, with room kept for them. */
    rec *recs;
    size_t rcap, rn, rpending;

    void *grave_next; /* checked: the graveyard link (mp__graveyard_keep) */
};

static const char KIND[] = "arena";

/* ------------------------------------------------------------- helpers */

static void arena_lock(mp_arena *a)
{
    if (a->ts)
        mp__lock(&a->lock);
}

static void arena_unlock(mp_arena *a)
{
    if (a->ts)
        mp__unlock(&a->lock);
}

static size_t page_round(size_t n) { return mp__align_up(n, mp__os_page_size()); }

static size_t ld(const size_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* Adds to a counter other threads may change (CAS mode) or read. */
static void count(const mp_arena *a, size_t *c, size_t n)
{
    if (a->ts)
        __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
    else
        *c += n;
}

static bump *bump_of(const mp_arena *a) { return (bump *)(a->mode == MODE_PLAIN ? &a->fast : &a->slow); }

static uint64_t word_pack(size_t last_off, size_t top_off) { return (uint64_t)last_off << 32 | top_off; }

static char *block_base(const block *blk) { return (char *)blk; }

/* The current top of a small block, in any mode. */
static char *block_top(const mp_arena *a, const block *blk)
{
    if (a->mode == MODE_CAS)
        return block_base(blk) + (uint32_t)__atomic_load_n(&blk->word, __ATOMIC_RELAXED);
    return blk == a->act ? bump_of(a)->cur : blk->top;
}

/* True when a is a live arena; a NULL arena is a bad argument, anything
 * else that is not a live arena is misuse. */
static bool arena_ok(const mp_arena *a, const char *what)
{
    if (!a) {
        errno = EINVAL;
        return false;
    }
    if (!mp__node_live(&a->node, MP__KIND_ARENA)) {
        mp__misuse(what, KIND, NULL, a);
        errno = EINVAL;
        return false;
    }
    return true;
}

/* ----------------------------------------------------------- accounting */

/* Guards acct_parent, total and writes of held. A leaf: nothing else is
 * locked while it is held (but the chunk lock, by the fork handlers). */
static pthread_mutex_t acct_lock = PTHREAD_MUTEX_INITIALIZER;

/* Adds n to (or takes n from) the total of `from` and of every arena above
 * it. Under acct_lock. */
static void chain_charge_locked(mp_arena *from, size_t n)
{
    for (mp_arena *x = from; x; x = x->acct_parent)
        x->total += n;
}

static void chain_uncharge_locked(mp_arena *from, size_t n)
{
    for (mp_arena *x = from; x; x = x->acct_parent)
        x->total -= n;
}

/* Charges a and every arena above it: `want` bytes if every limit on the
 * way allows, else as many whole pages as fit, but at least `min`.
 * Returns the bytes charged, or 0 with errno ENOMEM. */
static size_t acct_charge(mp_arena *a, size_t want, size_t min)
{
    size_t page = mp__os_page_size();
    mp__lock(&acct_lock);
    size_t room = SIZE_MAX;
    for (mp_arena *x = a; x; x = x->acct_parent) {
        if (x->limit) {
            size_t r = x->limit > x->total ? x->limit - x->total : 0;
            room = r < room ? r : room;
        }
    }
    size_t n = want <= room ? want : room / page * page;
    if (n < min || n == 0) {
        mp__unlock(&acct_lock);
        errno = ENOMEM;
        return 0;
    }
    chain_charge_locked(a, n);
    __atomic_store_n(&a->held, a->held + n, __ATOMIC_RELAXED);
    mp__unlock(&acct_lock);
    return n;
}

static void acct_uncharge(mp_arena *a, size_t n)
{
    mp__lock(&acct_lock);
    chain_uncharge_locked(a, n);
    __atomic_store_n(&a->held, a->held - n, __ATOMIC_RELAXED);
    mp__unlock(&acct_lock);
}

void mp__arena_fork_lock(void) { mp__lock(&acct_lock); }
void mp__arena_fork_unlock(void) { mp__unlock(&acct_lock); }

/* ---------------------------------------------------------- block lists */

static void list_unlink(mp_arena *a, block *blk)
{
    if (blk->prev)
        blk->prev->next = blk->next;
    else
        a->first = blk->next;
    if (blk->next)
        blk->next->prev = blk->prev;
    blk->prev = blk->next = NULL;
}

/* Inserts blk after pos (NULL: at the head). */
static void list_insert_after(mp_arena *a, block *pos, block *blk)
{
    blk->prev = pos;
    blk->next = pos ? pos->next : a->first;
    if (blk->next)
        blk->next->prev = blk;
    if (pos)
        pos->next = blk;
    else
        a->first = blk;
}

static void large_link(mp_arena *a, block *blk)
{
    blk->prev = NULL;
    blk->next = a->large;
    if (a->large)
        a->large->prev = blk;
    a->large = blk;
    a->nlarge++;
    a->large_bytes += (size_t)(blk->end - blk->start);
}

static void large_unlink(mp_arena *a, block *blk)
{
    if (blk->prev)
        blk->prev->next = blk->next;
    else
        a->large = blk->next;
    if (blk->next)
        blk->next->prev = blk->prev;
    blk->prev = blk->next = NULL;
    a->nlarge--;
    a->large_bytes -= (size_t)(blk->end - blk->start);
}

/* Gives a block's memory back (chunk layer or OS) and its charge. */
static void block_release(mp_arena *a, block *blk)
{
    size_t span = blk->span;
    if (a->tracked)
        mp__track_release(blk, span);
    mp__chunk_free(&blk->chunk);
    acct_uncharge(a, span);
}

static void release_list(mp_arena *a, block *list)
{
    while (list) {
        block *next = list->next;
        block_release(a, list);
        list = next;
    }
}

/* A new small block with room for at least min_room bytes: a standard
 * one, or a smaller one when a limit leaves less. NULL with errno ENOMEM. */
static block *block_new(mp_arena *a, size_t min_room)
{
    size_t min_span = page_round(BLOCK_HDR + min_room);
    size_t want = a->span > min_span ? a->span : min_span;
    size_t span = acct_charge(a, want, min_span);
    if (!span)
        return NULL;
    /* Blocks need nothing zeroed: MP_ZERO and mp_calloc zero small
     * allocations themselves. */
    mp__chunk *c = mp__chunk_alloc(span, BLOCK_HDR, MP__KIND_ARENA, a);
    if (!c) {
        acct_uncharge(a, span);
        errno = ENOMEM;
        return NULL;
    }
    block *blk = (block *)c;
    blk->large = 0;
    blk->failed = 0;
    blk->prev = blk->next = NULL;
    blk->start = block_base(blk) + BLOCK_HDR;
    blk->end = block_base(blk) + span;
    blk->top = blk->hw = blk->start;
    blk->last = NULL;
    blk->span = span;
    blk->word = word_pack(LAST_NONE, BLOCK_HDR);
    blk->nallocs = 0;
    if (a->tracked)
        mp__track_block_new(a, blk->start, span - BLOCK_HDR);
    return blk;
}

/* A spare block (after act) with at least min_room bytes, moved to just
 * after act; NULL if there is none. */
static block *take_spare(mp_arena *a, size_t min_room)
{
    for (block *s = a->act ? a->act->next : a->first; s; s = s->next) {
        if ((size_t)(s->end - s->start) < min_room)
            continue;
        if (s->prev != a->act) {
            list_unlink(a, s);
            list_insert_after(a, a->act, s);
        }
        return s;
    }
    return NULL;
}

/* -------------------------------------------------- single-threaded bump */

/* Where an allocation of need bytes aligned to align would start in
 * [cur, end), or NULL if it does not fit (or there is no block). */
static char *fit(char *cur, char *end, size_t need, size_t align)
{
    if (!cur)
        return NULL;
    uintptr_t p = mp__align_up_ptr((uintptr_t)cur, align);
    if (p > (uintptr_t)end || need > (uintptr_t)end - p)
        return NULL;
    return (char *)p;
}

/* What an allocation was carved from, for hand_out. */
typedef struct grant {
    block *blk;  /* its block (small) or chunk (large) */
    char *from;  /* the block's top before it (small) */
    bool large;
} grant;

/* Makes nb (already in the list, after act) the active block. Leaving the
 * old act counts as one of its misses (failed), as in st_search. */
static void st_activate(mp_arena *a, block *nb)
{
    bump *b = bump_of(a);
    block *old = a->act;
    if (old) {
        old->top = b->cur;
        old->last = b->last;
        old->failed++;
        a->closed_used += (size_t)(old->top - old->start);
    }
    a->act = nb;
    if (!a->search)
        a->search = nb;
    b->cur = nb->top;
    b->end = nb->end;
    b->last = nb->last;
}

/* Makes a block with at least min_room bytes active. */
static bool st_switch(mp_arena *a, size_t min_room)
{
    block *nb = take_spare(a, min_room);
    if (!nb) {
        nb = block_new(a, min_room);
        if (!nb)
            return false;
        list_insert_after(a, a->act, nb);
        a->nblocks++;
    }
    st_activate(a, nb);
    return true;
}

/* Tries the blocks before act that are still searched. */
static char *st_search(mp_arena *a, size_t need, size_t align, grant *g)
{
    for (block *blk = a->search; blk && blk != a->act; blk = blk->next) {
        char *p = fit(blk->top, blk->end, need, align);
        if (p) {
            g->blk = blk;
            g->from = blk->top;
            a->closed_used += (size_t)(p + need - blk->top);
            blk->top = p + need;
            blk->last = p;
            return p;
        }
        if (++blk->failed > FAIL_MAX && blk == a->search)
            a->search = blk->next;
    }
    return NULL;
}

static char *st_small(mp_arena *a, size_t size, size_t align, grant *g)
{
    bump *b = bump_of(a);
    size_t need = size + a->rz;
    char *p = fit(b->cur, b->end, need, align);
    if (!p) {
        p = st_search(a, need, align, g);
        if (p) {
            a->allocs++;
            return p;
        }
        if (!st_switch(a, need + align - 1))
            return NULL;
        p = fit(b->cur, b->end, need, align);
    }
    g->blk = a->act;
    g->from = b->cur;
    b->cur = p + need;
    b->last = p;
    a->allocs++;
    return p;
}

/* ------------------------------------------------------------- CAS bump */

/* Bumps need bytes aligned to align out of blk, or returns NULL. The CAS
 * acquires: memory a rollback gave back (release, cas_rollback) may come
 * out here in another thread, which must see the old owner's writes done
 * (other bumps in between continue the rollback's release sequence). */
static char *cas_bump(block *blk, size_t need, size_t align, char **from)
{
    size_t cap = (size_t)(blk->end - block_base(blk));
    uint64_t w = __atomic_load_n(&blk->word, __ATOMIC_RELAXED);
    for (;;) {
        size_t top = (uint32_t)w;
        size_t off = mp__align_up(top, align);
        if (off > cap || need > cap - off)
            return NULL;
        if (__atomic_compare_exchange_n(&blk->word, &w, word_pack(off, off + need), true, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            *from = block_base(blk) + top;
            return block_base(blk) + off;
        }
    }
}

/* Rolls blk's top back to p if p is still its newest allocation. The CAS
 * releases the freeing thread's writes to whoever bumps p out next (pairs
 * with the acquire in cas_bump). */
static bool cas_rollback(block *blk, char *p)
{
    size_t off = (size_t)(p - block_base(blk));
    uint64_t w = __atomic_load_n(&blk->word, __ATOMIC_RELAXED);
    while ((w >> 32) == off) {
        if (__atomic_compare_exchange_n(&blk->word, &w, word_pack(LAST_NONE, off), true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return true;
    }
    return false;
}

static void cas_activate(mp_arena *a, block *nb)
{
    a->act = nb;
    if (!a->search)
        a->search = nb;
    __atomic_store_n(&a->ts_act, nb, __ATOMIC_RELEASE);
}

/* Replaces the active block `seen`, which could not take a request of
 * min_room bytes. Returns false (errno ENOMEM) when no block can be had;
 * true when the caller should retry (perhaps another thread switched).
 *
 * One thread at a time makes a new block (`growing`); the others wait for
 * it, then retry. Racing threads each making their own block would charge
 * the limit for blocks that end up as spares, and one could fail for the
 * limit while another's new block, about to be activated, has room. */
static bool cas_switch(mp_arena *a, block *seen, size_t min_room)
{
    arena_lock(a);
    while (a->growing && a->act == seen)
        mp__cond_wait_until(&a->grown, &a->lock, INT64_MAX);
    if (a->act != seen) {
        arena_unlock(a);
        return true;
    }
    block *nb = take_spare(a, min_room);
    if (nb) {
        cas_activate(a, nb);
        arena_unlock(a);
        return true;
    }
    a->growing = true;
    arena_unlock(a);
    nb = block_new(a, min_room); /* no lock held while the OS is asked */
    arena_lock(a);
    a->growing = false;
    pthread_cond_broadcast(&a->grown);
    if (nb) { /* act is still seen: only a grower or a reset changes it */
        list_insert_after(a, a->act, nb);
        a->nblocks++;
        cas_activate(a, nb);
    }
    arena_unlock(a);
    return nb != NULL;
}

static char *cas_small(mp_arena *a, size_t size, size_t align, grant *g)
{
    size_t need = size + a->rz;
    for (;;) {
        block *blk = __atomic_load_n(&a->ts_act, __ATOMIC_ACQUIRE);
        if (blk) {
            char *p = cas_bump(blk, need, align, &g->from);
            if (p) {
                __atomic_fetch_add(&blk->nallocs, 1, __ATOMIC_RELAXED);
                g->blk = blk;
                return p;
            }
        }
        if (!cas_switch(a, blk, need + align - 1))
            return NULL;
    }
}

/* ---------------------------------------------------------------- large */

/* zero: the caller needs the allocation to read as zero (mp_calloc). A
 * chunk from the chunk cache is then cleared; a fresh one is zero already. */
static char *large_alloc(mp_arena *a, size_t size, size_t align, bool zero, grant *g)
{
    /* Chunks are MP_CHUNK_SIZE-aligned, so up to that the offset is known;
     * beyond it the worst case is reserved (untouched pages cost nothing). */
    size_t off = align <= MP_CHUNK_SIZE ? mp__align_up(BLOCK_HDR, align) : BLOCK_HDR + align;
    size_t reserve = off + size + a->rz;
    size_t charge = page_round(reserve);
    if (!acct_charge(a, charge, charge))
        return NULL;
    /* MP_ZERO (hand_out) and mp_calloc count on a large allocation reading
     * as zero; anyone else writes it before reading, so only the block
     * header needs clearing. */
    size_t zero_len = zero || a->zero ? reserve : BLOCK_HDR;
    mp__chunk *c = mp__chunk_alloc(reserve, zero_len, MP__KIND_ARENA, a);
    if (!c) {
        acct_uncharge(a, charge);
        errno = ENOMEM;
        return NULL;
    }
    block *blk = (block *)c;
    blk->large = 1;
    blk->start = (char *)mp__align_up_ptr((uintptr_t)c + BLOCK_HDR, align);
    blk->end = blk->start + size;
    blk->top = blk->hw = blk->end;
    blk->span = charge;
    if (a->tracked)
        mp__track_block_new(a, block_base(blk) + BLOCK_HDR, charge - BLOCK_HDR);
    arena_lock(a);
    large_link(a, blk);
    a->allocs++;
    arena_unlock(a);
    g->blk = blk;
    g->from = blk->start;
    g->large = true;
    return blk->start;
}

/* ------------------------------------------------------------ statistics */

/* Bytes handed out now (CAS mode: lock held). */
static size_t in_use(const mp_arena *a)
{
    size_t n = a->large_bytes;
    if (a->mode == MODE_CAS) {
        for (const block *blk = a->first; blk; blk = blk->next)
            n += (size_t)(block_top(a, blk) - blk->start);
    } else {
        n += a->closed_used;
        if (a->act)
            n += (size_t)(bump_of(a)->cur - a->act->start);
    }
    return n;
}

/* Called before every decrease of in_use in the single-threaded modes, so
 * the peak there is exact. CAS mode calls it (lock held) only at large
 * frees, resets and stats: lock-free rollbacks skip it. */
static void note_peak(mp_arena *a)
{
    size_t u = in_use(a);
    if (u > a->peak)
        a->peak = u;
}

static size_t allocs_now(const mp_arena *a)
{
    size_t n = a->allocs;
    if (a->mode == MODE_CAS)
        for (const block *blk = a->first; blk; blk = blk->next)
            n += ld(&blk->nallocs);
    return n;
}

static void own_stats(const mp_arena *ca, mp_stats *out)
{
    mp_arena *a = (mp_arena *)ca;
    arena_lock(a);
    note_peak(a);
    /* frees first: every free follows its alloc, so a snapshot read in this
     * order sees no more frees than allocs even while threads allocate
     * lock-free (the clamp covers what relaxed loads do not promise). */
    size_t frees = ld(&a->frees), allocs = allocs_now(a);
    if (frees > allocs)
        frees = allocs;
    *out = (mp_stats){ 0 };
    out->bytes_in_use = in_use(a);
    out->bytes_peak = a->peak;
    out->bytes_mapped = ld(&a->held);
    out->allocs = allocs;
    out->frees = frees;
    out->objects_in_use = allocs - frees;
    out->failures = ld(&a->failures);
    arena_unlock(a);
}

int mp_arena_stats(const mp_arena *a, mp_stats *out)
{
    if (!out || !arena_ok(a, "stats of a destroyed or invalid arena"))
        return EINVAL;
    own_stats(a, out);
    mp__tree_sum_children(&a->node, out);
    return 0;
}

size_t mp__arena_large_max(const mp_arena *a) { return a->large_max; }
size_t mp__arena_block_span(const mp_arena *a) { return a->span; }

size_t mp__arena_blocks(const mp_arena *a)
{
    mp_arena *m = (mp_arena *)a;
    arena_lock(m);
    size_t n = m->nblocks;
    arena_unlock(m);
    return n;
}

size_t mp__arena_larges(const mp_arena *a)
{
    mp_arena *m = (mp_arena *)a;
    arena_lock(m);
    size_t n = m->nlarge;
    arena_unlock(m);
    return n;
}

/* --------------------------------------------------------------- records */

static size_t rec_slot(const mp_arena *a, const char *p)
{
    uint64_t h = ((uint64_t)(uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (a->rcap - 1);
}

/* The record of allocation p, or NULL. */
static rec *rec_find(mp_arena *a, const char *p)
{
    if (!a->rcap)
        return NULL;
    for (size_t i = rec_slot(a, p);; i = (i + 1) & (a->rcap - 1)) {
        if (a->recs[i].p == p)
            return &a->recs[i];
        if (!a->recs[i].p)
            return NULL;
    }
}

static rec *rec_place(mp_arena *a, char *p)
{
    size_t i = rec_slot(a, p);
    while (a->recs[i].p && a->recs[i].p != p)
        i = (i + 1) & (a->rcap - 1);
    if (!a->recs[i].p)
        a->rn++;
    return &a->recs[i];
}

/* Reserves room for one more record before anything is allocated, so a
 * failure leaves nothing half done (lock held in CAS mode). */
static bool rec_reserve(mp_arena *a)
{
    if ((a->rn + a->rpending + 1) * 2 > a->rcap) {
        size_t ncap = a->rcap ? a->rcap * 2 : 64;
        rec *old = a->recs;
        size_t ocap = a->rcap;
        rec *nr = mp__meta_alloc(ncap * sizeof *nr);
        if (!nr)
            return false;
        a->recs = nr;
        a->rcap = ncap;
        a->rn = 0;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].p)
                *rec_place(a, old[i].p) = old[i];
        mp__meta_free(old);
    }
    a->rpending++;
    return true;
}

/* Deletes a record (backward-shift deletion keeps probe chains intact). */
static void rec_delete(mp_arena *a, rec *r)
{
    size_t mask = a->rcap - 1, i = (size_t)(r - a->recs);
    for (size_t j = (i + 1) & mask; a->recs[j].p; j = (j + 1) & mask) {
        size_t home = rec_slot(a, a->recs[j].p);
        /* Move j into the hole at i unless its home lies in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            a->recs[i] = a->recs[j];
            i = j;
        }
    }
    a->recs[i] = (rec){ 0 };
    a->rn--;
}

/* ---------------------------------------------------------- checked mode */

/* True when [p, p+n) is all byte b; touches it for the check when tracked. */
static bool intact(const mp_arena *a, char *p, size_t n, unsigned char b)
{
    if (n == 0)
        return true;
    if (a->tracked)
        mp__track_obj_touch(p, n);
    bool ok = mp__filled(p, n, b);
    if (a->tracked)
        mp__track_obj_hide(p, n);
    return ok;
}

/* Fills [p, p+n) with b (memory that is no-access when tracked). */
static void fill_hidden(const mp_arena *a, char *p, size_t n, unsigned char b)
{
    if (n == 0)
        return;
    if (a->tracked)
        mp__track_obj_touch(p, n);
    memset(p, b, n);
    if (a->tracked)
        mp__track_obj_hide(p, n);
}

/* The last step of every slow allocation of an arena with MP_ZERO, tools
 * or checked mode. */
static void *hand_out(mp_arena *a, char *p, size_t size, const grant *g, const void *site)
{
    bool reused_dirty = false;
    if (a->debug) {
        arena_lock(a);
        if (a->checked && !g->large) {
            /* Memory below hw was filled when it was reset or freed. */
            char *to = p + size + a->rz, *hw = g->blk->hw;
            if (g->from < hw)
                reused_dirty = !intact(a, g->from, (size_t)((to < hw ? to : hw) - g->from), MP_FILL_FREED);
        }
        rec *r = rec_place(a, p);
        *r = (rec){ .p = p, .size = size, .large = g->large };
        r->info.state = MP_OBJ_OUT;
        r->info.alloc_site = site;
        a->rpending--;
        /* Still under the lock (CAS mode): the tools keep one shadow state
         * per 8 bytes, and an unaligned allocation shares its first 8 with
         * the red zone of the one before, which another thread may be
         * handing out (filling, re-hiding) right now. Poisoning and
         * unpoisoning are read-modify-writes of that shared state, so they
         * are serialised here, as debug_free's are. */
        if (a->checked) {
            fill_hidden(a, p, size, a->zero ? 0 : MP_FILL_NEW);
            fill_hidden(a, p + size, a->rz, MP_FILL_REDZONE);
        }
        if (a->tracked)
            mp__track_obj_out(a, p, size, a->zero);
        arena_unlock(a);
    }
    if (a->zero && !(g->large && !a->checked)) /* large_alloc zeroed a large one */
        memset(p, 0, size);
    if (reused_dirty)
        mp__misuse("write to arena memory after reset or free", KIND, a->node.name, p);
    return p;
}

/* --------------------------------------------------------- allocation */

/* Every allocation that the inline fast path did not finish: validates,
 * then small or large, then hand_out. zero: as large_alloc's. */
static MP_NOINLINE void *alloc_slow(mp_arena *a, size_t size, size_t align, bool zero, const void *site)
{
    if (!arena_ok(a, "allocation from a destroyed or invalid arena"))
        return NULL;
    /* total is only an overflow guard: once size + align + header + red
     * zone + a chunk fits in size_t, large_alloc's offset, reserve, page and
     * chunk rounding cannot wrap. */
    size_t total;
    if (!mp__is_pow2(align) || !mp__add_ok(size, align, &total) ||
        !mp__add_ok(total, BLOCK_HDR + MP_REDZONE + MP_CHUNK_SIZE, &total)) {
        errno = EINVAL;
        return NULL;
    }
    if (size == 0)
        size = 1; /* a unique pointer: it takes one byte */
    if (a->debug) {
        arena_lock(a);
        bool ok = rec_reserve(a);
        arena_unlock(a);
        if (!ok) {
            count(a, &a->failures, 1);
            return NULL;
        }
    }
    grant g = { 0 };
    char *p;
    if (size <= a->large_max && align <= MP_ARENA_SMALL_ALIGN_MAX)
        p = a->mode == MODE_CAS ? cas_small(a, size, align, &g) : st_small(a, size, align, &g);
    else
        p = large_alloc(a, size, align, zero, &g);
    if (!p) {
        if (a->debug) {
            arena_lock(a);
            a->rpending--;
            arena_unlock(a);
        }
        count(a, &a->failures, 1);
        errno = ENOMEM;
        return NULL;
    }
    return a->post ? hand_out(a, p, size, &g, site) : p;
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

void *mp_alloc(mp_arena *a, size_t size)
{
    void *p;
    if (mp_likely(a != NULL) && fast_bump(a, size, ARENA_ALIGN, &p))
        return p;
    return alloc_slow(a, size, ARENA_ALIGN, false, __builtin_return_address(0));
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
    if (!(a != NULL && fast_bump(a, bytes, ARENA_ALIGN, &p))) {
        p = alloc_slow(a, bytes, ARENA_ALIGN, true, __builtin_return_address(0));
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
    if (!arena_ok(a, "allocation from a destroyed or invalid arena"))
        return NULL;
    if (!fmt) {
        errno = EINVAL;
        return NULL;
    }
    va_list aq;
    int n;
    if (a->mode == MODE_PLAIN && a->fast.cur) {
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

/* A small or large block of a containing p, searched (for pointers past
 * the first MP_CHUNK_SIZE bytes of a big block or aligned large one). */
static block *find_containing(mp_arena *a, const char *p)
{
    for (block *blk = a->first; blk; blk = blk->next)
        if (p >= block_base(blk) && p < blk->end)
            return blk;
    for (block *blk = a->large; blk; blk = blk->next)
        if (p >= block_base(blk) && p < blk->end)
            return blk;
    return NULL;
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
        char from[MP_NAME_MAX + 32];
        mp__owner_detail(from, sizeof from, c);
        const char *check = c->kind == MP__KIND_ARENA ? "free of a pointer from another arena"
                                                       : "free of a pointer from another pool";
        mp__misuse_detail(check, KIND, name, p, from);
        return NULL;
    }
    if (c) {
        blk = (block *)c;
    } else {
        arena_lock(a);
        blk = find_containing(a, p);
        arena_unlock(a);
        if (!blk) {
            mp__misuse("free of a pointer not from this arena", KIND, name, p);
            return NULL;
        }
    }
    if (blk->large ? p != blk->start : (p < blk->start || p >= block_top(a, blk))) {
        mp__misuse(blk->large ? "free of an interior pointer" : "free of a pointer not handed out", KIND, name, p);
        return NULL;
    }
    return blk;
}

static void large_free(mp_arena *a, block *blk)
{
    arena_lock(a);
    note_peak(a);
    large_unlink(a, blk);
    arena_unlock(a);
    block_release(a, blk);
}

/* Rolls a single-threaded arena's block back to p if p is its newest
 * allocation. Returns whether it did. */
static bool st_rollback(mp_arena *a, block *blk, char *p)
{
    if (blk == a->act) {
        bump *b = bump_of(a);
        if (p != b->last)
            return false;
        note_peak(a);
        b->cur = p;
        b->last = NULL;
        return true;
    }
    if (p != blk->last)
        return false;
    note_peak(a);
    a->closed_used -= (size_t)(blk->top - p);
    blk->top = p;
    blk->last = NULL;
    return true;
}

static bool rollback(mp_arena *a, block *blk, char *p)
{
    if (a->mode != MODE_CAS)
        return st_rollback(a, blk, p);
    return cas_rollback(blk, p);
}

/* Whether a rollback to p may raise blk's hw (lock held). An allocation
 * checks [from, to) below hw for the fill, trusting that everything from
 * its old top up to hw was fill when it bumped. In CAS mode other threads
 * may have bumped below p and not checked yet (rpending counts them, from
 * before their bump to after their check): raising hw over their memory
 * would fail them, so then it rises only when it already reaches p. */
static bool hw_may_rise(const mp_arena *a, const block *blk, const char *p)
{
    return a->mode != MODE_CAS || a->rpending == 0 || blk->hw >= p;
}

/* mp_arena_free in an arena with records (tools or checked mode). */
static void debug_free(mp_arena *a, block *blk, char *p, const void *site)
{
    const char *bad = NULL;
    bool rz_bad = false;
    mp__objinfo info = { 0 };
    arena_lock(a);
    rec *r = rec_find(a, p);
    if (!r || r->info.state != MP_OBJ_OUT) {
        bad = r ? "double free" : "free of a pointer that is not an allocation";
        if (r)
            info = r->info;
        arena_unlock(a);
        if (a->checked)
            mp__misuse_obj(bad, KIND, a->node.name, p, &info);
        return;
    }
    size_t size = r->size;
    if (a->checked)
        rz_bad = !intact(a, p + size, a->rz, MP_FILL_REDZONE);
    r->info.state = MP_OBJ_FREE;
    r->info.free_site = site;
    info = r->info;
    if (blk->large) {
        arena_unlock(a);
        if (a->tracked)
            mp__track_obj_in(a, p, size);
        large_free(a, blk);
    } else {
        char *top = block_top(a, blk);
        if (a->checked)
            fill_hidden(a, p, size, MP_FILL_FREED);
        if (a->tracked)
            mp__track_obj_in(a, p, size);
        if (rollback(a, blk, p)) {
            /* Rolled back: the record goes (its place will be reused) and
             * the whole tail is fill, up to the old top. */
            rec_delete(a, r);
            if (a->checked) {
                fill_hidden(a, p + size, (size_t)(top - p - size), MP_FILL_FREED);
                if (top > blk->hw && hw_may_rise(a, blk, p))
                    blk->hw = top;
            }
        }
        arena_unlock(a);
    }
    count(a, &a->frees, 1);
    if (rz_bad)
        mp__misuse_obj("write past the end of an allocation", KIND, a->node.name, p, &info);
}

void mp_arena_free(mp_arena *a, void *ptr)
{
    if (!ptr)
        return;
    if (!arena_ok(a, "free to a destroyed or invalid arena"))
        return;
    char *p = ptr;
    if (a->mode == MODE_PLAIN && p == a->fast.last) { /* the newest: roll back */
        note_peak(a);
        a->fast.cur = p;
        a->fast.last = NULL;
        a->frees++;
        return;
    }
    block *blk = block_of(a, p);
    if (!blk)
        return;
    if (a->debug) {
        debug_free(a, blk, p, __builtin_return_address(0));
        return;
    }
    if (blk->large)
        large_free(a, blk);
    else
        rollback(a, blk, p); /* else its space waits for the reset */
    count(a, &a->frees, 1);
}

/* -------------------------------------------------------------- cleanups */

int mp_cleanup_push(mp_arena *a, void (*fn)(void *), void *arg)
{
    if (!fn || !arena_ok(a, "cleanup on a destroyed or invalid arena"))
        return EINVAL;
    cleanup *c = mp__meta_alloc(sizeof *c);
    if (!c) {
        count(a, &a->failures, 1);
        return ENOMEM;
    }
    c->fn = fn;
    c->arg = arg;
    arena_lock(a);
    c->next = a->cleanups;
    a->cleanups = c;
    arena_unlock(a);
    return 0;
}

int mp_cleanup_remove(mp_arena *a, void (*fn)(void *), void *arg)
{
    if (!arena_ok(a, "cleanup on a destroyed or invalid arena"))
        return EINVAL;
    arena_lock(a);
    cleanup **link = &a->cleanups;
    while (*link && ((*link)->fn != fn || (*link)->arg != arg))
        link = &(*link)->next;
    cleanup *c = *link;
    if (c)
        *link = c->next;
    arena_unlock(a);
    if (!c)
        return ENOENT;
    mp__meta_free(c);
    return 0;
}

/* Runs every cleanup, newest first, including any pushed meanwhile; no
 * lock is held while one runs. Returns how many ran. */
static size_t run_cleanups(mp_arena *a)
{
    for (size_t ran = 0;; ran++) {
        arena_lock(a);
        cleanup *c = a->cleanups;
        if (c)
            a->cleanups = c->next;
        arena_unlock(a);
        if (!c)
            return ran;
        c->fn(c->arg);
        mp__meta_free(c);
    }
}

/* ----------------------------------------------------------- reset/free */

/* Reset or destroy with records: checks every red zone and freed fill,
 * and tells the tools every allocation is gone. Exclusive access. */
static void debug_sweep(mp_arena *a)
{
    for (size_t i = 0; i < a->rcap; i++) {
        rec *r = &a->recs[i];
        if (!r->p)
            continue;
        if (r->info.state == MP_OBJ_OUT) {
            if (a->checked && !intact(a, r->p + r->size, a->rz, MP_FILL_REDZONE))
                mp__misuse_obj("write past the end of an allocation", KIND, a->node.name, r->p, &r->info);
            if (a->tracked)
                mp__track_obj_in(a, r->p, r->size);
        } else if (!r->large && a->checked && !intact(a, r->p, r->size, MP_FILL_FREED)) {
            mp__misuse_obj("write to a freed allocation", KIND, a->node.name, r->p, &r->info);
        }
    }
    if (a->recs)
        memset(a->recs, 0, a->rcap * sizeof *a->recs);
    a->rn = 0;
}

/* Empties a kept block (lock held in CAS mode). */
static void block_rewind(mp_arena *a, block *blk)
{
    char *top = block_top(a, blk);
    if (a->checked) {
        fill_hidden(a, blk->start, (size_t)(top - blk->start), MP_FILL_FREED);
        if (top > blk->hw)
            blk->hw = top;
    } else if (a->tracked) {
        mp__track_obj_hide(blk->start, (size_t)(top - blk->start));
    }
    a->allocs += ld(&blk->nallocs);
    blk->nallocs = 0;
    blk->top = blk->start;
    blk->last = NULL;
    blk->failed = 0;
    blk->word = word_pack(LAST_NONE, BLOCK_HDR);
}

/* Gives back every large allocation and every small block but the oldest
 * `keep`, which are emptied for reuse. */
static void release_memory(mp_arena *a, size_t keep)
{
    if (a->debug)
        debug_sweep(a);
    arena_lock(a);
    note_peak(a);
    block *large = a->large, *drop = NULL;
    a->large = NULL;
    a->nlarge = a->large_bytes = 0;
    size_t kept = 0;
    for (block *blk = a->first, *next; blk; blk = next) {
        next = blk->next;
        if (kept < keep) {
            block_rewind(a, blk);
            kept++;
            continue;
        }
        a->allocs += ld(&blk->nallocs);
        list_unlink(a, blk);
        blk->next = drop;
        drop = blk;
    }
    a->nblocks = kept;
    a->act = a->search = NULL;
    a->closed_used = 0;
    bump *b = bump_of(a);
    *b = (bump){ 0 };
    if (a->mode == MODE_CAS)
        __atomic_store_n(&a->ts_act, NULL, __ATOMIC_RELEASE);
    if (a->first) {
        if (a->mode == MODE_CAS)
            cas_activate(a, a->first);
        else
            st_activate(a, a->first);
        a->first->failed = 0;
    }
    __atomic_store_n(&a->frees, a->allocs, __ATOMIC_RELAXED); /* everything is freed */
    arena_unlock(a);
    release_list(a, large);
    release_list(a, drop);
}

/* Destroys a's children, if it has any. Reading the list head without the
 * tree lock is safe here: a reset or destroy has the arena to itself, and
 * only a call on this arena (or with it as parent) changes its children. */
static void destroy_children(mp_arena *a)
{
    if (__atomic_load_n(&a->node.children, __ATOMIC_RELAXED))
        mp__tree_destroy_children(&a->node);
}

/* Children, cleanups, children the cleanups made (whose destroy may push
 * more cleanups on a), and so on until a round runs none; then memory. */
static void arena_clear(mp_arena *a, size_t keep)
{
    a->busy = true;
    do
        destroy_children(a);
    while (run_cleanups(a));
    release_memory(a, keep);
    a->busy = false;
}

void mp_arena_reset(mp_arena *a)
{
    if (!arena_ok(a, "reset of a destroyed or invalid arena"))
        return;
    if (a->busy) {
        mp__misuse("reset of an arena during its own reset or destroy", KIND, a->node.name, a);
        return;
    }
    arena_clear(a, a->release ? 0 : MP_ARENA_KEEP_BLOCKS);
}

/* Frees the arena struct and what hangs off it (no memory left). */
static void arena_free_struct(mp_arena *a)
{
    if (a->tracked)
        mp__track_pool_destroy(a);
    mp__meta_free(a->recs);
    a->recs = NULL;
    a->rcap = a->rn = 0;
    if (a->ts) {
        pthread_cond_destroy(&a->grown);
        pthread_mutex_destroy(&a->lock);
    }
    mp__node_fini(&a->node);
    a->fast = (bump){ 0 };
    if (a->checked) { /* kept, so that a later use is detected */
        mp__graveyard_keep(a, &a->grave_next);
        return;
    }
    mp__meta_free(a);
}

/* Takes a out of the tree and out of its ancestors' limit accounting, before
 * its teardown runs any cleanup: a cleanup may then destroy a former
 * ancestor, and the teardown, which uncharges as it frees, never reaches it. */
static void leave_parent(mp_arena *a)
{
    mp__node_detach(&a->node);
    mp__lock(&acct_lock);
    chain_uncharge_locked(a->acct_parent, a->total);
    a->acct_parent = NULL;
    mp__unlock(&acct_lock);
}

/* Destroys an arena that is already detached from the tree. */
static void arena_teardown(mp_arena *a)
{
    arena_clear(a, 0);
    mp__lock(&acct_lock);
    a->acct_parent = NULL; /* its total is 0 now: nothing left to uncharge */
    mp__unlock(&acct_lock);
    arena_free_struct(a);
}

void mp_arena_destroy(mp_arena *a)
{
    if (!a)
        return;
    if (!mp__node_live(&a->node, MP__KIND_ARENA)) {
        mp__misuse("destroy of a destroyed or invalid arena", KIND, NULL, a);
        return;
    }
    if (a->busy) {
        mp__misuse("destroy of an arena during its own reset or destroy", KIND, a->node.name, a);
        return;
    }
    leave_parent(a);
    arena_teardown(a);
}

/* ------------------------------------------------------------ tree ops */

/* A child arena busy in its own reset (one of its cleanups destroyed an
 * ancestor) refuses, and becomes a root: its bytes must stop counting
 * against ancestors that are about to be freed. */
static bool node_destroy(mp__node *n)
{
    mp_arena *a = (mp_arena *)n;
    if (a->busy) {
        mp__misuse("destroy of an arena during its own reset or destroy", KIND, a->node.name, a);
        mp_arena_move(a, NULL); /* cannot fail: a is live, and a root crosses no limit */
        return false;
    }
    arena_teardown(a);
    return true;
}

static void node_stats(const mp__node *n, mp_stats *out) { own_stats((const mp_arena *)n, out); }

static void node_lock(mp__node *n) { arena_lock((mp_arena *)n); }

static void node_unlock(mp__node *n) { arena_unlock((mp_arena *)n); }

/* fork() child, lock held: a thread making a block in the parent is not
 * here; nobody will clear `growing` or signal the waiters it had. */
static void node_forget_waiters(mp__node *n)
{
    mp_arena *a = (mp_arena *)n;
    if (!a->ts || !a->growing)
        return;
    a->growing = false;
    memset(&a->grown, 0, sizeof a->grown);
    mp__cond_init(&a->grown);
}

static const mp__node_ops arena_ops = {
    .destroy = node_destroy,
    .stats = node_stats,
    .lock_for_fork = node_lock,
    .unlock_after_fork = node_unlock,
    .forget_waiters_after_fork = node_forget_waiters,
};

/* The charge moves first, under acct_lock, checked against every limit on
 * the new chain: on ENOMEM the tree has not been touched, so the arena
 * keeps its place among its siblings. Only then does the node move; if the
 * tree refuses (a dead parent), the charge, whatever it has grown to
 * meanwhile, goes back to the old chain. */
int mp_arena_move(mp_arena *a, mp_arena *new_parent)
{
    if (!arena_ok(a, "move of a destroyed or invalid arena"))
        return EINVAL;
    if (new_parent && !mp__node_live(&new_parent->node, MP__KIND_ARENA))
        return EINVAL;
    mp__lock(&acct_lock);
    mp_arena *old = a->acct_parent;
    for (mp_arena *x = new_parent; x; x = x->acct_parent) {
        if (x == a) { /* a cycle: the charge must never loop */
            mp__unlock(&acct_lock);
            return EINVAL;
        }
    }
    size_t t = a->total;
    chain_uncharge_locked(old, t);
    bool fits = true;
    for (mp_arena *x = new_parent; x; x = x->acct_parent)
        if (x->limit && x->total + t > x->limit)
            fits = false;
    if (!fits) {
        chain_charge_locked(old, t);
        mp__unlock(&acct_lock);
        return ENOMEM;
    }
    chain_charge_locked(new_parent, t);
    a->acct_parent = new_parent;
    mp__unlock(&acct_lock);
    int rc = mp__node_move(&a->node, new_parent); /* refuses cycles and dead parents */
    if (rc) {
        mp__lock(&acct_lock);
        chain_uncharge_locked(new_parent, a->total);
        chain_charge_locked(old, a->total);
        a->acct_parent = old;
        mp__unlock(&acct_lock);
    }
    return rc;
}

/* ---------------------------------------------------------------- create */

mp_arena *mp_arena_create(mp_arena *parent, const mp_arena_opts *opts)
{
    mp_arena_opts o = opts ? *opts : (mp_arena_opts){ 0 };
    /* MP_SINGLE_THREAD is the default, accepted so one flag set can serve
     * every kind; the leak policies are refused: an arena frees everything
     * it holds at destroy and never reports a leak. */
    const unsigned known = MP_SINGLE_THREAD | MP_THREADSAFE | MP_ZERO | MP_RELEASE_ON_RESET;
    if ((o.flags & ~known) || ((o.flags & MP_SINGLE_THREAD) && (o.flags & MP_THREADSAFE)) ||
        o.block_size > BLOCK_MAX || (parent && !mp__node_live(&parent->node, MP__KIND_ARENA))) {
        errno = EINVAL;
        return NULL;
    }
    mp__fork_handlers_register();

    mp_arena *a = mp__meta_alloc(sizeof *a);
    if (!a)
        return NULL;
    mp__node_init(&a->node, MP__KIND_ARENA, &arena_ops, o.name);
    a->span = page_round(o.block_size ? o.block_size : BLOCK_DEFAULT);
    a->large_max = (a->span - BLOCK_HDR) / 4;
    a->limit = o.limit;
    a->ts = (o.flags & MP_THREADSAFE) != 0;
    a->zero = (o.flags & MP_ZERO) != 0;
    a->release = (o.flags & MP_RELEASE_ON_RESET) != 0;
    a->checked = mp__checked();
    a->tracked = mp__track_active();
    a->debug = a->checked || a->tracked;
    a->post = a->debug || a->zero;
    a->rz = a->debug ? MP_REDZONE : 0;
    a->mode = a->ts ? MODE_CAS : a->post ? MODE_SLOW : MODE_PLAIN;
    a->acct_parent = parent;
    if (a->ts) {
        mp__mutex_init(&a->lock);
        mp__cond_init(&a->grown);
    }
    if (a->tracked)
        mp__track_pool_create(a, a->zero);
    int rc = mp__node_attach(parent, &a->node);
    if (rc) {
        a->checked = false; /* never handed out: no graveyard */
        arena_free_struct(a);
        errno = rc;
        return NULL;
    }
    return a;
}
