/* An impossible request fails at the call, as malloc's would: when the
 * kernel refuses a private 1 TiB mapping (its overcommit policy: the
 * heuristic default refuses a mapping larger than memory and swap), a
 * 1 TiB arena allocation, a 1 TiB object and a pool created with one
 * 1 TiB object fail with ENOMEM, count as failures, charge nothing, and
 * leave their pools usable. Where the kernel grants such a mapping
 * (overcommit_memory=1, or a machine with more than 1 TiB) malloc would
 * succeed too, and the test skips (77). Only address space is asked for:
 * nothing here touches the memory. */
#define _GNU_SOURCE 1
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>

#define TiB ((size_t)1 << 40)

/* What glibc's malloc does for a large request: a private anonymous
 * mapping, without MAP_NORESERVE. */
static bool kernel_grants(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    munmap(p, size);
    return true;
}

static void test_arena(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "huge" });
    REQUIRE(a != NULL);
    REQUIRE(mp_alloc(a, 100) != NULL);
    mp_stats before;
    REQUIRE(mp_arena_stats(a, &before) == 0);

    errno = 0;
    CHECK(mp_alloc(a, TiB) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mp_alloc_aligned(a, TiB, (size_t)1 << 20) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mp_calloc(a, (size_t)1 << 20, (size_t)1 << 20) == NULL);
    CHECK_EQ(errno, ENOMEM);

    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    CHECK_EQ(s.failures, before.failures + 3);
    CHECK_EQ(s.bytes_mapped, before.bytes_mapped);
    CHECK_EQ(s.allocs, before.allocs);
    char *p = mp_alloc(a, 200000); /* a large one that fits */
    REQUIRE(p != NULL);
    memset(p, 1, 200000);
    mp_arena_destroy(a);
}

/* Under a limit: the limit is not what refuses, the kernel is. */
static void test_limited_arena(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "huge, limited", .limit = 4 * TiB });
    REQUIRE(a != NULL);
    errno = 0;
    CHECK(mp_alloc(a, TiB) == NULL);
    CHECK_EQ(errno, ENOMEM);
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    CHECK_EQ(s.bytes_mapped, 0); /* the charge was given back */
    CHECK(mp_alloc(a, 100) != NULL);
    mp_arena_destroy(a);
}

static void test_objpool(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "huge objects", .obj_size = TiB });
    REQUIRE(p != NULL); /* nothing made yet */
    errno = 0;
    CHECK(mp_objpool_get(p) == NULL);
    CHECK_EQ(errno, ENOMEM);
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    CHECK_EQ(s.failures, 1);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.bytes_mapped, 0);
    mp_objpool_destroy(p);

    errno = 0;
    p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "huge initial", .obj_size = TiB, .initial = 1 });
    CHECK(p == NULL);
    CHECK_EQ(errno, ENOMEM);
    mp_objpool_destroy(p);

    /* A pool of ordinary objects still works after the failures. */
    p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "small objects", .obj_size = 64 });
    REQUIRE(p != NULL);
    void *o = mp_objpool_get(p);
    REQUIRE(o != NULL);
    memset(o, 2, 64);
    mp_objpool_put(p, o);
    mp_objpool_destroy(p);
}

int main(void)
{
    if (kernel_grants(TiB)) {
        printf("skipped: this kernel grants a 1 TiB private mapping (overcommit policy), as it would to malloc\n");
        return 77;
    }
    test_arena();
    test_limited_arena();
    test_objpool();
    return check_done();
}
