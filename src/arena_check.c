/*
 * arena_check.c - layer 6: records, tools and checked mode of arenas (see
 * debug.h for checked mode, arena.h for the arena).
 *
 * Which arenas (decided at create): tracked ones (Valgrind or ASan
 * present) tell track.h about every block (no access), allocation (out),
 * free, reset and release, and leave MP_REDZONE no-access bytes after each
 * allocation. Checked ones fill those red zones with MP_FILL_REDZONE and
 * check them at free and reset, fill freed and reset memory with
 * MP_FILL_FREED and check it when handed out again, fill new allocations
 * with MP_FILL_NEW, keep destroyed arenas in a graveyard, and reject
 * interior and double frees. Both ("debug" arenas) keep a record per
 * allocation in a->recs (ptrset.h: metadata, never inside arena memory)
 * and always take the slow paths.
 *
 * Invariants:
 *   - every allocation handed out and not yet rolled back or swept has a
 *     record (MP_OBJ_OUT while live, MP_OBJ_FREE once freed); a rollback
 *     deletes it, a reset or destroy forgets them all;
 *   - checked: [top, hw) of each block holds MP_FILL_FREED, so an
 *     allocation carved from below hw checks that the fill is intact;
 *   - the reservation an allocation takes before its memory
 *     (mp__arena_rec_reserve) is held, in recs.pending, until its record
 *     is placed (mp__arena_debug_out) or the allocation fails.
 * Records, hw, fills and the tools' shadow state change under the arena
 * mutex in CAS mode.
 */
#include "arena.h"
#include "track.h"

static const char KIND[] = MP_ARENA_KIND;

bool mp__arena_rec_reserve(mp_arena *a)
{
    mp__arena_lock(a);
    bool ok = mp__ptrset_reserve(&a->recs, 1);
    mp__arena_unlock(a);
    return ok;
}

void mp__arena_rec_unreserve(mp_arena *a)
{
    mp__arena_lock(a);
    mp__ptrset_unreserve(&a->recs, 1);
    mp__arena_unlock(a);
}

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

void mp__arena_fill_hidden(const mp_arena *a, char *p, size_t n, unsigned char b)
{
    if (n == 0)
        return;
    if (a->tracked)
        mp__track_obj_touch(p, n);
    memset(p, b, n);
    if (a->tracked)
        mp__track_obj_hide(p, n);
}

bool mp__arena_debug_out(mp_arena *a, char *p, size_t size, const mp__arena_grant *g, const void *site)
{
    bool dirty = false;
    mp__arena_lock(a);
    if (a->checked && !g->large) {
        /* Memory below hw was filled when it was reset or freed. */
        char *to = p + size + a->rz, *hw = g->blk->hw;
        if (g->from < hw)
            dirty = !intact(a, g->from, (size_t)((to < hw ? to : hw) - g->from), MP_FILL_FREED);
    }
    mp__ptrrec *r = mp__ptrset_place(&a->recs, p);
    *r = (mp__ptrrec){ .p = p, .size = size, .large = g->large };
    r->info.state = MP_OBJ_OUT;
    r->info.alloc_site = site;
    /* Still under the lock (CAS mode): the tools keep one shadow state
     * per 8 bytes, and an unaligned allocation shares its first 8 with
     * the red zone of the one before, which another thread may be
     * handing out (filling, re-hiding) right now. Poisoning and
     * unpoisoning are read-modify-writes of that shared state, so they
     * are serialised here, as mp__arena_debug_free's are. */
    if (a->checked) {
        mp__arena_fill_hidden(a, p, size, a->zero ? 0 : MP_FILL_NEW);
        mp__arena_fill_hidden(a, p + size, a->rz, MP_FILL_REDZONE);
    }
    if (a->tracked)
        mp__track_obj_out(a, p, size, a->zero);
    mp__arena_unlock(a);
    return !dirty;
}

/* Whether a rollback to p may raise blk's hw (lock held). An allocation
 * checks [from, to) below hw for the fill, trusting that everything from
 * its old top up to hw was fill when it bumped. In CAS mode other threads
 * may have bumped below p and not checked yet (recs.pending counts them,
 * from before their bump to after their check): raising hw over their
 * memory would fail them, so then it rises only when it already reaches p. */
static bool hw_may_rise(const mp_arena *a, const mp__arena_block *blk, const char *p)
{
    return a->mode != MP__ARENA_CAS || a->recs.pending == 0 || blk->hw >= p;
}

void mp__arena_debug_free(mp_arena *a, mp__arena_block *blk, char *p, const void *site)
{
    const char *bad = NULL;
    bool rz_bad = false;
    mp__objinfo info = { 0 };
    mp__arena_lock(a);
    mp__ptrrec *r = mp__ptrset_find(&a->recs, p);
    if (!r || r->info.state != MP_OBJ_OUT) {
        bad = r ? "double free" : "free of a pointer that is not an allocation";
        if (r)
            info = r->info;
        mp__arena_unlock(a);
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
        mp__arena_unlock(a);
        if (a->tracked)
            mp__track_obj_in(a, p, size);
        mp__arena_large_free(a, blk);
    } else {
        char *top = mp__arena_block_top(a, blk);
        if (a->checked)
            mp__arena_fill_hidden(a, p, size, MP_FILL_FREED);
        if (a->tracked)
            mp__track_obj_in(a, p, size);
        if (mp__arena_rollback(a, blk, p)) {
            /* Rolled back: the record goes (its place will be reused) and
             * the whole tail is fill, up to the old top. */
            mp__ptrset_delete(&a->recs, r);
            if (a->checked) {
                mp__arena_fill_hidden(a, p + size, (size_t)(top - p - size), MP_FILL_FREED);
                if (top > blk->hw && hw_may_rise(a, blk, p))
                    blk->hw = top;
            }
        }
        mp__arena_unlock(a);
    }
    mp__arena_count(a, &a->frees, 1);
    if (rz_bad)
        mp__misuse_obj("write past the end of an allocation", KIND, a->node.name, p, &info);
}

void mp__arena_debug_sweep(mp_arena *a)
{
    size_t pos = 0;
    for (mp__ptrrec *r; (r = mp__ptrset_next(&a->recs, &pos));) {
        char *p = (char *)r->p;
        if (r->info.state == MP_OBJ_OUT) {
            if (a->checked && !intact(a, p + r->size, a->rz, MP_FILL_REDZONE))
                mp__misuse_obj("write past the end of an allocation", KIND, a->node.name, p, &r->info);
            if (a->tracked)
                mp__track_obj_in(a, p, r->size);
        } else if (!r->large && a->checked && !intact(a, p, r->size, MP_FILL_FREED)) {
            mp__misuse_obj("write to a freed allocation", KIND, a->node.name, p, &r->info);
        }
    }
    mp__ptrset_clear(&a->recs);
}
