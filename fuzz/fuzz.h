/*
 * fuzz.h - what the libFuzzer targets share: reading operations from the
 * input, the error handler that records misuse instead of aborting, the
 * content patterns, and the check that stops the run with a message.
 *
 * Each target reads its input as a sequence of operations (one byte picks
 * the operation, the next bytes its arguments; a finished input reads as
 * zeros, so every input is a valid program), applies them to the library
 * and to a shadow model of what the library must then hold, and checks
 * the two agree: contents, statistics, the tree in mp_report_json. A
 * disagreement is a bug: FZ_CHECK prints what differed and aborts, which
 * libFuzzer reports as a crash with the input that caused it.
 *
 * Checked mode is decided once per process, at the first pool: the targets
 * built as *_checked set MPOOL_CHECK=1 in LLVMFuzzerInitialize; the plain
 * ones follow the environment (MPOOL_CHECK=1 ./fuzz_objpool works too).
 */
#ifndef MP_FUZZ_H
#define MP_FUZZ_H

#define _GNU_SOURCE 1
#include <mpool.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* ------------------------------------------------------------- failing */

#define FZ_CHECK(cond, ...)                                                                       \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: FZ_CHECK failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

/* ---------------------------------------------------------------- input */

typedef struct fz_input {
    const uint8_t *p, *end;
} fz_input;

static inline bool fz_more(const fz_input *in) { return in->p < in->end; }

static inline uint8_t fz_u8(fz_input *in) { return in->p < in->end ? *in->p++ : 0; }

static inline uint16_t fz_u16(fz_input *in)
{
    uint16_t v = fz_u8(in);
    return (uint16_t)(v | fz_u8(in) << 8);
}

static inline uint32_t fz_u32(fz_input *in)
{
    uint32_t v = fz_u16(in);
    return v | (uint32_t)fz_u16(in) << 16;
}

/* A value in [0, n), n > 0. */
static inline size_t fz_below(fz_input *in, size_t n) { return n <= 256 ? fz_u8(in) % n : fz_u32(in) % n; }

/* ------------------------------------------------------- misuse record */

/* Messages the library sent to the error handler since fz_expect_none. */
static int fz_messages;
static char fz_first[512];

static void fz_handler(const char *msg, const void *ptr, void *arg)
{
    (void)ptr;
    (void)arg;
    if (fz_messages++ == 0)
        snprintf(fz_first, sizeof fz_first, "%s", msg);
}

static inline void fz_expect_none(void)
{
    fz_messages = 0;
    fz_first[0] = '\0';
}

/* After a call that must have reported nothing. */
static inline void fz_reported_nothing(const char *what)
{
    FZ_CHECK(fz_messages == 0, "%s reported %d message(s), the first: %s", what, fz_messages, fz_first);
}

/* After a call that must have reported misuse, its message beginning with
 * one of the prefixes given (NULL-terminated). */
static inline void fz_reported(const char *what, ...)
{
    FZ_CHECK(fz_messages >= 1, "%s reported nothing", what);
    va_list ap;
    va_start(ap, what);
    bool match = false;
    for (const char *pre; !match && (pre = va_arg(ap, const char *)) != NULL;)
        match = strncmp(fz_first, pre, strlen(pre)) == 0;
    va_end(ap);
    FZ_CHECK(match, "%s reported an unexpected message: %s", what, fz_first);
    fz_expect_none();
}

/* ------------------------------------------------------------- set-up */

static bool fz_checked; /* the pools of this process are checked */

static inline void fz_setup(void)
{
#ifdef FZ_CHECKED
    setenv("MPOOL_CHECK", "1", 1);
#endif
    /* A short quarantine: it is exercised, and a put object comes back
     * within a few operations. */
    setenv("MPOOL_QUARANTINE", "4", 0);
    const char *c = getenv("MPOOL_CHECK");
    fz_checked = c && strcmp(c, "1") == 0;
    mp_set_error_handler(fz_handler, NULL);
}

/* ----------------------------------------------------------- contents */

/* The byte at offset i of an object stamped with tag. */
static inline unsigned char fz_pattern(uint32_t tag, size_t i)
{
    uint32_t x = tag * 2654435761u + (uint32_t)i * 40503u;
    return (unsigned char)(x >> 24 ^ x >> 7);
}

/* The next offset stamped after i in an object of n bytes: all of a small
 * object; of a big one, the first and last 2 KiB and every 4 KiB in
 * between (each page it spans is touched). */
static inline size_t fz_next(size_t n, size_t i)
{
    i++;
    if (n <= 4096 || i < 2048 || i >= n - 2048 || i % 4096 == 0)
        return i;
    size_t page = (i + 4095) / 4096 * 4096;
    return page < n - 2048 ? page : n - 2048;
}

static inline void fz_fill(void *p, size_t n, uint32_t tag)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i = fz_next(n, i))
        b[i] = fz_pattern(tag, i);
}

/* The first offset where p does not hold its stamp, or n. */
static inline size_t fz_damaged_at(const void *p, size_t n, uint32_t tag)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i = fz_next(n, i))
        if (b[i] != fz_pattern(tag, i))
            return i;
    return n;
}

static inline void fz_verify(const void *p, size_t n, uint32_t tag, const char *what)
{
    size_t at = fz_damaged_at(p, n, tag);
    FZ_CHECK(at == n, "%s %p (%zu bytes, tag %u) damaged at offset %zu: %#x, expected %#x", what, p, n, tag, at,
             ((const unsigned char *)p)[at], fz_pattern(tag, at));
}

static inline bool fz_all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* ------------------------------------------------------------- reports */

/* The tree of mp_report_json(NULL: every root), as json_outline lists it;
 * the report must be valid JSON. */
static inline void fz_outline(char *out, size_t cap)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    FZ_CHECK(f != NULL, "open_memstream");
    mp_report_json(f, NULL);
    FZ_CHECK(fclose(f) == 0, "fclose");
    bool ok = json_outline(buf, out, cap);
    FZ_CHECK(ok, "mp_report_json printed invalid JSON (%s): %s", out, buf);
    free(buf);
}

/* Appends to a bounded string. */
static inline void fz_append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

#endif /* MP_FUZZ_H */
