/*
 * mag.c - layer 4: magazines, caches and the depot (see mag.h).
 */
#include "mag.h"
#include "meta.h"
#include "os.h"

void *const mp__null_guard[1] = { NULL };

#define DETACHED ((void **)&mp__null_guard[1])
#define NONE_INIT { .top = DETACHED, .end = DETACHED, .verified = 1 }
#define NONE_INIT8 NONE_INIT, NONE_INIT, NONE_INIT, NONE_INIT, NONE_INIT, NONE_INIT, NONE_INIT, NONE_INIT

mp__cache mp__cache_none[MP_CACHE_NONE_COUNT] = { NONE_INIT8, NONE_INIT8, NONE_INIT8, NONE_INIT8, NONE_INIT8,
                                                   NONE_INIT8, NONE_INIT8, NONE_INIT8, NONE_INIT8 };
_Static_assert(MP_CACHE_NONE_COUNT == 72, "the initialiser has 72 entries");

/* Metadata memory is zeroed: n == 0 and the guard is NULL. */
mp__mag *mp__mag_new(size_t cap) { return mp__meta_alloc(mp__mag_bytes(cap)); }

void mp__mag_free(mp__mag *m) { mp__meta_free(m); }

/* ----------------------------------------------------------------- caches */

void mp__cache_reset(mp__cache *c)
{
    mp__sttop(&c->top, DETACHED);
    c->end = DETACHED;
    mp__stp(&c->verified, 1);
    c->loaded = c->prev = NULL;
    c->cap = 0;
    c->owner = NULL;
}

void mp__cache_load(mp__cache *c, mp__mag *m)
{
    c->loaded = m;
    c->end = m->objs + c->cap;
    mp__sttop(&c->top, m->objs + m->n);
}

void mp__cache_swap(mp__cache *c)
{
    mp__cache_sync(c);
    mp__mag *m = c->prev;
    c->prev = c->loaded;
    mp__cache_load(c, m);
}

void mp__cache_attach(mp__cache *c, void *owner, size_t cap, mp__mag *a, mp__mag *b)
{
    c->cap = cap;
    c->owner = owner;
    a->n = b->n = 0;
    c->prev = b;
    mp__st(&c->allocs, 0);
    mp__stp(&c->verified, 1);
    mp__cache_load(c, a);
}

void mp__cache_detach(mp__cache *c, mp__mag **loaded, mp__mag **prev)
{
    if (c->loaded)
        mp__cache_sync(c);
    *loaded = c->loaded;
    *prev = c->prev;
    mp__cache_reset(c);
}

/* ------------------------------------------------------------------ depot */

void mp__depot_init(mp__depot *d, size_t cap)
{
    *d = (mp__depot){ .cap = cap };
}

void mp__depot_push_full(mp__depot *d, mp__mag *m)
{
    m->next = d->full;
    d->full = m;
    d->nfull++;
    d->objs += m->n;
}

mp__mag *mp__depot_pop_full(mp__depot *d)
{
    mp__mag *m = d->full;
    if (m) {
        d->full = m->next;
        d->nfull--;
        d->objs -= m->n;
    }
    return m;
}

void mp__depot_push_empty(mp__depot *d, mp__mag *m)
{
    m->n = 0;
    m->filler = NULL;
    m->next = d->empty;
    d->empty = m;
    d->nempty++;
}

mp__mag *mp__depot_pop_empty(mp__depot *d)
{
    mp__mag *m = d->empty;
    if (m) {
        d->empty = m->next;
        d->nempty--;
    }
    return m;
}

void mp__depot_free_all(mp__depot *d)
{
    while (d->nfull)
        mp__mag_free(mp__depot_pop_full(d));
    while (d->nempty)
        mp__mag_free(mp__depot_pop_empty(d));
}

size_t mp__depot_surplus(mp__depot *d, size_t max_full, size_t max_empty)
{
    while (d->nempty > max_empty)
        mp__mag_free(mp__depot_pop_empty(d));
    return d->nfull > max_full ? d->nfull - max_full : 0;
}

void mp__cache_refill(mp__cache *c, mp__depot *d, mp__mag *full)
{
    mp__cache_sync(c);
    mp__depot_push_empty(d, c->prev);
    c->prev = c->loaded;
    mp__cache_load(c, full);
}

mp__mag *mp__cache_rotate(mp__cache *c, mp__mag *spare)
{
    mp__mag *full = c->prev;
    mp__cache_sync(c);
    c->prev = c->loaded;
    spare->n = 0;
    mp__cache_load(c, spare);
    full->filler = c;
    return full;
}
