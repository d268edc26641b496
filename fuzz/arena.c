/*
 * arena.c - libFuzzer target: arenas, the pool tree and cleanups against a
 * shadow model.
 *
 * Up to six arenas in a tree (options from the input: block size, limit,
 * MP_ZERO, MP_THREADSAFE, MP_RELEASE_ON_RESET) and three object pools
 * among them. Operations: create; mp_alloc, mp_alloc_unaligned,
 * mp_alloc_aligned (up to 128 KiB), mp_calloc, mp_strdup, mp_printf of
 * sizes from 0 to 300 KB; mp_arena_free; reset; destroy; mp_cleanup_push
 * of four kinds of cleanup (one that only logs, one that pushes another
 * cleanup while it runs, one that allocates from its arena, one that
 * resets its own arena, which is misuse); mp_cleanup_remove; moves of
 * arenas and pools, cycles and limits included; statistics; the JSON
 * report; misuse.
 *
 * The model checks:
 *   - every allocation: non-NULL unless a limit on its chain refuses it
 *     (ENOMEM, counted in failures); aligned as asked; zero where it must
 *     be; strings as asked; disjoint from every other live allocation of
 *     any arena; its stamp intact until it is freed, reset or destroyed;
 *   - order: reset and destroy run children newest first (depth first),
 *     then cleanups newest first, a cleanup pushed by a running cleanup
 *     next; the log of what ran must equal the model's;
 *   - limits: every limited arena and the arenas under it hold at most the
 *     limit; a move succeeds, fails with ENOMEM or with EINVAL (a cycle)
 *     exactly as the model predicts from the charges, and a refused move
 *     changes nothing (the tree in mp_report_json is the model's, in
 *     order, after every operation that changes it);
 *   - statistics of every arena, its subtree included: allocs, frees,
 *     objects_in_use and failures exactly, bytes bounds;
 *   - misuse (always: a foreign pointer, another arena's pointer, an
 *     arena pointer to mp_free, a reset from the arena's own cleanup;
 *     checked mode: a double free, an interior pointer, use of a destroyed
 *     arena) is reported once and changes nothing.
 */
#include "fuzz.h"

#include <stdalign.h>

enum {
    ARENAS = 6,
    POOLS = 3,
    ALLOCS_MAX = 256,
    OPS_MAX = 400,
    RECS_MAX = 1024,
    KIDS_MAX = ARENAS + POOLS,
    LOG_MAX = 8192,
    POOL_TAG = 100, /* entity number of pool j: POOL_TAG + j */
};
#define BYTES_MAX ((size_t)24 << 20) /* live allocation bytes, all arenas */

typedef struct alloc {
    char *p;
    size_t size;
    uint32_t tag;
} alloc;

typedef enum cleanup_kind { CL_LOG, CL_PUSH, CL_ALLOC, CL_SELF_RESET } cleanup_kind;

/* A cleanup: its argument points at its record. */
typedef struct rec {
    unsigned id;
    cleanup_kind kind;
    struct arena *owner;
    unsigned child;   /* CL_PUSH: the record it pushes */
    bool alloc_ok;    /* CL_ALLOC: its allocation succeeded */
    bool ran;
} rec;

typedef struct arena {
    mp_arena *a; /* NULL: the slot is empty */
    unsigned id;
    int parent;  /* slot, or -1 */
    size_t limit, block_size;
    unsigned flags;
    alloc allocs[ALLOCS_MAX];
    size_t nallocs;
    size_t nalloc_calls, nfrees, nfailures; /* own counters, as mp_stats counts them */
    unsigned cleanups[RECS_MAX / 4];       /* record ids, oldest first */
    size_t ncleanups;
    int kids[KIDS_MAX]; /* children, oldest first: arena slot or POOL_TAG + pool slot */
    int nkids;
} arena;

typedef struct pool {
    mp_objpool *p;
    unsigned id;
    int parent; /* arena slot, or -1 */
} pool;

static arena arenas[ARENAS];
static pool pools[POOLS];
static int roots[ARENAS + POOLS];
static int nroots;
static rec recs[RECS_MAX];
static unsigned nrecs;
static unsigned next_id, next_tag;
static size_t live_bytes;
static char run_log[LOG_MAX]; /* what ran, as it ran */
static mp_arena *dead_arena;  /* checked mode: a destroyed arena */
static alignas(64) unsigned char foreign[256];

