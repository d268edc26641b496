/*
 * objpool.c - libFuzzer target: object pools against a shadow model.
 *
 * Up to four pools live at once, with options read from the input (object
 * size from 1 byte to 200 KB, alignment, MP_SINGLE_THREAD or thread-safe,
 * MP_ZERO, MP_HANDLES, max_live, max_free, initial, a ctor/dtor pair, no
 * parent or an arena), and one arena that may own some of them.
 * Operations: create, destroy, get, get_wait(0), get_bulk, the
 * reserve-source adapters, put, put_bulk, mp_free, put_handle, trim, move,
 * stats, foreach, the JSON report, the parent arena's creation, reset and
 * destroy, and misuse the library must report and survive.
 *
 * The model knows, per pool, the objects out (each stamped with a pattern
 * of its own when handed out, checked when it goes back), the gets and
 * puts, the objects made and destroyed by ctor and dtor, and where each
 * pool sits in the tree. It checks:
 *   - contents: an object keeps its stamp while out; a new object is zero
 *     with MP_ZERO, else holds what the ctor or its last user left in it
 *     when the pool has a ctor; no object is out twice, in any pool;
 *     alignment; mp_usable_size;
 *   - the cap: a get fails (ENOMEM) exactly when max_live objects are out;
 *   - statistics: objects_in_use, allocs, frees, bytes_in_use exactly,
 *     failures, waits and timeouts 0, bytes_peak and bytes_mapped bounds,
 *     bytes_mapped 0 after a trim with nothing out (unchecked);
 *   - foreach visits exactly the objects out;
 *   - handles (MP_HANDLES pools): every object out has one, the same each
 *     time, which derefs to it; once put (any way, or by the pool's
 *     destroy) it derefs to NULL + ESTALE or EINVAL, never to an object,
 *     in its own pool or any other; another pool's handle, and garbage,
 *     never deref to an object other than the one a live handle names;
 *   - the tree in mp_report_json, in order; dtor count == ctor count once
 *     a pool is gone; a leak report exactly when a checked pool with
 *     objects out is destroyed directly;
 *   - misuse (always: a foreign pointer to put, mp_free and
 *     mp_usable_size, an object put into another pool, a put to a NULL
 *     pool, a double put in a handle pool, put_handle of a stale handle,
 *     of another pool's and of garbage; checked mode: a double put, an
 *     interior pointer, a get from a destroyed pool) is reported once and
 *     changes nothing.
 */
#include "fuzz.h"

#include <stdalign.h>

enum { POOLS = 4, LIVE_MAX = 256, BIG_LIVE_MAX = 16, OPS_MAX = 400, BULK_MAX = 16 };

typedef struct obj {
    void *p;
    uint32_t tag;
    mp_handle h; /* MP_HANDLES pools: its handle */
} obj;

enum { STALE = 64 }; /* handles of objects put, remembered (all pools, a ring) */

typedef struct pool {
    mp_objpool *p; /* NULL: the slot is empty */
    unsigned id;
    size_t obj_size, align; /* align: the alignment asked for, or malloc's */
    unsigned flags;
    size_t max_live, live_max; /* live_max: what the model lets out */
    bool has_ctor;
    bool in_arena;
    obj live[LIVE_MAX];
    size_t nlive, allocs, frees;
    size_t made, unmade; /* ctor and dtor calls */
    void *last_put;      /* for a double put (checked mode, or a handle pool) */
    bool handles;        /* MP_HANDLES */
} pool;

static pool pools[POOLS];
static mp_arena *arena;         /* the one parent arena, or NULL */
static unsigned arena_id;
static int roots[POOLS + 1];     /* root order, oldest first: pool index, or POOLS for the arena */
static int nroots;
static int kids[POOLS];          /* the arena's children, oldest first */
static int nkids;
static unsigned next_id, next_tag;
static mp_objpool *dead_pool;    /* checked mode: a destroyed pool, kept by the graveyard */
static mp_handle stale[STALE];   /* handles whose objects were put (or whose pool went) */
static unsigned nstale;
static alignas(64) unsigned char foreign[256]; /* never from mpool */

static const size_t sizes[] = { 1, 3, 8, 12, 16, 24, 40, 64, 100, 128, 256, 1000, 4096, 5000, 20000, 70000, 200000 };

/* ----------------------------------------------------------- the model */

