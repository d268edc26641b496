/*
 * heap.c - layer 6: heaps: create and destroy, allocation, realloc, trim,
 * move, the default heap, and the heap's place in the tree (the model is
 * in heap.h).
 *
 * The fast path of mp_heap_alloc: the request's class, the calling
 * thread's cache of that class (a thread-safe heap's block entry, or a
 * single-threaded heap's class pool's own), and a pop: no lock, no atomic
 * read-modify-write. Heaps with MP_ZERO, checked mode or tools take the
 * slow path, which records the requested size (so that a write past it is
 * seen) and zeroes.
 */
#include "heap.h"
#include "meta.h"
#include "fork.h"
#include "os.h"
#include "track.h"

static const char KIND[] = MP_HEAP_KIND;

/* alloc_slow's alignment for malloc's: 16, or 8 below 16 bytes (the
 * classes' own). */
#define MALLOC_ALIGN ((size_t)1)

/* ------------------------------------------------------------ allocation */

/* What a class pool handed out, for a heap that remembers requested
 * sizes: the size, the red zone over the class's slack (checked mode), the
 * slack hidden from the tools. */
static void *note_request(mp_heap *h, mp_objpool *p, void *obj, size_t size)
{
    mp__slab *s = mp__slab_of(obj);
    mp__objinfo *in = &((mp__objinfo *)s->records)[mp__slab_index(s, obj)];
    in->req = size;
    in->sized = true;
    size_t slack = p->obj_size - size;
    if (h->checked && slack) {
        if (h->tracked) /* the slack may be hidden already (a resize) */
            mp__track_obj_touch((char *)obj + size, slack);
        memset((char *)obj + size, MP_FILL_REDZONE, slack);
    }
    if (h->tracked && slack)
        mp__track_obj_hide((char *)obj + size, slack);
    return obj;
}

/* Every allocation the fast path does not finish: bad arguments, a class
 * not made yet, an empty cache, a heap that records, large requests,
 * alignments past malloc's. zero: the caller needs zeroes (calloc). */
static MP_NOINLINE void *alloc_slow(mp_heap *h, size_t size, size_t align, bool zero, const void *site)
{
    if (!mp__heap_ok(h, "allocation from a destroyed or invalid heap"))
        return NULL;
    if (size > PTRDIFF_MAX || !mp__is_pow2(align)) { /* no object can be that large */
        errno = EINVAL;
        return NULL;
    }
    size_t asked = size;
    if (size == 0)
        size = 1; /* a unique pointer: it takes a byte */
    /* The class: the size's; 16 bytes at least for 16-byte alignment (the
     * 8-byte class is 8-aligned); past that, the power of two that holds
     * both size and alignment (a power-of-two class is aligned to its size,
     * up to 4096). */
    size_t want = size;
    if (align == MP_HEAP_ALIGN && size < MP_HEAP_ALIGN)
        want = MP_HEAP_ALIGN;
    else if (align > MP_HEAP_ALIGN) {
        size_t m = size > align ? size : align;
        want = mp__is_pow2(m) ? m : (size_t)1 << (64 - __builtin_clzll(m));
    }
    if (want > MP_HEAP_SMALL_MAX || align > 4096)
        return mp__heap_large_alloc(h, size, align, zero, site);
    mp_objpool *p = mp__heap_class_pool(h, mp__heap_class_of(want));
    void *obj = p ? mp__objpool_get_at(p, site) : NULL;
    if (!obj)
        return NULL;
    if (h->records)
        note_request(h, p, obj, asked);
    if (zero && !(h->flags & MP_ZERO))
        memset(obj, 0, asked); /* the rest is hidden from the tools, or a red zone */
    return obj;
}

/* The calling thread's cache of class cls, as the fast path sees it: a
 * detached one when there is none yet, or the heap is not served there. */
static inline mp__cache *fast_cache(mp_heap *h, unsigned cls)
{
    if (h->fast_slot)
        return (mp__cache *)mp__tls_fast[h->fast_slot] + cls;
    mp_objpool *p = __atomic_load_n(&h->cls[cls], __ATOMIC_ACQUIRE);
    return p ? &p->own_cache : &mp__cache_none[cls];
}

/* What the inline mp_heap_alloc (mpool.h) does, and the rest: a heap it
 * may not serve (fast_slot 0: its caches are the class pools' own, or
 * detached), an empty cache, anything but a plain small request. */
static inline void *heap_alloc(mp_heap *h, size_t size, const void *site)
{
    if (mp_likely(h != NULL) && mp_likely(size - 1 < MP_HEAP_SMALL_MAX)) {
        mp__cache *c = fast_cache(h, mp__heap_class_of(size));
        void **top = c->top;
        void *obj = top[-1]; /* NULL (the guard) when the cache is empty */
        if (mp_likely(obj != NULL)) {
            mp__sttop(&c->top, top - 1);
            mp__st(&c->allocs, c->allocs + 1);
            return obj;
        }
    }
    return alloc_slow(h, size, MALLOC_ALIGN, false, site);
}

