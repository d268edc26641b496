/* Memory goes back inside slabs: pages of a heap's size classes that hold
 * no allocation in use are given back to the OS (read through mincore(2):
 * a page given back is not resident), in batches as blocks are freed and
 * all at once by mp_heap_trim; and a block reused from such a page works
 * (it reads zero where it was given back, and holds what is written).
 * A heap made with MP_KEEP_MEMORY (the default heap: MPOOL_KEEP_MEMORY=1)
 * gives nothing back until a trim.
 *
 * Under a memory tool pages are not given back (the tool's view of free
 * blocks must stay as it is): the test says so and skips. */
#define _DEFAULT_SOURCE 1
#include "cases.h"
#include "heap.h"

#include <mpool.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { N = 2000, SIZE = 4096 }; /* the 4096 class, aligned to its size: one block, one page */

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Whether every page wholly inside [p, p + len) is resident (want 1) or
 * not (want 0). */
static int whole_pages_resident(const void *p, size_t len, int want)
{
    size_t page = page_size();
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t hi = ((uintptr_t)p + len) & ~(uintptr_t)(page - 1);
    for (uintptr_t q = lo; q < hi; q += page) {
        unsigned char v = 0;
        if (mincore((void *)q, page, &v) != 0) {
            REQUIRE(errno == ENOMEM); /* unmapped: given back with its slab */
            v = 0;
        }
        if ((v & 1) != want)
            return 0;
    }
    return 1;
}

static char *blocks[N];

/* N blocks, every one written; all but every tenth freed. */
static mp_heap *fill_and_thin(const char *name)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = name });
    REQUIRE(h != NULL);
    for (int i = 0; i < N; i++) {
        REQUIRE((blocks[i] = mp_heap_alloc(h, SIZE)) != NULL);
        memset(blocks[i], 0x5a, SIZE);
    }
    for (int i = 0; i < N; i++)
        if (i % 10) {
            mp_free(blocks[i]);
            blocks[i] = NULL;
        }
    return h;
}

/* Trim gives back every page no live block touches; live blocks stay. */
static void test_trim_returns_pages(void)
{
    mp_heap *h = fill_and_thin("trim");
    static char *freed[N];
    int nfreed = 0;
    mp_heap_trim(h);
    for (int i = 0; i < N; i++) {
        if (blocks[i]) {
            CHECK(whole_pages_resident(blocks[i], SIZE, 1));
            CHECK(blocks[i][0] == 0x5a && blocks[i][SIZE - 1] == 0x5a);
        }
    }
    /* Allocate again: the blocks come from the returned pages, read zero
     * where the page went back, and hold what is written. */
    for (int i = 0; i < N; i++)
        if (!blocks[i]) {
            freed[nfreed] = mp_heap_alloc(h, SIZE);
            REQUIRE(freed[nfreed] != NULL);
            memset(freed[nfreed], 0x33, SIZE);
            nfreed++;
        }
    for (int k = 0; k < nfreed; k++) {
        CHECK(freed[k][0] == 0x33 && freed[k][SIZE - 1] == 0x33);
        mp_free(freed[k]);
    }
    for (int i = 0; i < N; i++)
        mp_free(blocks[i]);
    mp_heap_destroy(h);
}

/* Fills h with N blocks, frees all but every tenth, and checks what
 * stayed resident of the freed ones: every freed page when h keeps
 * its memory, else at most half of them (the rest went back as they were
 * freed; some wait in caches, and the last batch may not be due). Then
 * trims: no freed page stays. The live blocks are freed; h is not. */
static void free_most_then_trim(mp_heap *h, bool keeps)
{
    static char *gone[N];
    int ngone = 0;
    for (int i = 0; i < N; i++) {
        REQUIRE((blocks[i] = mp_heap_alloc(h, SIZE)) != NULL);
        memset(blocks[i], 0x5a, SIZE);
    }
    mp_stats before, after;
    REQUIRE(mp_heap_stats(h, &before) == 0);
    for (int i = 0; i < N; i++)
        if (i % 10) {
            gone[ngone++] = blocks[i];
            mp_free(blocks[i]);
            blocks[i] = NULL;
        }
    int resident = 0;
    for (int k = 0; k < ngone; k++)
        resident += whole_pages_resident(gone[k], SIZE, 1);
    REQUIRE(mp_heap_stats(h, &after) == 0);
    if (keeps) {
        CHECK_EQ(resident, ngone);
        CHECK_EQ(after.bytes_mapped, before.bytes_mapped); /* no slab went back either */
    } else {
        CHECK(resident <= ngone / 2);
    }
    mp_heap_trim(h);
    resident = 0;
    for (int k = 0; k < ngone; k++)
        resident += !whole_pages_resident(gone[k], SIZE, 0);
    CHECK_EQ(resident, 0);
    REQUIRE(mp_heap_stats(h, &after) == 0);
    CHECK_EQ(after.objects_in_use, (size_t)(N / 10));
    for (int i = 0; i < N; i++)
        mp_free(blocks[i]);
}

/* Every freed block is a page of its own: most go back as they are freed,
 * the rest at the trim. */
static void test_pages_of_freed_blocks_go(void)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = "pages" });
    REQUIRE(h != NULL);
    free_most_then_trim(h, false);
    mp_heap_destroy(h);
}

static void test_keep_memory_keeps_pages(void)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = "keep", .flags = MP_KEEP_MEMORY });
    REQUIRE(h != NULL);
    free_most_then_trim(h, true);
    mp_heap_destroy(h);
}

/* The default heap reads MPOOL_KEEP_MEMORY when it is made (each case runs
 * in a process of its own, so it is made here). */
static void test_keep_memory_env(void)
{
    REQUIRE(setenv("MPOOL_KEEP_MEMORY", "1", 1) == 0);
    free_most_then_trim(mp_heap_default(), true);
}

static void test_keep_memory_env_other_value(void)
{
    REQUIRE(setenv("MPOOL_KEEP_MEMORY", "yes", 1) == 0);
    free_most_then_trim(mp_heap_default(), false);
}

static const check_case cases[] = {
    CHECK_CASE(trim_returns_pages, test_trim_returns_pages),
    CHECK_CASE(pages_of_freed_blocks_go, test_pages_of_freed_blocks_go),
    CHECK_CASE(keep_memory_keeps_pages, test_keep_memory_keeps_pages),
    CHECK_CASE(keep_memory_env, test_keep_memory_env),
    CHECK_CASE(keep_memory_env_other_value, test_keep_memory_env_other_value),
};

int main(int argc, char **argv)
{
    if (check_tool_attached()) {
        printf("skipped: a memory tool is attached, and pages are not given back under it\n");
        return 77;
    }
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
