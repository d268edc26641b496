/*
 * track.h - the one seam between the pools and memory tools (layer 6).
 *
 * Every pool kind reports here when an object goes out (handed to the user)
 * or comes in (given back), when it gets a new block of memory, and when it
 * resets or destroys. The seam maps those events to:
 *   - Valgrind memcheck client requests (mempools, MAKE_MEM_*), compiled in
 *     when <valgrind/memcheck.h> was found at build time; each costs a few
 *     instructions when the program does not run under Valgrind;
 *   - AddressSanitizer manual poisoning, found at run time through weak
 *     references, so it works when the library is built with ASan and also
 *     when only the program using it is.
 *
 * Cost when no tool is attached: pools ask mp__track_active() once, at
 * create; when it is false they keep their fast paths, which never call the
 * seam. When it is true they switch their fast paths off and do every get
 * and put in the slow path, which calls the seam.
 *
 * Rules for callers: memory the seam marked no-access is never read or
 * written by the library (free objects hold no links: free lists live in
 * magazines and bitmaps outside the objects). Before memory goes back to the
 * OS or to another pool kind, the caller calls mp__track_release() so no
 * poisoning outlives the mapping.
 */
#ifndef MP_TRACK_H
#define MP_TRACK_H

#include "common.h"

/* True when Valgrind or an ASan runtime is watching this process. */
bool mp__track_active(void);

/* ASan keeps one shadow state per 8 bytes, and changes it with a plain
 * read-modify-write: two objects sharing 8 bytes, handed out and taken back
 * on two threads at once, could lose each other's state (a false report on
 * a live object). Watched pools therefore keep objects this far apart. */
#define MP_TRACK_GRAIN 8

/* A pool (any unique address) starts or stops handing out objects. */
void mp__track_pool_create(const void *pool, bool zeroed);
void mp__track_pool_destroy(const void *pool);

/* Memory a pool owns but has not handed out: no access until handed out. */
void mp__track_block_new(const void *pool, void *p, size_t size);
/* Memory about to be given back (to the OS or the chunk layer). */
void mp__track_release(void *p, size_t size);
/* A free chunk the chunk layer keeps for reuse: no access but its first
 * word (the free-list link), so that a stale pointer into a destroyed pool
 * is reported rather than read. mp__track_release undoes it. */
void mp__track_chunk_idle(void *chunk, size_t size);

/* An object of `size` bytes goes out to the user. `defined`: its contents
 * are meaningful (constructed, or zeroed) rather than stale. */
void mp__track_obj_out(const void *pool, void *obj, size_t size, bool defined);
/* An object comes back: no access until it goes out again. */
void mp__track_obj_in(const void *pool, void *obj, size_t size);
/* A free object the library touched (after its ctor ran) becomes
 * no-access again, without any mempool event. */
void mp__track_obj_hide(void *obj, size_t size);
/* The library itself needs to read or write a no-access object (a dtor at
 * release, a fill check): make it accessible and defined. */
void mp__track_obj_touch(void *obj, size_t size);

#endif /* MP_TRACK_H */
