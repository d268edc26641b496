/* A randomized test of heaps against a shadow model (public header only).
 *
 * Three heaps at once - two created ones and the default heap - and a table
 * of slots, each empty or holding one live block: its heap, the size asked
 * for, the alignment asked for, its usable size and the seed of the pattern
 * it was filled with. From a fixed seed, each step picks a slot and:
 *   - an empty slot gets a block from a random heap, by alloc, calloc,
 *     alloc_aligned (alignments 1 B to 64 KiB) or realloc(NULL);
 *   - a full slot is checked (every byte of its pattern, sampled past
 *     16 KiB), then freed with mp_free, or reallocated in its own heap to a
 *     new size (realloc chains through every regime), the bytes both sizes
 *     share checked after the move.
 * Sizes run from 0 to 6 MiB, mostly small (70% up to 256 B, 0.2% above
 * half a MiB). Every new block is checked for
 * alignment and usable size (tests/heap.h), for zeroes where calloc or
 * MP_ZERO promise them, and filled with a pattern of its own. Every 500
 * steps each heap's counters are compared with the model: objects_in_use,
 * allocs and frees exactly (a realloc of a live block counts one of each),
 * bytes_in_use between the sums of the sizes asked for and of the usable
 * sizes; now and then a trim (live blocks must survive it) and a walk
 * (foreach must count the model's blocks). At the end everything is freed
 * and each created heap trims to (nearly) nothing.
 *
 * Cases: plain heaps; MP_ZERO heaps; heaps under an arena, one of them
 * MP_SINGLE_THREAD. Fewer steps under a memory tool. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "heap.h"

#include <mpool.h>

#include <errno.h>

enum { SLOTS = 1000, NHEAPS = 3, CHECK_EVERY = 500 };

typedef struct slot {
    char *p;      /* NULL: empty */
    int heap;     /* index into model.heaps */
    size_t size;  /* asked for */
    size_t align; /* asked for; 0: as malloc */
    size_t usable;
    size_t held;  /* its most in bytes_in_use (heap_held_max) */
    uint64_t seed;
} slot;

typedef struct heap_model {
    mp_heap *h;
    bool zero;             /* MP_ZERO */
    size_t count, req, usable; /* live blocks, and their sums */
    size_t allocs, frees;  /* since base */
    mp_stats base;         /* counters at the start (the default heap may have been used) */
} heap_model;

static struct {
    heap_model heaps[NHEAPS];
    slot slots[SLOTS];
    uint64_t rng;
    uint64_t seeds; /* the next pattern seed */
    size_t step;
} m;

static uint64_t rnd(void) { return check_mix(++m.rng); }

static size_t rnd_size(void)
{
    uint64_t r = rnd(), pick = r % 1000;
    r >>= 10;
    if (pick < 700)
        return r % 257;                   /* 0..256 */
    if (pick < 950)
        return 257 + r % (16 * KiB);      /* up to 16 KiB */
    if (pick < 998)
        return 16 * KiB + r % (256 * KiB); /* up to a quarter MiB */
    return 512 * KiB + r % (6 * MiB - 512 * KiB); /* up to 6 MiB */
}

static void fail_at(const char *what, const slot *s)
{
    fprintf(stderr, "step %zu: %s: block %p of heap %d, %zu bytes (align %zu, usable %zu, seed %llu)\n", m.step,
            what, (void *)s->p, s->heap, s->size, s->align, s->usable, (unsigned long long)s->seed);
    check_failures++;
}

static bool zero_at(const char *p, size_t n)
{
    if (n <= 64 * KiB)
        return heap_all_zero(p, n);
    for (size_t i = 0; i < n; i += 4093)
        if (p[i])
            return false;
    return heap_all_zero(p, 4 * KiB) && heap_all_zero(p + n - 4 * KiB, 4 * KiB);
}

/* A block just handed out into s (s->p, size, align, heap set): checks it,
 * records it, fills it. `zeroed`: the call promised zeroes. */
