/*
 * reserve.c - libFuzzer target: reserves against a shadow model.
 *
 * Up to three reserves, each over a source of one of three kinds: a source
 * of the target's own (malloc underneath) that fails on command, either
 * from now on or for its next few calls; the default source (malloc of
 * elem_size); or an object pool with a cap, which fails once the cap is
 * out. One arena may own some of them. Operations: create (min_reserved
 * 1..16), mp_reserve_alloc with timeout 0 or a wait of a microsecond,
 * mp_reserve_free, resize up and down, destroy, move, the arena's reset and
 * destroy, stats, the JSON report, the source's failures, and misuse.
 *
 * The model knows each reserve's level, minimum and elements out, and each
 * source's elements out, and predicts every call:
 *   - alloc asks the source first; when it fails, takes from the reserve
 *     (reserve_used), else fails with ENOMEM (or ETIMEDOUT after a wait,
 *     counted in waits and timeouts);
 *   - free refills the reserve up to min_reserved, else gives back to the
 *     source;
 *   - resize grows all or nothing (ENOMEM, and nothing changes, when the
 *     source cannot give every element), shrinks giving the surplus back;
 *   - create fails with ENOMEM, every element given back, when the source
 *     cannot fill it;
 *   - destroy gives every element held back to the source; the elements
 *     out stay the caller's (the target gives them back itself), with a
 *     leak report in checked mode;
 * and checks the statistics exactly (allocs, frees, objects_in_use,
 * bytes, reserve_level, reserve_min, reserve_used, failures; failures is a
 * lower bound after a wait, which retries the source), that no element is
 * out twice, that each keeps its stamp while out, that a source only gets
 * back what it gave and gets it all back in the end, and the tree in
 * mp_report_json. Misuse (a free to a NULL reserve; in checked mode a
 * double free and a free of an element the reserve never handed out) is
 * reported and changes nothing.
 */
#include "fuzz.h"

enum { RESERVES = 3, OUT_MAX = 64, SRC_MAX = 256, OPS_MAX = 400, ARENA = 2 * RESERVES };
/* Tree entities: reserve i is i, its source pool RESERVES + i, the arena ARENA. */

typedef enum src_kind { SRC_OWN, SRC_DEFAULT, SRC_POOL } src_kind;

typedef struct elem {
    void *p;
    uint32_t tag;
} elem;

typedef struct source {
    src_kind kind;
    size_t size;
    bool failing;      /* SRC_OWN: every call fails */
    unsigned fail_next; /* SRC_OWN: the next calls that fail */
    void *out[SRC_MAX]; /* SRC_OWN: elements it has out */
    size_t nout;
    mp_objpool *pool;  /* SRC_POOL */
    unsigned pool_id;
    size_t cap;        /* SRC_POOL: its max_live */
} source;

typedef struct reserve {
    mp_reserve *r; /* NULL: the slot is empty */
    unsigned id;
    source src;
    size_t elem_size, min, level;
    unsigned flags;
    bool in_arena;
    elem out[OUT_MAX];
    size_t nout;
    size_t allocs, frees, failures, used, waits, timeouts;
    bool failures_at_least; /* after a wait: the source was retried */
    void *last_freed;
} reserve;

static reserve reserves[RESERVES];
static mp_arena *arena;
static unsigned arena_id;
static int roots[2 * RESERVES + 1], nroots;
static int kids[RESERVES], nkids;
static unsigned next_id, next_tag;
static unsigned char foreign[128];

/* ------------------------------------------------------------- sources */

static void *own_alloc(void *arg)
{
    source *s = arg;
    if (s->fail_next) {
        s->fail_next--;
        return NULL;
    }
    if (s->failing || s->nout == SRC_MAX)
        return NULL;
    void *e = malloc(s->size);
    FZ_CHECK(e != NULL, "malloc");
    s->out[s->nout++] = e;
    return e;
}

static void own_free(void *e, void *arg)
{
    source *s = arg;
    for (size_t i = 0; i < s->nout; i++) {
        if (s->out[i] == e) {
            s->out[i] = s->out[--s->nout];
            free(e);
            return;
        }
    }
    FZ_CHECK(false, "the source got back %p, which it does not have out", e);
}

