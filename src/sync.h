/*
 * sync.h - layer 0 (services): mutex and condition-variable wrappers.
 *
 * A pthread call that "cannot fail" failing means corrupted state (or a
 * destroyed object in use): the wrappers abort rather than carry on
 * unlocked. Condition variables run on CLOCK_MONOTONIC, and waits take an
 * absolute monotonic deadline in nanoseconds, so a timeout is never
 * stretched or cut by a change of the wall clock, and never ended by a
 * signal.
 */
#ifndef MP_SYNC_H
#define MP_SYNC_H

#include "common.h"

#include <pthread.h>

void mp__mutex_init(pthread_mutex_t *m);
void mp__cond_init(pthread_cond_t *c); /* CLOCK_MONOTONIC */

/* Waits on c (m held) until signalled or the absolute CLOCK_MONOTONIC
 * deadline (ns; INT64_MAX = none) passes. Returns 0 or ETIMEDOUT; never
 * EINTR. Callers re-check their condition in a loop. */
int mp__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ns);

/* fork() child: the threads that waited on c in the parent do not exist
 * here, but c may still count them (destroying it would then block for
 * good). Makes c new. Only in the child, with the lock that guards c held. */
void mp__cond_forget_waiters(pthread_cond_t *c);

static inline void mp__lock(pthread_mutex_t *m)
{
    if (mp_unlikely(pthread_mutex_lock(m) != 0))
        abort();
}

static inline void mp__unlock(pthread_mutex_t *m)
{
    if (mp_unlikely(pthread_mutex_unlock(m) != 0))
        abort();
}

#endif /* MP_SYNC_H */
