/* Arena misuse goes to the error handler, never to corruption: one death
 * test per misuse, each in a forked child. With a custom handler the child
 * records every message and the parent asserts exactly one, with the
 * expected text, and a clean exit (the arena stayed consistent and the
 * offending call did nothing); with the default handler the child must
 * abort after printing it. The always-on checks run in the default mode;
 * the checked-mode ones set MPOOL_CHECK=1 in the child, as a user would. */
#define _GNU_SOURCE 1
#include "check.h"

#include <mpool.h>

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "child.h"

typedef child_outcome outcome;

static outcome run(void (*scenario)(void), bool custom, bool checked)
{
    return child_run(scenario, custom, checked ? "1" : "0");
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static void expect(const char *what, void (*scenario)(void), bool checked, const char *prefix, const char *extra)
{
    outcome o = run(scenario, true, checked);
    if (o.messages != 1 || !starts_with(o.first, prefix) || (extra && !strstr(o.first, extra)) ||
        !WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0) {
        fprintf(stderr, "%s (custom handler): %d message(s), first \"%s\", status %d, stderr \"%s\"; want one \"%s...\"%s%s\n",
                what, o.messages, o.first, o.status, o.err, prefix, extra ? " with " : "", extra ? extra : "");
        check_failures++;
    }
    o = run(scenario, false, checked);
    if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGABRT || !starts_with(o.err, prefix)) {
        fprintf(stderr, "%s (default handler): status %d, stderr \"%s\"; want abort with \"%s...\"\n", what,
                o.status, o.err, prefix);
        check_failures++;
    }
}

static mp_arena *make(const char *name)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = name });
    REQUIRE(a != NULL);
    return a;
}

/* After each misuse the arena must still work: allocate, reset, destroy. */
static void still_works(mp_arena *a)
{
    for (int i = 0; i < 100; i++) {
        char *p = mp_alloc(a, 64);
        if (!p)
            _exit(20);
        memset(p, i, 64);
    }
    mp_arena_reset(a);
    if (!mp_alloc(a, 10))
        _exit(21);
    mp_arena_destroy(a);
}

/* ----------------------------------------------------------- always on */

static void free_malloced(void)
{
    mp_arena *a = make("heap");
    (void)mp_alloc(a, 10);
    char *m = malloc(64);
    mp_arena_free(a, m);
    free(m);
    still_works(a);
}

static void free_stack(void)
{
    mp_arena *a = make("stack");
    int local;
    mp_arena_free(a, &local);
    still_works(a);
}

static void free_objpool_object(void)
{
    mp_arena *a = make("op");
    mp_objpool *p = mp_objpool_create(a, &(mp_objpool_opts){ .name = "objs", .obj_size = 32 });
    void *o = mp_objpool_get(p);
    mp_arena_free(a, o);
    mp_objpool_put(p, o);
    still_works(a);
}

static void free_other_arena(void)
{
    mp_arena *a = make("mine"), *b = make("theirs");
    char *p = mp_alloc(b, 40);
    mp_arena_free(a, p); /* p is b's newest: must not roll a's or b's back */
    if (mp_alloc(b, 40) == p)
        _exit(22);
    mp_arena_destroy(b);
    still_works(a);
}

static void free_large_interior(void)
{
    mp_arena *a = make("large");
    char *p = mp_alloc(a, 200000);
    mp_arena_free(a, p + 8);
    mp_arena_free(a, p); /* the real one still works */
    still_works(a);
}

static void free_not_handed_out(void)
{
    mp_arena *a = make("beyond");
    char *p = mp_alloc(a, 40);
    mp_arena_free(a, p + 4096); /* in the block, past everything handed out */
    still_works(a);
}

static void free_big_block_foreign(void)
{
    /* 1 MiB blocks: pointers past the first 64 KiB are found by search. */
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "bigblocks", .block_size = (size_t)1 << 20 });
    char *first = NULL, *p = NULL;
    for (int i = 0; i < 1000; i++) {
        p = mp_alloc(a, 1000);
        first = first ? first : p;
    }
    if (p - first < 200000)
        _exit(23);
    mp_arena_free(a, p); /* newest, far into the block: rolled back */
    if (mp_alloc(a, 1000) != p)
        _exit(24);
    mp_arena_free(a, first + 504000); /* an older one far into the block: found, kept until reset */
    char m[16];
    mp_arena_free(a, m); /* the misuse: not from this arena */
    still_works(a);
}

