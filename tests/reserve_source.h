/* reserve_source.h - the counting source the reserve tests hand to
 * mp_reserve_create (.alloc = src_alloc, .free = src_free, .src = &s), for
 * tests where one thread at a time uses it.
 *
 * It makes elements with malloc, remembers the ones it has out (so a double
 * or foreign give-back shows in bad_frees), and fails on demand: every call
 * while `fail` is set, its fail_at-th call (1 = the first), or, with
 * `persistent`, every call from the fail_at-th on. A failing call leaves
 * errno = fail_errno (0 unless set: the reserve must report ENOMEM
 * whatever the source leaves). It also fails once SRC_MAX are out. */
#ifndef RESERVE_SOURCE_H
#define RESERVE_SOURCE_H

#include "check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

enum { SRC_MAX = 256 };

typedef struct source {
    size_t size;      /* bytes per element; 0: 32 */
    size_t calls;     /* alloc calls */
    size_t frees;     /* elements given back */
    size_t live;      /* elements made and not given back */
    bool fail;        /* every call fails */
    size_t fail_at;   /* this call fails; 0: none */
    bool persistent;  /* with fail_at: every call from it on fails */
    int fail_errno;   /* errno a failing call leaves */
    size_t bad_frees; /* give-backs of elements it did not have out */
    void *out[SRC_MAX];
} source;

static inline void *src_alloc(void *arg)
{
    source *s = arg;
    s->calls++;
    bool at = s->fail_at && (s->calls == s->fail_at || (s->persistent && s->calls > s->fail_at));
    if (s->fail || at || s->live == SRC_MAX) {
        errno = s->fail_errno;
        return NULL;
    }
    void *e = malloc(s->size ? s->size : 32);
    REQUIRE(e != NULL);
    s->out[s->live++] = e;
    return e;
}

static inline void src_free(void *elem, void *arg)
{
    source *s = arg;
    for (size_t i = 0; i < s->live; i++) {
        if (s->out[i] == elem) {
            s->out[i] = s->out[--s->live];
            s->frees++;
            free(elem);
            return;
        }
    }
    fprintf(stderr, "source: give-back of %p, which it does not have out\n", elem);
    s->bad_frees++;
}

/* True when the source has e out. */
static inline bool src_has(const source *s, const void *e)
{
    for (size_t i = 0; i < s->live; i++)
        if (s->out[i] == e)
            return true;
    return false;
}

#endif /* RESERVE_SOURCE_H */
