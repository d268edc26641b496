/*
 * objpool_stats.c - layer 6: an object pool's statistics and
 * mp_objpool_foreach (the counting rules are in objpool.h).
 *
 * Both read other threads' caches under the pool lock: their magazines
 * cannot change meanwhile, and the one field their threads move without
 * the lock (top, and the count of gets) is read atomically. A get caught
 * between moving top and counting looks out but not yet got; the snapshot
 * keeps objects out <= allocs so that frees = allocs - out never wraps.
 */
#include "objpool.h"
#include "meta.h"
#include "os.h"

#include <stdlib.h>

/* Bookkeeping bytes (lock held): the pool itself, its name, each attached
 * cache with its two magazines, the depot, the quarantine, the records and
 * a handle pool's share of the handle table. */
static size_t meta_bytes(const mp_objpool *p)
{
    size_t mag = mp__mag_bytes(p->mag_cap);
    return sizeof *p + strlen(p->node.name) + p->ncaches * (sizeof(mp__cache) + 2 * mag) +
           mp__depot_bytes(&p->depot) + mp__quarantine_bytes(&p->quar) + p->record_bytes + mp__handles_bytes(p);
}

void mp__objpool_stats_locked(const mp_objpool *p, mp_stats *out)
{
    size_t cached = 0, allocs = p->allocs_base;
    for (const mp__link *l = p->caches.head; l; l = l->next) {
        const mp__cache *c = mp__list_entry(l, mp__cache, link);
        cached += mp__cache_loaded(c) + mp__cache_prev(c);
        allocs += mp__ld(&c->allocs);
    }
    size_t free_objs = p->slab_free + p->depot.objs + p->quar.len + cached;
    size_t out_objs = p->made > free_objs ? p->made - free_objs : 0;
    if (out_objs > allocs)
        out_objs = allocs;
    *out = (mp_stats){ 0 };
    out->objects_in_use = out_objs;
    out->bytes_in_use = out_objs * p->obj_size;
    out->bytes_peak = (p->peak_out > out_objs ? p->peak_out : out_objs) * p->obj_size;
    out->bytes_mapped = p->mapped;
    out->bytes_meta = meta_bytes(p);
    out->allocs = allocs;
    out->frees = allocs - out_objs;
    out->waits = p->waits;
    out->timeouts = p->timeouts;
    out->failures = p->failures;
}

int mp_objpool_stats(const mp_objpool *p, mp_stats *out)
{
    if (!out || !mp__objpool_ok(p, "stats of a destroyed or invalid pool"))
        return EINVAL;
    mp_objpool *mp = (mp_objpool *)p;
    mp__objpool_lock(mp);
    mp__objpool_stats_locked(p, out);
    mp__objpool_unlock(mp);
    return 0;
}

void mp__objpool_node_stats(const mp__node *n, mp_stats *out) { mp_objpool_stats((const mp_objpool *)n, out); }

/* ------------------------------------------------------------ live walk */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

static bool in_sorted(void *const *v, size_t n, const void *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)v[mid] < (uintptr_t)key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == key;
}

/* Appends obj to out[*n] unless out is full: the bound keeps foreach
 * memory-safe even if its caller broke the rule that other threads stay
 * out of the pool meanwhile. */
static void held_add(void **out, size_t *n, size_t cap, void *obj)
{
    if (*n < cap)
        out[(*n)++] = obj;
}

static void held_add_all(void **out, size_t *n, size_t cap, void *const *objs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        held_add(out, n, cap, objs[i]);
}

/* Free objects held outside the slab bitmaps: depot, caches, quarantine. */
static size_t gather_held_free(const mp_objpool *p, void **out, size_t cap)
{
    size_t n = 0;
    for (const mp__mag *m = p->depot.full; m; m = m->next)
        held_add_all(out, &n, cap, m->objs, m->n);
    for (const mp__link *l = p->caches.head; l; l = l->next) {
        const mp__cache *c = mp__list_entry(l, mp__cache, link);
        held_add_all(out, &n, cap, c->loaded->objs, mp__cache_loaded(c));
        held_add_all(out, &n, cap, c->prev->objs, mp__cache_prev(c));
    }
    for (size_t i = 0; i < p->quar.len; i++)
        held_add(out, &n, cap, mp__quarantine_at(&p->quar, i));
    return n;
}

/* Made slots not free in their slab's bitmap and not in held (sorted). */
static size_t gather_out(const mp_objpool *p, void *const *held, size_t nheld, void **out)
{
    size_t n = 0;
    const mp__list *lists[] = { &p->partial, &p->empty_slabs, &p->full_slabs };
    for (int l = 0; l < 3; l++)
        for (const mp__link *k = lists[l]->head; k; k = k->next) {
            const mp__slab *s = mp__list_entry(k, mp__slab, link);
            for (uint32_t i = 0; i < s->nmade; i++) {
                if (s->freemap[i / 64] & ((uint64_t)1 << (i % 64)))
                    continue;
                void *obj = mp__slab_slot(s, i);
                if (!in_sorted(held, nheld, obj))
                    out[n++] = obj;
            }
        }
    return n;
}

size_t mp_objpool_foreach(mp_objpool *p, void (*visit)(void *obj, void *arg), void *arg)
{
    if (!visit || !mp__objpool_ok(p, "foreach on a destroyed or invalid pool")) {
        errno = EINVAL;
        return 0;
    }
    for (;;) {
        mp__objpool_lock(p);
        size_t bound = p->made - p->slab_free; /* out + held outside the slabs */
        mp__objpool_unlock(p);
        void **held = mp__meta_alloc((bound + 1) * sizeof *held);
        void **out = held ? mp__meta_alloc((bound + 1) * sizeof *out) : NULL;
        if (!out) {
            mp__meta_free(held);
            return 0;
        }
        mp__objpool_lock(p);
        if (p->made - p->slab_free > bound) { /* grew meanwhile: size again */
            mp__objpool_unlock(p);
            mp__meta_free(held);
            mp__meta_free(out);
            continue;
        }
        size_t nheld = gather_held_free(p, held, bound + 1);
        qsort(held, nheld, sizeof *held, cmp_ptr);
        size_t nout = gather_out(p, held, nheld, out);
        mp__objpool_unlock(p);
        for (size_t i = 0; i < nout; i++)
            visit(out[i], arg);
        mp__meta_free(held);
        mp__meta_free(out);
        return nout;
    }
}
