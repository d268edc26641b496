/* Checked mode for reserves: one scenario per misuse, each in a forked
 * child. With a custom handler the child records every message and checks
 * the reserve stayed consistent (the offending call did nothing else: the
 * level, the counters and the source are as before), exiting non-zero if
 * not; the parent asserts exactly one message with the expected words.
 * With the default handler the parent asserts the child aborted and
 * printed the message. Checked mode is switched on through the
 * environment, as a user would, before any pool exists.
 *
 *   - a double free (the element sitting in the reserve): "double";
 *   - a double free after the element went back to the source;
 *   - a write to an element while it sits in the reserve;
 *   - a free of an element this reserve never handed out (malloc'd, or
 *     another reserve's);
 *   - alloc, free, destroy on a destroyed reserve;
 *   - destroy with elements out: a leak report ("leak"), nothing with
 *     MP_LEAK_IGNORE, abort with MP_LEAK_ABORT;
 *   - correct use says nothing. */
#define _GNU_SOURCE 1
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
/* The counting source (src_alloc, src_free, src_has): */
#include "reserve_source.h"

typedef child_outcome outcome;

static outcome run(void (*scenario)(void), bool custom) { return child_run(scenario, custom, NULL); }

static mp_reserve *make(const char *name, size_t min, source *s, unsigned flags)
{
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = name, .min_reserved = min,
                                                                .alloc = src_alloc, .free = src_free, .src = s,
                                                                .flags = flags });
    if (!r)
        _exit(91);
    return r;
}

/* ------------------------------------------------------- in the child */

/* A failed expectation inside a child: say what, exit with code. */
#define CHILD_EXPECT(cond, code)                                                           \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "child, line %d: %s does not hold\n", __LINE__, #cond);      \
            _exit(code);                                                                   \
        }                                                                                  \
    } while (0)

static mp_stats stats_of(const mp_reserve *r)
{
    mp_stats s;
    CHILD_EXPECT(mp_reserve_stats(r, &s) == 0, 92);
    return s;
}

/* The counters a refused call must not change. */
static bool same(mp_stats a, mp_stats b)
{
    return a.allocs == b.allocs && a.frees == b.frees && a.objects_in_use == b.objects_in_use &&
           a.reserve_level == b.reserve_level && a.reserve_min == b.reserve_min && a.reserve_used == b.reserve_used;
}

/* ---------------------------------------------------------- scenarios */

/* The first free put the element into the reserve; the second is a
 * double free and must not put it there twice. */
static void double_free(void)
{
    source s = { 0 };
    mp_reserve *r = make("dbl", 2, &s, 0);
    s.fail = true;
    void *e = mp_reserve_alloc(r, 0);
    CHILD_EXPECT(e != NULL, 10);
    mp_reserve_free(r, e);
    mp_stats before = stats_of(r);
    mp_reserve_free(r, e); /* the bug */
    CHILD_EXPECT(same(before, stats_of(r)), 11);
    CHILD_EXPECT(stats_of(r).reserve_level == 2, 12);
    /* Two elements, not three: the reserve holds e once. */
    void *a = mp_reserve_alloc(r, 0), *b = mp_reserve_alloc(r, 0);
    CHILD_EXPECT(a && b && a != b, 13);
    errno = 0;
    CHILD_EXPECT(mp_reserve_alloc(r, 0) == NULL && errno == ENOMEM, 14);
    mp_reserve_free(r, a);
    mp_reserve_free(r, b);
    mp_reserve_destroy(r);
    CHILD_EXPECT(s.live == 0 && s.bad_frees == 0, 15);
}

/* A write through a stale pointer to an element sitting in the reserve
 * (elem_size known: checked mode fills it) is found when the element comes
 * out again; it is handed out all the same. */