/* Whether the source's next n calls all succeed (without calling it; the
 * source counts its own failures down as it is called). */
static bool source_gives(const reserve *x, size_t n)
{
    const source *s = &x->src;
    switch (s->kind) {
    case SRC_OWN: return !s->fail_next && !s->failing && s->nout + n <= SRC_MAX;
    case SRC_DEFAULT: return true;
    case SRC_POOL: return x->level + x->nout + n <= s->cap;
    }
    return false;
}

/* An element the caller still has when its reserve is gone goes back to
 * the source directly. */
static void give_back(source *s, void *e)
{
    switch (s->kind) {
    case SRC_OWN: own_free(e, s); break;
    case SRC_DEFAULT: free(e); break;
    case SRC_POOL: mp_objpool_put(s->pool, e); break;
    }
}

/* ------------------------------------------------------------ the tree */

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

static void name_of(int e, char *out, size_t cap)
{
    if (e == ARENA)
        fz_append(out, cap, "arena:a%u", arena_id);
    else if (e >= RESERVES)
        fz_append(out, cap, "objpool:s%u", reserves[e - RESERVES].src.pool_id);
    else
        fz_append(out, cap, "reserve:r%u", reserves[e].id);
}

static void check_tree(void)
{
    char got[1024], want[1024] = "";
    fz_outline(got, sizeof got);
    for (int i = 0; i < nroots; i++) {
        if (i)
            fz_append(want, sizeof want, " ");
        name_of(roots[i], want, sizeof want);
        if (roots[i] == ARENA) {
            for (int k = 0; k < nkids; k++) {
                fz_append(want, sizeof want, k ? " " : "[");
                name_of(kids[k], want, sizeof want);
            }
            if (nkids)
                fz_append(want, sizeof want, "]");
        }
    }
    FZ_CHECK(strcmp(got, want) == 0, "tree: report %s, model %s", got, want);
}

/* ------------------------------------------------------------- checks */

static reserve *owner_of(const void *p, size_t *at)
{
    for (int i = 0; i < RESERVES; i++) {
        for (size_t k = 0; reserves[i].r && k < reserves[i].nout; k++) {
            if (reserves[i].out[k].p == p) {
                *at = k;
                return &reserves[i];
            }
        }
    }
    return NULL;
}

static void check_source(const reserve *x)
{
    if (x->src.kind == SRC_OWN)
        FZ_CHECK(x->src.nout == x->level + x->nout,
                 "r%u: its source has %zu out, the reserve holds %zu and %zu are out", x->id, x->src.nout, x->level,
                 x->nout);
    if (x->src.kind == SRC_POOL) {
        mp_stats s;
        FZ_CHECK(mp_objpool_stats(x->src.pool, &s) == 0, "source pool stats");
        FZ_CHECK(s.objects_in_use == x->level + x->nout,
                 "r%u: its source pool has %zu out, the reserve holds %zu and %zu are out", x->id, s.objects_in_use,
                 x->level, x->nout);
    }
}

static void check_stats(const reserve *x)
{
    mp_stats s;
    FZ_CHECK(mp_reserve_stats(x->r, &s) == 0, "stats of r%u", x->id);
    FZ_CHECK(s.allocs == x->allocs && s.frees == x->frees && s.objects_in_use == x->nout,
             "r%u: allocs %zu frees %zu in use %zu; model %zu %zu %zu", x->id, s.allocs, s.frees, s.objects_in_use,
             x->allocs, x->frees, x->nout);
    FZ_CHECK(s.reserve_level == x->level && s.reserve_min == x->min && s.reserve_used == x->used,
             "r%u: level %zu min %zu used %zu; model %zu %zu %zu", x->id, s.reserve_level, s.reserve_min,
             s.reserve_used, x->level, x->min, x->used);
    FZ_CHECK(x->failures_at_least ? s.failures >= x->failures : s.failures == x->failures,
             "r%u: failures %zu, model %s%zu", x->id, s.failures, x->failures_at_least ? ">= " : "", x->failures);
    FZ_CHECK(s.waits == x->waits && s.timeouts == x->timeouts, "r%u: waits %zu timeouts %zu; model %zu %zu", x->id,
             s.waits, s.timeouts, x->waits, x->timeouts);
    FZ_CHECK(s.bytes_in_use == x->nout * x->elem_size && s.bytes_mapped == x->level * x->elem_size,
             "r%u: bytes in use %zu, mapped %zu", x->id, s.bytes_in_use, s.bytes_mapped);
    FZ_CHECK(s.bytes_peak >= s.bytes_in_use, "r%u: peak %zu < in use %zu", x->id, s.bytes_peak, s.bytes_in_use);
    check_source(x);
    for (size_t k = 0; k < x->nout; k++)
        fz_verify(x->out[k].p, x->elem_size, x->out[k].tag, "element out");
}

