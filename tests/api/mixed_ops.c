/* One thread, a long random sequence (fixed seed) of arena and object-pool
 * calls over memory that keeps changing hands: large arena allocations and
 * the blocks of destroyed or reset arenas go back to the chunk layer and come
 * out again, dirty, in other pools. Every live allocation holds a fill byte
 * of its own, checked whenever it is touched and at the end, so two live
 * allocations that overlapped, or a pool that wrote into one, would show.
 * Also asserted: memory that must read zero does (mp_calloc, MP_ZERO arenas
 * and pools, dirty chunks or not), every alignment asked for is honoured,
 * and the statistics balance when everything is back. */
#include "check.h"

#include <mpool.h>

#include <stdbool.h>
#include <stdint.h>

enum { ARENAS = 6, POOLS = 3, SLOTS = 64, OPS = 150000 };

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A live allocation and the byte it was filled with. */
typedef struct slot {
    unsigned char *p;
    size_t size;
    unsigned char fill;
} slot;

static mp_arena *arenas[ARENAS];
static unsigned arena_flags[ARENAS];
static slot arena_slots[ARENAS][SLOTS];

static const size_t pool_size[POOLS] = { 24, 200, 5000 };
static mp_objpool *pools[POOLS];
static slot pool_slots[POOLS][SLOTS];

static bool all_bytes(const unsigned char *p, size_t n, unsigned char b)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != b)
            return false;
    return true;
}

/* The slot still holds its fill; reported once per slot, then forgotten. */
static void verify(slot *s)
{
    if (s->p && !all_bytes(s->p, s->size, s->fill)) {
        fprintf(stderr, "allocation %p (%zu bytes) lost its fill 0x%02x\n", (void *)s->p, s->size, s->fill);
        check_failures++;
    }
}

static void take(slot *s, unsigned char *p, size_t size, bool must_be_zero)
{
    REQUIRE(p != NULL);
    if (must_be_zero)
        CHECK(all_bytes(p, size, 0));
    s->p = p;
    s->size = size;
    s->fill = (unsigned char)(next() | 1); /* never 0: a zero check must not pass by luck */
    memset(p, s->fill, size);
}

static void arena_new(int a)
{
    uint64_t r = next();
    arena_flags[a] = (r & 1 ? MP_ZERO : 0) | (r & 2 ? MP_THREADSAFE : 0) | (r % 3 == 0 ? MP_RELEASE_ON_RESET : 0);
    arenas[a] = mp_arena_create(NULL, &(mp_arena_opts){ .name = "mixed", .flags = arena_flags[a],
                                                        .block_size = r & 8 ? 4096 : 0 });
    REQUIRE(arenas[a] != NULL);
    memset(arena_slots[a], 0, sizeof arena_slots[a]);
}

static void arena_forget_all(int a)
{
    for (int j = 0; j < SLOTS; j++)
        verify(&arena_slots[a][j]);
    memset(arena_slots[a], 0, sizeof arena_slots[a]);
}

/* An allocation into s: small or large (past the large threshold, up to a
 * chunk and beyond), by mp_alloc, mp_calloc or mp_alloc_aligned. */
static void arena_alloc(int a, slot *s)
{
    uint64_t r = next();
    size_t size = r & 1 ? (size_t)(r >> 8) % 64 : (size_t)(r >> 8) % 70000;
    bool zero = (arena_flags[a] & MP_ZERO) != 0;
    unsigned char *p;
    switch ((r >> 40) % 3) {
    case 0:
        p = mp_alloc(arenas[a], size);
        break;
    case 1:
        p = mp_calloc(arenas[a], 1, size);
        zero = true;
        break;
    default: {
        size_t align = (size_t)1 << ((r >> 44) % 14);
        p = mp_alloc_aligned(arenas[a], size, align);
        CHECK(((uintptr_t)p & (align - 1)) == 0);
        break;
    }
    }
    take(s, p, size, zero);
}

static void arena_step(uint64_t r)
{
    int a = (int)(r % ARENAS);
    slot *s = &arena_slots[a][(r >> 8) % SLOTS];
    unsigned op = (unsigned)((r >> 16) % 100);
    verify(s);
    if (op < 60) {
        arena_alloc(a, s);
    } else if (op < 92) {
        mp_arena_free(arenas[a], s->p); /* NULL does nothing */
        s->p = NULL;
    } else if (op < 97) {
        arena_forget_all(a);
        mp_arena_reset(arenas[a]);
        mp_stats st;
        REQUIRE(mp_arena_stats(arenas[a], &st) == 0);
        CHECK_EQ(st.bytes_in_use, 0);
    } else {
        arena_forget_all(a);
        mp_arena_destroy(arenas[a]);
        arena_new(a);
    }
}

static void pool_step(uint64_t r)
{
    int k = (int)(r % POOLS);
    slot *s = &pool_slots[k][(r >> 8) % SLOTS];
    verify(s);
    if (!s->p) {
        take(s, mp_objpool_get(pools[k]), pool_size[k], k == 1);
    } else {
        if (r & (1ull << 40))
            mp_free(s->p);
        else
            mp_objpool_put(pools[k], s->p);
        s->p = NULL;
    }
    if (((r >> 20) & 0xfff) == 0)
        mp_objpool_trim(pools[k]);
}

int main(void)
{
    for (int a = 0; a < ARENAS; a++)
        arena_new(a);
    for (int k = 0; k < POOLS; k++) {
        /* pool 1 zeroes; pool 2 keeps 3 free objects, so its chunks come and go */
        pools[k] = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "mixed", .obj_size = pool_size[k],
                                                               .flags = k == 1 ? MP_ZERO : 0,
                                                               .max_free = k == 2 ? 3 : 0 });
        REQUIRE(pools[k] != NULL);
    }
    for (long i = 0; i < OPS; i++) {
        uint64_t r = next();
        if (r % 3 == 0)
            pool_step(r >> 2);
        else
            arena_step(r >> 2);
    }
    for (int k = 0; k < POOLS; k++) {
        for (int j = 0; j < SLOTS; j++) {
            verify(&pool_slots[k][j]);
            mp_objpool_put(pools[k], pool_slots[k][j].p); /* NULL does nothing */
        }
        mp_stats st;
        REQUIRE(mp_objpool_stats(pools[k], &st) == 0);
        CHECK_EQ(st.objects_in_use, 0);
        CHECK_EQ(st.allocs, st.frees);
        mp_objpool_destroy(pools[k]);
    }
    for (int a = 0; a < ARENAS; a++) {
        arena_forget_all(a);
        mp_arena_destroy(arenas[a]);
    }
    return check_done();
}
