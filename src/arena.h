/*
 * arena.h - layer 6: the arena's structure, shared by its files:
 *
 *   arena.c        create, reset and destroy, the tree's node ops,
 *                  cleanups, statistics, move
 *   arena_alloc.c  the public allocation calls and mp_arena_free: the
 *                  inline fast bump, the slow path, large allocations
 *   arena_bump.c   small blocks and their list, the single-threaded bump
 *                  and search, the CAS bump, rollback, giving memory back
 *   arena_acct.c   limit accounting and its fork hook
 *   arena_check.c  records (tools or checked mode), fills, red zones
 *
 * Model. Arenas hand out variable-size allocations bumped out of blocks,
 * freed all at once by reset or destroy, and are the parent of other
 * pools. An arena is a struct from mp__meta_alloc (so it can outlive its
 * memory in the checked-mode graveyard) and two lists of chunks, each
 * chunk starting with a block header (which starts with the mp__chunk
 * header, kind MP__KIND_ARENA, owner the arena):
 *
 *   small blocks:  | block | small allocations, bumped upwards ... | unused |
 *                  base    start                     top          end
 *   large:         | block | pad | the allocation | (red zone) |
 *                  base          start            end
 *
 * A small block spans `span` bytes (block_size rounded up to pages; 64 KiB
 * by default) inside a chunk of the next multiple of MP_CHUNK_SIZE; bytes
 * past `end` are never touched, so never committed. Requests up to
 * large_max (a quarter of a block's room) with alignment up to
 * MP_ARENA_SMALL_ALIGN_MAX are small; anything else is large: a chunk of
 * its own, on the `larges` list, given back to the OS by mp_arena_free at
 * once.
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
 * nblocks and growing. Lock order: tree lock, then arena mutex (stats),
 * then the accounting lock (arena_acct.c); no lock is held while the chunk
 * layer or the OS is called, nor while a cleanup, a child's destroy or the
 * error handler runs. Reset and destroy need the arena to themselves.
 *
 * Invariants (single-threaded modes):
 *   - start <= top <= end for every block; act's top is bump->cur while it
 *     is active, blk->top otherwise;
 *   - blk->last (bump->last for act) is the start of the newest allocation
 *     in that block still live, or NULL: freeing exactly it rolls top back;
 *   - closed_used == sum over blocks before act of (top - start);
 *   - in use == closed_used + (bump->cur - act->start) + large_bytes; it
 *     only decreases at a rollback, a large free or a reset, each of which
 *     first records the peak (mp__arena_note_peak), so bytes_peak is exact.
 *     In CAS mode a rollback is lock-free and does not record the peak
 *     first: there it is sampled at large frees, resets and stats, a lower
 *     bound.
 */
#ifndef MP_ARENA_H
#define MP_ARENA_H

#include "chunk.h"
#include "common.h"
#include "debug.h"
#include "error.h"
#include "list.h"
#include "os.h"
#include "ptrset.h"
#include "sync.h"
#include "tree.h"

#include <stdalign.h>

#define MP_ARENA_KIND "arena"
#define MP_ARENA_SMALL_ALIGN_MAX ((size_t)4096)
#define MP_ARENA_KEEP_BLOCKS 16 /* blocks a reset keeps for reuse */

#define MP_ARENA_ALIGN alignof(max_align_t) /* mp_alloc's alignment */
#define MP_ARENA_BLOCK_DEFAULT MP_CHUNK_SIZE /* span of a block when block_size is 0 */
#define MP_ARENA_BLOCK_MAX ((size_t)1 << 30) /* largest block_size: offsets fit 32 bits */
#define MP_ARENA_LAST_NONE 0xffffffffu       /* CAS word: no newest allocation known */

typedef struct mp__arena_block {
    mp__chunk chunk; /* first: kind MP__KIND_ARENA, owner the arena */
    uint32_t large;  /* 1: one large allocation; 0: small allocations */
    uint32_t failed; /* requests this block could not take (search) */
    mp__link link;   /* on the arena's `blocks` (small) or `larges` list */
    char *start;     /* first usable byte (large: the allocation) */
    char *end;       /* one past the last usable byte (large: of the allocation) */
    char *top;       /* next free byte (single-threaded, when not act) */
    char *last;      /* newest live allocation here, NULL: unknown (idem) */
    char *hw;        /* checked: [top, hw) holds MP_FILL_FREED */
    size_t span;     /* bytes charged for this block */
    uint64_t word;   /* CAS mode: last offset << 32 | top offset (atomic) */
    size_t nallocs;  /* CAS mode: allocations bumped here since reset (atomic) */
} mp__arena_block;

