/*
 * arena_bump.c - layer 6: an arena's small blocks (the model is in
 * arena.h): making, finding and giving back blocks, the single-threaded
 * bump and search, the CAS bump, rollback, and emptying at reset.
 *
 * The block list (a->blocks, an mp__list) is kept in this order:
 *   first ... search ... act | spares ...
 * Blocks before `act` hold allocations (their tops move only when a
 * search fills them further or a rollback frees their newest allocation),
 * `act` is the block the bump pointer is in, spares (kept by a reset) are
 * empty. `search` (single-threaded modes; CAS mode never searches) is the
 * oldest block still worth trying when a request misses `act`: it moves
 * past a block once that block has missed more than FAIL_MAX requests; a
 * younger block that missed as often is still tried until every block
 * before it has been passed. A new block or a spare taken into use goes
 * just after act, so the order holds.
 *
 * CAS mode: each block's word packs the offsets of its newest allocation
 * and its top; bumps acquire and rollbacks release on it (see cas_bump and
 * cas_rollback), and the list, act and nblocks change under the arena
 * mutex. One thread at a time makes a new block (cas_switch).
 */
#include "arena.h"
#include "track.h"

#define FAIL_MAX 4 /* misses before a block is no longer searched */

typedef mp__arena_block block;

/* The link a new active block goes after (NULL: the head). */
static mp__link *act_link(const mp_arena *a) { return a->act ? &a->act->link : NULL; }

/* ---------------------------------------------------------------- blocks */

void mp__arena_block_release(mp_arena *a, block *blk)
{
    size_t span = blk->span;
    if (a->tracked)
        mp__track_release(blk, span);
    mp__chunk_free(&blk->chunk);
    mp__arena_acct_uncharge(a, span);
}

/* Releases every block on a list no longer reachable from the arena. */
static void release_list(mp_arena *a, mp__list *list)
{
    for (mp__link *l = list->head, *next; l; l = next) {
        next = l->next;
        mp__arena_block_release(a, mp__arena_block_at(l));
    }
}

/* A new small block with room for at least min_room bytes: a standard
 * one, or a smaller one when a limit leaves less. NULL with errno ENOMEM. */
static block *block_new(mp_arena *a, size_t min_room)
{
    size_t min_span = mp__arena_page_round(MP_ARENA_BLOCK_HDR + min_room);
    size_t want = a->span > min_span ? a->span : min_span;
    size_t span = mp__arena_acct_charge(a, want, min_span);
    if (!span)
        return NULL;
    /* Blocks need nothing zeroed: MP_ZERO and mp_calloc zero small
     * allocations themselves. */
    mp__chunk *c = mp__chunk_alloc(span, MP_ARENA_BLOCK_HDR, MP__KIND_ARENA, a);
    if (!c) {
        mp__arena_acct_uncharge(a, span);
        errno = ENOMEM;
        return NULL;
    }
    block *blk = (block *)c;
    blk->large = 0;
    blk->failed = 0;
    blk->link = (mp__link){ 0 };
    blk->start = mp__arena_block_base(blk) + MP_ARENA_BLOCK_HDR;
    blk->end = mp__arena_block_base(blk) + span;
    blk->top = blk->hw = blk->start;
    blk->last = NULL;
    blk->span = span;
    blk->word = mp__arena_word_pack(MP_ARENA_LAST_NONE, MP_ARENA_BLOCK_HDR);
    blk->nallocs = 0;
    if (a->tracked)
        mp__track_block_new(a, blk->start, span - MP_ARENA_BLOCK_HDR);
    return blk;
}

/* A spare block (after act) with at least min_room bytes, moved to just
 * after act; NULL if there is none. */