static void list_remove(int *list, int *n, int v)
{
    for (int i = 0; i < *n; i++) {
        if (list[i] == v) {
            memmove(list + i, list + i + 1, (size_t)(*n - i - 1) * sizeof *list);
            (*n)--;
            return;
        }
    }
    FZ_CHECK(false, "model: %d not in its list", v);
}

static void expected_outline(char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < nroots; i++) {
        if (i)
            fz_append(out, cap, " ");
        if (roots[i] == POOLS) {
            fz_append(out, cap, "arena:a%u", arena_id);
            for (int k = 0; k < nkids; k++)
                fz_append(out, cap, "%sobjpool:p%u", k ? " " : "[", pools[kids[k]].id);
            if (nkids)
                fz_append(out, cap, "]");
        } else {
            fz_append(out, cap, "objpool:p%u", pools[roots[i]].id);
        }
    }
}

static void check_tree(void)
{
    char got[1024], want[1024];
    fz_outline(got, sizeof got);
    expected_outline(want, sizeof want);
    FZ_CHECK(strcmp(got, want) == 0, "tree: report %s, model %s", got, want);
}

/* The pool (any) whose object p is, or NULL; *at: its index. */
static pool *owner_of(const void *p, size_t *at)
{
    for (int i = 0; i < POOLS; i++) {
        for (size_t k = 0; pools[i].p && k < pools[i].nlive; k++) {
            if (pools[i].live[k].p == p) {
                *at = k;
                return &pools[i];
            }
        }
    }
    return NULL;
}

/* The first bytes of a free object in a pool with a ctor: the ctor writes
 * them, and so does the model before every put. */
static size_t mark_len(const pool *pl) { return pl->obj_size < 8 ? pl->obj_size : 8; }

static void mark_free(const pool *pl, void *p)
{
    for (size_t i = 0; i < mark_len(pl); i++)
        ((unsigned char *)p)[i] = (unsigned char)(0xa0 + pl->id + i);
}

static bool marked_free(const pool *pl, const void *p)
{
    for (size_t i = 0; i < mark_len(pl); i++)
        if (((const unsigned char *)p)[i] != (unsigned char)(0xa0 + pl->id + i))
            return false;
    return true;
}

static void ctor(void *p, void *arg)
{
    pool *pl = arg;
    pl->made++;
    mark_free(pl, p);
}

static void dtor(void *p, void *arg)
{
    (void)p;
    ((pool *)arg)->unmade++;
}

/* ------------------------------------------------------------ checks */

static void check_stats(const pool *pl)
{
    mp_stats s;
    FZ_CHECK(mp_objpool_stats(pl->p, &s) == 0, "stats of p%u", pl->id);
    FZ_CHECK(s.objects_in_use == pl->nlive, "p%u objects_in_use %zu, model %zu", pl->id, s.objects_in_use, pl->nlive);
    FZ_CHECK(s.allocs == pl->allocs, "p%u allocs %zu, model %zu", pl->id, s.allocs, pl->allocs);
    FZ_CHECK(s.frees == pl->frees, "p%u frees %zu, model %zu", pl->id, s.frees, pl->frees);
    FZ_CHECK(s.bytes_in_use == pl->nlive * pl->obj_size, "p%u bytes_in_use %zu, model %zu", pl->id, s.bytes_in_use,
             pl->nlive * pl->obj_size);
    FZ_CHECK(s.failures == 0 && s.waits == 0 && s.timeouts == 0, "p%u failures %zu waits %zu timeouts %zu", pl->id,
             s.failures, s.waits, s.timeouts);
    FZ_CHECK(s.bytes_peak >= s.bytes_in_use, "p%u peak %zu < in use %zu", pl->id, s.bytes_peak, s.bytes_in_use);
    FZ_CHECK(s.bytes_mapped >= s.bytes_in_use, "p%u mapped %zu < in use %zu", pl->id, s.bytes_mapped, s.bytes_in_use);
    FZ_CHECK(s.reserve_level == 0 && s.reserve_min == 0 && s.reserve_used == 0, "p%u reserve counters", pl->id);
}

static size_t visited;
static const pool *visiting;

static void visit(void *p, void *arg)
{
    (void)arg;
    size_t at;
    FZ_CHECK(owner_of(p, &at) == visiting, "foreach of p%u visited %p, not one of its objects out", visiting->id, p);
    visited++;
}

