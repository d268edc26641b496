/*
 * reserve_pair.c - what a reserve adds to its source's cost (the reserve
 * issue's target: at most 25 instructions per alloc+free pair, healthy
 * source). Built as mpbench_reserve:
 *
 *   mpbench_reserve direct N    N pairs of source alloc + free, called directly
 *   mpbench_reserve reserve N   N pairs of mp_reserve_alloc + mp_reserve_free
 *
 * The source is as cheap as a source can be (one static element), so the
 * difference is the reserve's own cost. Count instructions with callgrind at
 * two N and subtract, so start-up cancels:
 *
 *   for m in direct reserve; do for n in 100000 200000; do
 *     valgrind --tool=callgrind --callgrind-out-file=/dev/null build/release/bench/mpbench_reserve $m $n 2>&1 | grep Collected
 *   done; done
 *
 * instructions per pair = (I(200000) - I(100000)) / 100000, for each mode;
 * the reserve's overhead is the difference of the two.
 */
#include <mpool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char element[64];

/* noipa: the source stays a real call, as through the reserve's function
 * pointer (noinline alone lets GCC drop a call to a function it can see
 * does nothing). */
__attribute__((noipa)) static void *source_alloc(void *src)
{
    (void)src;
    return element;
}

__attribute__((noipa)) static void source_free(void *elem, void *src)
{
    (void)elem;
    (void)src;
}

int main(int argc, char **argv)
{
    long n = argc == 3 ? atol(argv[2]) : 0;
    if (n <= 0 || (strcmp(argv[1], "direct") != 0 && strcmp(argv[1], "reserve") != 0)) {
        fprintf(stderr, "usage: mpbench_reserve direct|reserve N\n");
        return 2;
    }
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "bench", .min_reserved = 4,
                                                                 .alloc = source_alloc, .free = source_free });
    if (!r) {
        perror("mp_reserve_create");
        return 1;
    }
    if (argv[1][0] == 'd') {
        for (long i = 0; i < n; i++) {
            void *e = source_alloc(NULL);
            ((volatile char *)e)[0] = 1;
            source_free(e, NULL);
        }
    } else {
        for (long i = 0; i < n; i++) {
            void *e = mp_reserve_alloc(r, 0);
            ((volatile char *)e)[0] = 1;
            mp_reserve_free(r, e);
        }
    }
    mp_reserve_destroy(r);
    return 0;
}
