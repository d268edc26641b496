/*
 * error.h - layer 0 (services): the one error path for misuse.
 *
 * mp__misuse() formats "mpool: <check>: <kind> '<name>': <ptr>" and passes it
 * to the handler set by mp_set_error_handler() (default: print one line to
 * stderr, abort). If a custom handler returns, so does mp__misuse(), and the
 * caller must leave the pool consistent and do nothing further.
 */
#ifndef MP_ERROR_H
#define MP_ERROR_H

#include "common.h"

MP_COLD void mp__misuse(const char *check, const char *kind, const char *name, const void *ptr);
/* The same, with a detail appended: "...: <ptr>: <detail>". */
MP_COLD void mp__misuse_detail(const char *check, const char *kind, const char *name, const void *ptr,
                               const char *detail);

/* Leak policies (the MP_LEAK_* flags of a pool). */
typedef enum mp__leak_policy { MP__LEAK_REPORT, MP__LEAK_ABORT, MP__LEAK_IGNORE } mp__leak_policy;
mp__leak_policy mp__leak_policy_of(unsigned flags);
/* Reports a leak (text may hold several lines). REPORT: the default handler
 * prints it and returns, a custom handler is called with it. ABORT: as
 * misuse, then abort() even if the handler returns. */
MP_COLD void mp__leak(mp__leak_policy policy, const char *text, const void *ptr);

#endif /* MP_ERROR_H */
