/*
 * sync.c - layer 0 (services): the pthread wrappers of sync.h.
 */
#include "sync.h"

#include <time.h>

void mp__mutex_init(pthread_mutex_t *m)
{
    if (pthread_mutex_init(m, NULL) != 0)
        abort();
}

void mp__cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(c, &attr) != 0)
        abort();
    pthread_condattr_destroy(&attr);
}

int mp__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ns)
{
    if (deadline_ns == INT64_MAX) {
        if (pthread_cond_wait(c, m) != 0)
            abort();
        return 0;
    }
    struct timespec ts = { .tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000 };
    int rc = pthread_cond_timedwait(c, m, &ts);
    if (rc == ETIMEDOUT)
        return ETIMEDOUT;
    if (rc != 0 && rc != EINTR)
        abort();
    return 0;
}

void mp__cond_forget_waiters(pthread_cond_t *c)
{
    memset(c, 0, sizeof *c);
    mp__cond_init(c);
}