static mp_arena *reentered;

static void reset_self(void *arg)
{
    (void)arg;
    mp_arena_reset(reentered);
}

static void destroy_self(void *arg)
{
    (void)arg;
    mp_arena_destroy(reentered);
}

static void reset_from_cleanup(void)
{
    reentered = make("reenter");
    mp_cleanup_push(reentered, reset_self, NULL);
    mp_arena_reset(reentered);
    still_works(reentered);
}

static void destroy_from_cleanup(void)
{
    reentered = make("reenter");
    mp_cleanup_push(reentered, destroy_self, NULL);
    mp_arena_reset(reentered);
    still_works(reentered);
}

static mp_arena *doomed_parent;

static void destroy_parent(void *arg)
{
    (void)arg;
    mp_arena_destroy(doomed_parent);
}

/* A child's cleanup destroys the child's parent during the child's reset:
 * the parent goes, the child refuses (the one message) and lives on as a
 * root, no longer charged to the freed parent's limit. */
static void destroy_parent_from_cleanup(void)
{
    doomed_parent = mp_arena_create(NULL, &(mp_arena_opts){ .name = "parent", .limit = (size_t)1 << 20 });
    mp_arena *kid = doomed_parent ? mp_arena_create(doomed_parent, &(mp_arena_opts){ .name = "reenter" }) : NULL;
    if (!kid || !mp_alloc(kid, 100) || mp_cleanup_push(kid, destroy_parent, NULL) != 0)
        _exit(30);
    mp_arena_reset(kid);
    if (!report_has_root("arena reenter"))
        _exit(31); /* lost to mp_report */
    still_works(kid);
}

/* ------------------------------------------------------------- checked */

static void use_after_destroy(void)
{
    mp_arena *a = make("gone");
    mp_arena_destroy(a);
    if (mp_alloc(a, 10) != NULL)
        _exit(25);
}

static void double_destroy(void)
{
    mp_arena *a = make("twice");
    mp_arena_destroy(a);
    mp_arena_destroy(a);
}

static void reset_after_destroy(void)
{
    mp_arena *a = make("gone");
    mp_arena_destroy(a);
    mp_arena_reset(a);
}

static void double_free(void)
{
    mp_arena *a = make("df");
    char *p = mp_alloc(a, 40);
    (void)mp_alloc(a, 40);
    mp_arena_free(a, p);
    mp_arena_free(a, p);
    still_works(a);
}

static void interior_small(void)
{
    mp_arena *a = make("interior");
    char *p = mp_alloc(a, 40);
    (void)mp_alloc(a, 40);
    mp_arena_free(a, p + 8);
    still_works(a);
}

static void write_past_end_free(void)
{
    mp_arena *a = make("wpe");
    char *p = mp_alloc(a, 40);
    p[40] = 'x';
    mp_arena_free(a, p);
    still_works(a);
}

static void write_past_end_reset(void)
{
    mp_arena *a = make("wpe");
    char *p = mp_alloc_unaligned(a, 13);
    p[14] = 'x';
    mp_arena_reset(a);
    still_works(a);
}

static void write_after_reset(void)
{
    mp_arena *a = make("war");
    char *p = mp_alloc(a, 64);
    mp_arena_reset(a);
    p[10] = 'x';               /* the bug */
    (void)mp_alloc(a, 64);     /* the same place again: the fill is checked */
    mp_arena_destroy(a);
}

static void write_after_rollback(void)
{
    mp_arena *a = make("wafr");
    char *p = mp_alloc(a, 64);
    mp_arena_free(a, p);
    p[63] = 'x';
    (void)mp_alloc(a, 64);
    mp_arena_destroy(a);
}

static void write_after_rollback_ts(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "wafr-ts", .flags = MP_THREADSAFE });
    char *p = mp_alloc(a, 64);
    mp_arena_free(a, p);
    p[3] = 'x';
    (void)mp_alloc(a, 64);
    mp_arena_destroy(a);
}

static void write_to_freed(void)
{
    mp_arena *a = make("wtf");
    char *p = mp_alloc(a, 64);
    (void)mp_alloc(a, 64);
    mp_arena_free(a, p); /* not the newest: stays, filled */
    p[0] = 'x';
    mp_arena_reset(a);
    still_works(a);
}