/* ----------------------------------------------------------- the tree */

static int *list_of(int parent, int **n)
{
    if (parent < 0) {
        *n = &nroots;
        return roots;
    }
    *n = &arenas[parent].nkids;
    return arenas[parent].kids;
}

static void unlink_entity(int parent, int e)
{
    int *n, *list = list_of(parent, &n);
    for (int i = 0; i < *n; i++) {
        if (list[i] == e) {
            memmove(list + i, list + i + 1, (size_t)(*n - i - 1) * sizeof *list);
            (*n)--;
            return;
        }
    }
    FZ_CHECK(false, "model: entity %d not under %d", e, parent);
}

static void link_entity(int parent, int e)
{
    int *n, *list = list_of(parent, &n);
    list[(*n)++] = e;
}

static void outline_of(int e, char *out, size_t cap)
{
    if (e >= POOL_TAG) {
        fz_append(out, cap, "objpool:p%u", pools[e - POOL_TAG].id);
        return;
    }
    arena *x = &arenas[e];
    fz_append(out, cap, "arena:a%u", x->id);
    for (int k = 0; k < x->nkids; k++) {
        fz_append(out, cap, k ? " " : "[");
        outline_of(x->kids[k], out, cap);
    }
    if (x->nkids)
        fz_append(out, cap, "]");
}

static void check_tree(void)
{
    char got[2048], want[2048] = "";
    fz_outline(got, sizeof got);
    for (int i = 0; i < nroots; i++) {
        if (i)
            fz_append(want, sizeof want, " ");
        outline_of(roots[i], want, sizeof want);
    }
    FZ_CHECK(strcmp(got, want) == 0, "tree: report %s, model %s", got, want);
}

/* True when slot d is x or under it. */
static bool is_under(int d, int x)
{
    for (; d >= 0; d = arenas[d].parent)
        if (d == x)
            return true;
    return false;
}

/* A limit on the chain from x up. */
static bool limited_chain(int x)
{
    for (; x >= 0; x = arenas[x].parent)
        if (arenas[x].limit)
            return true;
    return false;
}

/* Bytes charged against limits for x and its arenas (pools are not). */
static size_t total_of(int x)
{
    mp_stats s;
    FZ_CHECK(mp_arena_stats(arenas[x].a, &s) == 0, "stats of a%u", arenas[x].id);
    size_t own = s.bytes_mapped, kids = 0;
    for (int k = 0; k < arenas[x].nkids; k++) {
        int e = arenas[x].kids[k];
        mp_stats c;
        if (e >= POOL_TAG)
            FZ_CHECK(mp_objpool_stats(pools[e - POOL_TAG].p, &c) == 0, "pool stats");
        else
            FZ_CHECK(mp_arena_stats(arenas[e].a, &c) == 0, "stats");
        own -= c.bytes_mapped;
        if (e < POOL_TAG)
            kids += total_of(e);
    }
    return own + kids;
}

/* ------------------------------------------------------- allocations */

/* The arena (slot) holding a live allocation overlapping [p, p+n), or -1. */
static int overlapping(const char *p, size_t n, size_t *at)
{
    if (n == 0)
        n = 1; /* size 0 takes one byte */
    for (int i = 0; i < ARENAS; i++) {
        for (size_t k = 0; arenas[i].a && k < arenas[i].nallocs; k++) {
            const alloc *q = &arenas[i].allocs[k];
            size_t qn = q->size ? q->size : 1;
            if (p < q->p + qn && q->p < p + n) {
                *at = k;
                return i;
            }
        }
    }
    return -1;
}

static void verify_all(const arena *x)
{
    for (size_t k = 0; k < x->nallocs; k++)
        fz_verify(x->allocs[k].p, x->allocs[k].size, x->allocs[k].tag, "arena allocation");
}

/* The allocation at index k leaves the model. */
static void drop(arena *x, size_t k)
{
    live_bytes -= x->allocs[k].size;
    x->allocs[k] = x->allocs[--x->nallocs];
}

static void drop_all(arena *x)
{
    while (x->nallocs)
        drop(x, x->nallocs - 1);
}

/* ---------------------------------------------------------- cleanups */

