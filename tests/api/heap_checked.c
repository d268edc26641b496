/* Checked mode for heaps: one death test per misuse, each in a forked child
 * with MPOOL_CHECK=1 in its environment, as a user would set it. With a
 * recording handler the parent asserts exactly one message and a clean
 * exit; with the default handler, an abort with the message on stderr.
 *
 * Messages are matched on what the existing ones share (docs/debugging.md):
 * they begin "mpool: ", name the pool as "heap 'NAME'", and say what went
 * wrong in words this file looks for: "double free", "interior", "another"
 * (a pointer of another heap given to realloc, which names both heaps),
 * "write" with "freed" (a write after free, found when the block leaves
 * the quarantine or is handed out again), "past the end" (a write past the
 * size asked for, even inside the size class), "destroyed" (use of a
 * destroyed heap), "leak" (blocks out at destroy, with their allocation
 * sites; MP_LEAK_ABORT aborts, MP_LEAK_IGNORE says nothing, and a heap
 * that its arena destroys reports nothing). Correct use, threads included,
 * says nothing. */
#define _GNU_SOURCE 1
#include "check.h"
#include "child.h"
#include "heap.h"
#include "threads.h"

#include <mpool.h>

#include <dlfcn.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Does msg contain every one of words (NULL-terminated)? */
static bool has_all(const char *msg, const char *const *words)
{
    for (; *words; words++)
        if (!strstr(msg, *words))
            return false;
    return true;
}

/* One message with every word, a clean exit with the recording handler;
 * an abort with the message on stderr with the default one. */
static void expect_words(const char *what, void (*scenario)(void), const char *const *words)
{
    child_outcome o = child_run(scenario, true, NULL);
    if (o.messages != 1 || !starts_with(o.first, "mpool: ") || !has_all(o.first, words) || !WIFEXITED(o.status) ||
        WEXITSTATUS(o.status) != 0) {
        fprintf(stderr, "%s (recording handler): %d message(s), first \"%s\", status %#x, stderr \"%s\"; want one with",
                what, o.messages, o.first, o.status, o.err);
        for (const char *const *w = words; *w; w++)
            fprintf(stderr, " \"%s\"", *w);
        fprintf(stderr, "\n");
        check_failures++;
    }
    o = child_run(scenario, false, NULL);
    if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGABRT || !starts_with(o.err, "mpool: ") ||
        !has_all(o.err, words)) {
        fprintf(stderr, "%s (default handler): status %#x, stderr \"%s\"; want an abort with the message\n", what,
                o.status, o.err);
        check_failures++;
    }
}
#define EXPECT(what, scenario, ...) expect_words((what), (scenario), (const char *const[]){ __VA_ARGS__, NULL })

static mp_heap *make(const char *name, unsigned flags)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = name, .flags = flags });
    if (!h)
        _exit(20);
    return h;
}

static char *alloc(mp_heap *h, size_t size)
{
    char *p = mp_heap_alloc(h, size);
    if (!p)
        _exit(21);
    return p;
}

/* ------------------------------------------------------------ scenarios */

static void double_free(void)
{
    mp_heap *h = make("df", 0);
    char *p = alloc(h, 32);
    mp_free(p);
    mp_free(p);
    mp_heap_destroy(h);
}

static void double_free_large(void)
{
    mp_heap *h = make("dfl", 0);
    char *p = alloc(h, 3 * MiB);
    char *keep = alloc(h, 3 * MiB); /* the chunk's address stays taken */
    mp_free(p);
    mp_free(p);
    mp_free(keep);
    mp_heap_destroy(h);
}

static void foreign_free(void)
{
    char *m = malloc(64);
    mp_free(m);
    free(m);
}

static void interior_free(void)
{
    mp_heap *h = make("ip", 0);
    char *p = alloc(h, 64);
    mp_free(p + 16);
    mp_free(p);
    mp_heap_destroy(h);
}

static void interior_free_large(void)
{
    mp_heap *h = make("ipl", 0);
    char *p = alloc(h, 1 * MiB);
    mp_free(p + 4096);
    mp_free(p);
    mp_heap_destroy(h);
}

static void interior_realloc(void)
{
    mp_heap *h = make("ir", 0);
    char *p = alloc(h, 64);
    if (mp_heap_realloc(h, p + 8, 200) != NULL)
        _exit(22);
    mp_free(p);
    mp_heap_destroy(h);
}

static void wrong_heap_realloc(void)
{
    mp_heap *a = make("a", 0), *b = make("b", 0);
    char *p = alloc(a, 40);
    if (mp_heap_realloc(b, p, 100) != NULL)
        _exit(23);
    mp_free(p); /* mp_free finds the right heap: no message */
    mp_heap_destroy(a);
    mp_heap_destroy(b);
}