static void write_after_free(void)
{
    source s = { 0 };
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "stale", .min_reserved = 1, .elem_size = 32,
                                                                 .alloc = src_alloc, .free = src_free, .src = &s });
    CHILD_EXPECT(r != NULL, 10);
    s.fail = true;
    char *e = mp_reserve_alloc(r, 0);
    CHILD_EXPECT(e != NULL, 11);
    mp_reserve_free(r, e); /* back into the reserve */
    e[5] = 1;              /* the bug */
    char *again = mp_reserve_alloc(r, 0);
    CHILD_EXPECT(again == e, 12);
    mp_reserve_free(r, again);
    s.fail = false;
    mp_reserve_destroy(r);
    CHILD_EXPECT(s.live == 0 && s.bad_frees == 0, 13);
}

/* The first free gave the element back to the source (the reserve was
 * full); the second must not reach the source. */
static void double_free_after_source(void)
{
    source s = { 0 };
    mp_reserve *r = make("dbl-src", 2, &s, 0);
    void *e = mp_reserve_alloc(r, 0); /* from the source */
    CHILD_EXPECT(e != NULL, 10);
    mp_reserve_free(r, e);
    CHILD_EXPECT(s.live == 2 && s.frees == 1, 11);
    mp_stats before = stats_of(r);
    mp_reserve_free(r, e); /* the bug */
    CHILD_EXPECT(same(before, stats_of(r)), 12);
    CHILD_EXPECT(s.bad_frees == 0 && s.frees == 1 && s.live == 2, 13);
    mp_reserve_destroy(r);
    CHILD_EXPECT(s.live == 0 && s.bad_frees == 0, 14);
}

/* A pointer the reserve never handed out, with the reserve below min
 * (where a free would go into the reserve). */
static void foreign_free(void)
{
    source s = { 0 };
    mp_reserve *r = make("foreign", 2, &s, 0);
    s.fail = true;
    void *e = mp_reserve_alloc(r, 0);
    CHILD_EXPECT(e != NULL, 10);
    char *m = malloc(32);
    CHILD_EXPECT(m != NULL, 90);
    mp_stats before = stats_of(r);
    mp_reserve_free(r, m); /* the bug */
    CHILD_EXPECT(same(before, stats_of(r)), 11);
    CHILD_EXPECT(stats_of(r).reserve_level == 1, 12);
    CHILD_EXPECT(s.bad_frees == 0 && s.live == 2, 13);
    errno = 0;
    void *x = mp_reserve_alloc(r, 0); /* the one it holds, never m */
    CHILD_EXPECT(x != NULL && x != (void *)m, 14);
    errno = 0;
    CHILD_EXPECT(mp_reserve_alloc(r, 0) == NULL && errno == ENOMEM, 15);
    free(m);
    mp_reserve_free(r, x);
    mp_reserve_free(r, e);
    mp_reserve_destroy(r);
    CHILD_EXPECT(s.live == 0 && s.bad_frees == 0, 16);
}

/* Another reserve's element. */
static void wrong_reserve(void)
{
    source sa = { 0 }, sb = { 0 };
    mp_reserve *a = make("mine", 2, &sa, 0), *b = make("theirs", 2, &sb, 0);
    sa.fail = sb.fail = true;
    void *ea = mp_reserve_alloc(a, 0), *eb = mp_reserve_alloc(b, 0);
    CHILD_EXPECT(ea && eb, 10);
    mp_stats before = stats_of(a);
    mp_reserve_free(a, eb); /* the bug */
    CHILD_EXPECT(same(before, stats_of(a)), 11);
    CHILD_EXPECT(sa.bad_frees == 0 && sb.bad_frees == 0, 12);
    mp_reserve_free(b, eb);
    mp_reserve_free(a, ea);
    mp_reserve_destroy(a);
    mp_reserve_destroy(b);
    CHILD_EXPECT(sa.live == 0 && sb.live == 0 && sa.bad_frees == 0 && sb.bad_frees == 0, 13);
}

static void destroyed_alloc(void)
{
    source s = { 0 };
    mp_reserve *r = make("gone-a", 2, &s, 0);
    mp_reserve_destroy(r);
    CHILD_EXPECT(s.live == 0, 10);
    size_t calls = s.calls;
    void *e = mp_reserve_alloc(r, 0); /* the bug */
    CHILD_EXPECT(e == NULL, 11);
    CHILD_EXPECT(s.calls == calls && s.live == 0, 12); /* the source was not asked */
}