static void cleanup_fn(void *arg)
{
    rec *r = arg;
    r->ran = true;
    fz_append(run_log, sizeof run_log, "c%u ", r->id);
    switch (r->kind) {
    case CL_LOG: break;
    case CL_PUSH:
        FZ_CHECK(mp_cleanup_push(r->owner->a, cleanup_fn, &recs[r->child]) == 0, "push from a cleanup");
        break;
    case CL_ALLOC: {
        char *p = mp_alloc(r->owner->a, 100);
        r->alloc_ok = p != NULL;
        if (p)
            memset(p, 0x5a, 100); /* its arena's memory is still there */
        else
            FZ_CHECK(errno == ENOMEM && limited_chain((int)(r->owner - arenas)), "alloc from a cleanup: errno %d",
                     errno);
        break;
    }
    case CL_SELF_RESET:
        mp_arena_reset(r->owner->a); /* misuse: reported, does nothing */
        break;
    }
}

static void pool_dtor(void *obj, void *arg)
{
    (void)obj;
    fz_append(run_log, sizeof run_log, "p%u ", ((pool *)arg)->id);
}

static rec *new_rec(arena *owner, cleanup_kind kind)
{
    if (nrecs + 2 > RECS_MAX)
        return NULL;
    rec *r = &recs[nrecs];
    *r = (rec){ .id = nrecs++, .kind = kind, .owner = owner };
    if (kind == CL_PUSH) {
        r->child = nrecs;
        recs[nrecs] = (rec){ .id = nrecs, .kind = CL_LOG, .owner = owner };
        nrecs++;
    }
    return r;
}

/* ------------------------------------------- the model of reset/destroy */

static void expect_teardown(int x, char *want, int *self_resets);

/* What destroying child e of an arena runs. */
static void expect_child(int e, char *want, int *self_resets)
{
    if (e >= POOL_TAG)
        fz_append(want, LOG_MAX, "p%u ", pools[e - POOL_TAG].id); /* its one object's dtor */
    else
        expect_teardown(e, want, self_resets);
}

/* Children newest first, then cleanups newest first (a pushed one next). */
static void expect_teardown(int x, char *want, int *self_resets)
{
    arena *a = &arenas[x];
    for (int k = a->nkids; k-- > 0;)
        expect_child(a->kids[k], want, self_resets);
    for (size_t k = a->ncleanups; k-- > 0;) {
        const rec *r = &recs[a->cleanups[k]];
        fz_append(want, LOG_MAX, "c%u ", r->id);
        if (r->kind == CL_PUSH)
            fz_append(want, LOG_MAX, "c%u ", r->child);
        if (r->kind == CL_SELF_RESET)
            ++*self_resets;
    }
}

/* After a teardown: the model forgets the subtree of x (x itself too
 * unless keep). */
static void forget(int x, bool keep)
{
    arena *a = &arenas[x];
    for (int k = a->nkids; k-- > 0;) {
        int e = a->kids[k];
        if (e >= POOL_TAG)
            pools[e - POOL_TAG].p = NULL;
        else
            forget(e, false);
    }
    a->nkids = 0;
    /* Counters: reset frees everything; a cleanup's allocation counts. */
    for (size_t k = 0; k < a->ncleanups; k++) {
        const rec *r = &recs[a->cleanups[k]];
        if (r->kind == CL_ALLOC) {
            if (r->alloc_ok)
                a->nalloc_calls++;
            else
                a->nfailures++;
        }
    }
    a->ncleanups = 0;
    drop_all(a);
    a->nfrees = a->nalloc_calls;
    if (!keep) {
        if (fz_checked)
            dead_arena = a->a;
        a->a = NULL;
    }
}

static void teardown(int x, bool reset)
{
    char want[LOG_MAX] = "";
    int self_resets = 0;
    expect_teardown(x, want, &self_resets);
    run_log[0] = '\0';
    int parent = arenas[x].parent;
    if (reset)
        mp_arena_reset(arenas[x].a);
    else
        mp_arena_destroy(arenas[x].a);
    FZ_CHECK(strcmp(run_log, want) == 0, "%s of a%u ran: %s; model: %s", reset ? "reset" : "destroy", arenas[x].id,
             run_log, want);
    FZ_CHECK(fz_messages == self_resets, "%s of a%u: %d message(s) (first: %s), %d resets from own cleanups",
             reset ? "reset" : "destroy", arenas[x].id, fz_messages, fz_first, self_resets);
    if (self_resets)
        fz_reported("reset from an own cleanup", "mpool: reset of an arena during its own reset or destroy",
                    (const char *)NULL);
    if (!reset)
        unlink_entity(parent, x);
    forget(x, reset);
}