#define MP_ARENA_BLOCK_HDR ((sizeof(mp__arena_block) + 63) & ~(size_t)63)

typedef struct mp__arena_bump {
    char *cur;  /* next free byte of act */
    char *end;  /* act->end */
    char *last; /* newest live allocation in act, or NULL */
} mp__arena_bump;

typedef struct mp__arena_cleanup {
    struct mp__arena_cleanup *next; /* older */
    void (*fn)(void *);
    void *arg;
} mp__arena_cleanup;

typedef enum mp__arena_mode { MP__ARENA_PLAIN, MP__ARENA_SLOW, MP__ARENA_CAS } mp__arena_mode;

/* What an allocation was carved from, for mp__arena_hand_out. */
typedef struct mp__arena_grant {
    mp__arena_block *blk; /* its block (small) or chunk (large) */
    char *from;           /* the block's top before it (small) */
    bool large;
} mp__arena_grant;

struct mp_arena {
    mp__node node; /* first: the pool tree casts between the two */
    char node_pad[MP__HOT_OFFSET - sizeof(mp__node)];

    /* What the inline mp_alloc sees (mp__arena_hot, mpool.h). Fast path:
     * MP__ARENA_PLAIN only; NULL, NULL otherwise. */
    mp__arena_bump fast;
    size_t allocs;    /* allocations (CAS: those not counted in blocks' nallocs; under the lock) */
    size_t large_max; /* largest small allocation */

    /* Configuration (constant after create). */
    mp__arena_mode mode;
    bool ts;          /* MP_THREADSAFE: lock below used */
    bool zero;        /* MP_ZERO */
    bool release;     /* MP_RELEASE_ON_RESET: a reset keeps no block */
    bool tracked;     /* memory tools watch: every event to track.h */
    bool checked;     /* checked mode */
    bool debug;       /* tracked || checked: records kept */
    bool post;        /* debug || zero: mp__arena_hand_out has work to do */
    size_t rz;        /* bytes left after each allocation (debug: MP_REDZONE) */
    size_t span;      /* bytes of a standard block */
    size_t limit;     /* 0: none */

    pthread_mutex_t lock; /* CAS mode: guards everything below but the atomics,
                             busy, and the accounting fields (acct_lock) */
    bool busy;            /* a reset or destroy is running; no lock: only the thread
                             running it (and the callbacks it calls) reads it */

    /* Small blocks, oldest first: first ... search ... act | spares ...
     * (arena_bump.c). */
    mp__list blocks;
    mp__arena_block *act;    /* the block being bumped */
    mp__arena_block *search; /* oldest block still searched (single-threaded modes) */
    mp__arena_block *ts_act; /* CAS mode: act, published with release (atomic) */
    mp__arena_bump slow;     /* MP__ARENA_SLOW: the bump of act */
    size_t nblocks;
    bool growing;            /* CAS mode: a thread is making a new block for act */
    pthread_cond_t grown;    /* CAS mode: signalled when growing turns false */
    size_t closed_used;      /* single-threaded: used bytes of blocks before act */

    /* Large allocations, newest first. */
    mp__list larges;
    size_t nlarge, large_bytes;

    mp__arena_cleanup *cleanups; /* newest first */
    size_t ncleanups;            /* records on that list (for bytes_meta) */

    /* Accounting (acct_lock, arena_acct.c). */
    mp_arena *acct_parent;
    size_t held;  /* bytes charged to this arena (atomic reads) */
    size_t total; /* held + child arenas' totals */

    /* Statistics. */
    size_t peak;            /* most bytes in use seen (mp__arena_note_peak) */
    size_t frees, failures; /* atomic in CAS mode */

    /* Debug arenas: one record per allocation (arena_check.c). Its pending
     * count is the allocations between mp__arena_rec_reserve and
     * mp__arena_hand_out. */
    mp__ptrset recs;

    void *grave_next; /* checked: the graveyard link (mp__graveyard_keep) */
};

