/*
 * ptrset.h - layer 6: a set of records keyed by address, for the kinds
 * whose checked mode (or a memory tool) must know every pointer it handed
 * out without a header in front of it: arenas (every allocation, see
 * arena_check.c) and reserves (every element out, see reserve.c).
 *
 * Open addressing with linear probing over `cap` slots (0, or a power of
 * two); a slot whose p is NULL is empty. Deletion shifts the later records
 * of a probe run back into the hole (no tombstones), so a lookup stops at
 * the first empty slot.
 *
 * Reservations. A kind that must not fail half-way reserves room first
 * (mp__ptrset_reserve, which is the only call that allocates), then does
 * its work, then places the record (mp__ptrset_place, which cannot fail)
 * or gives the reservation back (mp__ptrset_unreserve). Arenas reserve
 * before they allocate, and in MP_THREADSAFE arenas several allocations
 * may hold a reservation at once.
 *
 * Invariants: n = slots in use; pending = reservations not yet placed or
 * given back; cap >= 2 * (n + pending) once anything was reserved, so
 * every probe run ends at an empty slot.
 *
 * Nothing here locks: the owner's lock guards the set.
 */
#ifndef MP_PTRSET_H
#define MP_PTRSET_H

#include "debug.h"

/* What the set knows of one pointer. */
typedef struct mp__ptrrec {
    const void *p;    /* the pointer; NULL: an empty slot */
    size_t size;      /* bytes asked for (the owner's to use) */
    bool large;       /* arenas: a large allocation */
    mp__objinfo info; /* state and sites (debug.h) */
} mp__ptrrec;

typedef struct mp__ptrset {
    mp__ptrrec *slots; /* cap records, from mp__meta_alloc */
    size_t cap;        /* 0 or a power of two */
    size_t n;          /* slots in use */
    size_t pending;    /* reservations not yet placed or given back */
} mp__ptrset;

/* The record of p, or NULL. */
mp__ptrrec *mp__ptrset_find(const mp__ptrset *s, const void *p);
/* Makes room for `count` more records and holds it for them. False (errno
 * ENOMEM, nothing changed) when the table cannot grow. */
bool mp__ptrset_reserve(mp__ptrset *s, size_t count);
/* Gives back `count` reservations that will not be placed. */
static inline void mp__ptrset_unreserve(mp__ptrset *s, size_t count) { s->pending -= count; }
/* Takes one reservation and returns p's record: the one p has already
 * (its fields as they were), or a new one holding p, every other field
 * zero. */
mp__ptrrec *mp__ptrset_place(mp__ptrset *s, const void *p);
/* Deletes a record found by find or place; records later in its probe run
 * may move (pointers to them are stale afterwards). */
void mp__ptrset_delete(mp__ptrset *s, mp__ptrrec *r);
/* Deletes every record; keeps the table and the reservations. */
void mp__ptrset_clear(mp__ptrset *s);
/* The next record in slot order from *pos (start at 0), or NULL at the
 * end. The set must not change during the walk. */
mp__ptrrec *mp__ptrset_next(const mp__ptrset *s, size_t *pos);
/* Frees the table. */
void mp__ptrset_fini(mp__ptrset *s);

/* Records held. */
static inline size_t mp__ptrset_count(const mp__ptrset *s) { return s->n; }
/* Bytes of the table. */
static inline size_t mp__ptrset_bytes(const mp__ptrset *s) { return s->cap * sizeof(mp__ptrrec); }

#endif /* MP_PTRSET_H */
