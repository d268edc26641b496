/* Generational handles in checked mode (MPOOL_CHECK=1, set as a user
 * would): each scenario in a forked child, as checked_objpool.c does.
 *   - deref, handle and put_handle with a destroyed pool (checked mode
 *     keeps it, so the use is seen): one report each, NULL/0 and nothing
 *     put;
 *   - a double put of a handle pool's object: checked mode's own report,
 *     with the sites;
 *   - correct use (handles through the quarantine, bulk calls, foreach)
 *     says nothing, and a put object's handle is stale while the object
 *     waits in the quarantine. */
#define _GNU_SOURCE 1
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>

#include "child.h"

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* One report starting with prefix (and holding extra), then a clean exit,
 * with the recording handler; an abort with it on stderr with the default. */
static void expect(const char *what, void (*scenario)(void), const char *prefix, const char *extra)
{
    child_outcome o = child_run(scenario, true, NULL);
    if (o.messages != 1 || !starts_with(o.first, prefix) || (extra && !strstr(o.first, extra)) ||
        !WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0) {
        fprintf(stderr, "%s (custom handler): %d message(s), first \"%s\", status %d; want one \"%s...\"\n", what,
                o.messages, o.first, o.status, prefix);
        check_failures++;
    }
    o = child_run(scenario, false, NULL);
    if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGABRT || !starts_with(o.err, prefix)) {
        fprintf(stderr, "%s (default handler): status %d, stderr \"%s\"; want abort with \"%s...\"\n", what, o.status,
                o.err, prefix);
        check_failures++;
    }
}

static mp_objpool *make(const char *name)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = name, .obj_size = 48, .flags = MP_HANDLES });
    if (!p)
        _exit(20);
    return p;
}

static mp_objpool *gone_pool(mp_handle *h, void **obj)
{
    mp_objpool *p = make("gone");
    *obj = mp_objpool_get(p);
    *h = mp_objpool_handle(p, *obj);
    if (!*h || mp_objpool_deref(p, *h) != *obj)
        _exit(21);
    mp_objpool_put(p, *obj);
    mp_objpool_destroy(p);
    return p;
}

static void deref_destroyed(void)
{
    mp_handle h;
    void *o;
    mp_objpool *p = gone_pool(&h, &o);
    errno = 0;
    if (mp_objpool_deref(p, h) != NULL || errno != EINVAL)
        _exit(22);
}

static void handle_destroyed(void)
{
    mp_handle h;
    void *o;
    mp_objpool *p = gone_pool(&h, &o);
    errno = 0;
    if (mp_objpool_handle(p, o) != 0 || errno != EINVAL)
        _exit(23);
}

static void put_handle_destroyed(void)
{
    mp_handle h;
    void *o;
    mp_objpool *p = gone_pool(&h, &o);
    mp_objpool_put_handle(p, h);
}

static void double_put(void)
{
    mp_objpool *p = make("dp");
    void *o = mp_objpool_get(p);
    mp_handle h = mp_objpool_handle(p, o);
    mp_objpool_put_handle(p, h);
    mp_objpool_put(p, o);
    mp_objpool_destroy(p);
}

static size_t visited;
static void visit(void *obj, void *arg)
{
    mp_objpool *p = arg;
    if (mp_objpool_deref(p, mp_objpool_handle(p, obj)) != obj)
        _exit(30);
    visited++;
}

static void clean_use(void)
{
    mp_objpool *p = make("clean");
    for (int round = 0; round < 3; round++) {
        void *objs[600];
        mp_handle hs[600];
        size_t n = mp_objpool_get_bulk(p, objs, 600);
        if (n != 600)
            _exit(31);
        for (size_t i = 0; i < n; i++) {
            memset(objs[i], (int)i, 48);
            hs[i] = mp_objpool_handle(p, objs[i]);
        }
        visited = 0;
        if (mp_objpool_foreach(p, visit, p) != 600 || visited != 600)
            _exit(32);
        for (size_t i = 0; i < n; i += 2)
            mp_objpool_put_handle(p, hs[i]);
        mp_objpool_put(p, objs[1]);
        for (size_t i = 3; i < n; i += 2)
            mp_free(objs[i]);
        for (size_t i = 0; i < n; i++) /* most wait in the quarantine */
            if (mp_objpool_deref(p, hs[i]) != NULL || errno != ESTALE)
                _exit(33);
    }
    mp_objpool_destroy(p);
}

int main(void)
{
    setenv("MPOOL_CHECK", "1", 1);
    expect("deref in a destroyed pool", deref_destroyed, "mpool: deref in a destroyed or invalid pool: objpool", NULL);
    expect("handle in a destroyed pool", handle_destroyed, "mpool: handle in a destroyed or invalid pool: objpool",
           NULL);
    expect("put_handle to a destroyed pool", put_handle_destroyed,
           "mpool: put to a destroyed or invalid pool: objpool", NULL);
    expect("double put", double_put, "mpool: double put: objpool 'dp': ", "freed at ");
    child_outcome o = child_run(clean_use, true, NULL);
    CHECK_EQ(o.messages, 0);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    if (o.messages)
        fprintf(stderr, "clean use: \"%s\"\n", o.first);
    return check_done();
}