static void check_foreach(const pool *pl)
{
    visited = 0;
    visiting = pl;
    size_t n = mp_objpool_foreach(pl->p, visit, NULL);
    FZ_CHECK(n == pl->nlive && visited == pl->nlive, "foreach of p%u: %zu returned, %zu visited, model %zu", pl->id,
             n, visited, pl->nlive);
}

/* A new object from pl: check it, stamp it, record it. */
static void took(pool *pl, void *p, const char *how)
{
    size_t at;
    pool *other = owner_of(p, &at);
    FZ_CHECK(other == NULL, "%s from p%u handed out %p, which is out of p%u already", how, pl->id, p,
             other ? other->id : 0);
    FZ_CHECK((uintptr_t)p % pl->align == 0, "%s from p%u: %p not aligned to %zu", how, pl->id, p, pl->align);
    size_t usable = mp_usable_size(p);
    size_t rounded = (pl->obj_size + pl->align - 1) / pl->align * pl->align;
    FZ_CHECK(usable == pl->obj_size || usable == rounded, "p%u: usable size %zu for objects of %zu aligned to %zu",
             pl->id, usable, pl->obj_size, pl->align);
    if (pl->flags & MP_ZERO)
        FZ_CHECK(fz_all_zero(p, pl->obj_size), "%s from MP_ZERO p%u: %p not zero", how, pl->id, p);
    else if (pl->has_ctor)
        FZ_CHECK(marked_free(pl, p), "%s from p%u: %p lost what the ctor or its last user left", how, pl->id, p);
    uint32_t tag = ++next_tag;
    fz_fill(p, pl->obj_size, tag);
    mp_handle h = 0;
    if (pl->handles) {
        h = mp_objpool_handle(pl->p, p);
        FZ_CHECK(h != 0 && mp_objpool_deref(pl->p, h) == p, "%s from handle pool p%u: %p, handle %#llx derefs to %p",
                 how, pl->id, p, (unsigned long long)h, h ? mp_objpool_deref(pl->p, h) : NULL);
    }
    pl->live[pl->nlive++] = (obj){ p, tag, h };
    pl->allocs++;
}

static void remember_stale(mp_handle h)
{
    if (h)
        stale[nstale++ % STALE] = h;
}

/* The object at index k of pl leaves the model (about to be put). */
static mp_handle given_handle; /* of the object giving() returned last */

static void *giving(pool *pl, size_t k)
{
    obj o = pl->live[k];
    fz_verify(o.p, pl->obj_size, o.tag, "object out");
    if (pl->has_ctor)
        mark_free(pl, o.p);
    if (pl->handles)
        FZ_CHECK(mp_objpool_handle(pl->p, o.p) == o.h, "p%u: handle of %p changed while out", pl->id, o.p);
    pl->live[k] = pl->live[--pl->nlive];
    pl->frees++;
    pl->last_put = o.p;
    given_handle = o.h;
    remember_stale(o.h);
    return o.p;
}

/* h's object was put: h names nothing now, in pl's pool or any other. */
static void check_stale(const pool *pl, mp_handle h)
{
    if (!h)
        return;
    errno = 0;
    void *o = mp_objpool_deref(pl->p, h);
    FZ_CHECK(o == NULL && errno == ESTALE, "p%u: put handle %#llx derefs to %p, errno %d", pl->id,
             (unsigned long long)h, o, errno);
}

/* ------------------------------------------------------- operations */

static pool *pick(fz_input *in, bool live)
{
    pool *pl = &pools[fz_below(in, POOLS)];
    return (pl->p != NULL) == live ? pl : NULL;
}

