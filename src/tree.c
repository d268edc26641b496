/*
 * tree.c - layer 5: the pool tree (see tree.h).
 *
 * One process-wide mutex guards every child list and the root list. Tree
 * changes are rare (create, destroy, move), so one lock keeps the rules
 * simple: it is never held across a destroy or a user callback.
 *
 * Every walk is iterative, by parent and sibling links, so no tree is too
 * deep for a thread's stack. The teardown walk (mp__tree_clear) keeps its
 * way back in the nodes it is tearing down: a child arena it descends into
 * is detached, and its `unwind` names the arena to resume when it is done.
 */
#include "tree.h"
#include "meta.h"
#include "chunk.h"
#include "error.h"
#include "os.h"
#include "sync.h"

#include <stdio.h>

static pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;
static mp__list roots; /* root pools, newest first */

const char *mp__kind_name(mp__kind k)
{
    switch (k) {
    case MP__KIND_ARENA: return "arena";
    case MP__KIND_OBJPOOL: return "objpool";
    case MP__KIND_RESERVE: return "reserve";
    case MP__KIND_HEAP: return "heap";
    }
    return "pool";
}

void mp__owner_detail(char *buf, size_t len, const mp__chunk *c)
{
    const mp__node *owner = c->owner;
    if (owner)
        snprintf(buf, len, "it is from %s '%s'", mp__kind_name(c->kind), owner->name);
    else
        snprintf(buf, len, "it is from no pool");
}

static mp__node *node_of(mp__link *l) { return l ? mp__list_entry(l, mp__node, sibling) : NULL; }

/* 1 once any pool was made (relaxed atomic): the exit report of
 * MPOOL_SHOW_STATS (showstats.c) prints only for programs that used mpool. */
static int pool_made;

bool mp__tree_pool_made(void) { return __atomic_load_n(&pool_made, __ATOMIC_RELAXED) != 0; }

int mp__node_init(mp__node *n, mp__kind kind, const mp__node_ops *ops, const char *name)
{
    if (!__atomic_load_n(&pool_made, __ATOMIC_RELAXED))
        __atomic_store_n(&pool_made, 1, __ATOMIC_RELAXED);
    memset(n, 0, sizeof *n);
    n->name = "";
    if (name && *name) {
        size_t len = strlen(name);
        char *copy = mp__meta_alloc(len + 1);
        if (!copy)
            return ENOMEM;
        memcpy(copy, name, len + 1);
        n->name = copy;
    }
    n->magic = MP_NODE_MAGIC;
    n->kind = kind;
    n->ops = ops;
    return 0;
}

void mp__node_fini(mp__node *n)
{
    n->magic = 0;
    if (*n->name)
        mp__meta_free((char *)n->name);
    n->name = "";
}

bool mp__node_ok(const mp__node *n, mp__kind kind, const char *what)
{
    if (!n) {
        errno = EINVAL;
        return false;
    }
    if (!mp__node_live(n, kind)) {
        mp__misuse(what, mp__kind_name(kind), NULL, n);
        errno = EINVAL;
        return false;
    }
    return true;
}

static mp__list *list_of(mp__node *parent) { return parent ? &parent->children : &roots; }

static void link_locked(mp__node *parent, mp__node *n)
{
    n->parent = parent;
    mp__list_push(list_of(parent), &n->sibling);
    n->attached = true;
}

static void unlink_locked(mp__node *n)
{
    if (!n->attached)
        return;
    mp__list_remove(list_of(n->parent), &n->sibling);
    n->parent = NULL;
    n->attached = false;
}

static bool parent_ok(const mp_arena *parent)
{
    return !parent || mp__node_live((const mp__node *)parent, MP__KIND_ARENA);
}

int mp__node_attach(mp_arena *parent, mp__node *n)
{
    if (!parent_ok(parent))
        return EINVAL;
    mp__lock(&tree_lock);
    link_locked((mp__node *)parent, n);
    mp__unlock(&tree_lock);
    return 0;
}

void mp__node_detach(mp__node *n)
{
    mp__lock(&tree_lock);
    unlink_locked(n);
    mp__unlock(&tree_lock);
}

int mp__node_move(mp__node *n, mp_arena *new_parent, bool (*fits)(mp__node *n, mp_arena *to, void *arg), void *arg)
{
    mp__node *pn = (mp__node *)new_parent;
    if (!parent_ok(new_parent))
        return EINVAL;
    mp__lock(&tree_lock);
    int rc = n->dying ? EINVAL : 0;
    for (mp__node *a = pn; a && !rc; a = a->parent)
        if (a == n)
            rc = EINVAL;
    if (!rc && fits && !fits(n, new_parent, arg))
        rc = ENOMEM;
    if (!rc) {
        unlink_locked(n);
        link_locked(pn, n);
    }
    mp__unlock(&tree_lock);
    return rc;
}

