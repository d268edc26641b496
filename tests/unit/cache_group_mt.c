/* Cache groups (src/tcache.h): each thread gets its own block of caches on
 * first use, and the group counts the threads that hold one, which a
 * heap's size classes read to batch their page return. */
#define _GNU_SOURCE 1
#include "check.h"
#include "tcache.h"
#include "threads.h"

enum { THREADS = 6, CACHES = 3 };

static mp__cache_group group;
static pthread_barrier_t have_blocks, counted;
static mp__cache *blocks[THREADS];

static void retire_cache(mp__cache *c) { (void)c; }

static void *use_group(void *arg)
{
    size_t me = (size_t)(uintptr_t)arg;
    blocks[me] = mp__cache_group_block(&group);
    /* A second call is the same block, not another one. */
    if (mp__cache_group_block(&group) != blocks[me])
        blocks[me] = NULL;
    pthread_barrier_wait(&have_blocks);
    pthread_barrier_wait(&counted); /* holds its block until main has counted */
    return NULL;
}

int main(void)
{
    REQUIRE(mp__cache_group_init(&group, CACHES, retire_cache));
    CHECK_EQ(__atomic_load_n(&group.nblocks, __ATOMIC_RELAXED), 0);
    REQUIRE(pthread_barrier_init(&have_blocks, NULL, THREADS + 1) == 0);
    REQUIRE(pthread_barrier_init(&counted, NULL, THREADS + 1) == 0);
    pthread_t t[THREADS];
    for (size_t i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, use_group, (void *)(uintptr_t)i) == 0);
    pthread_barrier_wait(&have_blocks);
    for (size_t i = 0; i < THREADS; i++) {
        REQUIRE(blocks[i] != NULL);
        for (size_t j = 0; j < i; j++)
            CHECK(blocks[i] != blocks[j]);
    }
    CHECK_EQ(__atomic_load_n(&group.nblocks, __ATOMIC_RELAXED), THREADS);
    pthread_barrier_wait(&counted);
    threads_join(t, THREADS);
    /* Each thread's exit gave its block back. */
    CHECK_EQ(__atomic_load_n(&group.nblocks, __ATOMIC_RELAXED), 0);
    CHECK(group.blocks.head == NULL);
    /* The main thread's block, freed by the group's end. */
    REQUIRE(mp__cache_group_block(&group) != NULL);
    CHECK_EQ(__atomic_load_n(&group.nblocks, __ATOMIC_RELAXED), 1);
    mp__lock(&mp__tcache_lock);
    mp__cache_group_fini(&group);
    mp__unlock(&mp__tcache_lock);
    CHECK_EQ(group.nblocks, 0);
    CHECK_EQ(group.slot, 0);
    pthread_barrier_destroy(&have_blocks);
    pthread_barrier_destroy(&counted);
    return check_done();
}
