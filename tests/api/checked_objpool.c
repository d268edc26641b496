/* Checked mode for object pools: one death test per misuse, each in a
 * forked child. With a custom handler the child records every message and
 * the parent asserts exactly one, with the expected text; with the default
 * handler the parent asserts the child aborted and printed the message.
 * Checked mode is switched on through the environment, as a user would. */
#define _GNU_SOURCE 1
#include "check.h"

#include <mpool.h>

#include <dlfcn.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

typedef child_outcome outcome;

static outcome run(void (*scenario)(void), bool custom) { return child_run(scenario, custom, NULL); }

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Asserts one message starting with prefix (and containing extra, if any),
 * a clean exit with the custom handler, and an abort with the default. */
static void expect(const char *what, void (*scenario)(void), const char *prefix, const char *extra)
{
    outcome o = run(scenario, true);
    if (o.messages != 1 || !starts_with(o.first, prefix) || (extra && !strstr(o.first, extra)) ||
        !WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0) {
        fprintf(stderr, "%s (custom handler): %d message(s), first \"%s\", status %d; want one \"%s...\"%s%s\n",
                what, o.messages, o.first, o.status, prefix, extra ? " with " : "", extra ? extra : "");
        check_failures++;
    }
    o = run(scenario, false);
    if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGABRT || !starts_with(o.err, prefix)) {
        fprintf(stderr, "%s (default handler): status %d, stderr \"%s\"; want abort with \"%s...\"\n", what,
                o.status, o.err, prefix);
        check_failures++;
    }
}

static mp_objpool *make(const char *name, size_t size)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = name, .obj_size = size });
    REQUIRE(p != NULL);
    return p;
}

static void double_put(void)
{
    mp_objpool *p = make("dp", 32);
    void *o = mp_objpool_get(p);
    mp_objpool_put(p, o);
    mp_objpool_put(p, o);
    mp_objpool_destroy(p);
}

static void foreign_put(void)
{
    mp_objpool *p = make("fp", 32);
    char *m = malloc(32);
    mp_objpool_put(p, m);
    free(m);
    mp_objpool_destroy(p);
}

static void foreign_free(void)
{
    int on_stack;
    mp_free(&on_stack);
}

static void interior_put(void)
{
    mp_objpool *p = make("ip", 64);
    char *o = mp_objpool_get(p);
    mp_objpool_put(p, o + 8);
    mp_objpool_put(p, o);
    mp_objpool_destroy(p);
}

static void wrong_pool(void)
{
    mp_objpool *a = make("a", 32), *b = make("b", 32);
    void *o = mp_objpool_get(a);
    mp_objpool_put(b, o);
    mp_objpool_put(a, o);
    mp_objpool_destroy(a);
    mp_objpool_destroy(b);
}

static void destroyed_pool(void)
{
    mp_objpool *p = make("gone", 32);
    mp_objpool_destroy(p);
    (void)mp_objpool_get(p);
}

static void write_after_put(void)
{
    setenv("MPOOL_QUARANTINE", "0", 1); /* read at this child's first pool: reuse at once */
    mp_objpool *p = make("wap", 48);
    char *o = mp_objpool_get(p);
    mp_objpool_put(p, o);
    o[5] = 'x'; /* the bug */
    /* Drain the quarantine so o is reused. */
    void *objs[600];
    size_t n = mp_objpool_get_bulk(p, objs, 600);
    mp_objpool_put_bulk(p, objs, n);
    mp_objpool_destroy(p);
}

static void write_past_end(void)
{
    mp_objpool *p = make("wpe", 40);
    char *o = mp_objpool_get(p);
    o[40] = 'x'; /* one past the end */
    mp_objpool_put(p, o);
    mp_objpool_destroy(p);
}

static void leak_abort(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "leaky", .obj_size = 24, .flags = MP_LEAK_ABORT });
    (void)mp_objpool_get(p);
    mp_objpool_destroy(p);
}

static void leak_report(void)
{
    mp_objpool *p = make("leaky", 24);
    (void)mp_objpool_get(p);
    (void)mp_objpool_get(p);
    mp_objpool_destroy(p);
}

/* Objects out in many slabs, the newest of them partly put back: the
 * report counts every one (the walk starts each slab at its first slot). */
static void leak_many_slabs(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "slabs", .obj_size = 1, .align = 4096 });
    void *objs[100];
    for (int i = 0; i < 100; i++)
        objs[i] = mp_objpool_get(p);
    for (int i = 99; i >= 87; i--)
        mp_objpool_put(p, objs[i]);
    mp_objpool_destroy(p);
}

/* Objects taken in bulk are recorded with the caller's site, not a
 * site inside the library. */
static void leak_bulk(void)
{
    mp_objpool *p = make("bulky", 24);
    void *objs[2];
    if (mp_objpool_get_bulk(p, objs, 2) != 2)
        _exit(11);
    mp_objpool_destroy(p);
}

/* Whether the first "allocated at SITE" of a leak report is a place in
 * leak_bulk: "leak_bulk+0x..." when the symbol is visible, else
 * "FILE+0xOFFSET" with OFFSET inside leak_bulk's first 256 bytes. */