static void op_create(fz_input *in)
{
    pool *pl = pick(in, false);
    if (!pl)
        return;
    uint8_t f = fz_u8(in);
    size_t size = sizes[fz_below(in, sizeof sizes / sizeof *sizes)];
    size_t align = f & 1 ? (size_t)1 << fz_below(in, 15) : 0;
    unsigned flags = (f & 6) == 2 ? MP_SINGLE_THREAD : (f & 6) == 4 ? MP_THREADSAFE : 0;
    if (f & 8)
        flags |= MP_ZERO;
    if (f & 16)
        flags |= MP_LEAK_IGNORE;
    size_t live_max = size > 4096 ? BIG_LIVE_MAX : LIVE_MAX;
    size_t max_live = f & 32 ? 1 + fz_below(in, live_max) : 0;
    size_t max_free = f & 64 ? fz_below(in, 100) : 0;
    size_t initial = fz_below(in, size > 4096 ? 3 : 100);
    bool with_parent = arena && (f & 128);
    unsigned id = ++next_id;
    char name[16];
    snprintf(name, sizeof name, "p%u", id);

    uint8_t g = fz_u8(in);
    if (g & 2)
        flags |= MP_HANDLES;
    if (flags & MP_THREADSAFE) { /* an arena's flag: object pools are thread-safe without it, and refuse it */
        errno = 0;
        mp_objpool *p = mp_objpool_create(with_parent ? arena : NULL,
                                          &(mp_objpool_opts){ .name = name, .obj_size = size, .flags = flags });
        FZ_CHECK(p == NULL && errno == EINVAL, "create with MP_THREADSAFE: %p, errno %d", (void *)p, errno);
        return;
    }
    *pl = (pool){ .id = id, .obj_size = size, .flags = flags, .max_live = max_live, .live_max = live_max,
                  .has_ctor = g & 1, .in_arena = with_parent, .handles = (g & 2) != 0 };
    pl->align = align;
    if (!align) { /* as malloc would align an object of this size */
        pl->align = 8;
        while (pl->align < size && pl->align < alignof(max_align_t))
            pl->align <<= 1;
    }
    mp_objpool_opts o = { .name = name, .obj_size = size, .align = align, .initial = initial, .max_free = max_free,
                          .max_live = max_live, .flags = flags, .arg = pl };
    if (pl->has_ctor) {
        o.ctor = ctor;
        o.dtor = dtor;
    }
    pl->p = mp_objpool_create(with_parent ? arena : NULL, &o);
    FZ_CHECK(pl->p != NULL, "create p%u (size %zu, align %zu, flags %#x, initial %zu): errno %d", id, size, align,
             flags, initial, errno);
    if (pl->has_ctor)
        FZ_CHECK(pl->made == initial, "p%u: %zu objects constructed at create, initial %zu", id, pl->made, initial);
    if (with_parent)
        kids[nkids++] = (int)(pl - pools);
    else
        roots[nroots++] = (int)(pl - pools);
}

/* The pool is gone (destroyed by us or by its arena): check its books. */
static void gone(pool *pl)
{
    if (pl->has_ctor)
        FZ_CHECK(pl->made == pl->unmade, "p%u destroyed: %zu constructed, %zu destroyed", pl->id, pl->made, pl->unmade);
    if (fz_checked)
        dead_pool = pl->p;
    for (size_t k = 0; k < pl->nlive; k++)
        remember_stale(pl->live[k].h);
    pl->p = NULL;
    pl->nlive = 0;
}

static void op_destroy(pool *pl)
{
    bool leak = fz_checked && pl->nlive > 0 && !(pl->flags & MP_LEAK_IGNORE);
    mp_objpool_destroy(pl->p);
    if (leak)
        fz_reported("destroy with objects out", "mpool: leak: objpool", (const char *)NULL);
    else
        fz_reported_nothing("destroy");
    if (pl->in_arena)
        list_remove(kids, &nkids, (int)(pl - pools));
    else
        list_remove(roots, &nroots, (int)(pl - pools));
    gone(pl);
}

static void op_get(pool *pl, uint8_t how)
{
    if (pl->nlive == pl->live_max)
        return;
    bool at_cap = pl->max_live && pl->nlive == pl->max_live;
    const char *name = how == 0 ? "get" : how == 1 ? "get_wait(0)" : "source_alloc";
    errno = 0;
    void *p = how == 0   ? mp_objpool_get(pl->p)
              : how == 1 ? mp_objpool_get_wait(pl->p, 0)
                         : mp_objpool_source_alloc(pl->p);
    if (at_cap) {
        FZ_CHECK(p == NULL && errno == ENOMEM, "%s from p%u at its cap of %zu: %p, errno %d", name, pl->id,
                 pl->max_live, p, errno);
        return;
    }
    FZ_CHECK(p != NULL, "%s from p%u failed (%zu of cap %zu out), errno %d", name, pl->id, pl->nlive, pl->max_live,
             errno);
    took(pl, p, name);
}

