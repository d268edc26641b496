/*
 * tree.h - layer 5: the pool tree. Every pool kind embeds an mp__node as
 * its FIRST member, and any pool may have an arena as its parent.
 *
 * Ownership: a parent arena owns its children. Destroying or resetting the
 * arena destroys its children newest first, each child arena's subtree
 * fully (its children, then its cleanups, then its memory) before the
 * next, then runs the arena's own cleanups newest first (mp__tree_clear).
 * The walk is iterative: a tree of any depth is destroyed in constant
 * stack, and so are the statistics sums, the fork walks and the reports.
 *
 * Invariants:
 *   - n->magic == MP_NODE_MAGIC exactly while the pool is live; a pool's
 *     destroy clears it (mp__node_fini) so later use is detectable.
 *   - n->attached: n is on its parent's child list, or (parent NULL) on
 *     the root list. Lists are newest first; reports show them oldest
 *     first (from the tail).
 *   - Child lists are only read or changed under the tree lock (tree.c).
 *     The tree lock is never held while a pool is destroyed or a user
 *     callback runs; it is held while a pool's stats callback takes the
 *     pool's own lock (lock order: tree, then pool).
 *   - ops->destroy is called on a node that is already detached.
 *   - A child that refuses its parent's destroy (misuse: threads wait in
 *     it, or it is in its own reset) is still live afterwards, and becomes
 *     a root: it stays visible to mp_report and can be destroyed later.
 *   - n->dying: a destroy of n has begun; n can no longer be moved.
 */
#ifndef MP_TREE_H
#define MP_TREE_H

#include "common.h"
#include "list.h"

#define MP_NODE_MAGIC 0x6d706e64u /* "mpnd" */

typedef enum mp__kind {
    MP__KIND_ARENA = 1,
    MP__KIND_OBJPOOL,
    MP__KIND_RESERVE,
    MP__KIND_HEAP,
} mp__kind;

typedef struct mp__node mp__node;

/* One size class of a pool that has several (a heap's), for the reports. */
typedef struct mp__class_row {
    size_t size;           /* the class's block size */
    size_t objects_in_use; /* its blocks out */
    size_t allocs, frees;
    size_t bytes_mapped;   /* its slabs */
} mp__class_row;

typedef struct mp__node_ops {
    /* Destroys the pool embedding n for its parent's teardown; n is
     * already detached. Returns false when the pool refuses (a misuse,
     * reported through the error handler): it is then still live, and no
     * longer counted against the old parent's limit. For a kind with
     * children (run_cleanups set) this only begins the destroy: the walk
     * then tears down n's children, runs its cleanups and calls finish. */
    bool (*destroy)(mp__node *n);
    /* Kinds with children and cleanups (arenas), else NULL: runs every
     * cleanup registered now, newest first; returns how many ran (cleanups
     * may make children and push cleanups: the walk comes back). */
    size_t (*run_cleanups)(mp__node *n);
    /* Kinds with children: the end of a destroy the walk began with
     * destroy, once n has no children and no cleanups: frees its memory
     * and the pool itself. */
    void (*finish)(mp__node *n);
    /* Fills *out with the pool's own counters (not its children's). */
    void (*stats)(const mp__node *n, mp_stats *out);
    /* Kinds with size classes (heaps), else NULL: fills rows[0..cap) with
     * the classes in use, smallest first, and returns how many it filled.
     * MP__CLASS_ROWS_MAX bounds any kind's. */
    size_t (*classes)(const mp__node *n, mp__class_row *rows, size_t cap);
    /* fork(): take every lock of the pool before, release them after (in
     * parent and child alike). NULL for a pool without locks. */
    void (*lock_for_fork)(mp__node *n);
    void (*unlock_after_fork)(mp__node *n);
    /* In the child only, before the locks are released: forget the threads
     * that waited in the parent (they do not exist in the child). NULL for a
     * pool nobody waits on. */
    void (*forget_waiters_after_fork)(mp__node *n);
} mp__node_ops;