_Static_assert(offsetof(mp_arena, fast) + offsetof(mp__arena_bump, cur) == MP__HOT_OFFSET + offsetof(mp__arena_hot, cur) &&
                   offsetof(mp_arena, fast) + offsetof(mp__arena_bump, end) == MP__HOT_OFFSET + offsetof(mp__arena_hot, end) &&
                   offsetof(mp_arena, fast) + offsetof(mp__arena_bump, last) == MP__HOT_OFFSET + offsetof(mp__arena_hot, last) &&
                   offsetof(mp_arena, allocs) == MP__HOT_OFFSET + offsetof(mp__arena_hot, allocs) &&
                   offsetof(mp_arena, large_max) == MP__HOT_OFFSET + offsetof(mp__arena_hot, large_max),
               "the arena's fields the inline mp_alloc sees (mpool.h)");

/* ------------------------------------------------------------- helpers */

static inline void mp__arena_lock(mp_arena *a)
{
    if (a->ts)
        mp__lock(&a->lock);
}

static inline void mp__arena_unlock(mp_arena *a)
{
    if (a->ts)
        mp__unlock(&a->lock);
}

/* True when a is a live arena; a NULL arena is a bad argument, anything
 * else that is not a live arena is misuse. */
static inline bool mp__arena_ok(const mp_arena *a, const char *what)
{
    return mp__node_ok((const mp__node *)a, MP__KIND_ARENA, what);
}

static inline size_t mp__arena_page_round(size_t n) { return mp__align_up(n, mp__os_page_size()); }

