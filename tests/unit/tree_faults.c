/* Out of memory at every point of a tree of every kind. One scenario - a
 * root arena with a limited child arena, object pools under both, a
 * reserve over a capped object pool, allocations small and large, strings,
 * cleanups, gets one by one and in bulk, reserve allocs from the source
 * and from the reserve, resizes, moves of an arena and of a pool, the JSON
 * report, the root's reset (which destroys the rest), reuse after it, and
 * the destroys - runs once for every k with the k-th call to the OS or to
 * metadata allocation failing (mp__os_fail_after(k)), until a run makes
 * fewer than k calls. In every run:
 *   - a call that fails does so the documented way (NULL or an int result
 *     with errno or the result ENOMEM), and since injection is one-shot,
 *     the same call made again on the same pool succeeds: every pool stays
 *     usable after a failure;
 *   - the JSON report is valid and lists the tree the scenario built;
 *   - cleanups pushed run exactly once, every object a ctor made is
 *     destroyed exactly once, the reserve's source gets every element
 *     back;
 *   - nothing leaks: after the destroys no pointer any pool handed out is
 *     in a live chunk, and (default mode, no memory tool) the library's
 *     metadata and the C library's heap hold exactly the bytes they held
 *     after a clean run (the test starts itself again with glibc's caches
 *     off for that);
 *     Valgrind and ASan check the rest when the test runs under them.
 * The sweep runs for a single-threaded and a MP_THREADSAFE root arena, in
 * default mode and in checked mode (a child process: checked mode is
 * decided once per process), and prints the failure points it covered. */
#define _GNU_SOURCE 1 /* setenv, open_memstream, mallinfo2 */
#include "check.h"
#include "chunk.h"
#include "json.h"
#include "meta.h"
#include "os.h"

#include <mpool.h>

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PTRS 2048

static void *ptrs[MAX_PTRS];
static size_t nptrs;
static int failures_seen, cleanups_run, cleanups_pushed;
static long ctors, dtors;

static void note(void *p)
{
    if (p && nptrs < MAX_PTRS)
        ptrs[nptrs++] = p;
}

static void failed(int err, const char *what)
{
    if (err != ENOMEM) {
        fprintf(stderr, "%s failed with %d, not ENOMEM\n", what, err);
        check_failures++;
    }
    failures_seen++;
}

/* A pointer-returning call that may fail once: then it must succeed. */
#define AGAIN(var, expr)                                                                           \
    do {                                                                                           \
        errno = 0;                                                                                 \
        (var) = (expr);                                                                            \
        if (!(var)) {                                                                              \
            failed(errno, #expr);                                                                  \
            (var) = (expr);                                                                        \
            REQUIRE((var) != NULL);                                                                \
        }                                                                                          \
        note(var);                                                                                 \
    } while (0)

/* An int-returning call that may fail once with ENOMEM. */
#define AGAIN_RC(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_) {                                                                                 \
            failed(rc_, #expr);                                                                    \
            rc_ = (expr);                                                                          \
            REQUIRE(rc_ == 0);                                                                     \
        }                                                                                          \
    } while (0)

static void cleanup(void *arg)
{
    (void)arg;
    cleanups_run++;
}

static void ctor(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    ctors++;
}

static void dtor(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    dtors++;
}

static mp_stats objpool_stats(const mp_objpool *p)
{
    mp_stats s;
    REQUIRE(mp_objpool_stats(p, &s) == 0);
    return s;
}

static void push(mp_arena *a)
{
    AGAIN_RC(mp_cleanup_push(a, cleanup, NULL));
    cleanups_pushed++;
}

