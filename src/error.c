/*
 * error.c - layer 0 (services): the error handler, misuse and leak
 * messages, mp_version. The default handler is the only place the library
 * writes to stderr on its own.
 */
#include "common.h"
#include "error.h"
#include "sync.h"

#include <stdatomic.h>
#include <stdio.h>

#define MP_STR2(x) #x
#define MP_STR(x) MP_STR2(x)

const char *mp_version(void)
{
    return MP_STR(MP_VERSION_MAJOR) "." MP_STR(MP_VERSION_MINOR) "." MP_STR(MP_VERSION_PATCH);
}

static void default_handler(const char *msg, const void *ptr, void *arg)
{
    (void)ptr;
    (void)arg;
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    abort();
}

/* The handler and its argument change together under this lock; misuse
 * reports read both under it so a concurrent change cannot mix them. */
static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static mp_error_fn *handler = default_handler;
static void *handler_arg;

void mp_set_error_handler(mp_error_fn *fn, void *arg)
{
    mp__lock(&handler_lock);
    handler = fn ? fn : default_handler;
    handler_arg = fn ? arg : NULL;
    mp__unlock(&handler_lock);
}

void mp__misuse(const char *check, const char *kind, const char *name, const void *ptr)
{
    mp__misuse_detail(check, kind, name, ptr, NULL);
}

void mp__misuse_detail(const char *check, const char *kind, const char *name, const void *ptr, const char *detail)
{
    char msg[640];
    int n;
    if (kind)
        n = snprintf(msg, sizeof msg, "mpool: %s: %s '%s': %p", check, kind, name ? name : "", ptr);
    else
        n = snprintf(msg, sizeof msg, "mpool: %s: %p", check, ptr);
    if (detail && n > 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, ": %s", detail);
    mp__lock(&handler_lock);
    mp_error_fn *fn = handler;
    void *arg = handler_arg;
    mp__unlock(&handler_lock);
    fn(msg, ptr, arg);
}

mp__leak_policy mp__leak_policy_of(unsigned flags)
{
    if (flags & MP_LEAK_IGNORE)
        return MP__LEAK_IGNORE;
    return (flags & MP_LEAK_ABORT) ? MP__LEAK_ABORT : MP__LEAK_REPORT;
}

void mp__leak(mp__leak_policy policy, const char *text, const void *ptr)
{
    if (policy == MP__LEAK_IGNORE)
        return;
    mp__lock(&handler_lock);
    mp_error_fn *fn = handler;
    void *arg = handler_arg;
    mp__unlock(&handler_lock);
    if (fn == default_handler && policy == MP__LEAK_REPORT) {
        fprintf(stderr, "%s\n", text);
        fflush(stderr);
        return;
    }
    fn(text, ptr, arg);
    if (policy == MP__LEAK_ABORT)
        abort();
}