static void destroyed_free(void)
{
    source s = { 0 };
    mp_reserve *r = make("gone-f", 2, &s, MP_LEAK_IGNORE);
    void *e = mp_reserve_alloc(r, 0);
    CHILD_EXPECT(e != NULL, 10);
    mp_reserve_destroy(r);
    CHILD_EXPECT(s.live == 1, 11);
    mp_reserve_free(r, e); /* the bug */
    CHILD_EXPECT(s.live == 1 && s.bad_frees == 0, 12);
    src_free(e, &s); /* what the caller should have done */
    CHILD_EXPECT(s.live == 0 && s.bad_frees == 0, 13);
}

static void destroyed_destroy(void)
{
    source s = { 0 };
    mp_reserve *r = make("gone-d", 3, &s, 0);
    mp_reserve_destroy(r);
    mp_reserve_destroy(r); /* the bug */
    CHILD_EXPECT(s.live == 0 && s.frees == 3 && s.bad_frees == 0, 10);
}

/* Two elements out at destroy: one from the source, one from the reserve. */
static void leak_with(unsigned flags)
{
    source s = { 0 };
    mp_reserve *r = make("leaky", 2, &s, flags);
    void *a = mp_reserve_alloc(r, 0);
    s.fail = true;
    void *b = mp_reserve_alloc(r, 0);
    CHILD_EXPECT(a && b, 10);
    mp_reserve_destroy(r);
    CHILD_EXPECT(s.live == 2, 11);
    src_free(a, &s);
    src_free(b, &s);
    CHILD_EXPECT(s.live == 0 && s.bad_frees == 0, 12);
}

static void leak_report(void) { leak_with(0); }
static void leak_ignore(void) { leak_with(MP_LEAK_IGNORE); }
static void leak_abort(void) { leak_with(MP_LEAK_ABORT); }

static void clean_use(void)
{
    source s = { 0 };
    mp_reserve *r = make("clean", 4, &s, 0);
    void *e[8];
    for (int round = 0; round < 3; round++) {
        s.fail = round == 1;
        size_t min = stats_of(r).reserve_min, n = 0;
        while (n < 8 && (e[n] = mp_reserve_alloc(r, 0)) != NULL)
            n++;
        CHILD_EXPECT(n == (s.fail ? min : 8u), 10);
        CHILD_EXPECT(mp_reserve_resize(r, round + 2) == 0 || s.fail, 11);
        for (size_t i = 0; i < n; i++)
            mp_reserve_free(r, e[i]);
    }
    s.fail = false;
    mp_reserve_destroy(r);
    CHILD_EXPECT(s.live == 0 && s.bad_frees == 0, 12);
    /* The default source too. */
    r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "clean-dflt", .min_reserved = 2, .elem_size = 40 });
    CHILD_EXPECT(r != NULL, 13);
    size_t meta = stats_of(r).bytes_meta;
    CHILD_EXPECT(meta > 0, 14);
    for (int i = 0; i < 8; i++)
        e[i] = mp_reserve_alloc(r, 0);
    CHILD_EXPECT(stats_of(r).bytes_meta > meta, 15); /* the set of elements out */
    for (int i = 0; i < 8; i++)
        mp_reserve_free(r, e[i]);
    mp_reserve_destroy(r);
}

/* ----------------------------------------------------------- the parent */

static bool exited_0(const outcome *o) { return WIFEXITED(o->status) && WEXITSTATUS(o->status) == 0; }
static bool aborted(const outcome *o) { return WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGABRT; }

static bool has_all(const char *s, const char *w1, const char *w2, const char *w3)
{
    return (!w1 || strstr(s, w1)) && (!w2 || strstr(s, w2)) && (!w3 || strstr(s, w3));
}

/* One message with the words (NULL: any), a clean exit with the custom
 * handler; with the default handler (if dflt) an abort with the message on
 * stderr. */