#define MP__CLASS_ROWS_MAX 80

struct mp__node {
    uint32_t magic; /* MP_NODE_MAGIC while live */
    mp__kind kind;
    const mp__node_ops *ops;
    bool attached;    /* on a child list or the root list */
    bool dying;       /* a destroy has begun */
    const char *name; /* the whole name given at create (owned), or "" */
    mp__node *parent; /* the parent arena's node; NULL for a root */
    mp__link sibling; /* on the parent's child list or the root list */
    mp__list children; /* arenas only: newest first */
    mp__node *unwind; /* during a teardown walk: where the walk resumes after n */
};

/* Fills in a node before it is attached; copies name (NULL: none).
 * Returns 0 or ENOMEM. */
int mp__node_init(mp__node *n, mp__kind kind, const mp__node_ops *ops, const char *name);
/* Marks a node dead (after detach, before its memory is freed) and frees
 * its name. */
void mp__node_fini(mp__node *n);

/* True when n looks like a live node of that kind (never dereferences NULL). */
static inline bool mp__node_live(const mp__node *n, mp__kind kind)
{
    return n && n->magic == MP_NODE_MAGIC && n->kind == kind;
}

/* The check every public call makes of its pool: false with errno EINVAL
 * for NULL (a bad argument) or, after reporting `what` to the error
 * handler, for anything that is not a live pool of that kind. */
bool mp__node_ok(const mp__node *n, mp__kind kind, const char *what);

/* Links n under parent (NULL: as a root). Returns 0, or EINVAL when parent
 * is not a live arena. */
int mp__node_attach(mp_arena *parent, mp__node *n);
/* Unlinks n from its parent or the root list; no-op when not attached. */
void mp__node_detach(mp__node *n);
/* Moves n under new_parent (NULL: root). EINVAL if new_parent is not a live
 * arena, the move would make n its own ancestor, or n is being destroyed.
 * fits(n, new_parent, arg), when given, is asked under the tree lock
 * before anything moves: false makes the move fail with ENOMEM. */
int mp__node_move(mp__node *n, mp_arena *new_parent, bool (*fits)(mp__node *n, mp_arena *to, void *arg), void *arg);

/* Tears down everything under top (an arena whose destroy or reset is
 * running): every child, newest first, each child arena's own children
 * and cleanups before it is finished; then top's cleanups, newest first;
 * again while cleanups made children or pushed cleanups. Iterative. */
void mp__tree_clear(mp__node *top);

/* Adds the counters of every descendant of n (not n itself) to *sum. */
void mp__tree_sum_children(const mp__node *n, mp_stats *sum);
/* Adds b's counters into a (peaks add too: the sum of peaks bounds the
 * peak of the sum). */
void mp__stats_add(mp_stats *a, const mp_stats *b);

/* Walking the tree in report order (pre-order, siblings oldest first),
 * only between mp__tree_lock() and mp__tree_unlock(). top NULL: every
 * tree, roots oldest first. *depth is kept relative to the first node. */
/* Whether any pool was ever made in this process. */
bool mp__tree_pool_made(void);

void mp__tree_lock(void);
void mp__tree_unlock(void);
const mp__node *mp__tree_first(const mp__node *top);
const mp__node *mp__tree_next(const mp__node *n, const mp__node *top, int *depth);

/* fork() (fork.c): every pool's locks, in tree order, with the tree lock
 * held around them; in the child, every pool forgets its waiters. */
void mp__tree_fork_lock(void);
void mp__tree_fork_unlock(void);
void mp__tree_fork_child(void);

/* "arena", "objpool", "reserve", "heap". */
const char *mp__kind_name(mp__kind k);

/* For a misuse message about a pointer into chunk c that went to the wrong
 * pool: "it is from objpool 'NAME'", naming c's owner (every chunk owner
 * is a pool, whose node comes first). */
struct mp__chunk;
void mp__owner_detail(char *buf, size_t len, const struct mp__chunk *c);

#endif /* MP_TREE_H */
