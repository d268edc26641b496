/*
 * debug.h - layer 6: every debug decision is made here, once, and the
 * pieces of checked mode that every kind shares: records of objects and
 * their sites, the quarantine, the leak report, the graveyard.
 *
 * Checked mode is on when the build was configured with MPOOL_CHECKED=ON
 * (MPOOL_CHECKED_DEFAULT) or when the environment has MPOOL_CHECK=1 at the
 * first pool creation; MPOOL_CHECK=0 turns a checked build's default off.
 * Pools ask mp__checked() once, at create, and keep the answer: a pool is
 * checked or not for its whole life, and an unchecked pool's fast paths
 * never look at it.
 *
 * In checked mode pools keep, per object, its state and the return
 * addresses of its last get and put (mp__site); they fill freed objects
 * with MP_FILL_FREED and check the fill when the object is reused, guard
 * MP_REDZONE bytes after each object filled with MP_FILL_REDZONE, and hold
 * freed objects in a FIFO quarantine of mp__quarantine_depth() entries
 * (MPOOL_QUARANTINE=N, default 256) before they can be handed out again.
 */
#ifndef MP_DEBUG_H
#define MP_DEBUG_H

#include "common.h"
#include "error.h"

#define MP_REDZONE 16
#define MP_FILL_FREED 0xdd   /* freed objects (checked on reuse) */
#define MP_FILL_REDZONE 0xfd /* the guard bytes after each object */
#define MP_FILL_NEW 0xcd     /* objects handed out without ctor or MP_ZERO */

bool mp__checked(void);
size_t mp__quarantine_depth(void);

/* What checked mode remembers of each object. */
typedef enum mp__obj_state { MP_OBJ_FRESH = 0, MP_OBJ_OUT, MP_OBJ_FREE } mp__obj_state;
typedef struct mp__objinfo {
    const void *alloc_site; /* return address of the last get */
    const void *free_site;  /* return address of the last put */
    uint32_t state;         /* mp__obj_state */
    uint32_t reported;      /* a misuse of this object was already reported */
    size_t req;             /* bytes asked for, where a kind hands out more than asked
                               (a heap's size class), when sized */
    bool sized;             /* req holds the request; else the object's whole size is its */
} mp__objinfo;

/* "name+0x1f (libfoo.so)" or "0x7f..." for a return address. */
void mp__format_site(char *buf, size_t len, const void *site);

/* Reports misuse of one object: the check, the pool, the pointer, and where
 * the object was last got and put. Goes to the error handler. */
MP_COLD void mp__misuse_obj(const char *check, const char *kind, const char *name, const void *ptr,
                            const mp__objinfo *info);

/* True when [p, p+n) is all byte b. */
bool mp__filled(const void *p, size_t n, unsigned char b);

/* Keeps a destroyed pool's struct (its magic cleared) for the life of the
 * process, so that a later use of the pool is detected instead of reading
 * reused memory, and leak checkers still see the struct reachable. `link`
 * is a pointer-sized field of the struct that the pool no longer needs.
 * Lock-free (the list is only ever pushed), so no fork handler needs it. */
void mp__graveyard_keep(void *pool, void **link);

/* A FIFO of freed objects held back from reuse (checked mode), so that a
 * write after free lands in memory nobody was given since, where the fill
 * check finds it. Guarded by its owner's lock. */
typedef struct mp__quarantine {
    void **ring;
    size_t cap, head, len;
} mp__quarantine;

/* Makes an empty quarantine of cap entries (0: none). False (errno ENOMEM)
 * when its ring cannot be had. */
bool mp__quarantine_init(mp__quarantine *q, size_t cap);
void mp__quarantine_fini(mp__quarantine *q);
/* Holds obj; returns the object that leaves in exchange (obj itself when
 * the quarantine has no room at all), or NULL while it fills up. */
void *mp__quarantine_push(mp__quarantine *q, void *obj);
/* The i-th object held, oldest first (i < q->len). */
static inline void *mp__quarantine_at(const mp__quarantine *q, size_t i) { return q->ring[(q->head + i) % q->cap]; }
/* Bytes of its ring. */
static inline size_t mp__quarantine_bytes(const mp__quarantine *q) { return q->cap * sizeof(void *); }

/* Reports a leak at a pool's destroy: `header` (one line), then up to 8 of
 * the leaked objects, each with where it was allocated, as next() yields
 * them (false: no more). */
MP_COLD void mp__leak_report(mp__leak_policy policy, const char *header,
                             bool (*next)(void *it, const void **ptr, const void **site), void *it);

#endif /* MP_DEBUG_H */