/* Detaches and returns top's newest child, or NULL. The first look is
 * without the lock: an arena being torn down has its children to itself
 * (no other thread may attach to it or move from it meanwhile), and most
 * have none: a reset then takes no process-wide lock. */
static mp__node *take_newest_child(mp__node *top)
{
    if (!__atomic_load_n(&top->children.head, __ATOMIC_RELAXED))
        return NULL;
    mp__lock(&tree_lock);
    mp__node *c = node_of(top->children.head);
    if (c)
        unlink_locked(c);
    mp__unlock(&tree_lock);
    return c;
}

/* A child that refused its parent's destroy stays in sight, as a root. */
static void keep_as_root(mp__node *c)
{
    mp__lock(&tree_lock);
    if (!c->attached)
        link_locked(NULL, c);
    mp__unlock(&tree_lock);
}

void mp__tree_clear(mp__node *top)
{
    mp__node *n = top;
    for (;;) {
        mp__node *c = take_newest_child(n);
        if (c) {
            bool has_children = c->ops->run_cleanups != NULL; /* read first: a pool without is freed */
            if (!c->ops->destroy(c))
                keep_as_root(c);
            else if (has_children) { /* an arena: tear down its subtree first */
                c->unwind = n;
                n = c;
            }
            continue;
        }
        if (n->ops->run_cleanups(n)) /* they may have made children: look again */
            continue;
        if (n == top)
            return;
        mp__node *up = n->unwind;
        n->ops->finish(n);
        n = up;
    }
}

void mp__stats_add(mp_stats *a, const mp_stats *b)
{
    a->bytes_in_use += b->bytes_in_use;
    a->bytes_peak += b->bytes_peak;
    a->bytes_mapped += b->bytes_mapped;
    a->objects_in_use += b->objects_in_use;
    a->allocs += b->allocs;
    a->frees += b->frees;
    a->waits += b->waits;
    a->timeouts += b->timeouts;
    a->failures += b->failures;
    a->reserve_level += b->reserve_level;
    a->reserve_min += b->reserve_min;
    a->reserve_used += b->reserve_used;
    a->bytes_meta += b->bytes_meta;
}

/* ----------------------------------------------------------------- walks */

void mp__tree_lock(void) { mp__lock(&tree_lock); }
void mp__tree_unlock(void) { mp__unlock(&tree_lock); }

const mp__node *mp__tree_first(const mp__node *top) { return top ? top : node_of(roots.tail); }

const mp__node *mp__tree_next(const mp__node *n, const mp__node *top, int *depth)
{
    if (n->children.tail) {
        ++*depth;
        return node_of(n->children.tail);
    }
    for (; n && n != top; n = n->parent, --*depth)
        if (n->sibling.prev)
            return node_of(n->sibling.prev);
    return NULL;
}

void mp__tree_sum_children(const mp__node *top, mp_stats *sum)
{
    int depth = 0;
    mp__lock(&tree_lock);
    for (const mp__node *n = mp__tree_next(top, top, &depth); n; n = mp__tree_next(n, top, &depth)) {
        mp_stats s = { 0 };
        n->ops->stats(n, &s);
        mp__stats_add(sum, &s);
    }
    mp__unlock(&tree_lock);
}

/* ------------------------------------------------------------------ fork */

enum fork_step { FORK_LOCK, FORK_UNLOCK, FORK_FORGET };

/* Takes one fork step on every node, in tree order (tree lock held). */
static void fork_walk(enum fork_step step)
{
    int depth = 0;
    for (const mp__node *c = mp__tree_first(NULL); c; c = mp__tree_next(c, NULL, &depth)) {
        mp__node *n = (mp__node *)c;
        const mp__node_ops *ops = n->ops;
        void (*fn)(mp__node *) = step == FORK_LOCK     ? ops->lock_for_fork
                                 : step == FORK_UNLOCK ? ops->unlock_after_fork
                                                       : ops->forget_waiters_after_fork;
        if (fn)
            fn(n);
    }
}

void mp__tree_fork_lock(void)
{
    mp__lock(&tree_lock);
    fork_walk(FORK_LOCK);
}

void mp__tree_fork_unlock(void)
{
    fork_walk(FORK_UNLOCK);
    mp__unlock(&tree_lock);
}

void mp__tree_fork_child(void) { fork_walk(FORK_FORGET); }
