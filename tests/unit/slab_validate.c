/*
 * slab_validate.c - pointers into an object pool's own chunks that are
 * not objects (into a slab's header, or inside an object) pass the put
 * fast path's cheap check, which is the chunk's. They never reach a slab's
 * metadata or another thread: they are refused where they would reach
 * their slab (a trim, a drain) and where a magazine holding them would go
 * to another thread. Each is reported to the error handler, and the pool
 * stays consistent.
 * Before that validation, a header pointer was accepted and the trim
 * below wrote the slab's free bitmap with an index nothing checked, and
 * crashed.
 */
#define _GNU_SOURCE 1
#include "check.h"
#include "chunk.h"
#include "threads.h"

#include <mpool.h>

static int reports;
static const void *reported;

static void record(const char *msg, const void *ptr, void *arg)
{
    (void)msg;
    (void)arg;
    __atomic_add_fetch(&reports, 1, __ATOMIC_SEQ_CST);
    reported = ptr;
}

static mp_objpool *make(unsigned flags)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "hdr", .obj_size = 64, .flags = flags });
    REQUIRE(p != NULL);
    return p;
}

/* The pool's accounting adds up and every object it hands out is one. */
static void check_usable(mp_objpool *p, size_t out)
{
    mp_stats s;
    CHECK_EQ(mp_objpool_stats(p, &s), 0);
    CHECK_EQ(s.objects_in_use, out);
    void *v[300];
    for (size_t i = 0; i < 300; i++) {
        v[i] = mp_objpool_get(p);
        REQUIRE(v[i] != NULL);
        CHECK_EQ(((uintptr_t)v[i] & MP_CHUNK_MASK) % 64, ((uintptr_t)v[0] & MP_CHUNK_MASK) % 64);
    }
    for (size_t i = 0; i < 300; i++)
        mp_objpool_put(p, v[i]);
}

/* A pointer the fast path took, refused by the trim. */
static void refused_at_trim(unsigned flags, bool header)
{
    mp_objpool *p = make(flags);
    void *a = mp_objpool_get(p), *b = mp_objpool_get(p);
    REQUIRE(a && b);
    mp_objpool_put(p, a);
    char *bad = header ? (char *)((uintptr_t)b & ~(uintptr_t)MP_CHUNK_MASK) + 8 : (char *)b + 8;
    reports = 0;
    mp_objpool_put(p, bad);
    mp_objpool_trim(p);
    CHECK_EQ(reports, 1);
    CHECK_PTR_EQ(reported, bad);
    check_usable(p, 1); /* b is still out */
    mp_objpool_put(p, b);
    check_usable(p, 0);
    mp_objpool_destroy(p);
}

enum { N = 2000 };
static void *objs[N];
static mp_objpool *shared;
static void *interior; /* the bad pointer */

static void *put_all(void *arg)
{
    (void)arg;
    mp_objpool_put(shared, interior);
    for (size_t i = 0; i < N; i++)
        mp_objpool_put(shared, objs[i]);
    return NULL;
}

static size_t got_interior;

static void *get_all(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < N; i++) {
        void *o = mp_objpool_get(shared);
        REQUIRE(o != NULL);
        got_interior += o == interior;
    }
    return NULL;
}

/* A bad pointer one thread put does not reach another thread. */
static void stays_in_its_thread(bool header)
{
    shared = make(0);
    for (size_t i = 0; i < N; i++)
        REQUIRE((objs[i] = mp_objpool_get(shared)) != NULL);
    void *victim = mp_objpool_get(shared);
    REQUIRE(victim != NULL);
    interior = header ? (char *)((uintptr_t)victim & ~(uintptr_t)MP_CHUNK_MASK) + 8 : (char *)victim + 8;
    reports = 0;
    threads_run(1, put_all, NULL, 0); /* the puts' magazines go to the depot at exit */
    got_interior = 0;
    threads_run(1, get_all, NULL, 0);
    CHECK_EQ(got_interior, 0);
    CHECK_EQ(reports, 1);
    CHECK_PTR_EQ(reported, interior);
    mp_stats s;
    CHECK_EQ(mp_objpool_stats(shared, &s), 0);
    CHECK_EQ(s.objects_in_use, N + 1);
    mp_objpool_destroy(shared);
}

int main(void)
{
    mp_set_error_handler(record, NULL);
    for (int header = 0; header < 2; header++) {
        refused_at_trim(0, header);
        refused_at_trim(MP_SINGLE_THREAD, header);
        stays_in_its_thread(header);
    }
    return check_done();
}