static void write_after_free(void)
{
    mp_heap *h = make("waf", 0);
    char *p = alloc(h, 48);
    mp_free(p);
    p[5] = 'x'; /* the bug */
    /* Push it through the quarantine and out again. */
    for (int i = 0; i < 3000; i++)
        mp_free(alloc(h, 48));
    char *q[600];
    for (int i = 0; i < 600; i++)
        q[i] = alloc(h, 48);
    for (int i = 0; i < 600; i++)
        mp_free(q[i]);
    mp_heap_destroy(h);
}

static void write_past_end(void)
{
    mp_heap *h = make("wpe", 0);
    char *p = alloc(h, 40);
    p[40] = 'x'; /* one past the end */
    mp_free(p);
    mp_heap_destroy(h);
}

/* Past the size asked for, inside the size class's rounding. */
static void write_past_end_in_class(void)
{
    mp_heap *h = make("wpc", 0);
    char *p = alloc(h, 100);
    p[100] = 'x';
    mp_free(p);
    mp_heap_destroy(h);
}

static void write_past_end_large(void)
{
    mp_heap *h = make("wpl", 0);
    char *p = alloc(h, 1 * MiB + 10);
    p[1 * MiB + 10] = 'x';
    mp_free(p);
    mp_heap_destroy(h);
}

static void destroyed_heap(void)
{
    mp_heap *h = make("gone", 0);
    mp_heap_destroy(h);
    (void)mp_heap_alloc(h, 10);
}

/* Calls mp_heap_alloc itself (not through alloc, which an unoptimised
 * build keeps as a function): the report must name this function. */
static void leak_report(void)
{
    mp_heap *h = make("leaky", 0);
    if (!mp_heap_alloc(h, 24) || !mp_heap_alloc(h, 40))
        _exit(21);
    mp_heap_destroy(h);
}

static void leak_abort(void)
{
    mp_heap *h = make("leaky", MP_LEAK_ABORT);
    (void)alloc(h, 24);
    mp_heap_destroy(h);
}

static void leak_ignore(void)
{
    mp_heap *h = make("leaky", MP_LEAK_IGNORE);
    (void)alloc(h, 24);
    mp_heap_destroy(h);
}

/* Blocks of a heap its arena destroys end with the arena: no leak. */
static void arena_owned(void)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "request" });
    if (!a)
        _exit(24);
    for (int round = 0; round < 3; round++) {
        mp_heap *h = mp_heap_create(a, &(mp_heap_opts){ .name = "per-request" });
        if (!h || !mp_heap_alloc(h, 24) || !mp_heap_alloc(h, 5000))
            _exit(25);
        if (round < 2)
            mp_arena_reset(a);
    }
    mp_arena_destroy(a);
}

/* Whether the first "allocated at SITE" of a leak report is a place in
 * leak_report: "leak_report+0x..." when the symbol is visible, else
 * "FILE+0xOFFSET" with OFFSET inside leak_report's first 8 KiB. */
static bool first_site_in_leak_report(const char *err)
{
    const char *at = strstr(err, "allocated at ");
    if (!at)
        return false;
    at += strlen("allocated at ");
    if (starts_with(at, "leak_report+"))
        return true;
    void (*fn)(void) = leak_report;
    void *addr;
    memcpy(&addr, &fn, sizeof addr);
    Dl_info info;
    const char *plus = strstr(at, "+0x");
    if (!plus || !dladdr(addr, &info) || !info.dli_fbase)
        return false;
    size_t off = (size_t)strtoull(plus + 3, NULL, 16);
    size_t start = (size_t)((const char *)addr - (const char *)info.dli_fbase);
    return off > start && off < start + 8192; /* its body: inline allocations make it long unoptimised */
}

