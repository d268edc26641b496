/*
 * heap_stats.c - layer 6: a heap's statistics, mp_heap_foreach and its
 * leak report (the model is in heap.h).
 *
 * A heap's figures are its classes' (each read under its pool's lock, as
 * an object pool's are) plus its large allocations' (under the heap's
 * lock). bytes_in_use counts each allocation's size class: what it holds,
 * at most 12.5% more than was asked above 128 bytes.
 */
#include "heap.h"
#include "meta.h"
#include "os.h"

#include <stdio.h>

static void class_stats(mp_objpool *p, mp_stats *out)
{
    mp__objpool_lock(p);
    mp__objpool_stats_locked(p, out);
    mp__objpool_unlock(p);
}

int mp_heap_stats(const mp_heap *ch, mp_stats *out)
{
    if (!out || !mp__heap_ok(ch, "stats of a destroyed or invalid heap"))
        return EINVAL;
    mp_heap *h = (mp_heap *)ch;
    *out = (mp_stats){ 0 };
    for (unsigned i = 0; i < MP_HEAP_NCLASS; i++) {
        mp_objpool *p = __atomic_load_n(&h->cls[i], __ATOMIC_ACQUIRE);
        if (!p)
            continue;
        mp_stats s;
        class_stats(p, &s);
        mp__stats_add(out, &s);
    }
    mp__lock(&h->lock);
    out->objects_in_use += h->nlarge;
    out->bytes_in_use += h->large_bytes;
    out->bytes_peak += h->large_bytes;
    out->bytes_mapped += h->large_mapped;
    out->allocs += h->large_allocs;
    out->frees += h->large_frees;
    out->failures += h->failures;
    out->bytes_meta += sizeof *h + strlen(h->node.name);
    mp__unlock(&h->lock);
    return 0;
}

void mp__heap_node_stats(const mp__node *n, mp_stats *out) { mp_heap_stats((const mp_heap *)n, out); }

size_t mp__heap_node_classes(const mp__node *n, mp__class_row *rows, size_t cap)
{
    mp_heap *h = (mp_heap *)n;
    size_t k = 0;
    for (unsigned i = 0; i < MP_HEAP_NCLASS && k < cap; i++) {
        mp_objpool *p = __atomic_load_n(&h->cls[i], __ATOMIC_ACQUIRE);
        if (!p)
            continue;
        mp_stats s;
        class_stats(p, &s);
        if (!s.allocs && !s.bytes_mapped)
            continue; /* made, never used */
        rows[k++] = (mp__class_row){ .size = mp__heap_class_size(i), .objects_in_use = s.objects_in_use,
                                     .allocs = s.allocs, .frees = s.frees, .bytes_mapped = s.bytes_mapped };
    }
    return k;
}

/* ---------------------------------------------------------------- foreach */

typedef struct visit_ctx {
    void (*visit)(void *p, size_t size, void *arg);
    void *arg;
} visit_ctx;

static void visit_class_object(void *obj, void *arg)
{
    visit_ctx *v = arg;
    v->visit(obj, mp__heap_usable(mp__chunk_of(obj), obj), v->arg);
}

size_t mp_heap_foreach(mp_heap *h, void (*visit)(void *p, size_t size, void *arg), void *arg)
{
    if (!visit || !mp__heap_ok(h, "foreach on a destroyed or invalid heap")) {
        errno = EINVAL;
        return 0;
    }
    visit_ctx v = { visit, arg };
    size_t n = 0;
    for (unsigned i = 0; i < MP_HEAP_NCLASS; i++) {
        mp_objpool *p = __atomic_load_n(&h->cls[i], __ATOMIC_ACQUIRE);
        if (!p)
            continue;
        int err = errno;
        errno = 0;
        size_t k = mp_objpool_foreach(p, visit_class_object, &v);
        if (k == 0 && errno == ENOMEM)
            return 0;
        errno = err;
        n += k;
    }
    /* Large ones: gathered under the lock, visited after it. */
    for (;;) {
        mp__lock(&h->lock);
        size_t count = h->nlarge;
        mp__unlock(&h->lock);
        void **list = mp__meta_alloc((count + 1) * sizeof *list);
        size_t *sizes = list ? mp__meta_alloc((count + 1) * sizeof *sizes) : NULL;
        if (!sizes) {
            mp__meta_free(list);
            return 0;
        }
        mp__lock(&h->lock);
        bool fits = h->nlarge <= count;
        size_t k = 0;
        for (mp__link *l = h->large.head; fits && l; l = l->next) {
            mp__heap_large *b = mp__list_entry(l, mp__heap_large, link);
            list[k] = b->start;
            sizes[k++] = h->checked || h->tracked ? b->req : b->usable;
        }
        mp__unlock(&h->lock);
        if (fits)
            for (size_t i = 0; i < k; i++)
                visit(list[i], sizes[i], arg);
        mp__meta_free(list);
        mp__meta_free(sizes);
        if (fits)
            return n + k;
    }
}

/* ------------------------------------------------------------------ leaks */

/* Every allocation still out: class by class, then the large ones. */
typedef struct leak_walk {
    mp_heap *h;
    unsigned cls;
    bool in_class;
    mp__leak_walk pool;
    mp__link *large;
} leak_walk;

static bool next_leak(void *arg, const void **ptr, const void **site)
{
    leak_walk *w = arg;
    for (; w->cls < MP_HEAP_NCLASS; w->cls++, w->in_class = false) {
        mp_objpool *p = w->h->cls[w->cls];
        if (!p)
            continue;
        if (!w->in_class) {
            mp__objpool_leak_walk(&w->pool, p);
            w->in_class = true;
        }
        if (mp__objpool_next_leak(&w->pool, ptr, site))
            return true;
    }
    if (!w->large)
        return false;
    mp__heap_large *l = mp__list_entry(w->large, mp__heap_large, link);
    w->large = w->large->next;
    *ptr = l->start;
    *site = l->info.alloc_site;
    return true;
}

void mp__heap_report_leaks(mp_heap *h)
{
    if (!h->checked || h->leak == MP__LEAK_IGNORE)
        return;
    leak_walk w = { .h = h, .large = h->large.head };
    const void *ptr, *site;
    size_t count = 0;
    while (next_leak(&w, &ptr, &site))
        count++;
    if (!count)
        return;
    char header[256];
    snprintf(header, sizeof header, "mpool: leak: heap '%s': %zu allocation%s still out at destroy", h->node.name,
             count, count == 1 ? "" : "s");
    w = (leak_walk){ .h = h, .large = h->large.head };
    mp__leak_report(h->leak, header, next_leak, &w);
}