void *mp__heap_alloc_slow(mp_heap *h, size_t size) { return heap_alloc(h, size, __builtin_return_address(0)); }

/* The out-of-line mp_heap_alloc (MPOOL_NO_INLINE builds, calls through a
 * pointer). */
void *mp_heap_alloc(mp_heap *h, size_t size) { return heap_alloc(h, size, __builtin_return_address(0)); }

void *mp_heap_calloc(mp_heap *h, size_t n, size_t size)
{
    size_t bytes;
    if (!mp__mul_ok(n, size, &bytes)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_slow(h, bytes, MALLOC_ALIGN, true, __builtin_return_address(0));
}

void *mp__heap_alloc_aligned_at(mp_heap *h, size_t size, size_t align, const void *site)
{
    if (align < MP_HEAP_ALIGN && mp__is_pow2(align))
        align = MP_HEAP_ALIGN;
    return alloc_slow(h, size, align, false, site);
}

void *mp_heap_alloc_aligned(mp_heap *h, size_t size, size_t align)
{
    return mp__heap_alloc_aligned_at(h, size, align, __builtin_return_address(0));
}

/* ---------------------------------------------------------------- realloc */

/* What mp_heap_realloc needs to know of p, an allocation of h's. */
typedef struct block_info {
    mp_objpool *pool;        /* its class's pool, or NULL for a large one */
    mp__heap_large *large;   /* its header when large */
    size_t usable;           /* its class size */
    size_t used;             /* bytes of it that hold the caller's data (as far as known) */
} block_info;

/* The heap that owns chunk ch, or NULL for another kind's. */
static mp_heap *heap_of_chunk(const mp__chunk *ch)
{
    if (ch->kind != MP__KIND_HEAP)
        return NULL;
    return ch->obj_size ? mp__heap_of_class(ch->owner) : ch->owner;
}

/* Fills *b for p; false (after reporting) when p is not an allocation of h. */
static bool block_of(mp_heap *h, void *p, block_info *b, const void *site)
{
    mp__chunk *ch = mp__chunk_lookup(p);
    *b = (block_info){ 0 };
    (void)site;
    if (ch && heap_of_chunk(ch) != h) {
        char from[160];
        mp__owner_detail(from, sizeof from, ch);
        mp__misuse_detail("realloc of a pointer from another pool (or another heap)", KIND, h->node.name, p, from);
        return false;
    }
    if (ch && ch->obj_size) {
        mp_objpool *pool = ch->owner;
        if (mp__slab_is_slot((mp__slab *)ch, p)) {
            b->pool = pool;
            b->usable = b->used = pool->obj_size;
            if (pool->records) {
                mp__slab *s = (mp__slab *)ch;
                const mp__objinfo *in = &((mp__objinfo *)s->records)[mp__slab_index(s, p)];
                b->used = in->sized ? in->req : pool->obj_size;
            }
            return true;
        }
    } else if ((b->large = mp__heap_large_of(h, p)) != NULL) {
        b->usable = b->large->usable;
        b->used = b->large->req;
        return true;
    }
    mp__misuse(ch ? "realloc of an interior pointer" : "realloc of a pointer not from mpool", KIND, h->node.name, p);
    return false;
}

/* A realloc in place counts as an allocation and a free, as one that
 * moves does: the block out stays one, and frees follow from the rest. */
static void count_in_place(mp_heap *h, const block_info *b)
{
    if (b->large) {
        mp__lock(&h->lock);
        h->large_allocs++;
        h->large_frees++;
        mp__unlock(&h->lock);
        return;
    }
    mp__objpool_lock(b->pool);
    b->pool->allocs_base++;
    mp__objpool_unlock(b->pool);
}

/* The request of p, which keeps its place, becomes size bytes: what is
 * added reads zero under MP_ZERO; a heap that records sizes records it
 * (and moves the red zone, and what the tools hide, to its end). */
static void resize_in_place(mp_heap *h, const block_info *b, void *p, size_t size)
{
    if (h->tracked && size > b->used)
        mp__track_obj_touch((char *)p + b->used, size - b->used);
    if ((h->flags & MP_ZERO) && size > b->used)
        memset((char *)p + b->used, 0, size - b->used);
    if (b->pool) {
        if (h->records)
            note_request(h, b->pool, p, size);
        return;
    }
    b->large->req = size; /* a large one always knows its request */
    if (h->checked) {
        if (h->tracked) /* what was past the old request is hidden */
            mp__track_obj_touch((char *)p + size, b->usable - size);
        memset((char *)p + size, MP_FILL_REDZONE, b->usable - size);
    }
    if (h->tracked && size < b->usable)
        mp__track_obj_hide((char *)p + size, b->usable - size);
}

void *mp_heap_realloc(mp_heap *h, void *p, size_t size)
{
    const void *site = __builtin_return_address(0);
    if (!p)
        return alloc_slow(h, size, MALLOC_ALIGN, false, site);
    if (!mp__heap_ok(h, "realloc on a destroyed or invalid heap"))
        return NULL;
    block_info b;
    if (!block_of(h, p, &b, site))
        return NULL;
    /* In place: a small one whose class is the new size's, a large one
     * whose class is (no shrinking into waste, no growing past it). */
    size_t fit = size ? size : 1; /* size 0 keeps a unique pointer: a byte */
    bool in_place = b.pool ? fit <= MP_HEAP_SMALL_MAX && mp__heap_class_of(fit) == mp__heap_class_of(b.usable)
                           : size > MP_HEAP_SMALL_MAX && mp__heap_large_size(size) == b.usable;
    if (in_place) {
        count_in_place(h, &b);
        resize_in_place(h, &b, p, size);
        return p;
    }
    if (b.large && size > MP_HEAP_SMALL_MAX) {
        void *q = mp__heap_large_resize(h, b.large, size);
        if (q)
            return q;
    }
    void *q = alloc_slow(h, size, MALLOC_ALIGN, false, site);
    if (!q)
        return NULL; /* errno set; p is untouched */
    memcpy(q, p, b.used < size ? b.used : size);
    if ((h->flags & MP_ZERO) && size > b.used)
        memset((char *)q + b.used, 0, size - b.used);
    if (b.large)
        mp__heap_large_free(h, b.large, site);
    else
        mp__objpool_put_at(b.pool, p, site);
    return q;
}

/* ---------------------------------------------------- mp_free, usable size */

void mp__heap_free(mp__chunk *ch, void *owner, void *p, const void *site)
{
    if (ch->obj_size) { /* a size class's slab */
        mp__objpool_put_at(owner, p, site);
        return;
    }
    mp_heap *h = owner;
    mp__heap_large *l = mp__heap_large_of(h, p);
    if (!l) {
        mp__misuse("free of an interior pointer", KIND, h->node.name, p);
        return;
    }
    mp__heap_large_free(h, l, site);
}

size_t mp__heap_usable(const mp__chunk *ch, const void *p)
{
    if (ch->obj_size) {
        const mp_objpool *pool = ch->owner;
        const mp__slab *s = (const mp__slab *)ch;
        if (!pool->records || !mp__slab_is_slot(s, p))
            return pool->obj_size;
        const mp__objinfo *in = &((const mp__objinfo *)s->records)[mp__slab_index(s, p)];
        /* Checked mode guards, and the tools hide, what is past the request. */
        mp_heap *h = mp__heap_of_class(pool);
        return (h->checked || h->tracked) && in->sized ? in->req : pool->obj_size;
    }
    const mp_heap *h = ch->owner;
    const mp__heap_large *l = (const mp__heap_large *)ch;
    if (l->start != p)
        return 0;
    return h->checked || h->tracked ? l->req : l->usable;
}

/* ------------------------------------------------------------------- trim */

void mp_heap_trim(mp_heap *h)
{
    if (!h || !mp__heap_ok(h, "trim of a destroyed or invalid heap"))
        return;
    for (unsigned i = 0; i < MP_HEAP_NCLASS; i++) {
        mp_objpool *p = __atomic_load_n(&h->cls[i], __ATOMIC_ACQUIRE);
        if (p)
            mp__objpool_trim_now(p);
    }
    mp__chunk_release_retained();
}

/* ---------------------------------------------------------------- destroy */

static void heap_free(mp_heap *h)
{
    mp__heap_classes_free(h);
    mp__heap_large_free_all(h);
    mp__acct_child_leave(&h->acct);
    if (h->tracked)
        mp__track_pool_destroy(h);
    pthread_mutex_destroy(&h->lock);
    mp__node_fini(&h->node);
    if (h->checked) { /* kept, so that a later use is detected */
        mp__graveyard_keep(h, &h->grave_next);
        return;
    }
    mp__meta_free(h);
}

static bool destroy_live(mp_heap *h, bool by_parent)
{
    if (h->is_default) {
        mp__misuse("destroy of the default heap", KIND, h->node.name, h);
        return false;
    }
    mp__node_detach(&h->node);
    if (!by_parent) /* allocations end with their arena, as its own do */
        mp__heap_report_leaks(h);
    heap_free(h);
    return true;
}

void mp_heap_destroy(mp_heap *h)
{
    if (!h)
        return;
    if (!mp__node_live(&h->node, MP__KIND_HEAP)) {
        mp__misuse("destroy of a destroyed or invalid heap", KIND, NULL, h);
        return;
    }
    destroy_live(h, false);
}

/* ------------------------------------------------------------ tree ops */

static bool node_destroy(mp__node *n)
{
    mp_heap *h = (mp_heap *)n;
    if (h->is_default) { /* cannot happen: the default heap is a root */
        mp__misuse("destroy of the default heap", KIND, h->node.name, h);
        return false;
    }
    destroy_live(h, true);
    return true;
}

/* fork(): the heap's lock, then every class pool's (lock order: heap,
 * class pool). */
static void node_lock(mp__node *n)
{
    mp_heap *h = (mp_heap *)n;
    mp__lock(&h->lock);
    for (unsigned i = 0; i < MP_HEAP_NCLASS; i++)
        if (h->cls[i])
            mp__objpool_lock(h->cls[i]);
}

static void node_unlock(mp__node *n)
{
    mp_heap *h = (mp_heap *)n;
    for (unsigned i = MP_HEAP_NCLASS; i-- > 0;)
        if (h->cls[i])
            mp__objpool_unlock(h->cls[i]);
    mp__unlock(&h->lock);
}

static const mp__node_ops heap_ops = {
    .destroy = node_destroy,
    .stats = mp__heap_node_stats,
    .classes = mp__heap_node_classes,
    .lock_for_fork = node_lock,
    .unlock_after_fork = node_unlock,
};

static bool move_charge(mp__node *n, mp_arena *to, void *arg)
{
    (void)arg;
    return mp__acct_child_move(&((mp_heap *)n)->acct, to);
}

int mp_heap_move(mp_heap *h, mp_arena *new_parent)
{
    if (!mp__heap_ok(h, "move of a destroyed or invalid heap"))
        return EINVAL;
    if (h->is_default)
        return EINVAL; /* never destroyed: it cannot belong to an arena */
    return mp__node_move(&h->node, new_parent, move_charge, NULL);
}

/* ---------------------------------------------------------------- create */

static mp_heap *heap_make(mp_arena *parent, const mp_heap_opts *o, bool is_default)
{
    const unsigned known = MP_SINGLE_THREAD | MP_ZERO | MP_KEEP_MEMORY | MP_LEAK_ABORT | MP_LEAK_IGNORE;
    if ((o->flags & ~known) || (parent && !mp__node_live((const mp__node *)parent, MP__KIND_ARENA))) {
        errno = EINVAL;
        return NULL;
    }
    mp__fork_init();
    mp__arena_acct_init();
    mp_heap *h = mp__meta_alloc(sizeof *h);
    if (!h)
        return NULL;
    if (mp__node_init(&h->node, MP__KIND_HEAP, &heap_ops, o->name)) {
        mp__meta_free(h);
        errno = ENOMEM;
        return NULL;
    }
    h->flags = o->flags;
    h->checked = mp__checked();
    h->tracked = mp__track_active();
    h->records = h->checked || h->tracked || (h->flags & MP_ZERO);
    h->fast = !h->records;
    h->is_default = is_default;
    h->leak = mp__leak_policy_of(o->flags);
    mp__mutex_init(&h->lock);
    mp__acct_child_init(&h->acct, parent, o->limit);
    if (!mp__quarantine_init(&h->large_quar, h->checked ? mp__quarantine_depth() : 0)) {
        pthread_mutex_destroy(&h->lock);
        mp__node_fini(&h->node);
        mp__meta_free(h);
        return NULL;
    }
    if (h->tracked)
        mp__track_pool_create(h, false);
    mp__heap_classes_init(h);
    int rc = mp__node_attach(parent, &h->node);
    if (rc) {
        h->checked = false; /* never handed out: no graveyard */
        heap_free(h);
        errno = rc;
        return NULL;
    }
    return h;
}

mp_heap *mp_heap_create(mp_arena *parent, const mp_heap_opts *opts)
{
    mp_heap_opts o = opts ? *opts : (mp_heap_opts){ 0 };
    return heap_make(parent, &o, false);
}

static mp_heap *default_heap;

/* MPOOL_KEEP_MEMORY=1 makes the default heap with MP_KEEP_MEMORY; any
 * other value, or none, without. */
static unsigned default_flags(void)
{
    const char *v = getenv("MPOOL_KEEP_MEMORY");
    return v && v[0] == '1' && v[1] == '\0' ? MP_KEEP_MEMORY : 0;
}

static void make_default(void)
{
    mp_heap_opts o = { .name = "default", .flags = default_flags() };
    __atomic_store_n(&default_heap, heap_make(NULL, &o, true), __ATOMIC_RELEASE);
}

mp_heap *mp_heap_default(void)
{
    mp_heap *h = __atomic_load_n(&default_heap, __ATOMIC_ACQUIRE);
    if (mp_likely(h != NULL))
        return h;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_default);
    return __atomic_load_n(&default_heap, __ATOMIC_ACQUIRE);
}