/* Correct use of every call, in checked mode: no message. */
static void clean_use(void)
{
    mp_heap *h = make("clean", 0), *z = make("zeroed", MP_ZERO);
    for (int round = 0; round < 3; round++) {
        char *p[500];
        for (int i = 0; i < 500; i++) {
            size_t size = (size_t)i * 37 % 3000;
            p[i] = i % 5 == 0 ? mp_heap_alloc_aligned(h, size, 256) : alloc(i % 2 ? h : z, size);
            if (!p[i] || mp_usable_size(p[i]) < size)
                _exit(26);
            memset(p[i], i, size); /* the whole block, not a byte more */
        }
        for (int i = 0; i < 500; i += 3) {
            size_t size = (size_t)i * 37 % 3000 + 5000;
            p[i] = mp_heap_realloc(i % 5 == 0 || i % 2 ? h : z, p[i], size);
            if (!p[i])
                _exit(27);
            memset(p[i], 1, size);
        }
        char *c = mp_heap_calloc(h, 100, 100);
        char *big = alloc(z, 3 * MiB);
        if (!c || c[9999] || big[3 * MiB - 1])
            _exit(28);
        memset(big, 2, 3 * MiB);
        mp_free(c);
        mp_free(big);
        /* Resized in place, small and large, and large ones with slack past
         * the request: under a memory tool too, the red zones are the
         * library's to write and read. */
        char *s = alloc(h, 100);
        memset(s, 3, 100);
        if ((s = mp_heap_realloc(h, s, 98)) == NULL)
            _exit(29);
        memset(s, 4, 98);
        if ((s = mp_heap_realloc(h, s, 104)) == NULL)
            _exit(29);
        memset(s, 5, 104);
        mp_free(s);
        char *l = alloc(h, 200001);
        memset(l, 6, 200001);
        if ((l = mp_heap_realloc(h, l, 200003)) == NULL)
            _exit(29);
        memset(l, 7, 200003);
        mp_free(l);
        for (int i = 0; i < 500; i++)
            mp_free(p[i]);
        mp_heap_trim(h);
    }
    mp_heap_destroy(h);
    mp_heap_destroy(z);
}

/* Blocks made on one thread, freed on another. */
static mp_heap *shared;
static char *handed[1000];

static void *alloc_side(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        handed[i] = mp_heap_alloc(shared, 16 + (size_t)i % 500);
        if (!handed[i])
            _exit(29);
        memset(handed[i], 3, 16 + (size_t)i % 500);
    }
    return NULL;
}

static void *free_side(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        mp_free(handed[i]);
    return NULL;
}

static void clean_threads(void)
{
    shared = make("threads", 0);
    for (int round = 0; round < 3; round++) {
        threads_run(1, alloc_side, NULL, 0);
        threads_run(1, free_side, NULL, 0);
    }
    mp_heap_destroy(shared);
}

int main(void)
{
    setenv("MPOOL_CHECK", "1", 1);
    EXPECT("double free", double_free, "double free", "heap 'df'");
    EXPECT("double free of a large block", double_free_large, "double free", "heap 'dfl'");
    EXPECT("foreign mp_free", foreign_free, "mp_free of a pointer not from");
    EXPECT("interior pointer", interior_free, "interior", "heap 'ip'");
    EXPECT("interior pointer of a large block", interior_free_large, "interior", "heap 'ipl'");
    EXPECT("interior pointer to realloc", interior_realloc, "interior", "heap 'ir'");
    EXPECT("realloc into the wrong heap", wrong_heap_realloc, "another", "heap 'b'", "'a'");
    EXPECT("destroyed heap", destroyed_heap, "destroyed");
    if (check_tool_attached()) {
        printf("skipped: write after free, writes past the end (a memory tool is attached and reports them)\n");
    } else {
        EXPECT("write after free", write_after_free, "write", "freed", "heap 'waf'");
        EXPECT("write past the end", write_past_end, "past the end", "heap 'wpe'");
        EXPECT("write past the size, inside the class", write_past_end_in_class, "past the end", "heap 'wpc'");
        EXPECT("write past the end of a large block", write_past_end_large, "past the end", "heap 'wpl'");
    }

    /* Leak policies: report prints and goes on; abort aborts; ignore is silent. */
    child_outcome o = child_run(leak_report, false, NULL);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    CHECK(starts_with(o.err, "mpool: leak: heap 'leaky': 2 "));
    CHECK(strstr(o.err, "allocated at ") != NULL);
    CHECK(first_site_in_leak_report(o.err)); /* the caller's site, not the library's */
    if (check_failures)
        fprintf(stderr, "leak report: \"%s\"\n", o.err);
    o = child_run(leak_report, true, NULL);
    CHECK_EQ(o.messages, 1);
    CHECK(starts_with(o.first, "mpool: leak: heap 'leaky'"));
    o = child_run(leak_abort, false, NULL);
    CHECK(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT);
    CHECK(starts_with(o.err, "mpool: leak: heap 'leaky': 1 "));
    o = child_run(leak_ignore, false, NULL);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    CHECK_STR_EQ(o.err, "");
    CHECK(child_runs_clean(arena_owned));

    /* Correct use says nothing. */
    CHECK(child_runs_clean(clean_use));
    CHECK(child_runs_clean(clean_threads));
    return check_done();
}