static inline size_t mp__arena_ld(const size_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* Adds to a counter other threads may change (CAS mode) or read. */
static inline void mp__arena_count(const mp_arena *a, size_t *c, size_t n)
{
    if (a->ts)
        __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
    else
        *c += n;
}

static inline mp__arena_bump *mp__arena_bump_of(const mp_arena *a)
{
    return (mp__arena_bump *)(a->mode == MP__ARENA_PLAIN ? &a->fast : &a->slow);
}

static inline uint64_t mp__arena_word_pack(size_t last_off, size_t top_off) { return (uint64_t)last_off << 32 | top_off; }

static inline char *mp__arena_block_base(const mp__arena_block *blk) { return (char *)blk; }

/* The block on a list link, or NULL for the end of the list. */
static inline mp__arena_block *mp__arena_block_at(const mp__link *l)
{
    return l ? mp__list_entry(l, mp__arena_block, link) : NULL;
}

static inline mp__arena_block *mp__arena_block_next(const mp__arena_block *blk)
{
    return mp__arena_block_at(blk->link.next);
}

/* The current top of a small block, in any mode. */
static inline char *mp__arena_block_top(const mp_arena *a, const mp__arena_block *blk)
{
    if (a->mode == MP__ARENA_CAS)
        return mp__arena_block_base(blk) + (uint32_t)__atomic_load_n(&blk->word, __ATOMIC_RELAXED);
    return blk == a->act ? mp__arena_bump_of(a)->cur : blk->top;
}

/* Bytes handed out now in CAS mode (lock held; arena.c). */
size_t mp__arena_in_use_cas(const mp_arena *a);

/* Bytes handed out now (CAS mode: lock held). */
static inline size_t mp__arena_in_use(const mp_arena *a)
{
    if (a->mode == MP__ARENA_CAS)
        return mp__arena_in_use_cas(a);
    size_t n = a->large_bytes + a->closed_used;
    if (a->act)
        n += (size_t)(mp__arena_bump_of(a)->cur - a->act->start);
    return n;
}

/* Called before every decrease of in_use in the single-threaded modes, so
 * the peak there is exact. CAS mode calls it (lock held) only at large
 * frees, resets and stats: lock-free rollbacks skip it. Inline: the plain
 * rollback in mp_arena_free calls it. */
static inline void mp__arena_note_peak(mp_arena *a)
{
    size_t u = mp__arena_in_use(a);
    if (u > a->peak)
        a->peak = u;
}

/* ---------------------------------------------------------- arena_acct.c */

/* A pool of another kind (a heap) with a limit of its own, counted against
 * its parent arena's as a child arena's is: total is what it holds from
 * the OS; every arena above it counts it in its own total. All fields
 * under the accounting lock (total also read atomically). */
typedef struct mp__acct_child {
    mp_arena *parent; /* the parent arena, NULL for a root */
    size_t total;     /* bytes charged to the child */
    size_t limit;     /* 0: none */
} mp__acct_child;
void mp__acct_child_init(mp__acct_child *c, mp_arena *parent, size_t limit);
/* n more bytes, if the child's limit and every one above allow (false:
 * nothing charged). */
bool mp__acct_child_charge(mp__acct_child *c, size_t n);
void mp__acct_child_uncharge(mp__acct_child *c, size_t n);
/* Out of its parents' accounting (the start of its destroy). */
void mp__acct_child_leave(mp__acct_child *c);
/* mp__node_move's check for the child: as mp__arena_move_charge. */
bool mp__acct_child_move(mp__acct_child *c, mp_arena *to);


/* Registers the accounting lock with the fork handler (every create). */
void mp__arena_acct_init(void);
/* Charges a and every arena above it: `want` bytes if every limit on the
 * way allows, else as many whole pages as fit, but at least `min`.
 * Returns the bytes charged, or 0 with errno ENOMEM. */
size_t mp__arena_acct_charge(mp_arena *a, size_t want, size_t min);
void mp__arena_acct_uncharge(mp_arena *a, size_t n);
/* Takes a out of its ancestors' accounting (its destroy has begun, or it
 * refused its parent's destroy and becomes a root). */
void mp__arena_leave_accounting(mp_arena *a);
/* mp__node_move's check, under the tree lock: moves a's charge from its
 * old ancestors to `to`'s chain if every limit there allows, else changes
 * nothing and returns false. */
bool mp__arena_move_charge(mp__node *n, mp_arena *to, void *arg);

/* ---------------------------------------------------------- arena_bump.c */

/* Small allocation of size bytes (plus the red zone) aligned to align, in
 * the single-threaded modes and in CAS mode; NULL (errno ENOMEM) when no
 * block can be had. Counts the allocation. */
char *mp__arena_st_small(mp_arena *a, size_t size, size_t align, mp__arena_grant *g);
char *mp__arena_cas_small(mp_arena *a, size_t size, size_t align, mp__arena_grant *g);
/* Rolls blk back to p if p is its newest allocation; whether it did. */
bool mp__arena_rollback(mp_arena *a, mp__arena_block *blk, char *p);
/* Gives a block's memory back (chunk layer or OS) and its charge. */
void mp__arena_block_release(mp_arena *a, mp__arena_block *blk);
/* Gives back every large allocation and every small block but the oldest
 * `keep`, which are emptied for reuse (reset and destroy). */
void mp__arena_release_memory(mp_arena *a, size_t keep);

/* --------------------------------------------------------- arena_alloc.c */

/* Unlinks and gives back a large allocation. */
void mp__arena_large_free(mp_arena *a, mp__arena_block *blk);

/* --------------------------------------------------------- arena_check.c */

/* Reserves a record for an allocation about to be made (debug arenas);
 * false when the table cannot grow. unreserve: the allocation failed. */
bool mp__arena_rec_reserve(mp_arena *a);
void mp__arena_rec_unreserve(mp_arena *a);
/* Records an allocation of a debug arena (taking its reservation), checks
 * the freed fill it was carved from, fills it and its red zone, and tells
 * the tools. Returns false when that fill had been written to (the caller
 * reports it once the allocation is complete). */
bool mp__arena_debug_out(mp_arena *a, char *p, size_t size, const mp__arena_grant *g, const void *site);
/* mp_arena_free in an arena with records. */
void mp__arena_debug_free(mp_arena *a, mp__arena_block *blk, char *p, const void *site);
/* Reset or destroy with records: checks every red zone and freed fill,
 * tells the tools every allocation is gone, forgets every record.
 * Exclusive access. */
void mp__arena_debug_sweep(mp_arena *a);
/* Fills [p, p+n) with b (memory that is no-access when tracked). */
void mp__arena_fill_hidden(const mp_arena *a, char *p, size_t n, unsigned char b);

/* ----------------------------------------------------------- test hooks */

/* Largest allocation bumped out of a block; anything bigger (or aligned to
 * more than MP_ARENA_SMALL_ALIGN_MAX) is a large allocation with a chunk of
 * its own. */
size_t mp__arena_large_max(const mp_arena *a);
/* Bytes of one standard block, header included (what it is charged). */
size_t mp__arena_block_span(const mp_arena *a);
/* Blocks of small allocations the arena holds now (active, used, spare). */
size_t mp__arena_blocks(const mp_arena *a);
/* Large allocations live now. */
size_t mp__arena_larges(const mp_arena *a);

#endif /* MP_ARENA_H */
