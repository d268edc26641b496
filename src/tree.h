/*
 * tree.h - the pool tree: every pool kind embeds an mp__node as its FIRST
 * member, and any pool may have an arena as its parent.
 *
 * Ownership: a parent arena owns its children. Destroying or resetting the
 * arena destroys its children newest first (mp__tree_destroy_children), then
 * runs its cleanups newest first, then frees its memory.
 *
 * Invariants:
 *   - n->magic == MP_NODE_MAGIC exactly while the pool is live; a pool's
 *     destroy clears it (mp__node_fini) so later use is detectable.
 *   - n->attached: n is in its parent's child list, or (parent NULL) in the
 *     root list that mp_report(out, NULL) walks.
 *   - Child lists are doubly linked, newest first, and only read or changed
 *     under the tree lock (tree.c). The tree lock is never held while a pool
 *     is destroyed or a user callback runs; it may be held while a pool's
 *     stats callback takes the pool's own lock (lock order: tree, then pool).
 *   - ops->destroy is called on a node that is already detached; a pool's
 *     own destroy function calls mp__node_detach() first, a no-op then.
 *   - A child that refuses its parent's destroy (misuse: threads wait in
 *     it, or it is in its own reset) is still live afterwards, and becomes
 *     a root: it stays visible to mp_report and can be destroyed later.
 */
#ifndef MP_TREE_H
#define MP_TREE_H

#include "common.h"

#define MP_NODE_MAGIC 0x6d706e64u /* "mpnd" */

typedef enum mp__kind {
    MP__KIND_ARENA = 1,
    MP__KIND_OBJPOOL,
    MP__KIND_RESERVE,
    MP__KIND_HEAP,
} mp__kind;

typedef struct mp__node mp__node;

typedef struct mp__node_ops {
    /* Destroys the pool embedding n, which is already detached. Returns
     * false when the pool refuses (a misuse, reported through the error
     * handler): it is then still live, and no longer counted against the
     * old parent's limit. */
    bool (*destroy)(mp__node *n);
    /* Fills *out with the pool's own counters (not its children's). */
    void (*stats)(const mp__node *n, mp_stats *out);
    /* fork(): take every lock of the pool before, release them after (in
     * parent and child alike). NULL for a pool without locks. */
    void (*lock_for_fork)(mp__node *n);
    void (*unlock_after_fork)(mp__node *n);
    /* In the child only, before the locks are released: forget the threads
     * that waited in the parent (they do not exist in the child). NULL for a
     * pool nobody waits on. */
    void (*forget_waiters_after_fork)(mp__node *n);
} mp__node_ops;

struct mp__node {
    uint32_t magic;             /* MP_NODE_MAGIC while live */
    mp__kind kind;
    const mp__node_ops *ops;
    bool attached;              /* in a child list or the root list */
    char name[MP_NAME_MAX];     /* copied from the options */
    mp__node *parent;           /* the parent arena's node; NULL for a root */
    mp__node *prev, *next;      /* siblings, newest first */
    mp__node *children;         /* arenas only: newest child first */
};

/* Fills in a node before it is attached. */
void mp__node_init(mp__node *n, mp__kind kind, const mp__node_ops *ops, const char *name);
/* Marks a node dead (after detach, before its memory is freed). */
void mp__node_fini(mp__node *n);

/* True when n looks like a live node of that kind (never dereferences NULL). */
static inline bool mp__node_live(const mp__node *n, mp__kind kind)
{
    return n && n->magic == MP_NODE_MAGIC && n->kind == kind;
}

/* Links n under parent (NULL: as a root). Returns 0, or EINVAL when parent
 * is not a live arena. */
int mp__node_attach(mp_arena *parent, mp__node *n);
/* Unlinks n from its parent or the root list; no-op when not attached. */
void mp__node_detach(mp__node *n);
/* Moves n under new_parent (NULL: root). EINVAL if new_parent is not a live
 * arena or the move would make n its own ancestor. */
int mp__node_move(mp__node *n, mp_arena *new_parent);
/* Destroys every child of arena node a, newest first, each with the tree
 * lock dropped. Children added meanwhile are destroyed too; a child that
 * refuses is made a root. */
void mp__tree_destroy_children(mp__node *a);
/* Adds the counters of every descendant of n (not n itself) to *sum. */
void mp__tree_sum_children(const mp__node *n, mp_stats *sum);
/* Adds b's counters into a (peaks add too: the sum of peaks bounds the
 * peak of the sum). */
void mp__stats_add(mp_stats *a, const mp_stats *b);

/* fork(): every pool kind's create calls mp__fork_handlers_register()
 * (once per process it installs pthread_atfork handlers), so a child can
 * use every pool whatever kinds the program uses. Before fork the handlers
 * take, in this order: the thread-cache lock, the tree lock, every pool's
 * locks (tree order, parents before children), the arena accounting lock,
 * the chunk lock; after fork (parent and child) they release them in
 * reverse, the child's first making every pool forget the threads that
 * waited in the parent (forget_waiters_after_fork). Every other path takes
 * these locks in the same order. */
void mp__fork_handlers_register(void);

/* "arena", "objpool", "reserve", "heap". */
const char *mp__kind_name(mp__kind k);

/* For a misuse message about a pointer into chunk c that went to the wrong
 * pool: "it is from objpool 'NAME'", naming c's owner (every chunk owner
 * is a pool, whose node comes first). */
struct mp__chunk;
void mp__owner_detail(char *buf, size_t len, const struct mp__chunk *c);

#endif /* MP_TREE_H */
