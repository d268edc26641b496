/* Statistics read while another thread gets (or allocates and frees): a
 * snapshot may be a few calls behind, but it is never impossible. Each one
 * must have frees <= allocs and objects_in_use == allocs - frees. A
 * thread's cache is read without its help, and a get caught between
 * lowering the cache's count and raising its allocs once made frees wrap
 * around to nearly SIZE_MAX (75 of 100,000 reads in one run); in a
 * thread-safe arena, allocs read before frees could show more frees than
 * allocs. The objects got are left to the pool's destroy. */
#define _GNU_SOURCE 1 /* pthread barriers (threads.h) */
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <stdatomic.h>

enum { READS = 100000, GETS = 1000000 };

static atomic_int stop;

/* Gets only: frees stays 0, so a get seen half done shows as frees of -1. */
static void *objpool_churn(void *arg)
{
    mp_objpool *p = arg;
    for (int i = 0; i < GETS && !atomic_load(&stop); i++)
        REQUIRE(mp_objpool_get(p) != NULL);
    return NULL;
}

/* Allocates and frees the newest (a lock-free rollback): the arena does
 * not grow, so each stats call, which walks the blocks, stays cheap. */
static void *arena_churn(void *arg)
{
    mp_arena *a = arg;
    while (!atomic_load(&stop)) {
        char *x = mp_alloc(a, 40);
        REQUIRE(x != NULL);
        mp_arena_free(a, x);
    }
    return NULL;
}

/* Reads stats READS times while fn churns on pool; counts bad snapshots. */
static size_t bad_snapshots(void *(*fn)(void *), void *pool, int (*stats)(const void *, mp_stats *))
{
    pthread_t th;
    atomic_store(&stop, 0);
    threads_start(&th, 1, fn, pool, 0);
    size_t bad = 0;
    for (int i = 0; i < READS; i++) {
        mp_stats s;
        REQUIRE(stats(pool, &s) == 0);
        bad += s.frees > s.allocs || s.objects_in_use != s.allocs - s.frees;
    }
    atomic_store(&stop, 1);
    threads_join(&th, 1);
    return bad;
}

static int objpool_stats(const void *p, mp_stats *s) { return mp_objpool_stats(p, s); }
static int arena_stats(const void *a, mp_stats *s) { return mp_arena_stats(a, s); }

int main(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "churn", .obj_size = 16 });
    REQUIRE(p != NULL);
    CHECK_EQ(bad_snapshots(objpool_churn, p, objpool_stats), 0);
    mp_objpool_destroy(p);

    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "churn", .flags = MP_THREADSAFE });
    REQUIRE(a != NULL);
    CHECK_EQ(bad_snapshots(arena_churn, a, arena_stats), 0);
    mp_arena_destroy(a);
    return check_done();
}
