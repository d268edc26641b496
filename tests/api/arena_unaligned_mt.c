/* Unaligned allocations (mp_alloc_unaligned, mp_strdup) from several
 * threads at once in one MP_THREADSAFE arena, in checked mode: each
 * allocation starts in the same 8 bytes as the red zone of the one before,
 * which another thread may be filling and hiding from the memory tools at
 * that moment. In an ASan build (and under memcheck) the tools' state for
 * those shared bytes must not be lost: every allocation is written in full
 * right after it is made, and a wrong state would be a use-after-poison
 * report on a live allocation. Without a tool the test checks contents and
 * counts. */
#define _GNU_SOURCE 1 /* setenv, pthread barriers (threads.h) */
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <stdlib.h>

enum { THREADS = 4, ALLOCS = 40000, ARENAS = 3 };

static mp_arena *arena;

static void *worker(void *arg)
{
    unsigned id = *(const unsigned *)arg, s = id;
    for (int r = 0; r < ALLOCS; r++) {
        s = s * 1103515245u + 12345u;
        size_t n = 1 + (s >> 8) % 29;
        unsigned char *p;
        if (r % 4 == 3) {
            char str[32];
            memset(str, 'a' + (int)(s % 26), n);
            str[n] = '\0';
            p = (unsigned char *)mp_strdup(arena, str);
            REQUIRE(p != NULL);
            REQUIRE(strcmp((char *)p, str) == 0);
            n++;
        } else {
            p = mp_alloc_unaligned(arena, n);
            REQUIRE(p != NULL);
        }
        memset(p, (int)id, n); /* all of it: the tool checks each byte */
        for (size_t i = 0; i < n; i++)
            REQUIRE(p[i] == (unsigned char)id);
    }
    return NULL;
}

int main(void)
{
    setenv("MPOOL_CHECK", "1", 1); /* read at the first pool */
    for (int k = 0; k < ARENAS; k++) {
        arena = mp_arena_create(NULL, &(mp_arena_opts){ .name = "unaligned", .flags = MP_THREADSAFE });
        REQUIRE(arena != NULL);
        unsigned ids[THREADS];
        for (unsigned i = 0; i < THREADS; i++)
            ids[i] = i + 1;
        threads_run_together(THREADS, worker, ids, sizeof *ids);
        mp_stats s;
        REQUIRE(mp_arena_stats(arena, &s) == 0);
        CHECK_EQ(s.allocs, (size_t)THREADS * ALLOCS);
        CHECK_EQ(s.objects_in_use, (size_t)THREADS * ALLOCS);
        mp_arena_destroy(arena);
    }
    return check_done();
}