static void op_get_bulk(pool *pl, size_t n)
{
    size_t want = n < pl->live_max - pl->nlive ? n : pl->live_max - pl->nlive;
    size_t expect = want;
    if (pl->max_live && pl->max_live - pl->nlive < expect)
        expect = pl->max_live - pl->nlive;
    void *got[BULK_MAX];
    errno = 0;
    size_t k = mp_objpool_get_bulk(pl->p, got, want);
    FZ_CHECK(k == expect, "get_bulk of %zu from p%u got %zu, expected %zu (%zu out, cap %zu)", want, pl->id, k, expect,
             pl->nlive, pl->max_live);
    if (k < want)
        FZ_CHECK(errno == ENOMEM, "short get_bulk from p%u: errno %d", pl->id, errno);
    for (size_t i = 0; i < k; i++)
        took(pl, got[i], "get_bulk");
}

static void op_put(pool *pl, fz_input *in, uint8_t how)
{
    if (!pl->nlive)
        return;
    void *p = giving(pl, fz_below(in, pl->nlive));
    mp_handle h = given_handle;
    switch (how) {
    case 0: mp_objpool_put(pl->p, p); break;
    case 1: mp_free(p); break;
    case 2: mp_objpool_source_free(p, pl->p); break;
    default:
        if (h)
            mp_objpool_put_handle(pl->p, h);
        else
            mp_objpool_put(pl->p, p);
        break;
    }
    fz_reported_nothing("put");
    check_stale(pl, h);
}

static void op_put_bulk(pool *pl, size_t n)
{
    void *batch[BULK_MAX];
    size_t k = 0;
    mp_handle hs[BULK_MAX];
    while (k < n && pl->nlive) {
        batch[k] = giving(pl, pl->nlive - 1);
        hs[k++] = given_handle;
    }
    mp_objpool_put_bulk(pl->p, batch, k);
    fz_reported_nothing("put_bulk");
    for (size_t i = 0; i < k; i++)
        check_stale(pl, hs[i]);
}

static void op_trim(pool *pl)
{
    mp_objpool_trim(pl->p);
    fz_reported_nothing("trim");
    if (!fz_checked && pl->nlive == 0) { /* checked mode: the quarantine keeps some */
        mp_stats s;
        FZ_CHECK(mp_objpool_stats(pl->p, &s) == 0, "stats");
        FZ_CHECK(s.bytes_mapped == 0, "p%u: %zu bytes mapped after trim with nothing out", pl->id, s.bytes_mapped);
    }
}

static void op_move(pool *pl, bool to_arena)
{
    if (to_arena && !arena)
        return;
    FZ_CHECK(mp_objpool_move(pl->p, to_arena ? arena : NULL) == 0, "move of p%u", pl->id);
    int me = (int)(pl - pools);
    if (pl->in_arena)
        list_remove(kids, &nkids, me);
    else
        list_remove(roots, &nroots, me);
    if (to_arena)
        kids[nkids++] = me;
    else
        roots[nroots++] = me;
    pl->in_arena = to_arena;
}

static void op_arena(uint8_t what)
{
    if (!arena) {
        char name[16];
        arena_id = ++next_id;
        snprintf(name, sizeof name, "a%u", arena_id);
        arena = mp_arena_create(NULL, &(mp_arena_opts){ .name = name, .flags = what & 1 ? MP_THREADSAFE : 0 });
        FZ_CHECK(arena != NULL, "arena create: errno %d", errno);
        roots[nroots++] = POOLS;
        return;
    }
    /* Reset or destroy: its pools go, newest first, with no leak report. */
    if (what & 1)
        mp_arena_reset(arena);
    else
        mp_arena_destroy(arena);
    fz_reported_nothing(what & 1 ? "arena reset" : "arena destroy");
    for (int k = nkids; k-- > 0;)
        gone(&pools[kids[k]]);
    nkids = 0;
    if (!(what & 1)) {
        list_remove(roots, &nroots, POOLS);
        arena = NULL;
    }
}