static void scenario(unsigned flags)
{
    mp_arena *root, *child, *again;
    mp_objpool *objs, *bigs, *src, *later;
    mp_reserve *res;
    AGAIN(root, mp_arena_create(NULL, &(mp_arena_opts){ .name = "root", .flags = flags, .block_size = 8192 }));
    AGAIN(child, mp_arena_create(root, &(mp_arena_opts){ .name = "child", .limit = 1 << 20 }));
    AGAIN(objs, mp_objpool_create(child, &(mp_objpool_opts){ .name = "objs", .obj_size = 64, .initial = 100,
                                                             .max_free = 50, .ctor = ctor, .dtor = dtor }));
    AGAIN(src, mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "src", .obj_size = 48, .max_live = 20 }));
    AGAIN(res, mp_reserve_create(root, &(mp_reserve_opts){ .name = "res", .min_reserved = 8, .elem_size = 48,
                                                           .alloc = mp_objpool_source_alloc,
                                                           .free = mp_objpool_source_free, .src = src }));
    AGAIN(bigs, mp_objpool_create(root, &(mp_objpool_opts){ .name = "bigs", .obj_size = 1000,
                                                            .flags = MP_SINGLE_THREAD }));

    /* Arenas: small, large, strings, cleanups. */
    for (int i = 0; i < 50; i++) {
        char *p;
        AGAIN(p, mp_alloc(child, 200));
        memset(p, i, 200);
    }
    char *big, *s;
    AGAIN(big, mp_alloc(child, 100000));
    big[99999] = 1;
    AGAIN(s, mp_strdup(root, "a string in the root"));
    AGAIN(s, mp_printf(root, "%0*d", 10000, 7)); /* longer than a block */
    push(child);
    push(root);

    /* Object pools: one by one, in bulk, back, trimmed. */
    void *held[400];
    for (int i = 0; i < 300; i++)
        AGAIN(held[i], mp_objpool_get(objs));
    size_t got = mp_objpool_get_bulk(objs, held + 300, 100);
    if (got < 100) {
        failed(errno, "mp_objpool_get_bulk");
        got += mp_objpool_get_bulk(objs, held + 300 + got, 100 - got);
        REQUIRE(got == 100);
    }
    for (int i = 300; i < 400; i++)
        note(held[i]);
    CHECK_EQ(objpool_stats(objs).objects_in_use, 400);
    mp_objpool_put_bulk(objs, held, 200);
    for (int i = 200; i < 400; i++)
        mp_free(held[i]);
    mp_objpool_trim(objs);
    for (int i = 0; i < 40; i++)
        AGAIN(held[i], mp_objpool_get(bigs));
    for (int i = 0; i < 40; i++)
        mp_objpool_put(bigs, held[i]);

    /* The reserve: 12 from the source (cap 20, 8 in the reserve), then
     * its own 8 as the source fails, then resized up and down. */
    void *el[20];
    for (int i = 0; i < 20; i++)
        AGAIN(el[i], mp_reserve_alloc(res, 0)); /* the reserve covers what the source cannot */
    mp_stats rs;
    REQUIRE(mp_reserve_stats(res, &rs) == 0);
    CHECK_EQ(rs.reserve_used, 8);
    CHECK_EQ(rs.reserve_level, 0);
    for (int i = 0; i < 20; i++)
        mp_reserve_free(res, el[i]);
    AGAIN_RC(mp_reserve_resize(res, 16));
    AGAIN_RC(mp_reserve_resize(res, 4));
    REQUIRE(mp_reserve_stats(res, &rs) == 0);
    CHECK_EQ(rs.reserve_level, 4);
    CHECK_EQ(objpool_stats(src).objects_in_use, 4);

    /* Moves, then the report. */
    AGAIN_RC(mp_arena_move(child, NULL));
    AGAIN_RC(mp_objpool_move(bigs, child));
    AGAIN_RC(mp_arena_move(child, root));
    char *json = NULL, outline[512];
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    REQUIRE(f != NULL);
    mp_report_json(f, NULL);
    REQUIRE(fclose(f) == 0);
    CHECK(json_outline(json, outline, sizeof outline));
    CHECK_STR_EQ(outline, "arena:root[reserve:res arena:child[objpool:objs objpool:bigs]] objpool:src");
    free(json);

    /* The reset destroys everything under the root. */
    mp_arena_reset(root);
    CHECK_EQ(cleanups_run, cleanups_pushed);
    CHECK_EQ(ctors, dtors);
    CHECK_EQ(objpool_stats(src).objects_in_use, 0); /* the reserve gave its elements back */
    mp_stats st;
    REQUIRE(mp_arena_stats(root, &st) == 0);
    CHECK_EQ(st.objects_in_use, 0);
    CHECK_EQ(st.bytes_in_use, 0);

    /* Usable after it. */
    AGAIN(later, mp_objpool_create(root, &(mp_objpool_opts){ .name = "later", .obj_size = 32 }));
    void *o;
    AGAIN(o, mp_objpool_get(later));
    mp_objpool_put(later, o);
    AGAIN(again, mp_arena_create(root, &(mp_arena_opts){ .name = "again" }));
    AGAIN(s, mp_alloc(again, 5000));
    mp_arena_destroy(root);
    mp_objpool_destroy(src);
}