/* -------------------------------------------------------------- checks */

static void expect_stats(int x, mp_stats *m, size_t *live_sizes, bool *ts)
{
    arena *a = &arenas[x];
    m->allocs += a->nalloc_calls;
    m->frees += a->nfrees;
    m->failures += a->nfailures;
    for (size_t k = 0; k < a->nallocs; k++)
        *live_sizes += a->allocs[k].size;
    if (a->flags & MP_THREADSAFE)
        *ts = true;
    for (int k = 0; k < a->nkids; k++)
        if (a->kids[k] < POOL_TAG)
            expect_stats(a->kids[k], m, live_sizes, ts);
}

static void check_arena(int x)
{
    arena *a = &arenas[x];
    mp_stats s, m = { 0 };
    size_t sizes = 0;
    bool ts = false;
    expect_stats(x, &m, &sizes, &ts);
    FZ_CHECK(mp_arena_stats(a->a, &s) == 0, "stats of a%u", a->id);
    FZ_CHECK(s.allocs == m.allocs && s.frees == m.frees && s.objects_in_use == m.allocs - m.frees,
             "a%u: allocs %zu frees %zu in use %zu; model %zu %zu", a->id, s.allocs, s.frees, s.objects_in_use,
             m.allocs, m.frees);
    FZ_CHECK(s.failures == m.failures, "a%u: failures %zu, model %zu", a->id, s.failures, m.failures);
    FZ_CHECK(s.bytes_in_use >= sizes, "a%u: bytes_in_use %zu < %zu live", a->id, s.bytes_in_use, sizes);
    FZ_CHECK(s.bytes_mapped >= s.bytes_in_use, "a%u: mapped %zu < in use %zu", a->id, s.bytes_mapped, s.bytes_in_use);
    if (!ts) /* a thread-safe arena's peak is a lower bound */
        FZ_CHECK(s.bytes_peak >= s.bytes_in_use, "a%u: peak %zu < in use %zu", a->id, s.bytes_peak, s.bytes_in_use);
    FZ_CHECK(s.waits == 0 && s.timeouts == 0, "a%u waits/timeouts", a->id);
    if (a->limit) {
        size_t t = total_of(x);
        FZ_CHECK(t <= a->limit, "a%u holds %zu, over its limit %zu", a->id, t, a->limit);
    }
    verify_all(a);
}

/* ---------------------------------------------------------- operations */

static int pick_arena(fz_input *in)
{
    int x = (int)fz_below(in, ARENAS);
    return arenas[x].a ? x : -1;
}

static void op_create(fz_input *in)
{
    int x = (int)fz_below(in, ARENAS);
    if (arenas[x].a)
        return;
    uint8_t f = fz_u8(in);
    int parent = pick_arena(in);
    static const size_t blocks[] = { 0, 4096, 8192, 65536, 200000 };
    static const size_t limits[] = { 64 << 10, 256 << 10, 1 << 20, 4 << 20 };
    arena *a = &arenas[x];
    *a = (arena){ .id = ++next_id, .parent = parent, .block_size = blocks[fz_below(in, 5)],
                  .limit = f & 1 ? limits[fz_below(in, 4)] : 0 };
    if (f & 2)
        a->flags |= MP_ZERO;
    if (f & 4)
        a->flags |= MP_THREADSAFE;
    if (f & 8)
        a->flags |= MP_RELEASE_ON_RESET;
    char name[16];
    snprintf(name, sizeof name, "a%u", a->id);
    a->a = mp_arena_create(parent >= 0 ? arenas[parent].a : NULL,
                           &(mp_arena_opts){ .name = name, .block_size = a->block_size, .limit = a->limit,
                                             .flags = a->flags });
    FZ_CHECK(a->a != NULL, "create a%u: errno %d", a->id, errno);
    link_entity(parent, x);
}