static void took(slot *s, bool zeroed)
{
    heap_model *hm = &m.heaps[s->heap];
    size_t want_align = s->align ? s->align : heap_malloc_align(s->size);
    if (!heap_aligned(s->p, want_align))
        fail_at("misaligned", s);
    s->usable = mp_usable_size(s->p);
    if (s->usable < s->size || s->usable > heap_usable_max_aligned(s->size, s->align ? s->align : 1))
        fail_at("usable size out of bounds", s);
    if ((zeroed || hm->zero) && !zero_at(s->p, s->size))
        fail_at("not zeroed", s);
    s->seed = ++m.seeds;
    heap_fill(s->p, s->size, s->seed);
    hm->count++;
    hm->req += s->size;
    hm->usable += s->held = heap_held_max(s->p, s->size, s->align ? s->align : 1);
    hm->allocs++;
}

static void gone(slot *s)
{
    heap_model *hm = &m.heaps[s->heap];
    hm->count--;
    hm->req -= s->size;
    hm->usable -= s->held;
    hm->frees++;
    s->p = NULL;
}

static void verify(const slot *s)
{
    if (heap_check(s->p, s->size, s->seed) != SIZE_MAX)
        fail_at("contents changed", s);
}

static void fill_slot(slot *s)
{
    s->heap = (int)(rnd() % NHEAPS);
    s->size = rnd_size();
    s->align = 0;
    mp_heap *h = m.heaps[s->heap].h;
    uint64_t how = rnd() % 100;
    bool zeroed = false;
    errno = 0;
    if (how < 60) {
        s->p = mp_heap_alloc(h, s->size);
    } else if (how < 75) {
        size_t n = 1 + rnd() % 8;
        s->size = s->size / n * n;
        s->p = mp_heap_calloc(h, n, s->size / n);
        zeroed = true;
    } else if (how < 90) {
        s->align = (size_t)1 << (rnd() % 17); /* 1 B .. 64 KiB */
        s->p = mp_heap_alloc_aligned(h, s->size, s->align);
    } else {
        s->p = mp_heap_realloc(h, NULL, s->size);
    }
    if (!s->p) {
        fail_at("allocation failed", s);
        fprintf(stderr, "  errno %d\n", errno);
        return;
    }
    took(s, zeroed);
}

static void realloc_slot(slot *s)
{
    verify(s);
    slot old = *s;
    size_t size = rnd() % 4 == 0 ? old.size + rnd() % 64 : rnd_size(); /* often a small growth */
    errno = 0;
    char *q = mp_heap_realloc(m.heaps[s->heap].h, s->p, size);
    if (!q) {
        fail_at("realloc failed", s);
        return;
    }
    gone(s);
    /* What both sizes share survived the move. */
    size_t keep = old.size < size ? old.size : size;
    if (heap_check(q, keep, old.seed) != SIZE_MAX) {
        slot t = old;
        t.p = q;
        fail_at("realloc lost the contents", &t);
    }
    /* MP_ZERO: the bytes a realloc adds read zero. */
    if (m.heaps[s->heap].zero && size > old.size && !zero_at(q + old.size, size - old.size)) {
        slot t = old;
        t.p = q;
        fail_at("realloc of an MP_ZERO block: new bytes not zeroed", &t);
    }
    s->p = q;
    s->size = size;
    s->align = 0;
    s->heap = old.heap;
    /* took() refills and checks zeroes for MP_ZERO over the whole block;
     * the old bytes are not zero, so check as a plain allocation. */
    bool z = m.heaps[s->heap].zero;
    m.heaps[s->heap].zero = false;
    took(s, false);
    m.heaps[s->heap].zero = z;
}

static void free_slot(slot *s)
{
    verify(s);
    mp_free(s->p);
    gone(s);
}

