/*
 * debug.h - layer 6: every debug decision is made here, once.
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

#endif /* MP_DEBUG_H */
