/* The alignment grid: every power of two from 1 to 4096 (and two beyond)
 * times sizes from 0 to 1 MiB - dense around the default large threshold
 * (about a quarter of a 64 KiB block) and around a block's room - in
 * several kinds of arena. Each allocation must be aligned, must not overlap
 * any other, and must keep what was written into it until the reset. The
 * same grid runs again after a reset (reused blocks). */
#include "check.h"

#include <mpool.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct item {
    unsigned char *p;
    size_t size, align;
    unsigned char tag;
} item;

#define MAX_ITEMS 4096

static item items[MAX_ITEMS];
static size_t nitems;

static size_t sizes[256];
static size_t nsizes;

static void add_size(size_t s)
{
    if (nsizes < sizeof sizes / sizeof *sizes)
        sizes[nsizes++] = s;
}

static void make_sizes(void)
{
    for (size_t s = 0; s <= 17; s++)
        add_size(s);
    for (size_t p = 32; p <= ((size_t)1 << 20); p <<= 1) {
        add_size(p - 1);
        add_size(p);
        add_size(p + 1);
    }
    for (size_t s = 16300; s <= 16420; s += 8) /* the default large threshold is in here */
        add_size(s);
    for (size_t s = 65200; s <= 65536; s += 48) /* a block's room */
        add_size(s);
    add_size(1000);
    add_size(4000);
    add_size(100000);
}

/* Bytes written and checked: all of a small allocation, the ends of a big
 * one (the non-overlap check covers the middle). */
static void pattern(item *it, bool write, int *bad)
{
    size_t n = it->size, edge = 4096;
    for (size_t i = 0; i < n; i++) {
        if (n > 2 * edge && i == edge)
            i = n - edge;
        unsigned char want = (unsigned char)(it->tag + i * 7);
        if (write)
            it->p[i] = want;
        else if (it->p[i] != want)
            (*bad)++;
    }
}

static int cmp_item(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const item *)a)->p, y = (uintptr_t)((const item *)b)->p;
    return x < y ? -1 : x > y;
}

static void run_grid(mp_arena *a, const char *what)
{
    nitems = 0;
    for (size_t al = 1; al <= ((size_t)1 << 14); al <<= 1) {
        for (size_t k = 0; k < nsizes; k++) {
            size_t size = sizes[k];
            if (al > 4096 && size > 70000)
                continue; /* keep the run short: the big alignments are few */
            REQUIRE(nitems < MAX_ITEMS);
            item *it = &items[nitems];
            it->size = size;
            it->align = al;
            it->tag = (unsigned char)(nitems * 31 + 5);
            if (al == 1 && k % 2)
                it->p = mp_alloc_unaligned(a, size);
            else if (al == 16 && k % 2)
                it->p = mp_alloc(a, size);
            else
                it->p = mp_alloc_aligned(a, size, al);
            if (!it->p) {
                fprintf(stderr, "%s: allocation of %zu aligned %zu failed\n", what, size, al);
                check_failures++;
                continue;
            }
            if (((uintptr_t)it->p & (al - 1)) != 0) {
                fprintf(stderr, "%s: %p (size %zu) not aligned to %zu\n", what, (void *)it->p, size, al);
                check_failures++;
            }
            pattern(it, true, NULL);
            nitems++;
        }
    }
    /* Contents intact after everything else was allocated and written. */
    int bad = 0;
    for (size_t i = 0; i < nitems; i++)
        pattern(&items[i], false, &bad);
    if (bad) {
        fprintf(stderr, "%s: %d bytes changed\n", what, bad);
        check_failures++;
    }
    /* No two allocations overlap (size 0 counts as one byte: unique). */
    qsort(items, nitems, sizeof *items, cmp_item);
    for (size_t i = 1; i < nitems; i++) {
        size_t prev = items[i - 1].size ? items[i - 1].size : 1;
        if (items[i - 1].p + prev > items[i].p) {
            fprintf(stderr, "%s: [%p, +%zu) overlaps %p\n", what, (void *)items[i - 1].p, prev, (void *)items[i].p);
            check_failures++;
        }
    }
}

int main(void)
{
    make_sizes();
    struct {
        const char *name;
        mp_arena_opts o;
    } kinds[] = {
        { "default", { .name = "grid" } },
        { "threadsafe", { .name = "grid-ts", .flags = MP_THREADSAFE } },
        { "zero", { .name = "grid-zero", .flags = MP_ZERO } },
        { "small blocks", { .name = "grid-4k", .block_size = 4096 } },
        { "big blocks", { .name = "grid-1m", .block_size = (size_t)1 << 20 } },
    };
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        mp_arena *a = mp_arena_create(NULL, &kinds[k].o);
        REQUIRE(a != NULL);
        run_grid(a, kinds[k].name);
        mp_arena_reset(a);
        run_grid(a, kinds[k].name); /* again, in reused blocks */
        mp_stats s;
        CHECK_EQ(mp_arena_stats(a, &s), 0);
        CHECK_EQ(s.objects_in_use, nitems);
        mp_arena_destroy(a);
    }
    return check_done();
}
