/*
 * frag.c - a long-running process whose live set keeps changing shape:
 * S slots hold blocks for R rounds. The sizes drawn change every five
 * rounds (small strings; medium buffers; sizes near powers of two; mostly
 * small with a few of 4 to 64 KiB), so memory freed by one phase must
 * serve the next one's sizes; the live set swells to all S slots and
 * shrinks to 40% of them every ten rounds; and one slot in ten holds a
 * small block allocated at the start and kept to the end, scattered
 * among the rest. Every block is written in full when it is allocated.
 *
 *     frag [-s SLOTS] [-r ROUNDS]
 *
 * Prints the counts and the live bytes at the end (the same under any
 * allocator), then a line "# final_rss_kb=.. live_bytes=.." with the
 * resident memory holding them, which bench/run reports beside the peak.
 */
#define _GNU_SOURCE 1
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "programs.h"

static uint64_t rng = 0xf4a6ull;

static size_t draw(int phase)
{
    switch (phase) {
    case 0: return 16 + prog_next(&rng) % 241;
    case 1: return 256 + prog_next(&rng) % 3841;
    case 2: {
        size_t p = (size_t)16 << (prog_next(&rng) % 8); /* 16 .. 2048 */
        size_t jitter = prog_next(&rng) % (p / 4 + 1);
        return prog_next(&rng) % 2 ? p + jitter : p - jitter / 2;
    }
    default:
        if (prog_next(&rng) % 32 == 0)
            return 4096 + prog_next(&rng) % 61441;
        return 16 + prog_next(&rng) % 241;
    }
}

int main(int argc, char **argv)
{
    long slots = 150000, rounds = 150;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            slots = atol(argv[++i]);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
            rounds = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: frag [-s SLOTS] [-r ROUNDS]\n");
            return 2;
        }
    }
    if (slots < 10 || rounds < 1) {
        fprintf(stderr, "frag: at least 10 slots and 1 round\n");
        return 2;
    }
    unsigned char **block = xcalloc((size_t)slots, sizeof *block);
    size_t *len = xcalloc((size_t)slots, sizeof *len);
    long live = 0, allocs = 0;
    size_t live_bytes = 0, peak_bytes = 0;

#define PINNED(i) ((i) % 10 == 0)
#define ALLOC(i, n)                                              \
    do {                                                         \
        len[i] = (n);                                            \
        block[i] = xmalloc(len[i]);                              \
        memset(block[i], (int)((i) & 0xff), len[i]);             \
        live++;                                                  \
        allocs++;                                                \
        live_bytes += len[i];                                    \
    } while (0)
#define FREE(i)                                                  \
    do {                                                         \
        if (block[i][0] != (unsigned char)((i) & 0xff) ||        \
            block[i][len[i] - 1] != (unsigned char)((i) & 0xff)) { \
            fprintf(stderr, "frag: block %ld changed\n", (long)(i)); \
            exit(1);                                             \
        }                                                        \
        free(block[i]);                                          \
        block[i] = NULL;                                         \
        live--;                                                  \
        live_bytes -= len[i];                                    \
    } while (0)

    for (long i = 0; i < slots; i += 10)
        ALLOC(i, 32 + prog_next(&rng) % 97);
    for (long r = 0; r < rounds; r++) {
        int phase = (int)(r / 5 % 4);
        long target = slots - slots * 6 / 10 * (r % 10) / 9;
        /* Churn: a third of the slots visited, each freed or refilled. */
        for (long k = 0; k < slots / 3; k++) {
            long i = (long)(prog_next(&rng) % (uint64_t)slots);
            if (PINNED(i))
                continue;
            if (block[i] != NULL)
                FREE(i);
            else if (live < target)
                ALLOC(i, draw(phase));
        }
        /* Then to the round's target. */
        while (live > target) {
            long i = (long)(prog_next(&rng) % (uint64_t)slots);
            if (!PINNED(i) && block[i] != NULL)
                FREE(i);
        }
        while (live < target) {
            long i = (long)(prog_next(&rng) % (uint64_t)slots);
            if (block[i] == NULL)
                ALLOC(i, draw(phase));
        }
        if (live_bytes > peak_bytes)
            peak_bytes = live_bytes;
    }
    long final_rss = prog_rss_kb();
    size_t final_bytes = live_bytes;
    printf("slots %ld, rounds %ld, allocations %ld, live %ld blocks, %zu bytes; peak live %zu bytes\n", slots, rounds,
           allocs, live, final_bytes, peak_bytes);
    for (long i = 0; i < slots; i++)
        if (block[i] != NULL)
            FREE(i);
    free(block);
    free(len);
    printf("# final_rss_kb=%ld live_bytes=%zu\n", final_rss, final_bytes);
    return 0;
}
