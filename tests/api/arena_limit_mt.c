/* A thread-safe arena filling up its limit with several threads at once: an
 * allocation fails only when the arena really is full. Nothing is freed, so
 * room never comes back: once one thread has seen ENOMEM, no allocation
 * begun after that may succeed. One that does shows a failure that came too
 * early, while another thread's new block (about to become active) still
 * had room. Together the threads must also fill the limit: blocks that
 * racing threads made for nothing would hold part of it. */
#define _GNU_SOURCE 1 /* pthread barriers (threads.h) */
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <stdatomic.h>

enum { THREADS = 4, ROUNDS = 300, SIZE = 1000, BLOCK = 65536, BLOCKS = 3 };

/* Allocations a block holds at the least: its room less a header of at
 * most a page, in whole allocations (alignment padding included). */
enum { PER_BLOCK = (BLOCK - 4096) / (SIZE + 16) };

static mp_arena *arena;
static atomic_int failed;
static atomic_size_t made, late, bad_errno;

static void *fill(void *arg)
{
    (void)arg;
    for (;;) {
        int failed_before = atomic_load(&failed);
        errno = 0;
        char *p = mp_alloc(arena, SIZE);
        if (!p) {
            if (errno != ENOMEM)
                atomic_fetch_add(&bad_errno, 1);
            atomic_store(&failed, 1);
            return NULL;
        }
        p[0] = p[SIZE - 1] = 1;
        atomic_fetch_add(&made, 1);
        if (failed_before)
            atomic_fetch_add(&late, 1);
    }
}

int main(void)
{
    size_t fewest = SIZE_MAX;
    for (int r = 0; r < ROUNDS; r++) {
        arena = mp_arena_create(NULL, &(mp_arena_opts){ .name = "limited", .flags = MP_THREADSAFE,
                                                        .block_size = BLOCK, .limit = BLOCKS * BLOCK });
        REQUIRE(arena != NULL);
        atomic_store(&failed, 0);
        atomic_store(&made, 0);
        threads_run_together(THREADS, fill, NULL, 0);
        mp_stats s;
        REQUIRE(mp_arena_stats(arena, &s) == 0);
        CHECK(s.bytes_mapped <= (size_t)BLOCKS * BLOCK);
        CHECK_EQ(s.allocs, atomic_load(&made));
        if (atomic_load(&made) < fewest)
            fewest = atomic_load(&made);
        mp_arena_destroy(arena);
    }
    CHECK_EQ(atomic_load(&late), 0);
    CHECK_EQ(atomic_load(&bad_errno), 0);
    CHECK(fewest >= (size_t)BLOCKS * PER_BLOCK);
    if (fewest < (size_t)BLOCKS * PER_BLOCK)
        fprintf(stderr, "fewest allocations in a round: %zu, want at least %d\n", fewest, BLOCKS * PER_BLOCK);
    return check_done();
}
