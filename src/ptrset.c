/*
 * ptrset.c - layer 6: the set of records keyed by address (see ptrset.h).
 */
#include "ptrset.h"
#include "meta.h"
#include "os.h"

#define PTRSET_MIN 64 /* slots of the first table */

/* Home slot of p. Pointers are at least 16-aligned in practice (arena
 * allocations, malloc'd elements): the low bits carry nothing. */
static size_t home_of(const mp__ptrset *s, const void *p)
{
    uint64_t h = ((uint64_t)(uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & (s->cap - 1);
}

/* p's slot, or the empty slot where it would go (cap > 0). */
static mp__ptrrec *slot_of(const mp__ptrset *s, const void *p)
{
    size_t i = home_of(s, p);
    while (s->slots[i].p && s->slots[i].p != p)
        i = (i + 1) & (s->cap - 1);
    return &s->slots[i];
}

mp__ptrrec *mp__ptrset_find(const mp__ptrset *s, const void *p)
{
    if (!s->cap)
        return NULL;
    mp__ptrrec *r = slot_of(s, p);
    return r->p ? r : NULL;
}

bool mp__ptrset_reserve(mp__ptrset *s, size_t count)
{
    size_t want = (s->n + s->pending + count) * 2;
    if (want > s->cap) {
        size_t ncap = s->cap ? s->cap : PTRSET_MIN;
        while (ncap < want)
            ncap *= 2;
        mp__ptrrec *old = s->slots, *slots = mp__meta_alloc(ncap * sizeof *slots);
        if (!slots)
            return false;
        size_t ocap = s->cap;
        s->slots = slots;
        s->cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].p)
                *slot_of(s, old[i].p) = old[i];
        mp__meta_free(old);
    }
    s->pending += count;
    return true;
}

mp__ptrrec *mp__ptrset_place(mp__ptrset *s, const void *p)
{
    mp__ptrrec *r = slot_of(s, p);
    if (!r->p) {
        r->p = p;
        s->n++;
    }
    s->pending--;
    return r;
}

void mp__ptrset_delete(mp__ptrset *s, mp__ptrrec *r)
{
    size_t mask = s->cap - 1, i = (size_t)(r - s->slots);
    for (size_t j = (i + 1) & mask; s->slots[j].p; j = (j + 1) & mask) {
        size_t home = home_of(s, s->slots[j].p);
        /* Record j moves into the hole at i unless its home lies in (i, j]
         * (cyclically): a lookup from there would never pass i. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    s->slots[i] = (mp__ptrrec){ 0 };
    s->n--;
}

void mp__ptrset_clear(mp__ptrset *s)
{
    if (s->slots)
        memset(s->slots, 0, s->cap * sizeof *s->slots);
    s->n = 0;
}

mp__ptrrec *mp__ptrset_next(const mp__ptrset *s, size_t *pos)
{
    for (; *pos < s->cap; ++*pos)
        if (s->slots[*pos].p)
            return &s->slots[(*pos)++];
    return NULL;
}

void mp__ptrset_fini(mp__ptrset *s)
{
    mp__meta_free(s->slots);
    *s = (mp__ptrset){ 0 };
}
