/*
 * objpool_create.c - layer 6: an object pool's life: create, trim, move,
 * destroy, and its place in the pool tree (the model is in objpool.h).
 */
#include "objpool.h"
#include "meta.h"
#include "fork.h"
#include "os.h"
#include "tcache.h"
#include "track.h"

#include <stdalign.h>

/* A magazine holds about MAG_BYTES of objects of up to a page (MAG_BIG
 * bytes), at most MAG_MAX of them, and MAG_BIG_OBJS larger ones. Each
 * thread holds up to two per pool and size class, so this bounds the free
 * memory a thread keeps back: small objects come and go in numbers (a
 * larger magazine, fewer trips to the depot), objects past a page are
 * fewer and each is costly to keep. */
#define MAG_BYTES 32768
#define MAG_MAX 128
#define MAG_BIG 4096
#define MAG_BIG_OBJS 4

static const char KIND[] = MP_OBJPOOL_KIND;

/* ---------------------------------------------------------------- trim */

void mp__objpool_trim_now(mp_objpool *p)
{
    /* The calling thread's own cache can be emptied safely; others' can't. */
    mp__cache *c = NULL;
    void *entry = p->mode == MP__CACHE_OWN ? NULL : mp__tcache_get(p->slot);
    if (p->mode == MP__CACHE_OWN)
        c = p->st_cache;
    else if (p->mode == MP__CACHE_THREAD && mp__tcache_is_own(entry))
        c = entry;
    else if (p->mode == MP__CACHE_GROUP && mp__tcache_is_own(entry)) {
        c = (mp__cache *)((char *)entry + p->cache_off);
        if (c->owner != p)
            c = NULL;
    }
    mp__objpool_lock(p);
    if (c) {
        mp__cache_sync(c);
        mp__objpool_slabs_give(p, c->loaded->objs, c->loaded->n);
        mp__objpool_slabs_give(p, c->prev->objs, c->prev->n);
        c->loaded->n = c->prev->n = 0;
        mp__cache_load(c, c->loaded);
    }
    mp__slab *release = NULL;
    mp__objpool_depot_trim(p, MP__TRIM_ALL, &release);
    mp__objpool_unlock_then(p, release);
}

void mp_objpool_trim(mp_objpool *p)
{
    if (!mp__objpool_ok(p, "trim of a destroyed or invalid pool"))
        return;
    mp__objpool_trim_now(p);
    /* The chunk layer keeps freed chunks for reuse; a trim means "give the
     * memory back now", so they go too (any pool can remap later). */
    mp__chunk_release_retained();
}

/* --------------------------------------------------------------- destroy */

void mp__objpool_detach_caches(mp_objpool *p)
{
    mp__objpool_lock(p);
    while (p->caches.head) {
        mp__cache *c = mp__list_entry(p->caches.head, mp__cache, link);
        void **home = c->home;
        mp__objpool_cache_drop(p, c);
        if (home) { /* a cache of its own (an own or a group cache has none) */
            mp__tcache_clear(home);
            mp__meta_free(c);
        }
    }
    mp__objpool_unlock(p);
    if (p->mode != MP__CACHE_GROUP) /* a group's slot is its maker's */
        mp__tcache_slot_free(p->slot);
}

/* Frees a pool whose caches are detached. */
static void objpool_free_detached(mp_objpool *p)
{
    mp__depot_free_all(&p->depot);
    mp__objpool_slabs_free_all(p);
    if (p->handles)
        mp__handles_pool_gone(p);
    if (p->tracked)
        mp__track_pool_destroy(p);
    if (!(p->flags & MP_SINGLE_THREAD)) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->freed);
    }
    mp__node_fini(&p->node);
    mp__quarantine_fini(&p->quar);
    if (p->checked) { /* kept, so that a later use is detected */
        mp__graveyard_keep(p, &p->grave_next);
        return;
    }
    mp__meta_free(p);
}

static void objpool_free(mp_objpool *p)
{
    mp__lock(&mp__tcache_lock);
    mp__objpool_detach_caches(p);
    mp__unlock(&mp__tcache_lock);
    objpool_free_detached(p);
}

void mp__objpool_unmake(mp_objpool *p) { objpool_free_detached(p); }

/* Destroys a live pool; false (the misuse reported, nothing done) while
 * threads wait in it: they would wake in freed memory. */
static bool destroy_live(mp_objpool *p, bool by_parent)
{
    if (__atomic_load_n(&p->waiters, __ATOMIC_SEQ_CST)) {
        mp__misuse("pool destroyed while threads wait in get_wait", KIND, p->node.name, p);
        return false;
    }
    mp__node_detach(&p->node);
    if (!by_parent) /* objects out end with their arena, as its allocations do */
        mp__objpool_report_leaks(p);
    objpool_free(p);
    return true;
}

void mp_objpool_destroy(mp_objpool *p)
{
    if (!p)
        return;
    if (!mp__node_live(&p->node, MP__KIND_OBJPOOL)) {
        mp__misuse("destroy of a destroyed or invalid pool", KIND, NULL, p);
        return;
    }
    destroy_live(p, false);
}

