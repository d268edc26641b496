/*
 * arena_acct.c - layer 6: arena limits (the model is in arena.h).
 *
 * `held` is what an arena itself is charged: span for each small block,
 * header + padding + size rounded up to pages for each large one.
 * Invariant: total == held + the totals of its child arenas. Charging
 * walks acct_parent (the parent arena; kept here because the tree detaches
 * a child before destroying it) under acct_lock: every arena on the way
 * with a limit must stay within it, else nothing is charged. The charge
 * is taken before the memory and given back after it.
 *
 * acct_lock is a leaf: nothing else is locked while it is held (but the
 * chunk lock, by the fork handler, which takes it after every pool lock
 * and before the chunk lock).
 */
#include "arena.h"
#include "fork.h"

/* Guards acct_parent, total and writes of held. */
static pthread_mutex_t acct_lock = PTHREAD_MUTEX_INITIALIZER;

static void acct_fork_lock(void) { mp__lock(&acct_lock); }
static void acct_fork_unlock(void) { mp__unlock(&acct_lock); }

void mp__arena_acct_init(void) { mp__fork_add(acct_fork_lock, acct_fork_unlock, NULL); }

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

size_t mp__arena_acct_charge(mp_arena *a, size_t want, size_t min)
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

void mp__arena_acct_uncharge(mp_arena *a, size_t n)
{
    mp__lock(&acct_lock);
    chain_uncharge_locked(a, n);
    __atomic_store_n(&a->held, a->held - n, __ATOMIC_RELAXED);
    mp__unlock(&acct_lock);
}

/* Called before a teardown runs any cleanup: a cleanup may then destroy a
 * former ancestor, and the teardown, which uncharges as it frees, never
 * reaches it. */
void mp__arena_leave_accounting(mp_arena *a)
{
    mp__lock(&acct_lock);
    chain_uncharge_locked(a->acct_parent, a->total);
    a->acct_parent = NULL;
    mp__unlock(&acct_lock);
}

bool mp__arena_move_charge(mp__node *n, mp_arena *to, void *arg)
{
    (void)arg;
    mp_arena *a = (mp_arena *)n;
    mp__lock(&acct_lock);
    size_t t = a->total;
    chain_uncharge_locked(a->acct_parent, t);
    bool fits = true;
    for (mp_arena *x = to; x && fits; x = x->acct_parent)
        fits = !x->limit || x->total + t <= x->limit;
    if (fits)
        a->acct_parent = to;
    chain_charge_locked(a->acct_parent, t);
    mp__unlock(&acct_lock);
    return fits;
}

/* ------------------------------------------------- children of other kinds */

/* The limits on c's way up (its own, then every arena's above it) allow n
 * more bytes. Under acct_lock. */
static bool child_room_locked(const mp__acct_child *c, size_t n)
{
    if (c->limit && (c->total > c->limit || n > c->limit - c->total))
        return false;
    for (mp_arena *x = c->parent; x; x = x->acct_parent)
        if (x->limit && (x->total > x->limit || n > x->limit - x->total))
            return false;
    return true;
}

bool mp__acct_child_charge(mp__acct_child *c, size_t n)
{
    mp__lock(&acct_lock);
    bool ok = child_room_locked(c, n);
    if (ok) {
        __atomic_store_n(&c->total, c->total + n, __ATOMIC_RELAXED);
        chain_charge_locked(c->parent, n);
    }
    mp__unlock(&acct_lock);
    return ok;
}

void mp__acct_child_uncharge(mp__acct_child *c, size_t n)
{
    mp__lock(&acct_lock);
    __atomic_store_n(&c->total, c->total - n, __ATOMIC_RELAXED);
    chain_uncharge_locked(c->parent, n);
    mp__unlock(&acct_lock);
}

void mp__acct_child_leave(mp__acct_child *c)
{
    mp__lock(&acct_lock);
    chain_uncharge_locked(c->parent, c->total);
    c->parent = NULL;
    mp__unlock(&acct_lock);
}

bool mp__acct_child_move(mp__acct_child *c, mp_arena *to)
{
    mp__lock(&acct_lock);
    size_t t = c->total;
    chain_uncharge_locked(c->parent, t);
    bool fits = true;
    for (mp_arena *x = to; x && fits; x = x->acct_parent)
        fits = !x->limit || x->total + t <= x->limit;
    if (fits)
        c->parent = to;
    chain_charge_locked(c->parent, t);
    mp__unlock(&acct_lock);
    return fits;
}

void mp__acct_child_init(mp__acct_child *c, mp_arena *parent, size_t limit)
{
    mp__lock(&acct_lock);
    *c = (mp__acct_child){ .parent = parent, .limit = limit };
    mp__unlock(&acct_lock);
}