static void clean_use(void)
{
    mp_arena *a = make("clean");
    mp_arena *c = mp_arena_create(a, &(mp_arena_opts){ .name = "child", .flags = MP_THREADSAFE | MP_ZERO });
    for (int round = 0; round < 3; round++) {
        char *keep[300];
        for (int i = 0; i < 300; i++) {
            size_t size = 1 + (size_t)(i * 37) % 3000;
            keep[i] = i % 3 ? mp_alloc(a, size) : mp_alloc_unaligned(c, size);
            memset(keep[i], i, size);
            if (i % 5 == 0)
                mp_arena_free(i % 3 ? a : c, keep[i]);
        }
        char *big = mp_alloc(a, 100000);
        memset(big, 1, 100000);
        mp_arena_free(a, big);
        mp_printf(a, "%s %d", "round", round);
        mp_arena_reset(a);
        c = mp_arena_create(a, &(mp_arena_opts){ .name = "child", .flags = MP_THREADSAFE | MP_ZERO });
    }
    mp_arena_destroy(a);
}

int main(void)
{
    expect("malloc'd pointer", free_malloced, false, "mpool: free of a pointer not from this arena: arena 'heap': ", NULL);
    expect("stack pointer", free_stack, false, "mpool: free of a pointer not from this arena: arena 'stack': ", NULL);
    expect("object pool object", free_objpool_object, false, "mpool: free of a pointer from another pool: arena 'op': ",
           ": it is from objpool 'objs'");
    expect("other arena", free_other_arena, false, "mpool: free of a pointer from another arena: arena 'mine': ",
           ": it is from arena 'theirs'");
    expect("large interior", free_large_interior, false, "mpool: free of an interior pointer: arena 'large': ", NULL);
    expect("not handed out", free_not_handed_out, false, "mpool: free of a pointer not handed out: arena 'beyond': ", NULL);
    expect("big block search", free_big_block_foreign, false, "mpool: free of a pointer not from this arena: arena 'bigblocks': ", NULL);
    expect("reset from cleanup", reset_from_cleanup, false, "mpool: reset of an arena during its own reset or destroy: arena 'reenter'", NULL);
    expect("destroy from cleanup", destroy_from_cleanup, false, "mpool: destroy of an arena during its own reset or destroy: arena 'reenter'", NULL);
    expect("parent destroyed from cleanup", destroy_parent_from_cleanup, false, "mpool: destroy of an arena during its own reset or destroy: arena 'reenter'", NULL);

    expect("use after destroy", use_after_destroy, true, "mpool: allocation from a destroyed or invalid arena: arena", NULL);
    expect("double destroy", double_destroy, true, "mpool: destroy of a destroyed or invalid arena: arena", NULL);
    expect("reset after destroy", reset_after_destroy, true, "mpool: reset of a destroyed or invalid arena: arena", NULL);
    expect("double free", double_free, true, "mpool: double free: arena 'df': ", "freed at ");
    expect("interior small", interior_small, true, "mpool: free of a pointer that is not an allocation: arena 'interior': ", NULL);
    if (check_tool_attached()) {
        printf("skipped: writes past the end, after reset and to freed memory (a memory tool is attached and reports them)\n");
    } else {
        expect("write past the end (free)", write_past_end_free, true, "mpool: write past the end of an allocation: arena 'wpe': ", "allocated at ");
        expect("write past the end (reset)", write_past_end_reset, true, "mpool: write past the end of an allocation: arena 'wpe': ", "allocated at ");
        expect("write after reset", write_after_reset, true, "mpool: write to arena memory after reset or free: arena 'war': ", NULL);
        expect("write after rollback", write_after_rollback, true, "mpool: write to arena memory after reset or free: arena 'wafr': ", NULL);
        expect("write after rollback (threadsafe)", write_after_rollback_ts, true, "mpool: write to arena memory after reset or free: arena 'wafr-ts': ", NULL);
        expect("write to freed", write_to_freed, true, "mpool: write to a freed allocation: arena 'wtf': ", "freed at ");
    }
    for (int checked = 0; checked < 2; checked++) {
        outcome o = run(clean_use, true, checked);
        CHECK_EQ(o.messages, 0);
        CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
        if (o.messages)
            fprintf(stderr, "clean use (checked %d): \"%s\"\n", checked, o.first);
    }
    return check_done();
}