static bool node_destroy(mp__node *n) { return destroy_live((mp_objpool *)n, true); }

static void node_lock(mp__node *n) { mp__objpool_lock((mp_objpool *)n); }

static void node_unlock(mp__node *n) { mp__objpool_unlock((mp_objpool *)n); }

/* fork() child, pool lock held: the parent's get_wait sleepers are not
 * here. */
static void node_forget_waiters(mp__node *n)
{
    mp_objpool *p = (mp_objpool *)n;
    if ((p->flags & MP_SINGLE_THREAD) || !__atomic_load_n(&p->waiters, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&p->waiters, 0, __ATOMIC_RELAXED);
    mp__cond_forget_waiters(&p->freed);
}

static const mp__node_ops objpool_ops = {
    .destroy = node_destroy,
    .stats = mp__objpool_node_stats,
    .lock_for_fork = node_lock,
    .unlock_after_fork = node_unlock,
    .forget_waiters_after_fork = node_forget_waiters,
};

int mp_objpool_move(mp_objpool *p, mp_arena *new_parent)
{
    if (!mp__objpool_ok(p, "move of a destroyed or invalid pool"))
        return EINVAL;
    return mp__node_move(&p->node, new_parent, NULL, NULL);
}

/* ---------------------------------------------------------------- create */

static size_t default_align(size_t obj_size)
{
    size_t a = 8;
    while (a < obj_size && a < alignof(max_align_t))
        a <<= 1;
    return a;
}

/* Makes `initial` objects (free, constructed) before the pool is shared. */
static bool make_initial(mp_objpool *p, size_t initial)
{
    while (p->made < initial) {
        mp__slab *s = mp__objpool_slab_new(p);
        if (!s)
            return false;
        size_t n = initial - p->made < s->nslots ? initial - p->made : s->nslots;
        mp__slab_make_free(s, (uint32_t)n);
        mp__objpool_slab_add(p, s);
        for (uint32_t i = 0; i < n; i++) {
            void *obj = mp__slab_slot(s, i);
            mp__objpool_run_ctor(p, &obj, 1);
        }
        p->made += n;
        p->slab_free += n;
    }
    return true;
}

/* The options a pool cannot be made with (errno EINVAL), checked before
 * anything is made: no ctor runs for a pool that cannot be attached. */
static bool opts_ok(const mp_objpool_opts *o, mp_arena *parent, bool checked, size_t align, mp__slab_shape *shape)
{
    const unsigned known = MP_SINGLE_THREAD | MP_ZERO | MP_HANDLES | MP_LEAK_ABORT | MP_LEAK_IGNORE;
    size_t initial_bytes;
    return o->obj_size != 0 && o->obj_size <= SIZE_MAX / 4 && !(o->flags & ~known) &&
           (!parent || mp__node_live((const mp__node *)parent, MP__KIND_ARENA)) &&
           mp__slab_shape_for(o->obj_size + (checked ? MP_REDZONE : 0), align, shape) &&
           mp__mul_ok(o->initial, shape->stride, &initial_bytes); /* initial * size overflows */
}

/* The alignment a pool's objects get: as asked, or as malloc would give an
 * object of obj_size; under a memory tool at least MP_TRACK_GRAIN. */
static size_t pool_align(size_t asked, size_t obj_size, bool tracked)
{
    size_t align = asked ? asked : default_align(obj_size);
    if (tracked && align < MP_TRACK_GRAIN && mp__is_pow2(align))
        align = MP_TRACK_GRAIN;
    return align;
}

/* Makes a pool's struct from a checked shape: everything but its place
 * in the tree and its initial objects. NULL with errno ENOMEM. */
static mp_objpool *pool_new(const char *name, size_t obj_size, const mp__slab_shape *shape, unsigned flags,
                            bool checked, bool tracked)
{
    mp_objpool *p = mp__meta_alloc(sizeof *p);
    if (!p)
        return NULL;
    if (mp__node_init(&p->node, MP__KIND_OBJPOOL, &objpool_ops, name)) {
        mp__meta_free(p);
        errno = ENOMEM;
        return NULL;
    }
    p->obj_size = obj_size;
    p->shape = *shape;
    p->flags = flags;
    p->checked = checked;
    p->records = checked;
    p->tracked = tracked;
    p->kind_name = KIND;
    p->chunk_kind = MP__KIND_OBJPOOL;
    p->leak = mp__leak_policy_of(flags);
    p->handles = (flags & MP_HANDLES) != 0;
    p->htag = MP__HTAG_NONE; /* mp__handles_pool_init gives a handle pool its own */
    if (p->tracked)
        mp__track_pool_create(p, false);
    size_t cap = shape->stride <= MAG_BIG ? MAG_BYTES / shape->stride : MAG_BIG_OBJS;
    p->mag_cap = cap > MAG_MAX ? MAG_MAX : cap;
    mp__depot_init(&p->depot, p->mag_cap);
    mp__cache_reset(&p->own_cache);
    mp__cache_reset(&p->quiet_cache);
    if (!(p->flags & MP_SINGLE_THREAD)) {
        mp__mutex_init(&p->lock);
        mp__cond_init(&p->freed);
    }
    return p;
}

/* The fast paths are for plain pools; MP_ZERO pools zero in the slow
 * path, tracked pools tell the tools there, checked pools check and
 * record there, capped pools count every object in `live` there, and
 * handle pools move generations there (so that other pools pay nothing
 * for handles). */
static bool fast_paths_on(const mp_objpool *p)
{
    return !(p->flags & (MP_ZERO | MP_HANDLES)) && !p->tracked && !p->checked && !p->max_live;
}

/* The caches, once the mode is set: a single-threaded pool's own, and the
 * fast paths' way to them. False when no memory for them. */
static bool caches_ready(mp_objpool *p)
{
    bool fast = fast_paths_on(p);
    p->st_cache = fast ? &p->own_cache : &p->quiet_cache;
    if (p->mode == MP__CACHE_OWN && !mp__objpool_cache_attach(p, p->st_cache))
        return false;
    if (fast && p->mode != MP__CACHE_OWN && p->slot < MP__TLS_FAST)
        p->fast_slot = p->slot;
    p->hquick = p->handles && !p->tracked && !p->checked && !p->max_live && p->mode != MP__CACHE_GROUP;
    return true;
}

mp_objpool *mp_objpool_create(mp_arena *parent, const mp_objpool_opts *opts)
{
    mp_objpool_opts o = opts ? *opts : (mp_objpool_opts){ 0 };
    bool checked = mp__checked(), tracked = mp__track_active();
    size_t align = pool_align(o.align, o.obj_size, tracked);
    mp__slab_shape shape;
    if (!opts_ok(&o, parent, checked, align, &shape)) {
        errno = EINVAL;
        return NULL;
    }
    mp__fork_init();
    mp_objpool *p = pool_new(o.name, o.obj_size, &shape, o.flags, checked, tracked);
    if (!p)
        return NULL;
    p->max_free = o.max_free;
    p->max_live = o.max_live;
    p->ctor = o.ctor;
    p->dtor = o.dtor;
    p->arg = o.arg;
    if (p->flags & MP_SINGLE_THREAD)
        p->mode = MP__CACHE_OWN;
    else
        p->mode = (p->slot = mp__tcache_slot_alloc(mp__objpool_retire_cache)) ? MP__CACHE_THREAD : MP__CACHE_NONE;
    bool ok = mp__quarantine_init(&p->quar, checked ? mp__quarantine_depth() : 0) && caches_ready(p) &&
              (!p->handles || mp__handles_pool_init(p)) && make_initial(p, o.initial);
    int rc = ok ? mp__node_attach(parent, &p->node) : ENOMEM;
    if (rc) {
        p->checked = false; /* never handed out: no graveyard */
        objpool_free(p);
        errno = rc;
        return NULL;
    }
    return p;
}

mp_objpool *mp__objpool_make(const mp__objpool_spec *sp)
{
    bool checked = mp__checked(), tracked = mp__track_active();
    size_t align = pool_align(sp->align, sp->obj_size, tracked);
    mp__slab_shape shape;
    if (!mp__slab_shape_for(sp->obj_size + (checked ? MP_REDZONE : 0), align, &shape)) {
        errno = EINVAL;
        return NULL;
    }
    mp_objpool *p = pool_new(sp->name, sp->obj_size, &shape, sp->flags, checked, tracked);
    if (!p)
        return NULL;
    p->kind_name = sp->kind_name;
    p->says_free = sp->says_free;
    p->chunk_kind = sp->chunk_kind;
    p->records = checked || sp->records;
    p->free_share = sp->free_share;
    /* Not where free objects must keep a fill (checked mode) or the tools'
     * state, nor where a page holds many objects (it is rarely all free). */
    p->return_pages = sp->return_pages && !checked && !tracked && shape.stride >= mp__os_page_size() / 8;
    p->keep_pages = sp->keep_pages;
    p->charge = sp->charge;
    p->uncharge = sp->uncharge;
    p->acct = sp->acct;
    if (p->flags & MP_SINGLE_THREAD) {
        p->mode = MP__CACHE_OWN;
    } else if (sp->group && sp->group->slot) {
        p->mode = MP__CACHE_GROUP;
        p->group = sp->group;
        p->slot = sp->group->slot;
        p->cache_off = (uint32_t)(sp->group_index * sizeof(mp__cache));
    } else {
        p->mode = MP__CACHE_NONE;
    }
    if (!mp__quarantine_init(&p->quar, checked ? mp__quarantine_depth() : 0) || !caches_ready(p)) {
        p->checked = false;
        objpool_free(p);
        errno = ENOMEM;
        return NULL;
    }
    return p;
}