/* Misuse the library must report, and survive unchanged. */
static void op_misuse(fz_input *in, uint8_t what)
{
    pool *pl = pick(in, true);
    switch (what % 12) {
    case 0:
        if (!pl)
            return;
        mp_objpool_put(pl->p, foreign + 64);
        fz_reported("put of a foreign pointer", "mpool: put of a pointer not from mpool", (const char *)NULL);
        break;
    case 1:
        mp_free(foreign + 32);
        fz_reported("mp_free of a foreign pointer", "mpool: mp_free of a pointer not from an object pool",
                    (const char *)NULL);
        break;
    case 2:
        FZ_CHECK(mp_usable_size(foreign) == 0, "mp_usable_size of a foreign pointer");
        fz_reported("mp_usable_size of a foreign pointer", "mpool: mp_usable_size of a pointer not from an object pool",
                    (const char *)NULL);
        break;
    case 3: { /* an object of one pool put into another */
        pool *other = pick(in, true);
        if (!pl || !other || other == pl || !other->nlive)
            return;
        mp_objpool_put(pl->p, other->live[0].p);
        fz_reported("put into another pool", "mpool: put of a pointer from another pool", (const char *)NULL);
        break;
    }
    case 4:
        if (!pl || !pl->nlive)
            return;
        mp_objpool_put(NULL, pl->live[0].p);
        fz_reported("put to a NULL pool", "mpool: put to a NULL pool", (const char *)NULL);
        break;
    case 5: { /* an arena allocation to mp_free */
        if (!arena)
            return;
        void *p = mp_alloc(arena, 32);
        FZ_CHECK(p != NULL, "arena alloc");
        mp_free(p);
        fz_reported("mp_free of an arena allocation", "mpool: mp_free of", (const char *)NULL);
        break;
    }
    case 6: { /* checked: a double put */
        size_t at;
        if (!fz_checked || !pl || !pl->last_put || owner_of(pl->last_put, &at))
            return;
        mp_objpool_put(pl->p, pl->last_put);
        fz_reported("double put", "mpool: ", (const char *)NULL);
        break;
    }
    case 7: /* checked: an interior pointer */
        if (!fz_checked || !pl || !pl->nlive || pl->obj_size < 2)
            return;
        mp_objpool_put(pl->p, (char *)pl->live[0].p + 1);
        fz_reported("put of an interior pointer", "mpool: put of an interior pointer", (const char *)NULL);
        break;
    case 8: /* checked: a destroyed pool */
        if (!dead_pool)
            return;
        FZ_CHECK(mp_objpool_get(dead_pool) == NULL, "get from a destroyed pool");
        fz_reported("get from a destroyed pool", "mpool: get from a destroyed or invalid pool", (const char *)NULL);
        break;
    case 9: { /* a handle pool: a double put, in any mode; put_handle of a stale handle */
        size_t at;
        if (!pl || !pl->handles || !pl->last_put || owner_of(pl->last_put, &at))
            return;
        mp_objpool_put(pl->p, pl->last_put);
        fz_reported("double put in a handle pool", "mpool: double put", (const char *)NULL);
        if (nstale) {
            mp_handle h = stale[(nstale - 1) % STALE];
            mp_objpool_put_handle(pl->p, h);
            fz_reported("put_handle of a stale handle", "mpool: put of a stale handle", "mpool: put of an invalid handle",
                        (const char *)NULL);
        }
        break;
    }
    case 10: { /* put_handle of another pool's live handle, or of garbage */
        pool *other = pick(in, true);
        if (!pl || !pl->handles)
            return;
        mp_handle h = other && other != pl && other->handles && other->nlive ? other->live[0].h
                                                                               : (mp_handle)fz_u32(in) << 32 | fz_u32(in);
        for (size_t k = 0; k < pl->nlive; k++)
            if (pl->live[k].h == h)
                return; /* garbage that names one of pl's objects: no misuse */
        mp_objpool_put_handle(pl->p, h);
        fz_reported("put_handle of a handle not of this pool", "mpool: put of an invalid handle",
                    "mpool: put of a stale handle", (const char *)NULL);
        break;
    }
    case 11: /* put_handle to a pool without MP_HANDLES */
        if (!pl || pl->handles || !nstale)
            return;
        mp_objpool_put_handle(pl->p, stale[0]);
        fz_reported("put_handle to a pool without handles", "mpool: put_handle to a pool without MP_HANDLES",
                    (const char *)NULL);
        break;
    }
}

/* Handles: each object out derefs by its handle; stale handles, other
 * pools' handles and garbage deref to nothing but a live object of this
 * pool named exactly by that value. */