/* ---------------------------------------------------------- operations */

static reserve *pick(fz_input *in, bool live)
{
    reserve *x = &reserves[fz_below(in, RESERVES)];
    return (x->r != NULL) == live ? x : NULL;
}

static int slot(const reserve *x) { return (int)(x - reserves); }

static void op_create(fz_input *in)
{
    reserve *x = pick(in, false);
    if (!x)
        return;
    static const size_t sizes[] = { 8, 24, 64, 100, 1000, 5000 };
    uint8_t f = fz_u8(in);
    size_t elem_size = sizes[fz_below(in, 6)];
    size_t min = 1 + fz_below(in, 16);
    *x = (reserve){ .id = ++next_id, .elem_size = elem_size, .min = min, .flags = f & 4 ? MP_LEAK_IGNORE : 0 };
    x->src = (source){ .kind = (src_kind)((f & 3) % 3), .size = elem_size };
    if (x->src.kind == SRC_OWN) {
        x->src.failing = f & 8;
        x->src.fail_next = f & 16 ? 1 + fz_below(in, 3) : 0;
    }
    if (x->src.kind == SRC_POOL) {
        char name[16];
        x->src.pool_id = ++next_id;
        snprintf(name, sizeof name, "s%u", x->src.pool_id);
        x->src.cap = 1 + fz_below(in, 32);
        x->src.pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = name, .obj_size = elem_size,
                                                                  .max_live = x->src.cap });
        FZ_CHECK(x->src.pool != NULL, "source pool: errno %d", errno);
        roots[nroots++] = RESERVES + slot(x);
    }
    bool with_parent = arena && (f & 32);
    bool fills = source_gives(x, min); /* min elements in a row */
    char name[16];
    snprintf(name, sizeof name, "r%u", x->id);
    mp_reserve_opts o = { .name = name, .min_reserved = min, .elem_size = elem_size, .flags = x->flags };
    switch (x->src.kind) {
    case SRC_OWN:
        o.alloc = own_alloc;
        o.free = own_free;
        o.src = &x->src;
        break;
    case SRC_DEFAULT: break;
    case SRC_POOL:
        o.alloc = mp_objpool_source_alloc;
        o.free = mp_objpool_source_free;
        o.src = x->src.pool;
        break;
    }
    errno = 0;
    x->r = mp_reserve_create(with_parent ? arena : NULL, &o);
    if (!fills) {
        FZ_CHECK(x->r == NULL && errno == ENOMEM, "create of r%u over a failing source: %p, errno %d", x->id,
                 (void *)x->r, errno);
        check_source(x); /* every element given back */
        if (x->src.kind == SRC_POOL) {
            mp_objpool_destroy(x->src.pool);
            list_remove(roots, &nroots, RESERVES + slot(x));
        }
        x->r = NULL;
        return;
    }
    FZ_CHECK(x->r != NULL, "create of r%u (min %zu, source %d): errno %d", x->id, min, x->src.kind, errno);
    x->level = min;
    x->in_arena = with_parent;
    if (with_parent)
        kids[nkids++] = slot(x);
    else
        roots[nroots++] = slot(x);
    check_source(x);
}