static void op_pool(fz_input *in)
{
    pool *pl = &pools[fz_below(in, POOLS)];
    if (pl->p) { /* destroy it: its one object's dtor runs */
        char want[32];
        snprintf(want, sizeof want, "p%u ", pl->id);
        run_log[0] = '\0';
        mp_objpool_destroy(pl->p);
        FZ_CHECK(strcmp(run_log, want) == 0, "destroy of p%u ran %s", pl->id, run_log);
        unlink_entity(pl->parent, POOL_TAG + (int)(pl - pools));
        pl->p = NULL;
        return;
    }
    int parent = pick_arena(in);
    *pl = (pool){ .id = ++next_id, .parent = parent };
    char name[16];
    snprintf(name, sizeof name, "p%u", pl->id);
    pl->p = mp_objpool_create(parent >= 0 ? arenas[parent].a : NULL,
                              &(mp_objpool_opts){ .name = name, .obj_size = 24, .initial = 1, .dtor = pool_dtor,
                                                  .arg = pl, .flags = MP_LEAK_IGNORE });
    FZ_CHECK(pl->p != NULL, "create p%u: errno %d", pl->id, errno);
    link_entity(parent, POOL_TAG + (int)(pl - pools));
}

static size_t pick_size(fz_input *in)
{
    uint8_t k = fz_u8(in);
    switch (k & 7) {
    case 0: return 0;
    case 1:
    case 2:
    case 3: return fz_below(in, 64);
    case 4:
    case 5: return fz_below(in, 2000);
    case 6: return fz_below(in, 20000);
    default: return fz_below(in, 300000);
    }
}

static void op_alloc(int x, fz_input *in, uint8_t how)
{
    arena *a = &arenas[x];
    if (a->nallocs == ALLOCS_MAX)
        return;
    size_t size = pick_size(in), align = 1;
    char *p = NULL, *text = NULL;
    const char *what;
    errno = 0;
    switch (how % 6) {
    case 0:
        what = "mp_alloc";
        align = alignof(max_align_t);
        if (live_bytes + size > BYTES_MAX)
            return;
        p = mp_alloc(a->a, size);
        break;
    case 1:
        what = "mp_alloc_unaligned";
        if (live_bytes + size > BYTES_MAX)
            return;
        p = mp_alloc_unaligned(a->a, size);
        break;
    case 2:
        what = "mp_alloc_aligned";
        align = (size_t)1 << fz_below(in, 18);
        if (live_bytes + size + align > BYTES_MAX)
            return;
        p = mp_alloc_aligned(a->a, size, align);
        break;
    case 3: {
        what = "mp_calloc";
        align = alignof(max_align_t);
        size_t n = 1 + fz_below(in, 16);
        size /= n;
        if (live_bytes + n * size > BYTES_MAX)
            return;
        p = mp_calloc(a->a, n, size);
        size *= n;
        break;
    }
    case 4:
    case 5: {
        size_t len = how % 6 == 4 ? fz_below(in, 200) : fz_below(in, 30000);
        text = malloc(len + 64);
        FZ_CHECK(text != NULL, "malloc");
        for (size_t i = 0; i < len; i++)
            text[i] = (char)('a' + (i * 7 + len) % 26);
        text[len] = '\0';
        if (live_bytes + len + 64 > BYTES_MAX) {
            free(text);
            return;
        }
        if (how % 6 == 4) {
            what = "mp_strdup";
            p = mp_strdup(a->a, text);
        } else {
            what = "mp_printf"; /* the text through %s and a padded number */
            unsigned v = fz_u8(in);
            p = mp_printf(a->a, "%s|%05u|%x", text, v, v * 3u);
            snprintf(text + len, 64, "|%05u|%x", v, v * 3u);
        }
        size = strlen(text) + 1;
        break;
    }
    }
    if (!p) {
        FZ_CHECK(errno == ENOMEM, "%s(%zu) of a%u failed with errno %d", what, size, a->id, errno);
        FZ_CHECK(limited_chain(x), "%s(%zu) of a%u failed with no limit above it", what, size, a->id);
        a->nfailures++;
        free(text);
        return;
    }
    FZ_CHECK((uintptr_t)p % align == 0, "%s of a%u: %p not aligned to %zu", what, a->id, (void *)p, align);
    size_t at;
    int other = overlapping(p, size, &at);
    FZ_CHECK(other < 0, "%s(%zu) of a%u: %p overlaps %p (%zu bytes) of a%u", what, size, a->id, (void *)p,
             other >= 0 ? (void *)arenas[other].allocs[at].p : NULL, other >= 0 ? arenas[other].allocs[at].size : 0,
             other >= 0 ? arenas[other].id : 0);
    if (text)
        FZ_CHECK(strcmp(p, text) == 0, "%s of a%u: wrong string", what, a->id);
    else if (how % 6 == 3 || (a->flags & MP_ZERO))
        FZ_CHECK(fz_all_zero(p, size), "%s(%zu) of a%u: not zero", what, size, a->id);
    free(text);
    uint32_t tag = ++next_tag;
    fz_fill(p, size, tag);
    a->allocs[a->nallocs++] = (alloc){ p, size, tag };
    a->nalloc_calls++;
    live_bytes += size;
}

