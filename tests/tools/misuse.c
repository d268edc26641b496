/* Bugs that a memory tool must report on pool memory as it would on malloc
 * memory. Run as `misuse MODE`; tests/tools/CMake registration runs each
 * mode under memcheck and in an ASan build and expects the tool to fail it.
 * Modes:
 *   clean           correct use (must pass under every tool)
 *   use-after-put   write to an object after putting it back
 *   use-after-destroy  write to an object after destroying its pool
 *   overflow        write one byte past the end of an object
 *   uninit          branch on a byte of a fresh object (memcheck only)
 *   handle-use-after-put  write to an object of a MP_HANDLES pool after
 *                   put_handle (the handle derefs to NULL by then)
 * and the same for arenas:
 *   arena-use-after-reset     write to an allocation after mp_arena_reset
 *   arena-use-after-rollback  write to the newest allocation after freeing it
 *   arena-use-after-free      write to an older small allocation after freeing it
 *   arena-use-after-destroy   write to an allocation after mp_arena_destroy
 *   arena-overflow            write one byte past the end of an allocation
 *   arena-uninit              branch on a byte of a fresh allocation (memcheck only)
 * and for reserves:
 *   reserve-use-after-free    write to an element after freeing it into the reserve
 * and for heaps:
 *   heap-use-after-free       write to a block after mp_free
 *   heap-use-after-realloc    write through the old pointer of a block realloc moved
 *   heap-use-after-destroy    write to a block after mp_heap_destroy
 *   heap-default-use-after-free  the same in the default heap
 *   heap-overflow             write one byte past the size asked for (inside the size class)
 *   heap-large-overflow       the same for a block with a chunk of its own
 *   heap-uninit               branch on a byte of a fresh block (memcheck only)
 * `clean` uses an arena, a reserve and heaps correctly too.
 */
#include <mpool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile char sink;

static int objpool_mode(const char *mode)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "victim", .obj_size = 40 });
    char *o = mp_objpool_get(p);
    if (!strcmp(mode, "use-after-put")) {
        mp_objpool_put(p, o);
        o[3] = 1;
    } else if (!strcmp(mode, "use-after-destroy")) {
        mp_objpool_put(p, o);
        mp_objpool_destroy(p); /* its chunk stays mapped, in the chunk cache */
        o[3] = 1;
        return 0;
    } else if (!strcmp(mode, "overflow")) {
        o[40] = 1;
        mp_objpool_put(p, o);
    } else if (!strcmp(mode, "uninit")) {
        if (o[5] == 42)
            sink = 1;
        mp_objpool_put(p, o);
    } else {
        memset(o, 1, 40);
        mp_objpool_put(p, o);
    }
    mp_objpool_destroy(p);
    return 0;
}

/* A handle pool's objects are watched as any pool's: its generations live
 * outside the objects. */
static int handle_mode(const char *mode)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "victim", .obj_size = 40,
                                                                 .flags = MP_HANDLES });
    char *o = mp_objpool_get(p);
    mp_handle h = mp_objpool_handle(p, o);
    if (mp_objpool_deref(p, h) != o)
        return 2;
    memset(o, 1, 40);
    mp_objpool_put_handle(p, h);
    if (mp_objpool_deref(p, h) != NULL)
        return 2;
    if (!strcmp(mode, "handle-use-after-put"))
        o[3] = 1;
    o = mp_objpool_get(p); /* the same slot again: accessible again */
    memset(o, 2, 40);
    mp_objpool_put(p, o);
    mp_objpool_destroy(p);
    return 0;
}

static int arena_mode(const char *mode)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "victim" });
    char *older = mp_alloc(a, 40);
    char *p = mp_alloc(a, 40);
    if (!strcmp(mode, "arena-use-after-reset")) {
        mp_arena_reset(a);
        p[3] = 1;
    } else if (!strcmp(mode, "arena-use-after-rollback")) {
        mp_arena_free(a, p);
        p[3] = 1;
    } else if (!strcmp(mode, "arena-use-after-free")) {
        mp_arena_free(a, older);
        older[3] = 1;
    } else if (!strcmp(mode, "arena-use-after-destroy")) {
        mp_arena_destroy(a); /* its block stays mapped, in the chunk cache */
        p[3] = 1;
        return 0;
    } else if (!strcmp(mode, "arena-overflow")) {
        p[40] = 1;
    } else if (!strcmp(mode, "arena-uninit")) {
        if (p[5] == 42)
            sink = 1;
    } else {
        /* Correct use: whole allocations, strings, a large one, reuse after
         * a reset and after a rollback. */
        for (int round = 0; round < 3; round++) {
            memset(p, 1, 40);
            memset(older, 2, 40);
            char *s = mp_printf(a, "round %d", round);
            sink = s[0];
            char *big = mp_calloc(a, 1, 100000);
            big[99999] = 3;
            mp_arena_free(a, big);
            char *t = mp_alloc_unaligned(a, 7);
            memset(t, 4, 7);
            mp_arena_free(a, t);
            t = mp_alloc_unaligned(a, 7);
            memset(t, 5, 7);
            mp_arena_reset(a);
            older = mp_alloc(a, 40);
            p = mp_alloc(a, 40);
        }
    }
    mp_arena_destroy(a);
    return 0;
}

