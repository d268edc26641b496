/*
 * thread_churn.c - threads that come and go leave nothing behind.
 *
 * Each of many short-lived threads does one get and one put on a shared
 * thread-safe pool, then exits, leaving its cache's magazines to the pool.
 * The pool's bookkeeping (mp_stats.bytes_meta: its caches, magazines and
 * the rest) must stay bounded: what it is after the first threads is what
 * it is after all of them, within a few magazines. (It used to grow by two
 * magazines per thread, without bound.) The counts stay exact throughout.
 *
 * 100,000 threads in a plain build; 5,000 under a sanitizer or memcheck,
 * where a thread's start costs a hundred times more.
 */
#define _GNU_SOURCE 1
#include "check.h"
#include "threads.h"

#include <mpool.h>

#if defined(__SANITIZE_THREAD__)
#define UNDER_TOOL 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TOOL 1
#endif
#endif
#ifndef UNDER_TOOL
#define UNDER_TOOL 0
#endif

static mp_objpool *pool;

static void *one_pair(void *arg)
{
    (void)arg;
    void *o = mp_objpool_get(pool);
    REQUIRE(o != NULL);
    *(volatile char *)o = 1;
    mp_objpool_put(pool, o);
    return NULL;
}

static size_t meta_now(void)
{
    mp_stats s;
    REQUIRE(mp_objpool_stats(pool, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0);
    return s.bytes_meta;
}

int main(void)
{
    size_t threads = UNDER_TOOL || check_tool_attached() ? 5000 : 100000, warm = 500;
    pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "churn", .obj_size = 64 });
    REQUIRE(pool != NULL);
    size_t first = 0;
    for (size_t i = 0; i < threads; i++) {
        threads_run(1, one_pair, NULL, 0);
        if (i + 1 == warm)
            first = meta_now();
    }
    size_t last = meta_now();
    mp_stats s;
    REQUIRE(mp_objpool_stats(pool, &s) == 0);
    CHECK_EQ(s.allocs, threads);
    CHECK_EQ(s.frees, threads);
    /* Bounded: no more than a few magazines (about 1 KiB each) more than
     * after the first threads, and small in itself. */
    if (last > first + 8 * 1024)
        fprintf(stderr, "bookkeeping after %zu threads: %zu bytes, after %zu: %zu\n", warm, first, threads, last);
    CHECK(last <= first + 8 * 1024);
    CHECK(last < 64 * 1024);
    mp_objpool_destroy(pool);
    return check_done();
}
