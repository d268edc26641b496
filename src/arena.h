/*
 * arena.h - internal view of arenas (layer 5), for unit tests and other
 * layers. The arena itself is described at the top of arena.c.
 */
#ifndef MP_ARENA_H
#define MP_ARENA_H

#include "common.h"

/* Largest allocation bumped out of a block; anything bigger (or aligned to
 * more than MP_ARENA_SMALL_ALIGN_MAX) is a large allocation with a chunk of
 * its own. */
size_t mp__arena_large_max(const mp_arena *a);
/* Bytes of one standard block, header included (what it is charged). */
size_t mp__arena_block_span(const mp_arena *a);
/* Blocks of small allocations the arena holds now (active, used, spare). */
size_t mp__arena_blocks(const mp_arena *a);
/* Large allocations live now. */
size_t mp__arena_larges(const mp_arena *a);

#define MP_ARENA_SMALL_ALIGN_MAX ((size_t)4096)
#define MP_ARENA_KEEP_BLOCKS 16 /* blocks a reset keeps for reuse */

#endif /* MP_ARENA_H */
