/*
 * slab.h - layer 3: a chunk carved into equal slots, shared by object
 * pools and heaps.
 *
 * A slab is one chunk whose header (mp__slab, which begins with the
 * mp__chunk header) is followed by a free bitmap and then the slots:
 *
 *   | mp__slab | freemap[words] | pad to align | slot 0 | slot 1 | ... |
 *
 * Slots are never written by the slab layer: free slots are tracked in the
 * bitmap, not by links inside the objects, so an object keeps the state its
 * constructor gave it while it is free, and memory tools may mark free
 * objects no-access without hiding any metadata.
 *
 * Invariants (all fields are changed under the owning pool's lock):
 *   - slots [0, nmade) have been made (handed to the pool once, ctor run);
 *     slots [nmade, nslots) have never been touched.
 *   - nfree == number of set bits in freemap; a set bit means the slot is
 *     made and free *in this slab* (not in a magazine, not handed out).
 *   - the slab is "empty" when nfree == nmade: no object of it is out or
 *     cached anywhere, so its memory can go back to the OS.
 *
 * Objects whose stride does not fit a standard chunk get a slab of their
 * own size (one slot); every slot of every slab starts in the slab's first
 * MP_CHUNK_SIZE bytes, so mp__chunk_of() finds the header by masking.
 */
#ifndef MP_SLAB_H
#define MP_SLAB_H

#include "chunk.h"
#include "list.h"

typedef struct mp__slab mp__slab;
struct mp__slab {
    mp__chunk chunk;         /* kind, owner, size, obj_size (= stride) */
    mp__link link;           /* on one of the owner's slab lists */
    char *slots;             /* address of slot 0 */
    uint64_t recip;          /* 2^32 / stride + 1 (up to 33 bits): index by multiply, exact
                                for slot starts of any stride (off * recip < 2^49) */
    uint32_t nslots;         /* slots in this slab */
    uint32_t nmade;          /* slots made so far (written under the pool lock, atomically:
                                mp__slab_is_slot reads it without) */
    uint32_t nfree;          /* made slots free in this slab */
    uint32_t hbase;          /* MP_HANDLES pools: the handle number of slot 0 (objpool_handle.c); else 0 */
    void *records;           /* the owner's per-slot records (checked mode), or NULL */
    uint64_t idle;           /* bit q: page q holds no slot in use, and is still backed */
    uint64_t bare;           /* bit q: page q was given back to the OS (its slots all free since) */
    uint64_t aged;           /* bit q: page q was idle at the owner's last sweep, and still is (within idle) */
    uint64_t freemap[];      /* bit i: slot i is free in this slab */
};

/* The geometry every slab of a pool shares. */
typedef struct mp__slab_shape {
    size_t stride;      /* bytes per slot: obj_size rounded up to align */
    size_t align;       /* slot alignment */
    size_t slab_size;   /* chunk bytes per slab */
    size_t slots_off;   /* offset of slot 0 from the slab start */
    uint32_t nslots;    /* slots per slab */
} mp__slab_shape;

/* Computes the shape for objects of obj_size at align (a power of two).
 * Returns false when no slab can hold such an object (EINVAL territory). */
bool mp__slab_shape_for(size_t obj_size, size_t align, mp__slab_shape *out);

/* A new slab for owner, all slots unmade. NULL with errno ENOMEM. */
mp__slab *mp__slab_new(const mp__slab_shape *shape, uint32_t kind, void *owner);
/* Gives the slab's memory back (the caller has run any destructors). */
void mp__slab_free(mp__slab *s);

static inline mp__slab *mp__slab_of(const void *obj) { return (mp__slab *)mp__chunk_of(obj); }

/* Index of the slot at obj; exact when obj is a slot start. */
static inline uint32_t mp__slab_index(const mp__slab *s, const void *obj)
{
    uint64_t off = (uint64_t)((const char *)obj - s->slots);
    return (uint32_t)((off * s->recip) >> 32);
}

static inline void *mp__slab_slot(const mp__slab *s, uint32_t i) { return s->slots + (size_t)i * s->chunk.obj_size; }

/* True when obj is exactly the start of a made slot of s. (obj below the
 * slots gives a garbage index, but then no slot can equal obj.) May be
 * called without the owner's lock (checked mode's put), while other threads
 * make slots of this slab under it: nmade is read and written atomically.
 * A slot handed out was made before it left the pool, so its putter sees
 * it counted. */
static inline bool mp__slab_is_slot(const mp__slab *s, const void *obj)
{
    uint32_t i = mp__slab_index(s, obj);
    return i < __atomic_load_n(&s->nmade, __ATOMIC_RELAXED) && mp__slab_slot(s, i) == obj;
}

/* Takes up to n free-or-fresh objects into out[]; *fresh counts how many of
 * them (the last *fresh entries) were never made before and need a ctor.
 * Returns how many it took. */
size_t mp__slab_take(mp__slab *s, void **out, size_t n, size_t *fresh);
/* Makes the first n slots of a new slab and marks them free (pool create's
 * `initial` objects). */
void mp__slab_make_free(mp__slab *s, uint32_t n);
/* Marks obj free in its slab, after validating it: the metadata is written
 * only for a made slot's exact start that is not free already. Returns
 * false (and writes nothing) otherwise. */
static inline bool mp__slab_give(mp__slab *s, void *obj)
{
    uint64_t off = (uint64_t)((char *)obj - s->slots);
    uint32_t i = (uint32_t)((off * s->recip) >> 32);
    if (mp_unlikely(i >= s->nmade || (uint64_t)i * s->chunk.obj_size != off))
        return false;
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (mp_unlikely(s->freemap[i / 64] & bit))
        return false;
    s->freemap[i / 64] |= bit;
    s->nfree++;
    return true;
}

/* Page return, for owners whose free slots hold nothing (no constructed
 * state, no fill to check). A page (never the first, which holds the
 * header) goes idle -> bare:
 *   mp__slab_note_idle, after the slot at obj was given back, marks idle
 *     the pages it overlaps that now hold no slot in use;
 *   mp__slab_return_idle(s, all) gives idle pages back to the OS (one
 *     call per run of pages) and marks them bare: every idle page when
 *     all, else only the aged ones (idle since the last such call), and
 *     the pages still idle become aged;
 *   mp__slab_take un-marks (idle, aged or bare) the pages of what it hands
 *     out; a bare page reads zero when touched again.
 * The owner batches the calls to the OS: it counts idle pages with
 * mp__slab_idle_pages and sweeps its slabs when enough more went idle.
 * Aging keeps a page that is free only between two bursts of use from
 * being given back and faulted in again: it must stay idle for a whole
 * sweep period. */
void mp__slab_note_idle(mp__slab *s, const void *obj);
void mp__slab_return_idle(mp__slab *s, bool all);
static inline size_t mp__slab_idle_pages(const mp__slab *s) { return (size_t)__builtin_popcountll(s->idle); }

static inline bool mp__slab_has_room(const mp__slab *s) { return s->nfree != 0 || s->nmade < s->nslots; }
static inline bool mp__slab_is_empty(const mp__slab *s) { return s->nfree == s->nmade; }

#endif /* MP_SLAB_H */