static void compare(void)
{
    for (int i = 0; i < NHEAPS; i++) {
        heap_model *hm = &m.heaps[i];
        mp_stats s = heap_stats(hm->h);
        size_t allocs = s.allocs - hm->base.allocs, frees = s.frees - hm->base.frees;
        size_t count = s.objects_in_use - hm->base.objects_in_use;
        size_t bytes = s.bytes_in_use - hm->base.bytes_in_use;
        if (count != hm->count || allocs != hm->allocs || frees != hm->frees || bytes < hm->req ||
            bytes > hm->usable) {
            fprintf(stderr,
                    "step %zu, heap %d: objects_in_use %zu allocs %zu frees %zu bytes_in_use %zu; "
                    "model %zu, %zu, %zu, bytes %zu..%zu\n",
                    m.step, i, count, allocs, frees, bytes, hm->count, hm->allocs, hm->frees, hm->req, hm->usable);
            check_failures++;
        }
        if (s.bytes_peak < s.bytes_in_use || s.bytes_mapped < s.bytes_in_use) {
            fprintf(stderr, "step %zu, heap %d: bytes_in_use %zu above peak %zu or mapped %zu\n", m.step, i,
                    s.bytes_in_use, s.bytes_peak, s.bytes_mapped);
            check_failures++;
        }
    }
}

static void count_visit(void *p, size_t size, void *arg)
{
    (void)p;
    (void)size;
    ++*(size_t *)arg;
}

static void run(unsigned flags, bool under_arena, uint64_t seed)
{
    memset(&m, 0, sizeof m);
    m.rng = seed;
    mp_arena *a = NULL;
    if (under_arena) {
        a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "owner" });
        REQUIRE(a != NULL);
    }
    m.heaps[0].h = mp_heap_create(a, &(mp_heap_opts){ .name = "model-a", .flags = flags });
    m.heaps[1].h = mp_heap_create(a, &(mp_heap_opts){ .name = "model-b", .flags = flags | (under_arena ? MP_SINGLE_THREAD : 0) });
    m.heaps[2].h = mp_heap_default();
    for (int i = 0; i < NHEAPS; i++) {
        REQUIRE(m.heaps[i].h != NULL);
        m.heaps[i].zero = i < 2 && (flags & MP_ZERO);
        m.heaps[i].base = heap_stats(m.heaps[i].h);
    }
    size_t steps = check_tool_attached() ? 20000 : 120000;
    for (m.step = 1; m.step <= steps; m.step++) {
        slot *s = &m.slots[rnd() % SLOTS];
        if (!s->p)
            fill_slot(s);
        else if (rnd() % 10 < 4)
            free_slot(s);
        else
            realloc_slot(s);
        if (m.step % CHECK_EVERY == 0)
            compare();
        if (m.step % 9973 == 0)
            mp_heap_trim(m.heaps[rnd() % NHEAPS].h);
        if (m.step % 7919 == 0) {
            size_t seen = 0;
            size_t got = mp_heap_foreach(m.heaps[0].h, count_visit, &seen);
            CHECK_EQ(got, m.heaps[0].count);
            CHECK_EQ(seen, m.heaps[0].count);
        }
        if (check_failures > 20) {
            fprintf(stderr, "too many failures; stopping at step %zu\n", m.step);
            break;
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (m.slots[i].p)
            free_slot(&m.slots[i]);
    compare();
    for (int i = 0; i < 2; i++) {
        HEAP_CHECK_EMPTY(m.heaps[i].h);
        HEAP_CHECK_TRIMMED(m.heaps[i].h);
    }
    printf("%zu steps; %zu + %zu + %zu allocations\n", m.step - 1, m.heaps[0].allocs, m.heaps[1].allocs,
           m.heaps[2].allocs);
    if (a)
        mp_arena_destroy(a);
    else {
        mp_heap_destroy(m.heaps[0].h);
        mp_heap_destroy(m.heaps[1].h);
    }
}

static void test_plain(void) { run(0, false, 1); }
static void test_zero(void) { run(MP_ZERO, false, 2); }
static void test_under_arena(void) { run(0, true, 3); }

static const check_case cases[] = {
    CHECK_CASE(plain, test_plain),
    CHECK_CASE(zero, test_zero),
    CHECK_CASE(under_arena, test_under_arena),
};

int main(int argc, char **argv)
{
    setenv("MPOOL_QUARANTINE", "0", 0); /* trim must give every free byte back */
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