static void op_alloc(reserve *x, bool wait)
{
    if (x->nout == OUT_MAX)
        return;
    bool direct = source_gives(x, 1);
    /* A wait retries the source a number of times that depends on time:
     * only where the source keeps failing does that not change what the
     * model predicts. */
    bool persistent = x->src.kind == SRC_POOL || (x->src.kind == SRC_OWN && x->src.failing && !x->src.fail_next);
    if (wait && !direct && !x->level && !persistent)
        wait = false;
    errno = 0;
    void *e = mp_reserve_alloc(x->r, wait ? 1000 : 0);
    if (!direct) {
        x->failures++;
        if (!x->level) {
            if (wait) {
                FZ_CHECK(e == NULL && errno == ETIMEDOUT, "r%u: a wait with nothing to give: %p, errno %d", x->id, e,
                         errno);
                x->waits++;
                x->timeouts++;
                x->failures_at_least = true; /* retried while it waited */
            } else {
                FZ_CHECK(e == NULL && errno == ENOMEM, "r%u: alloc with nothing to give: %p, errno %d", x->id, e,
                         errno);
            }
            return;
        }
        x->level--;
        x->used++;
    }
    FZ_CHECK(e != NULL, "r%u: alloc failed (source %s, level %zu): errno %d", x->id, direct ? "gives" : "fails",
             x->level, errno);
    size_t at;
    reserve *other = owner_of(e, &at);
    FZ_CHECK(other == NULL, "r%u handed out %p, which r%u has out", x->id, e, other ? other->id : 0);
    uint32_t tag = ++next_tag;
    fz_fill(e, x->elem_size, tag);
    x->out[x->nout++] = (elem){ e, tag };
    x->allocs++;
}

static void op_free(reserve *x, fz_input *in)
{
    if (!x->nout)
        return;
    size_t k = fz_below(in, x->nout);
    elem e = x->out[k];
    fz_verify(e.p, x->elem_size, e.tag, "element out");
    x->out[k] = x->out[--x->nout];
    mp_reserve_free(x->r, e.p);
    x->frees++;
    if (x->level < x->min)
        x->level++;
    x->last_freed = e.p;
}

static void op_resize(reserve *x, fz_input *in)
{
    size_t n = fz_below(in, 20);
    /* Growing takes n - level elements from the source, all or none. */
    bool fills = n <= x->level || source_gives(x, n - x->level);
    int rc = mp_reserve_resize(x->r, n);
    if (n == 0) {
        FZ_CHECK(rc == EINVAL, "r%u: resize to 0: %d", x->id, rc);
        return;
    }
    if (n <= x->min) {
        FZ_CHECK(rc == 0, "r%u: shrink to %zu: %d", x->id, n, rc);
        if (x->level > n)
            x->level = n;
        x->min = n;
        return;
    }
    FZ_CHECK(rc == (fills ? 0 : ENOMEM), "r%u: grow from %zu to %zu: %d, model %d", x->id, x->min, n, rc,
             fills ? 0 : ENOMEM);
    if (fills)
        x->level = x->min = n;
}

/* After the reserve is gone (by us or its arena): the caller's elements go
 * back to the source, then the source is checked and ended. */
static void gone(reserve *x)
{
    for (size_t k = 0; k < x->nout; k++) {
        fz_verify(x->out[k].p, x->elem_size, x->out[k].tag, "element out");
        give_back(&x->src, x->out[k].p);
    }
    x->nout = 0;
    x->level = 0;
    check_source(x);
    if (x->src.kind == SRC_POOL) {
        mp_objpool_destroy(x->src.pool);
        list_remove(roots, &nroots, RESERVES + slot(x));
    }
    x->r = NULL;
}

static void op_destroy(reserve *x)
{
    bool leak = fz_checked && x->nout && !(x->flags & MP_LEAK_IGNORE);
    mp_reserve_destroy(x->r);
    if (leak)
        fz_reported("destroy with elements out", "mpool: leak: reserve", (const char *)NULL);
    if (x->in_arena)
        list_remove(kids, &nkids, slot(x));
    else
        list_remove(roots, &nroots, slot(x));
    gone(x);
}

static void op_move(reserve *x, bool to_arena)
{
    if (to_arena && !arena)
        return;
    FZ_CHECK(mp_reserve_move(x->r, to_arena ? arena : NULL) == 0, "move of r%u", x->id);
    if (x->in_arena)
        list_remove(kids, &nkids, slot(x));
    else
        list_remove(roots, &nroots, slot(x));
    if (to_arena)
        kids[nkids++] = slot(x);
    else
        roots[nroots++] = slot(x);
    x->in_arena = to_arena;
}

