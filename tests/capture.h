/*
 * capture.h - a report as a string, for the tests that read what mp_report
 * or mp_report_json print. open_memstream is POSIX 2008: define
 * _POSIX_C_SOURCE 200809L (or _GNU_SOURCE) before the first include.
 */
#ifndef MP_TEST_CAPTURE_H
#define MP_TEST_CAPTURE_H

#include "check.h"

#include <mpool.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What fn(stream, root) prints, NUL-terminated; the caller frees it. */
static inline char *capture(void (*fn)(FILE *, const mp_arena *), const mp_arena *root)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f != NULL);
    fn(f, root);
    REQUIRE(fclose(f) == 0);
    return buf;
}

/* True when mp_report lists a root (unindented) line for the pool `label`,
 * kind and name: "objpool packets". */
static inline bool report_has_root(const char *label)
{
    char *rep = capture(mp_report, NULL), line[128];
    snprintf(line, sizeof line, "\n%s ", label);
    bool found = strncmp(rep, line + 1, strlen(line + 1)) == 0 || strstr(rep, line) != NULL;
    free(rep);
    return found;
}

#endif /* MP_TEST_CAPTURE_H */
