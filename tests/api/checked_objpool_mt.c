/* Checked mode (MPOOL_CHECK=1) with threads: objects are got on one thread
 * and put on another while a third carves fresh slots out of the same slab.
 * A checked put looks up the object's slot (is it a slot that was handed
 * out, or an interior pointer?) without the pool lock; the slab's count of
 * slots made, which it reads, is raised under the lock by refills on other
 * threads. That read must be race-free (ThreadSanitizer runs this test:
 * label threaded) and must never take a real object for an interior
 * pointer. Afterwards nothing was reported and the statistics balance. */
#define _GNU_SOURCE 1 /* setenv, pthread barriers (threads.h) */
#include "check.h"
#include "threads.h"

#include <mpool.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { THREADS = 4, ROUNDS = 300, GET = 48, PUT = 40 };

static mp_objpool *pool;
static atomic_int misuse;

static void on_misuse(const char *msg, const void *ptr, void *arg)
{
    (void)arg;
    fprintf(stderr, "unexpected report: %s (%p)\n", msg, ptr);
    atomic_fetch_add(&misuse, 1);
}

/* Objects out, shared: each thread pushes what it got and pops (mostly
 * other threads') objects to put. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static void **out;
static size_t nout;

static void *worker(void *arg)
{
    unsigned id = *(const unsigned *)arg;
    void *objs[GET];
    for (unsigned r = 0; r < ROUNDS; r++) {
        size_t got = mp_objpool_get_bulk(pool, objs, GET);
        REQUIRE(got == GET);
        for (size_t i = 0; i < got; i++)
            *(unsigned *)objs[i] = id << 16 | r;
        pthread_mutex_lock(&out_lock);
        for (size_t i = 0; i < got; i++)
            out[nout++] = objs[i];
        size_t n = 0;
        while (n < PUT && nout)
            objs[n++] = out[--nout];
        pthread_mutex_unlock(&out_lock);
        for (size_t i = 0; i < n; i++) {
            if (i % 2)
                mp_objpool_put(pool, objs[i]);
            else
                mp_free(objs[i]);
        }
    }
    return NULL;
}

int main(void)
{
    setenv("MPOOL_CHECK", "1", 1); /* read at the first pool */
    mp_set_error_handler(on_misuse, NULL);
    out = malloc(THREADS * ROUNDS * GET * sizeof *out);
    REQUIRE(out != NULL);
    pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "checked-mt", .obj_size = 16 });
    REQUIRE(pool != NULL);

    unsigned ids[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        ids[i] = i + 1;
    threads_run_together(THREADS, worker, ids, sizeof *ids);

    for (size_t i = 0; i < nout; i++)
        mp_objpool_put(pool, out[i]);
    mp_stats s;
    REQUIRE(mp_objpool_stats(pool, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, (size_t)THREADS * ROUNDS * GET);
    CHECK_EQ(s.frees, s.allocs);
    CHECK_EQ(atomic_load(&misuse), 0);
    mp_objpool_destroy(pool);
    free(out);
    return check_done();
}
