/*
 * programs.h - what the programs of bench/run --programs share: allocation
 * that exits on failure (a benchmark that runs out of memory has no result
 * to give), a small deterministic generator, and the resident set size.
 * These programs use malloc and nothing of mpool: they measure whichever
 * allocator the process has, usually one loaded with LD_PRELOAD.
 */
#ifndef MPBENCH_PROGRAMS_H
#define MPBENCH_PROGRAMS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void prog_oom(void)
{
    fprintf(stderr, "out of memory\n");
    exit(3);
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        prog_oom();
    return p;
}

static inline void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        prog_oom();
    return p;
}

static inline void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        prog_oom();
    return p;
}

static inline char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        prog_oom();
    return p;
}

/* A 64-bit LCG; the high bits are the random ones. */
static inline uint64_t prog_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 29;
}

/* Resident memory now, in KiB (0 if /proc is not there). */
static inline long prog_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * 4;
}

#endif
