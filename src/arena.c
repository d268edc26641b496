/*
 * arena.c - layer 6: an arena's life (the model is in arena.h): create,
 * reset and destroy, its node ops in the pool tree, cleanups, statistics
 * and move.
 *
 * Tree and order: an arena owns its children (mp__node, any pool kind).
 * Reset and destroy run: children (newest first), cleanups (newest first),
 * children made by those cleanups, and so on (mp__tree_clear), then memory
 * (mp__arena_release_memory). Reset keeps the oldest MP_ARENA_KEEP_BLOCKS
 * small blocks for reuse (none with MP_RELEASE_ON_RESET) and gives back the
 * rest and every large allocation. `busy` is set for the whole teardown, so
 * that a reset or destroy of a from one of the callbacks it runs is refused
 * as misuse.
 *
 * A destroy begins by leaving the tree and the limit accounting
 * (destroy_begin), whether the user or a parent's teardown started it:
 * from then on a belongs to no tree and no limit. A checked arena's struct
 * then stays in the graveyard, so a later use is reported.
 *
 * Cleanups: a newest-first singly linked list of records from
 * mp__meta_alloc (under the mutex in CAS mode), ncleanups long; each runs
 * with no lock held.
 */
#include "arena.h"
#include "meta.h"
#include "fork.h"
#include "track.h"

static const char KIND[] = MP_ARENA_KIND;

/* -------------------------------------------------------------- cleanups */

int mp_cleanup_push(mp_arena *a, void (*fn)(void *), void *arg)
{
    if (!fn || !mp__arena_ok(a, "cleanup on a destroyed or invalid arena"))
        return EINVAL;
    mp__arena_cleanup *c = mp__meta_alloc(sizeof *c);
    if (!c) {
        mp__arena_count(a, &a->failures, 1);
        return ENOMEM;
    }
    c->fn = fn;
    c->arg = arg;
    mp__arena_lock(a);
    c->next = a->cleanups;
    a->cleanups = c;
    a->ncleanups++;
    mp__arena_unlock(a);
    return 0;
}

int mp_cleanup_remove(mp_arena *a, void (*fn)(void *), void *arg)
{
    if (!mp__arena_ok(a, "cleanup on a destroyed or invalid arena"))
        return EINVAL;
    mp__arena_lock(a);
    mp__arena_cleanup **link = &a->cleanups;
    while (*link && ((*link)->fn != fn || (*link)->arg != arg))
        link = &(*link)->next;
    mp__arena_cleanup *c = *link;
    if (c) {
        *link = c->next;
        a->ncleanups--;
    }
    mp__arena_unlock(a);
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
        mp__arena_lock(a);
        mp__arena_cleanup *c = a->cleanups;
        if (c) {
            a->cleanups = c->next;
            a->ncleanups--;
        }
        mp__arena_unlock(a);
        if (!c)
            return ran;
        c->fn(c->arg);
        mp__meta_free(c);
    }
}

/* ----------------------------------------------------- reset and destroy */

/* Children, cleanups, children the cleanups made (whose destroy may push
 * more cleanups on a), and so on until a round runs none; then memory. */
static void arena_clear(mp_arena *a, size_t keep)
{
    a->busy = true;
    mp__tree_clear(&a->node);
    mp__arena_release_memory(a, keep);
    a->busy = false;
}

void mp_arena_reset(mp_arena *a)
{
    if (!mp__arena_ok(a, "reset of a destroyed or invalid arena"))
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
    mp__ptrset_fini(&a->recs);
    if (a->ts) {
        pthread_cond_destroy(&a->grown);
        pthread_mutex_destroy(&a->lock);
    }
    mp__node_fini(&a->node);
    a->fast = (mp__arena_bump){ 0 };
    if (a->checked) { /* kept, so that a later use is detected */
        mp__graveyard_keep(a, &a->grave_next);
        return;
    }
    mp__meta_free(a);
}

/* The start of every destroy, by the user or by the parent's teardown
 * (which detached a already): from here on a belongs to no tree and no
 * limit, and refuses resets, destroys and moves. */
static void destroy_begin(mp_arena *a)
{
    mp__node_detach(&a->node);
    mp__arena_leave_accounting(a);
    a->node.dying = true;
    a->busy = true;
}

/* The end of every destroy, once a has no children and no cleanups. */
static void destroy_finish(mp_arena *a)
{
    mp__arena_release_memory(a, 0);
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
    destroy_begin(a);
    mp__tree_clear(&a->node);
    destroy_finish(a);
}

/* ------------------------------------------------------------ statistics */

size_t mp__arena_in_use_cas(const mp_arena *a)
{
    size_t n = a->large_bytes;
    for (const mp__arena_block *blk = mp__arena_block_at(a->blocks.head); blk; blk = mp__arena_block_next(blk))
        n += (size_t)(mp__arena_block_top(a, blk) - blk->start);
    return n;
}

static size_t allocs_now(const mp_arena *a)
{
    size_t n = a->allocs;
    if (a->mode == MP__ARENA_CAS)
        for (const mp__arena_block *blk = mp__arena_block_at(a->blocks.head); blk; blk = mp__arena_block_next(blk))
            n += mp__arena_ld(&blk->nallocs);
    return n;
}