static block *take_spare(mp_arena *a, size_t min_room)
{
    for (block *s = a->act ? mp__arena_block_next(a->act) : mp__arena_block_at(a->blocks.head); s;
         s = mp__arena_block_next(s)) {
        if ((size_t)(s->end - s->start) < min_room)
            continue;
        if (s->link.prev != act_link(a)) {
            mp__list_remove(&a->blocks, &s->link);
            mp__list_insert_after(&a->blocks, act_link(a), &s->link);
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

/* Makes nb (already in the list, after act) the active block. Leaving the
 * old act counts as one of its misses (failed), as in st_search. */
static void st_activate(mp_arena *a, block *nb)
{
    mp__arena_bump *b = mp__arena_bump_of(a);
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
        mp__list_insert_after(&a->blocks, act_link(a), &nb->link);
        a->nblocks++;
    }
    st_activate(a, nb);
    return true;
}

/* Tries the blocks before act that are still searched. */
static char *st_search(mp_arena *a, size_t need, size_t align, mp__arena_grant *g)
{
    for (block *blk = a->search; blk && blk != a->act; blk = mp__arena_block_next(blk)) {
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
            a->search = mp__arena_block_next(blk);
    }
    return NULL;
}

char *mp__arena_st_small(mp_arena *a, size_t size, size_t align, mp__arena_grant *g)
{
    mp__arena_bump *b = mp__arena_bump_of(a);
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
    size_t cap = (size_t)(blk->end - mp__arena_block_base(blk));
    uint64_t w = __atomic_load_n(&blk->word, __ATOMIC_RELAXED);
    for (;;) {
        size_t top = (uint32_t)w;
        size_t off = mp__align_up(top, align);
        if (off > cap || need > cap - off)
            return NULL;
        if (__atomic_compare_exchange_n(&blk->word, &w, mp__arena_word_pack(off, off + need), true,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            *from = mp__arena_block_base(blk) + top;
            return mp__arena_block_base(blk) + off;
        }
    }
}

/* Rolls blk's top back to p if p is still its newest allocation. The CAS
 * releases the freeing thread's writes to whoever bumps p out next (pairs
 * with the acquire in cas_bump). */
static bool cas_rollback(block *blk, char *p)
{
    size_t off = (size_t)(p - mp__arena_block_base(blk));
    uint64_t w = __atomic_load_n(&blk->word, __ATOMIC_RELAXED);
    while ((w >> 32) == off) {
        if (__atomic_compare_exchange_n(&blk->word, &w, mp__arena_word_pack(MP_ARENA_LAST_NONE, off), true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
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
    mp__arena_lock(a);
    while (a->growing && a->act == seen)
        mp__cond_wait_until(&a->grown, &a->lock, INT64_MAX);
    if (a->act != seen) {
        mp__arena_unlock(a);
        return true;
    }
    block *nb = take_spare(a, min_room);
    if (nb) {
        cas_activate(a, nb);
        mp__arena_unlock(a);
        return true;
    }
    a->growing = true;
    mp__arena_unlock(a);
    nb = block_new(a, min_room); /* no lock held while the OS is asked */
    mp__arena_lock(a);
    a->growing = false;
    pthread_cond_broadcast(&a->grown);
    if (nb) { /* act is still seen: only a grower or a reset changes it */
        mp__list_insert_after(&a->blocks, act_link(a), &nb->link);
        a->nblocks++;
        cas_activate(a, nb);
    }
    mp__arena_unlock(a);
    return nb != NULL;
}

char *mp__arena_cas_small(mp_arena *a, size_t size, size_t align, mp__arena_grant *g)
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

/* -------------------------------------------------------------- rollback */

/* Rolls a single-threaded arena's block back to p if p is its newest
 * allocation. Returns whether it did. */
static bool st_rollback(mp_arena *a, block *blk, char *p)
{
    if (blk == a->act) {
        mp__arena_bump *b = mp__arena_bump_of(a);
        if (p != b->last)
            return false;
        mp__arena_note_peak(a);
        b->cur = p;
        b->last = NULL;
        return true;
    }
    if (p != blk->last)
        return false;
    mp__arena_note_peak(a);
    a->closed_used -= (size_t)(blk->top - p);
    blk->top = p;
    blk->last = NULL;
    return true;
}

bool mp__arena_rollback(mp_arena *a, block *blk, char *p)
{
    if (a->mode != MP__ARENA_CAS)
        return st_rollback(a, blk, p);
    return cas_rollback(blk, p);
}

/* ---------------------------------------------------------- reset/free */

/* Empties a kept block (lock held in CAS mode). */
static void block_rewind(mp_arena *a, block *blk)
{
    char *top = mp__arena_block_top(a, blk);
    if (a->checked) {
        mp__arena_fill_hidden(a, blk->start, (size_t)(top - blk->start), MP_FILL_FREED);
        if (top > blk->hw)
            blk->hw = top;
    } else if (a->tracked) {
        mp__track_obj_hide(blk->start, (size_t)(top - blk->start));
    }
    a->allocs += mp__arena_ld(&blk->nallocs);
    blk->nallocs = 0;
    blk->top = blk->start;
    blk->last = NULL;
    blk->failed = 0;
    blk->word = mp__arena_word_pack(MP_ARENA_LAST_NONE, MP_ARENA_BLOCK_HDR);
}

void mp__arena_release_memory(mp_arena *a, size_t keep)
{
    if (a->debug)
        mp__arena_debug_sweep(a);
    mp__arena_lock(a);
    mp__arena_note_peak(a);
    /* Lists are NULL-terminated both ways: a copy is the whole list. */
    mp__list large = a->larges, drop = { 0 };
    a->larges = (mp__list){ 0 };
    a->nlarge = a->large_bytes = 0;
    size_t kept = 0;
    for (mp__link *l = a->blocks.head, *next; l; l = next) {
        next = l->next;
        block *blk = mp__arena_block_at(l);
        if (kept < keep) {
            block_rewind(a, blk);
            kept++;
            continue;
        }
        a->allocs += mp__arena_ld(&blk->nallocs);
        mp__list_move(&a->blocks, &drop, l);
    }
    a->nblocks = kept;
    a->act = a->search = NULL;
    a->closed_used = 0;
    *mp__arena_bump_of(a) = (mp__arena_bump){ 0 };
    block *first = mp__arena_block_at(a->blocks.head);
    if (a->mode == MP__ARENA_CAS)
        __atomic_store_n(&a->ts_act, NULL, __ATOMIC_RELEASE);
    if (first) {
        if (a->mode == MP__ARENA_CAS)
            cas_activate(a, first);
        else
            st_activate(a, first);
        first->failed = 0;
    }
    __atomic_store_n(&a->frees, a->allocs, __ATOMIC_RELAXED); /* everything is freed */
    mp__arena_unlock(a);
    release_list(a, &large);
    release_list(a, &drop);
}