static void free_at(int x, size_t k)
{
    arena *a = &arenas[x];
    fz_verify(a->allocs[k].p, a->allocs[k].size, a->allocs[k].tag, "arena allocation");
    mp_arena_free(a->a, a->allocs[k].p);
    fz_reported_nothing("mp_arena_free");
    drop(a, k);
    a->nfrees++;
}

static void op_free(int x, fz_input *in)
{
    arena *a = &arenas[x];
    if (!a->nallocs)
        return;
    /* Half the time the newest (a rollback), else any. */
    free_at(x, fz_u8(in) & 1 ? a->nallocs - 1 : fz_below(in, a->nallocs));
}

static void op_cleanup(int x, fz_input *in)
{
    arena *a = &arenas[x];
    uint8_t f = fz_u8(in);
    if (f & 1 && a->ncleanups) { /* remove one */
        size_t k = fz_below(in, a->ncleanups);
        FZ_CHECK(mp_cleanup_remove(a->a, cleanup_fn, &recs[a->cleanups[k]]) == 0, "cleanup_remove");
        memmove(a->cleanups + k, a->cleanups + k + 1, (a->ncleanups - k - 1) * sizeof *a->cleanups);
        a->ncleanups--;
        FZ_CHECK(mp_cleanup_remove(a->a, cleanup_fn, &recs[RECS_MAX - 1]) == ENOENT, "cleanup_remove of none");
        return;
    }
    if (a->ncleanups == sizeof a->cleanups / sizeof *a->cleanups)
        return;
    rec *r = new_rec(a, (cleanup_kind)((f >> 1) % 4));
    if (!r)
        return;
    FZ_CHECK(mp_cleanup_push(a->a, cleanup_fn, r) == 0, "cleanup_push");
    a->cleanups[a->ncleanups++] = r->id;
}

static void op_move(fz_input *in, uint8_t f)
{
    int target = f & 1 ? pick_arena(in) : -1;
    if (f & 2) { /* a pool */
        pool *pl = &pools[fz_below(in, POOLS)];
        if (!pl->p)
            return;
        FZ_CHECK(mp_objpool_move(pl->p, target >= 0 ? arenas[target].a : NULL) == 0, "move of p%u", pl->id);
        int e = POOL_TAG + (int)(pl - pools);
        unlink_entity(pl->parent, e);
        link_entity(target, e);
        pl->parent = target;
        return;
    }
    int x = pick_arena(in);
    if (x < 0)
        return;
    arena *a = &arenas[x];
    /* The model's answer first: a cycle; else every limit from the target
     * up, each arena charged what it holds, less x's bytes if x is under
     * it already, plus x's bytes. */
    int want = 0;
    if (target >= 0 && is_under(target, x)) {
        want = EINVAL;
    } else {
        size_t t = total_of(x);
        for (int y = target; y >= 0; y = arenas[y].parent) {
            size_t ty = total_of(y) - (is_under(x, y) ? t : 0);
            if (arenas[y].limit && ty + t > arenas[y].limit)
                want = ENOMEM;
        }
    }
    int rc = mp_arena_move(a->a, target >= 0 ? arenas[target].a : NULL);
    FZ_CHECK(rc == want, "move of a%u under %s%u: %d, model %d", a->id, target >= 0 ? "a" : "root ",
             target >= 0 ? arenas[target].id : 0, rc, want);
    if (rc == 0) {
        unlink_entity(a->parent, x);
        link_entity(target, x);
        a->parent = target;
    }
}