static bool first_site_in_leak_bulk(const char *err)
{
    const char *at = strstr(err, "allocated at ");
    if (!at)
        return false;
    at += strlen("allocated at ");
    if (starts_with(at, "leak_bulk+"))
        return true;
    void (*fn)(void) = leak_bulk;
    void *addr;
    memcpy(&addr, &fn, sizeof addr);
    Dl_info info;
    const char *plus = strstr(at, "+0x");
    if (!plus || !dladdr(addr, &info) || !info.dli_fbase)
        return false;
    size_t off = (size_t)strtoull(plus + 3, NULL, 16);
    size_t start = (size_t)((const char *)addr - (const char *)info.dli_fbase);
    return off > start && off < start + 256;
}

/* Objects out of a pool its arena destroys end with the arena, as the
 * arena's own allocations do: no leak at the arena's reset or destroy. */
static void arena_owned(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "request" });
    for (int round = 0; round < 3; round++) {
        mp_objpool *p = mp_objpool_create(a, &(mp_objpool_opts){ .name = "per-request", .obj_size = 24 });
        if (!p || !mp_objpool_get(p))
            _exit(12);
        if (round < 2)
            mp_arena_reset(a);
    }
    mp_arena_destroy(a);
}

static void leak_ignore(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "leaky", .obj_size = 24, .flags = MP_LEAK_IGNORE });
    (void)mp_objpool_get(p);
    mp_objpool_destroy(p);
}

static void clean_use(void)
{
    mp_objpool *p = make("clean", 100);
    for (int round = 0; round < 3; round++) {
        void *objs[1000];
        size_t n = mp_objpool_get_bulk(p, objs, 1000);
        for (size_t i = 0; i < n; i++)
            memset(objs[i], (int)i, 100); /* the whole object, not a byte more */
        mp_objpool_put_bulk(p, objs, n);
    }
    mp_objpool_destroy(p);
}

static size_t visited;

static void count_visit(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    visited++;
}

static void foreach_counts(void)
{
    mp_objpool *p = make("walk", 16);
    void *objs[100];
    size_t n = mp_objpool_get_bulk(p, objs, 100);
    for (size_t i = 0; i < n; i += 2)
        mp_objpool_put(p, objs[i]);
    size_t seen = mp_objpool_foreach(p, count_visit, NULL);
    if (seen != 50 || visited != 50)
        _exit(10);
    for (size_t i = 1; i < n; i += 2)
        mp_objpool_put(p, objs[i]);
    mp_objpool_destroy(p);
}

int main(void)
{
    setenv("MPOOL_CHECK", "1", 1);
    expect("double put", double_put, "mpool: double put: objpool 'dp': ", "freed at ");
    expect("foreign put", foreign_put, "mpool: put of a pointer not from mpool: objpool 'fp': ", NULL);
    expect("foreign mp_free", foreign_free, "mpool: mp_free of a pointer not from an object pool or a heap: ", NULL);
    expect("interior pointer", interior_put, "mpool: put of an interior pointer: objpool 'ip': ", NULL);
    expect("wrong pool", wrong_pool, "mpool: put of a pointer from another pool: objpool 'b': ", NULL);
    expect("destroyed pool", destroyed_pool, "mpool: get from a destroyed or invalid pool: objpool", NULL);
    if (check_tool_attached()) {
        printf("skipped: write after put, write past the end (a memory tool is attached and reports them)\n");
    } else {
        expect("write after put", write_after_put, "mpool: write to a freed object: objpool 'wap': ", "freed at ");
        expect("write past the end", write_past_end, "mpool: write past the end of an object: objpool 'wpe': ",
               "allocated at ");
    }

    /* Leak policies: report prints and goes on; abort aborts; ignore is silent. */
    outcome o = run(leak_report, false);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    CHECK(starts_with(o.err, "mpool: leak: objpool 'leaky': 2 objects (48 bytes) still out at destroy"));
    CHECK(strstr(o.err, "allocated at ") != NULL);
    o = run(leak_report, true);
    CHECK_EQ(o.messages, 1);
    CHECK(starts_with(o.first, "mpool: leak: objpool 'leaky': 2 objects"));
    o = run(leak_abort, false);
    CHECK(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT);
    CHECK(starts_with(o.err, "mpool: leak: objpool 'leaky': 1 object (24 bytes)"));
    o = run(leak_bulk, false);
    CHECK(starts_with(o.err, "mpool: leak: objpool 'bulky': 2 objects (48 bytes) still out at destroy"));
    CHECK(strstr(o.err, "allocated at ") != NULL);
    CHECK(first_site_in_leak_bulk(o.err)); /* the caller of get_bulk, not a place inside it */
    o = run(leak_many_slabs, false);
    CHECK(starts_with(o.err, "mpool: leak: objpool 'slabs': 87 objects (87 bytes) still out at destroy"));
    o = run(leak_ignore, false);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    CHECK_STR_EQ(o.err, "");
    o = run(arena_owned, true);
    CHECK_EQ(o.messages, 0);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);

    /* Correct use says nothing. */
    o = run(clean_use, true);
    CHECK_EQ(o.messages, 0);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    o = run(foreach_counts, true);
    CHECK_EQ(o.messages, 0);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    return check_done();
}