/* Bookkeeping bytes (lock held): the arena itself, its name, its cleanup
 * records and its record table. */
static size_t meta_bytes(const mp_arena *a)
{
    return sizeof *a + strlen(a->node.name) + a->ncleanups * sizeof(mp__arena_cleanup) + mp__ptrset_bytes(&a->recs);
}

static void own_stats(const mp_arena *ca, mp_stats *out)
{
    mp_arena *a = (mp_arena *)ca;
    mp__arena_lock(a);
    mp__arena_note_peak(a);
    /* frees first: every free follows its alloc, so a snapshot read in this
     * order sees no more frees than allocs even while threads allocate
     * lock-free (the clamp covers what relaxed loads do not promise). */
    size_t frees = mp__arena_ld(&a->frees), allocs = allocs_now(a);
    if (frees > allocs)
        frees = allocs;
    *out = (mp_stats){ 0 };
    out->bytes_in_use = mp__arena_in_use(a);
    out->bytes_peak = a->peak;
    out->bytes_mapped = mp__arena_ld(&a->held);
    out->bytes_meta = meta_bytes(a);
    out->allocs = allocs;
    out->frees = frees;
    out->objects_in_use = allocs - frees;
    out->failures = mp__arena_ld(&a->failures);
    mp__arena_unlock(a);
}

int mp_arena_stats(const mp_arena *a, mp_stats *out)
{
    if (!out || !mp__arena_ok(a, "stats of a destroyed or invalid arena"))
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
    mp__arena_lock(m);
    size_t n = m->nblocks;
    mp__arena_unlock(m);
    return n;
}

size_t mp__arena_larges(const mp_arena *a)
{
    mp_arena *m = (mp_arena *)a;
    mp__arena_lock(m);
    size_t n = m->nlarge;
    mp__arena_unlock(m);
    return n;
}

/* ------------------------------------------------------------ tree ops */

/* The parent's teardown begins a's destroy; the walk then clears a and
 * calls node_finish. A child arena busy in its own reset (one of its
 * cleanups destroyed an ancestor) refuses, and becomes a root: its bytes
 * stop counting against ancestors that are about to be freed. */
static bool node_destroy(mp__node *n)
{
    mp_arena *a = (mp_arena *)n;
    if (a->busy) {
        mp__misuse("destroy of an arena during its own reset or destroy", KIND, a->node.name, a);
        mp__arena_leave_accounting(a);
        return false;
    }
    destroy_begin(a);
    return true;
}

static size_t node_run_cleanups(mp__node *n) { return run_cleanups((mp_arena *)n); }

static void node_finish(mp__node *n) { destroy_finish((mp_arena *)n); }

static void node_stats(const mp__node *n, mp_stats *out) { own_stats((const mp_arena *)n, out); }

static void node_lock(mp__node *n) { mp__arena_lock((mp_arena *)n); }

static void node_unlock(mp__node *n) { mp__arena_unlock((mp_arena *)n); }

/* fork() child, lock held: a thread making a block in the parent is not
 * here; nobody will clear `growing` or signal the waiters it had. */
static void node_forget_waiters(mp__node *n)
{
    mp_arena *a = (mp_arena *)n;
    if (!a->ts || !a->growing)
        return;
    a->growing = false;
    mp__cond_forget_waiters(&a->grown);
}

static const mp__node_ops arena_ops = {
    .destroy = node_destroy,
    .run_cleanups = node_run_cleanups,
    .finish = node_finish,
    .stats = node_stats,
    .lock_for_fork = node_lock,
    .unlock_after_fork = node_unlock,
    .forget_waiters_after_fork = node_forget_waiters,
};

int mp_arena_move(mp_arena *a, mp_arena *new_parent)
{
    if (!mp__arena_ok(a, "move of a destroyed or invalid arena"))
        return EINVAL;
    return mp__node_move(&a->node, new_parent, mp__arena_move_charge, NULL);
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
        o.block_size > MP_ARENA_BLOCK_MAX || (parent && !mp__node_live(&parent->node, MP__KIND_ARENA))) {
        errno = EINVAL;
        return NULL;
    }
    mp__fork_init();
    mp__arena_acct_init();

    mp_arena *a = mp__meta_alloc(sizeof *a);
    if (!a)
        return NULL;
    if (mp__node_init(&a->node, MP__KIND_ARENA, &arena_ops, o.name)) {
        mp__meta_free(a);
        errno = ENOMEM;
        return NULL;
    }
    a->span = mp__arena_page_round(o.block_size ? o.block_size : MP_ARENA_BLOCK_DEFAULT);
    a->large_max = (a->span - MP_ARENA_BLOCK_HDR) / 4;
    a->limit = o.limit;
    a->ts = (o.flags & MP_THREADSAFE) != 0;
    a->zero = (o.flags & MP_ZERO) != 0;
    a->release = (o.flags & MP_RELEASE_ON_RESET) != 0;
    a->checked = mp__checked();
    a->tracked = mp__track_active();
    a->debug = a->checked || a->tracked;
    a->post = a->debug || a->zero;
    a->rz = a->debug ? MP_REDZONE : 0;
    a->mode = a->ts ? MP__ARENA_CAS : a->post ? MP__ARENA_SLOW : MP__ARENA_PLAIN;
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