static void expect(const char *what, void (*scenario)(void), const char *w1, const char *w2, const char *w3,
                   bool dflt)
{
    outcome o = run(scenario, true);
    if (o.messages != 1 || !has_all(o.first, w1, w2, w3) || !exited_0(&o)) {
        fprintf(stderr,
                "%s (custom handler): %d message(s), first \"%s\", status %#x, stderr \"%s\"; want one message "
                "with \"%s\" \"%s\" \"%s\" and exit 0\n",
                what, o.messages, o.first, o.status, o.err, w1 ? w1 : "", w2 ? w2 : "", w3 ? w3 : "");
        check_failures++;
    }
    if (!dflt)
        return;
    o = run(scenario, false);
    if (!aborted(&o) || !has_all(o.err, w1, w2, w3)) {
        fprintf(stderr, "%s (default handler): status %#x, stderr \"%s\"; want abort with \"%s\" \"%s\" \"%s\"\n",
                what, o.status, o.err, w1 ? w1 : "", w2 ? w2 : "", w3 ? w3 : "");
        check_failures++;
    }
}

int main(void)
{
    setenv("MPOOL_CHECK", "1", 1);
    expect("double free", double_free, "mpool: ", "reserve 'dbl'", "double", true);
    expect("double free after the source took it back", double_free_after_source, "mpool: ", "reserve 'dbl-src'",
           NULL, true);
    if (check_tool_attached())
        printf("skipped: write to an element in the reserve (a memory tool is attached and reports it)\n");
    else
        expect("write to an element in the reserve", write_after_free, "mpool: ", "reserve 'stale'",
               "write to an element", true);
    expect("free of a malloc'd pointer", foreign_free, "mpool: ", "reserve 'foreign'", NULL, true);
    expect("free of another reserve's element", wrong_reserve, "mpool: ", "reserve 'mine'", NULL, true);
    expect("alloc from a destroyed reserve", destroyed_alloc, "mpool: ", "reserve", "destroyed", true);
    expect("free to a destroyed reserve", destroyed_free, "mpool: ", "reserve", "destroyed", true);
    expect("destroy of a destroyed reserve", destroyed_destroy, "mpool: ", "reserve", "destroyed", true);

    /* Leak policies: report goes through the handler (the default prints
     * and goes on); ignore says nothing; abort aborts. */
    outcome o = run(leak_report, true);
    CHECK_EQ(o.messages, 1);
    CHECK(has_all(o.first, "leak", "reserve 'leaky'", NULL));
    CHECK(exited_0(&o));
    if (o.messages != 1 || !has_all(o.first, "leak", "reserve 'leaky'", NULL) || !exited_0(&o))
        fprintf(stderr, "leak report: %d message(s), first \"%s\", status %#x, stderr \"%s\"\n", o.messages,
                o.first, o.status, o.err);
    o = run(leak_report, false);
    CHECK(exited_0(&o));
    CHECK(has_all(o.err, "leak", "reserve 'leaky'", NULL));
    o = run(leak_ignore, true);
    CHECK_EQ(o.messages, 0);
    CHECK(exited_0(&o));
    o = run(leak_ignore, false);
    CHECK(exited_0(&o));
    CHECK_STR_EQ(o.err, "");
    o = run(leak_abort, true);
    CHECK_EQ(o.messages, 1);
    CHECK(aborted(&o));
    CHECK(has_all(o.first, "leak", "reserve 'leaky'", NULL));
    o = run(leak_abort, false);
    CHECK(aborted(&o));
    CHECK(has_all(o.err, "leak", "reserve 'leaky'", NULL));

    /* Correct use says nothing. */
    o = run(clean_use, true);
    CHECK_EQ(o.messages, 0);
    CHECK(exited_0(&o));
    if (o.messages || !exited_0(&o))
        fprintf(stderr, "clean use: %d message(s), first \"%s\", status %#x, stderr \"%s\"\n", o.messages, o.first,
                o.status, o.err);
    return check_done();
}