static void op_misuse(fz_input *in, uint8_t what)
{
    int x = pick_arena(in);
    arena *a = x >= 0 ? &arenas[x] : NULL;
    switch (what % 6) {
    case 0:
        if (!a)
            return;
        mp_arena_free(a->a, foreign + 16);
        fz_reported("free of a foreign pointer", "mpool: free of a pointer not from this arena", (const char *)NULL);
        break;
    case 1: { /* another arena's allocation */
        int y = pick_arena(in);
        if (!a || y < 0 || y == x || !arenas[y].nallocs)
            return;
        mp_arena_free(a->a, arenas[y].allocs[0].p);
        fz_reported("free of another arena's pointer", "mpool: free of a pointer from another arena",
                    "mpool: free of a pointer not from this arena", (const char *)NULL);
        break;
    }
    case 2:
        if (!a || !a->nallocs)
            return;
        mp_free(a->allocs[0].p);
        fz_reported("mp_free of an arena allocation", "mpool: mp_free of", (const char *)NULL);
        break;
    case 3: /* checked: an interior pointer */
        if (!fz_checked || !a || !a->nallocs || a->allocs[0].size < 2)
            return;
        mp_arena_free(a->a, a->allocs[0].p + 1);
        fz_reported("free of an interior pointer", "mpool: free of an interior pointer",
                    "mpool: free of a pointer that is not an allocation", (const char *)NULL);
        break;
    case 4: { /* checked: a double free */
        if (!fz_checked || !a || !a->nallocs)
            return;
        size_t k = a->nallocs - 1, at;
        char *p = a->allocs[k].p;
        free_at(x, k);
        if (overlapping(p, 1, &at) >= 0)
            return;
        mp_arena_free(a->a, p);
        fz_reported("double free", "mpool: double free", "mpool: free of", (const char *)NULL);
        break;
    }
    case 5: /* checked: a destroyed arena */
        if (!dead_arena)
            return;
        errno = 0;
        FZ_CHECK(mp_alloc(dead_arena, 8) == NULL && errno == EINVAL, "alloc from a destroyed arena");
        fz_reported("alloc from a destroyed arena", "mpool: allocation from a destroyed or invalid arena",
                    (const char *)NULL);
        break;
    }
}

/* ------------------------------------------------------------- driver */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = { data, data + size };
    memset(arenas, 0, sizeof arenas);
    memset(pools, 0, sizeof pools);
    nroots = 0;
    nrecs = 0;
    next_id = next_tag = 0;
    live_bytes = 0;
    fz_expect_none();
    for (int ops = 0; ops < OPS_MAX && fz_more(&in); ops++) {
        uint8_t op = fz_u8(&in);
        int x;
        switch (op % 12) {
        case 0: op_create(&in); break;
        case 1:
            if ((x = pick_arena(&in)) >= 0)
                teardown(x, op & 16);
            break;
        case 2:
        case 3:
        case 4:
            if ((x = pick_arena(&in)) >= 0)
                op_alloc(x, &in, op >> 4);
            break;
        case 5:
            if ((x = pick_arena(&in)) >= 0)
                op_free(x, &in);
            break;
        case 6:
            if ((x = pick_arena(&in)) >= 0)
                op_cleanup(x, &in);
            break;
        case 7: op_move(&in, op >> 4); break;
        case 8: op_pool(&in); break;
        case 9: op_misuse(&in, op >> 4); break;
        case 10:
            if ((x = pick_arena(&in)) >= 0)
                check_arena(x);
            break;
        case 11: check_tree(); break;
        }
        fz_reported_nothing("an operation");
    }
    check_tree();
    for (int x = 0; x < ARENAS; x++)
        if (arenas[x].a)
            check_arena(x);
    /* Destroy the roots, oldest first: everything goes. */
    while (nroots) {
        int e = roots[0];
        if (e >= POOL_TAG) {
            pool *pl = &pools[e - POOL_TAG];
            run_log[0] = '\0';
            mp_objpool_destroy(pl->p);
            unlink_entity(-1, e);
            pl->p = NULL;
        } else {
            teardown(e, false);
        }
    }
    check_tree();
    return 0;
}
