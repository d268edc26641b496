/*
 * flags.h - every create rejects a flag its kind does not know.
 *
 * flag_sweep(kind, known, make, end) creates a pool with each of the 32
 * flag bits alone: a bit in `known` (the kind's flags, as listed in
 * mpool.h) must give a pool, any other bit NULL with errno EINVAL.
 * make(flags) creates the pool (NULL on failure, errno set); end(pool)
 * destroys it.
 */
#ifndef MP_TEST_FLAGS_H
#define MP_TEST_FLAGS_H

#include "check.h"

#include <errno.h>

static inline void flag_sweep(const char *kind, unsigned known, void *(*make)(unsigned flags), void (*end)(void *))
{
    for (unsigned bit = 0; bit < 32; bit++) {
        unsigned f = 1u << bit;
        errno = 0;
        void *p = make(f);
        int err = errno;
        if (f & known) {
            if (!p) {
                fprintf(stderr, "%s: flag 0x%x, one of its own, refused (errno %d)\n", kind, f, err);
                check_failures++;
            }
        } else if (p || err != EINVAL) {
            fprintf(stderr, "%s: flag 0x%x, not one of its own: %s, errno %d (want NULL, EINVAL %d)\n", kind, f,
                    p ? "created" : "NULL", err, EINVAL);
            check_failures++;
        }
        if (p)
            end(p);
    }
}

#endif