/* A malloc source that can be told to fail, so elements go through the
 * reserve. */
static int source_failing;

static void *flaky_alloc(void *src)
{
    (void)src;
    return source_failing ? NULL : malloc(40);
}

static void flaky_free(void *elem, void *src)
{
    (void)src;
    free(elem);
}

static int reserve_mode(const char *mode)
{
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "victim", .min_reserved = 2, .elem_size = 40,
                                                                 .alloc = flaky_alloc, .free = flaky_free });
    source_failing = 1;
    char *e = mp_reserve_alloc(r, 0); /* from the reserve */
    memset(e, 1, 40);
    mp_reserve_free(r, e); /* back into the reserve: no access now */
    if (!strcmp(mode, "reserve-use-after-free")) {
        e[3] = 1;
    } else {
        e = mp_reserve_alloc(r, 0);
        memset(e, 2, 40);
        mp_reserve_free(r, e);
    }
    source_failing = 0;
    mp_reserve_destroy(r);
    return 0;
}

static int heap_mode(const char *mode)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = "victim" });
    char *p = mp_heap_alloc(h, 40);
    if (!strcmp(mode, "heap-use-after-free")) {
        mp_free(p);
        p[3] = 1;
    } else if (!strcmp(mode, "heap-use-after-realloc")) {
        char *q = mp_heap_realloc(h, p, 4000); /* another size class: it moves */
        p[3] = 1;
        mp_free(q);
    } else if (!strcmp(mode, "heap-use-after-destroy")) {
        mp_heap_destroy(h); /* its memory stays mapped, in the chunk cache */
        p[3] = 1;
        return 0;
    } else if (!strcmp(mode, "heap-default-use-after-free")) {
        char *d = mp_heap_alloc(mp_heap_default(), 40);
        mp_free(d);
        d[3] = 1;
        mp_free(p);
    } else if (!strcmp(mode, "heap-overflow")) {
        p[40] = 1; /* the class is bigger than 40: the tool must still see it */
        mp_free(p);
    } else if (!strcmp(mode, "heap-large-overflow")) {
        char *big = mp_heap_alloc(h, (1 << 20) + 40);
        big[(1 << 20) + 40] = 1;
        mp_free(big);
        mp_free(p);
    } else if (!strcmp(mode, "heap-uninit")) {
        if (p[5] == 42)
            sink = 1;
        mp_free(p);
    } else {
        /* Correct use: every size regime, realloc, calloc, aligned, a zeroed
         * heap, the default heap, and a destroy with blocks still in it. */
        mp_heap *z = mp_heap_create(NULL, &(mp_heap_opts){ .name = "zeroed", .flags = MP_ZERO });
        for (int round = 0; round < 3; round++) {
            memset(p, 1, 40);
            char *big = mp_heap_alloc(h, 300000);
            memset(big, 2, 300000);
            big = mp_heap_realloc(h, big, 5000);
            sink = big[4999];
            mp_free(big);
            char *c = mp_heap_calloc(h, 10, 10);
            sink = c[99];
            mp_free(c);
            char *a = mp_heap_alloc_aligned(h, 100, 4096);
            memset(a, 3, 100);
            mp_free(a);
            char *zz = mp_heap_alloc(z, 77);
            sink = zz[76];
            mp_free(zz);
            char *d = mp_heap_alloc(mp_heap_default(), 33);
            memset(d, 4, 33);
            mp_free(d);
            p = mp_heap_realloc(h, p, 40); /* in place */
            (void)mp_heap_alloc(z, 10);    /* left for destroy */
        }
        mp_heap_destroy(z);
        mp_free(p);
    }
    mp_heap_destroy(h);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    if (!strncmp(mode, "arena-", 6))
        return arena_mode(mode);
    if (!strncmp(mode, "reserve-", 8))
        return reserve_mode(mode);
    if (!strncmp(mode, "handle-", 7))
        return handle_mode(mode);
    if (!strncmp(mode, "heap-", 5))
        return heap_mode(mode);
    int rc = objpool_mode(mode);
    if (!strcmp(mode, "clean"))
        rc |= arena_mode(mode) | reserve_mode(mode) | heap_mode(mode) | handle_mode(mode);
    return rc;
}