static void check_handles(pool *pl, fz_input *in)
{
    for (size_t k = 0; k < pl->nlive; k++) {
        if (!pl->handles) {
            errno = 0;
            FZ_CHECK(mp_objpool_handle(pl->p, pl->live[k].p) == 0 && errno == EINVAL, "handle in p%u without MP_HANDLES",
                     pl->id);
            continue;
        }
        FZ_CHECK(mp_objpool_handle(pl->p, pl->live[k].p) == pl->live[k].h, "p%u: handle of %p changed", pl->id,
                 pl->live[k].p);
        FZ_CHECK(mp_objpool_deref(pl->p, pl->live[k].h) == pl->live[k].p, "p%u: handle %#llx does not deref to %p",
                 pl->id, (unsigned long long)pl->live[k].h, pl->live[k].p);
    }
    mp_handle probes[STALE + 8];
    size_t n = 0;
    for (unsigned i = 0; i < STALE && i < nstale; i++)
        probes[n++] = stale[i];
    for (int i = 0; i < POOLS; i++) /* other pools' live handles */
        if (&pools[i] != pl && pools[i].p && pools[i].nlive && n < STALE + 6)
            probes[n++] = pools[i].live[0].h;
    probes[n++] = 0;
    probes[n++] = (mp_handle)fz_u32(in) << 32 | fz_u32(in);
    for (size_t i = 0; i < n; i++) {
        errno = 0;
        void *o = mp_objpool_deref(pl->p, probes[i]);
        if (!o) {
            FZ_CHECK(errno == ESTALE || errno == EINVAL, "p%u: deref of %#llx: NULL with errno %d", pl->id,
                     (unsigned long long)probes[i], errno);
            continue;
        }
        bool named = false;
        for (size_t k = 0; k < pl->nlive; k++)
            named |= pl->live[k].h == probes[i] && pl->live[k].p == o;
        FZ_CHECK(named, "p%u: deref of %#llx, not a live handle of its, gave %p", pl->id, (unsigned long long)probes[i],
                 o);
    }
}

static void op_check(pool *pl, fz_input *in)
{
    check_stats(pl);
    check_foreach(pl);
    check_handles(pl, in);
    for (size_t k = 0; k < pl->nlive; k++)
        fz_verify(pl->live[k].p, pl->obj_size, pl->live[k].tag, "object out");
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
    memset(pools, 0, sizeof pools);
    nroots = nkids = 0;
    nstale = 0;
    next_id = next_tag = 0;
    fz_expect_none();
    for (int ops = 0; ops < OPS_MAX && fz_more(&in); ops++) {
        uint8_t op = fz_u8(&in);
        pool *pl;
        switch (op % 16) {
        case 0: op_create(&in); break;
        case 1:
            if ((pl = pick(&in, true)))
                op_destroy(pl);
            break;
        case 2:
        case 3:
        case 4:
            if ((pl = pick(&in, true)))
                op_get(pl, (uint8_t)(op >> 4) % 3);
            break;
        case 5:
            if ((pl = pick(&in, true)))
                op_get_bulk(pl, 1 + fz_below(&in, BULK_MAX));
            break;
        case 6:
        case 7:
        case 8:
            if ((pl = pick(&in, true)))
                op_put(pl, &in, (uint8_t)(op >> 4) % 4);
            break;
        case 9:
            if ((pl = pick(&in, true)))
                op_put_bulk(pl, 1 + fz_below(&in, BULK_MAX));
            break;
        case 10:
            if ((pl = pick(&in, true)))
                op_trim(pl);
            break;
        case 11:
            if ((pl = pick(&in, true)))
                op_move(pl, op & 16);
            break;
        case 12: op_arena(op >> 4); break;
        case 13: op_misuse(&in, op >> 4); break;
        case 14:
            if ((pl = pick(&in, true)))
                op_check(pl, &in);
            break;
        case 15: check_tree(); break;
        }
        fz_reported_nothing("an operation");
    }
    /* The end: every pool checked, then everything given back. */
    check_tree();
    for (int i = 0; i < POOLS; i++) {
        if (pools[i].p) {
            op_check(&pools[i], &in);
            while (pools[i].nlive)
                op_put(&pools[i], &in, 0);
            op_check(&pools[i], &in);
            op_destroy(&pools[i]);
        }
    }
    if (arena)
        op_arena(0);
    check_tree();
    return 0;
}