/* Bytes of bookkeeping held now: the library's metadata allocator's, and
 * the C library's heap's (0 where it cannot tell), which mpool does not
 * use but a test may. */
static size_t heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    return mp__meta_mapped() + mallinfo2().uordblks;
#else
    return mp__meta_mapped();
#endif
}

static void sweep(const char *what, unsigned flags, bool count_heap)
{
    unsigned long k;
    int total = 0, absorbed = 0;
    size_t heap0 = 0;
    unsigned long clean_calls = 0;
    int failures_before = check_failures;
    scenario(flags); /* once first: what is made once per thread or process is made */
    if (count_heap) {
        /* Two clean runs must leave the same heap, or it caches memory
         * freed (it does unless its caches are turned off: see main). */
        mp__chunk_release_retained();
        size_t h = heap_in_use();
        scenario(flags);
        mp__chunk_release_retained();
        if (heap_in_use() != h) {
            printf("%s: the C library's heap keeps freed memory in caches: not counted\n", what);
            count_heap = false;
        }
    }
    for (k = 0; k < 100000; k++) {
        nptrs = 0;
        failures_seen = cleanups_run = cleanups_pushed = 0;
        ctors = dtors = 0;
        mp__chunk_release_retained(); /* every chunk is a call to the OS */
        unsigned long before = mp__os_calls();
        mp__os_fail_after(k);
        scenario(flags);
        mp__os_fail_after(0);
        unsigned long calls = mp__os_calls() - before;
        if (k == 0)
            clean_calls = calls;
        mp__chunk_release_retained();
        for (size_t i = 0; i < nptrs; i++) {
            if (mp__chunk_lookup(ptrs[i]) != NULL) {
                fprintf(stderr, "%s, k=%lu: %p still in a live chunk after the destroys\n", what, k, ptrs[i]);
                check_failures++;
                break;
            }
        }
        if (count_heap) {
            if (k == 0)
                heap0 = heap_in_use();
            else if (heap_in_use() != heap0) {
                fprintf(stderr, "%s, k=%lu: the heap holds %zu bytes, %zu after a clean run\n", what, k,
                        heap_in_use(), heap0);
                check_failures++;
            }
        }
        CHECK(failures_seen <= 1); /* one injected failure, seen once at most */
        if (k > 0 && calls < k)
            break; /* the countdown never reached zero: a clean run */
        total += failures_seen;
        if (k > 0 && failures_seen == 0)
            absorbed++; /* a failure the library worked around (a cache, a magazine) */
        if (check_failures > failures_before)
            break;
    }
    printf("%s: %lu calls in a clean run; %lu failure points, %d reported ENOMEM, %d absorbed\n", what,
           clean_calls, k - 1, total, absorbed);
    CHECK(k >= 1 && k - 1 >= clean_calls); /* every call of a clean run was a failure point */
}

static bool tool_attached(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#else
    return check_tool_attached();
#endif
}

int main(int argc, char **argv)
{
    (void)argc;
    /* For an exact count of the heap, glibc's thread cache and fast bins
     * must be off: the first by a tunable read at start-up (so the test
     * starts itself again with it), the second by mallopt. */
    if (!tool_attached() && !getenv("MPOOL_TEST_HEAP_EXACT")) {
        const char *old = getenv("GLIBC_TUNABLES");
        char tunables[512];
        snprintf(tunables, sizeof tunables, "%s%sglibc.malloc.tcache_count=0", old ? old : "", old ? ":" : "");
        setenv("GLIBC_TUNABLES", tunables, 1);
        setenv("MPOOL_TEST_HEAP_EXACT", "1", 1);
        fflush(NULL);
        execv("/proc/self/exe", argv); /* returns only if it fails: then the heap may not be counted */
    }
#ifdef __GLIBC__
    mallopt(M_MXFAST, 0);
#endif
    setenv("MPOOL_QUARANTINE", "0", 0); /* trim and reset give every byte back */
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("MPOOL_CHECK", "1", 1); /* before the child's first pool */
        sweep("checked, single-threaded root", 0, false); /* destroyed pools are kept */
        sweep("checked, thread-safe root", MP_THREADSAFE, false);
        fflush(NULL);
        _exit(check_done());
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sweep("single-threaded root", 0, !tool_attached());
    sweep("thread-safe root", MP_THREADSAFE, !tool_attached());
    return check_done();
}
