/*
 * fork.h - layer 5: one pthread_atfork handler for the whole library.
 *
 * Before fork() the handler takes, in this order: the thread-cache lock
 * (tcache.h), the tree lock and every pool's locks in tree order (tree.h),
 * the leaf locks the kinds registered (mp__fork_add), the chunk lock
 * (chunk.h), the metadata allocator's lock (meta.h). After fork(), in parent and child alike, it releases them in
 * reverse; the child first makes every pool forget the threads that waited
 * in the parent. Every other path that holds two of these locks takes them
 * in the same order, so a fork never finds one half taken.
 *
 * mp__fork_init() is called by every create (the handler is installed once
 * per process), so a child can use every pool whatever kinds the program
 * uses.
 */
#ifndef MP_FORK_H
#define MP_FORK_H

#include "common.h"

void mp__fork_init(void);

/* A kind's process-wide lock, taken after every pool lock and before the
 * chunk lock (a leaf: nothing else is locked while it is held). lock and
 * unlock run in the handler; child (may be NULL) runs in the child before
 * the unlock. Returns false when the table is full (a build error in
 * practice: the table has room for every kind). Idempotent per lock fn. */
bool mp__fork_add(void (*lock)(void), void (*unlock)(void), void (*child)(void));

#endif /* MP_FORK_H */
