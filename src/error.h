/*
 * error.h - the one error path for misuse (layer 6, debug).
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

#endif /* MP_ERROR_H */
