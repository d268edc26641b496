/*
 * handles.c - what generational handles cost (docs/handles.md). Built as
 * mpbench_handles, linked to the shared library (calls through the PLT, as
 * an application makes them); bench/run --instr (make bench-instr) runs
 * each mode under callgrind at two lengths and prints instructions per
 * operation:
 *
 *   mpbench_handles floor N   the loop of `deref` with a stand-in that
 *                             returns at once: the loop, the call, the use
 *   mpbench_handles deref N   N mp_objpool_deref of live handles (1024
 *                             objects of 64 B, in turn)
 *   mpbench_handles stale N   N mp_objpool_deref of stale handles (NULL,
 *                             ESTALE: the cold path)
 *   mpbench_handles pair N    N get + mp_objpool_handle + put in a pool
 *                             with MP_HANDLES
 *   mpbench_handles plain N   N get + put in a pool without (the fast paths)
 *
 * By hand, for one mode:
 *
 *   for n in 200000 400000; do
 *     valgrind --tool=callgrind --callgrind-out-file=/dev/null build/release/bench/mpbench_handles deref $n 2>&1 | grep Collected
 *   done
 *
 * instructions per operation = (I(400000) - I(200000)) / 200000; deref's
 * own = deref's minus floor's.
 */
#include <mpool.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE 1024

static volatile uintptr_t sink;

/* A real call, which the compiler may not drop or inline (GCC's noipa;
 * clang has no such attribute, and keeps a noinline call whose result is
 * used). */
#if defined(__clang__)
#define REAL_CALL __attribute__((noinline))
#else
#define REAL_CALL __attribute__((noipa))
#endif

REAL_CALL static void *stand_in(mp_objpool *p, mp_handle h)
{
    (void)p;
    return (void *)(uintptr_t)h;
}

int main(int argc, char **argv)
{
    long n = argc == 3 ? atol(argv[2]) : 0;
    const char *mode = argc == 3 ? argv[1] : "";
    if (n <= 0 || (strcmp(mode, "floor") && strcmp(mode, "deref") && strcmp(mode, "stale") && strcmp(mode, "pair") &&
                   strcmp(mode, "plain"))) {
        fprintf(stderr, "usage: mpbench_handles floor|deref|stale|pair|plain N\n");
        return 2;
    }
    unsigned flags = strcmp(mode, "plain") ? MP_HANDLES : 0;
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "bench", .obj_size = 64, .flags = flags });
    static void *objs[LIVE];
    static mp_handle hs[LIVE];
    if (!p || mp_objpool_get_bulk(p, objs, LIVE) != LIVE) {
        perror("mpbench_handles: pool");
        return 1;
    }
    for (int i = 0; i < LIVE; i++)
        hs[i] = mp_objpool_handle(p, objs[i]);
    if (!strcmp(mode, "stale")) { /* every handle stale, every slot out again */
        mp_objpool_put_bulk(p, objs, LIVE);
        if (mp_objpool_get_bulk(p, objs, LIVE) != LIVE || mp_objpool_deref(p, hs[0]) || errno != ESTALE) {
            fprintf(stderr, "mpbench_handles: stale handles are not stale\n");
            return 1;
        }
    }
    if (!strcmp(mode, "floor")) {
        for (long i = 0; i < n; i++)
            sink ^= (uintptr_t)stand_in(p, hs[i & (LIVE - 1)]);
    } else if (!strcmp(mode, "deref") || !strcmp(mode, "stale")) {
        for (int i = 0; i < LIVE; i++) /* a length-independent check: it cancels out */
            if (mp_objpool_deref(p, hs[i]) != (mode[0] == 'd' ? objs[i] : NULL)) {
                fprintf(stderr, "mpbench_handles: deref gave the wrong object\n");
                return 1;
            }
        for (long i = 0; i < n; i++)
            sink ^= (uintptr_t)mp_objpool_deref(p, hs[i & (LIVE - 1)]);
    } else if (!strcmp(mode, "pair")) {
        for (long i = 0; i < n; i++) {
            void *o = mp_objpool_get(p);
            sink ^= (uintptr_t)mp_objpool_handle(p, o);
            mp_objpool_put(p, o);
        }
    } else {
        for (long i = 0; i < n; i++) {
            void *o = mp_objpool_get(p);
            sink ^= (uintptr_t)o;
            mp_objpool_put(p, o);
        }
    }
    mp_objpool_put_bulk(p, objs, LIVE);
    mp_objpool_destroy(p);
    printf("RESULT mode=%s ops=%ld\n", mode, n);
    return 0;
}