static void op_arena(uint8_t what)
{
    if (!arena) {
        char name[16];
        arena_id = ++next_id;
        snprintf(name, sizeof name, "a%u", arena_id);
        arena = mp_arena_create(NULL, &(mp_arena_opts){ .name = name });
        FZ_CHECK(arena != NULL, "arena create");
        roots[nroots++] = ARENA;
        return;
    }
    /* Its reserves go, newest first; each with elements out reports them
     * in checked mode (they outlive it). */
    int leaks = 0;
    for (int k = 0; k < nkids; k++)
        leaks += fz_checked && reserves[kids[k]].nout && !(reserves[kids[k]].flags & MP_LEAK_IGNORE);
    if (what & 1)
        mp_arena_reset(arena);
    else
        mp_arena_destroy(arena);
    FZ_CHECK(fz_messages == leaks, "arena teardown: %d message(s) (first: %s), %d leak(s) expected", fz_messages,
             fz_first, leaks);
    if (leaks)
        fz_reported("leaks at the arena's teardown", "mpool: leak: reserve", (const char *)NULL);
    for (int k = nkids; k-- > 0;)
        gone(&reserves[kids[k]]);
    nkids = 0;
    if (!(what & 1)) {
        list_remove(roots, &nroots, ARENA);
        arena = NULL;
    }
}

static void op_source(reserve *x, uint8_t f)
{
    if (x->src.kind != SRC_OWN)
        return;
    if (f & 1)
        x->src.failing = !x->src.failing;
    else
        x->src.fail_next = 1 + f % 4;
}

static void op_misuse(reserve *x, uint8_t what)
{
    switch (what % 3) {
    case 0:
        if (!x->nout)
            return;
        mp_reserve_free(NULL, x->out[0].p);
        fz_reported("free to a NULL reserve", "mpool: free to a NULL reserve", (const char *)NULL);
        break;
    case 1:
        if (!fz_checked)
            return;
        mp_reserve_free(x->r, foreign + 16);
        fz_reported("free of a foreign element", "mpool: free of an element this reserve did not hand out",
                    (const char *)NULL);
        break;
    case 2: {
        size_t at;
        if (!fz_checked || !x->last_freed || owner_of(x->last_freed, &at))
            return;
        mp_reserve_free(x->r, x->last_freed);
        fz_reported("double free", "mpool: double free", "mpool: free of an element this reserve did not hand out",
                    (const char *)NULL);
        break;
    }
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
    memset(reserves, 0, sizeof reserves);
    nroots = nkids = 0;
    next_id = next_tag = 0;
    fz_expect_none();
    for (int ops = 0; ops < OPS_MAX && fz_more(&in); ops++) {
        uint8_t op = fz_u8(&in);
        reserve *x;
        switch (op % 12) {
        case 0: op_create(&in); break;
        case 1:
            if ((x = pick(&in, true)))
                op_destroy(x);
            break;
        case 2:
        case 3:
        case 4:
            /* A wait takes real time (a microsecond): one alloc in 16. */
            if ((x = pick(&in, true)))
                op_alloc(x, (op >> 4) == 15);
            break;
        case 5:
        case 6:
            if ((x = pick(&in, true)))
                op_free(x, &in);
            break;
        case 7:
            if ((x = pick(&in, true)))
                op_resize(x, &in);
            break;
        case 8:
            if ((x = pick(&in, true)))
                op_source(x, op >> 4);
            break;
        case 9:
            if ((x = pick(&in, true)))
                ((op >> 4) & 8) ? op_move(x, op & 16) : op_misuse(x, op >> 4);
            break;
        case 10: op_arena(op >> 4); break;
        case 11:
            if ((x = pick(&in, true)))
                check_stats(x);
            check_tree();
            break;
        }
        fz_reported_nothing("an operation");
    }
    check_tree();
    for (int i = 0; i < RESERVES; i++) {
        if (reserves[i].r) {
            check_stats(&reserves[i]);
            while (reserves[i].nout)
                op_free(&reserves[i], &in);
            check_stats(&reserves[i]);
            op_destroy(&reserves[i]);
        }
    }
    if (arena)
        op_arena(0);
    check_tree();
    return 0;
}
