/* Out of memory at every point: the scenario below (create, small and large
 * allocations, printf, strdup, calloc, cleanups, child arenas and object
 * pools, reset, reuse, destroy) runs once for every k with the k-th call to
 * the OS or to metadata allocation failing (mp__os_fail_after(k)), until a
 * run makes fewer than k calls. Each failure must be NULL/ENOMEM (or an
 * ENOMEM return), the arena must stay consistent (counters add up, what it
 * is charged is exactly its blocks) and usable, cleanups that were pushed
 * run exactly once, and after destroy no chunk of the arena is left (every
 * pointer it handed out is in no live chunk). Meta allocations are checked
 * for leaks by Valgrind/ASan when the test runs under them. The sweep runs
 * for a plain, a MP_THREADSAFE and a MP_ZERO arena, and again in checked
 * mode (in a child process: checked mode is decided once per process). */
#define _GNU_SOURCE 1 /* setenv */
#include "check.h"
#include "arena.h"
#include "chunk.h"
#include "os.h"

#include <sys/wait.h>
#include <unistd.h>

#define MAX_PTRS 4096

static void *ptrs[MAX_PTRS];
static size_t nptrs;
static int cleanups_run;
static int failures_seen;

static void note_cleanup(void *arg) { cleanups_run += (int)(intptr_t)arg; }

/* Records a result: a pointer to check after destroy, or a failure that
 * must be ENOMEM. */
static void *got(void *p)
{
    if (!p) {
        CHECK_EQ(errno, ENOMEM);
        failures_seen++;
    } else if (nptrs < MAX_PTRS) {
        ptrs[nptrs++] = p;
    }
    return p;
}

static void consistent(const mp_arena *a, size_t span)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    CHECK_EQ(s.allocs - s.frees, s.objects_in_use);
    CHECK(s.bytes_in_use <= s.bytes_mapped);
    CHECK(s.bytes_peak >= s.bytes_in_use);
    (void)span;
}

static void scenario(unsigned flags)
{
    const size_t span = 8192;
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "faulty", .block_size = span, .flags = flags });
    if (!a) {
        CHECK_EQ(errno, ENOMEM);
        failures_seen++;
        return;
    }
    int pushed = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 40; i++) { /* several blocks */
            char *p = got(mp_alloc(a, 300 + (size_t)i * 7));
            if (p)
                memset(p, i, 300);
        }
        char *big = got(mp_alloc(a, 100000));
        if (big)
            big[99999] = 1;
        char *s = got(mp_printf(a, "%0*d", 20000, round)); /* longer than a block */
        if (s)
            CHECK_EQ(strlen(s), 20000);
        char *d = got(mp_strdup(a, "duplicate"));
        if (d)
            CHECK_STR_EQ(d, "duplicate");
        int *z = got(mp_calloc(a, 100, sizeof(int)));
        if (z)
            CHECK_EQ(z[99], 0);
        for (int i = 0; i < 3; i++) {
            int rc = mp_cleanup_push(a, note_cleanup, (void *)1);
            if (rc == 0)
                pushed++;
            else {
                CHECK_EQ(rc, ENOMEM);
                failures_seen++;
            }
        }
        mp_arena *child = mp_arena_create(a, &(mp_arena_opts){ .name = "child", .flags = flags });
        if (got(child)) {
            for (int i = 0; i < 30; i++)
                got(mp_alloc(child, 1000));
            if (mp_cleanup_push(child, note_cleanup, (void *)1) == 0)
                pushed++;
            else
                failures_seen++;
        }
        mp_objpool *op =
            mp_objpool_create(a, &(mp_objpool_opts){ .name = "objs", .obj_size = 64, .flags = MP_LEAK_IGNORE });
        if (got(op))
            got(mp_objpool_get(op)); /* left out: the arena's reset destroys the pool */
        consistent(a, span);
        if (big)
            mp_arena_free(a, big);
        /* Right after whatever failed, the arena works (one injected failure). */
        consistent(a, span);
        mp_arena_reset(a);
        CHECK_EQ(cleanups_run, pushed);
        mp_stats st;
        REQUIRE(mp_arena_stats(a, &st) == 0);
        CHECK_EQ(st.bytes_in_use, 0);
        CHECK_EQ(st.objects_in_use, 0);
        CHECK_EQ(st.bytes_mapped, mp__arena_blocks(a) * span); /* charges match the blocks kept */
    }
    mp_arena_destroy(a);
}

/* The sweep: k = 1, 2, ... until the scenario makes fewer than k calls. */
static void sweep(const char *what, unsigned flags)
{
    unsigned long k;
    int total_failures = 0, absorbed = 0;
    for (k = 1; k < 100000; k++) {
        nptrs = 0;
        cleanups_run = 0;
        failures_seen = 0;
        mp__chunk_release_retained(); /* every block is a call to the OS */
        unsigned long before = mp__os_calls();
        mp__os_fail_after(k);
        scenario(flags);
        mp__os_fail_after(0);
        unsigned long calls = mp__os_calls() - before;
        /* Nothing of the arena is left: every pointer is in no live chunk. */
        for (size_t i = 0; i < nptrs; i++)
            if (mp__chunk_lookup(ptrs[i]) != NULL) {
                fprintf(stderr, "%s, k=%lu: %p still in a live chunk after destroy\n", what, k, ptrs[i]);
                check_failures++;
                break;
            }
        total_failures += failures_seen;
        if (calls < k) {
            CHECK_EQ(failures_seen, 0); /* the run without an injected failure */
            break;
        }
        if (failures_seen == 0)
            absorbed++; /* an object pool's magazine: it falls back to its locked path */
        if (check_failures)
            break;
    }
    printf("%s: %lu failure points, %d failures seen, %d absorbed\n", what, k - 1, total_failures, absorbed);
    CHECK(k > 20);
}

static void all_sweeps(const char *mode)
{
    char what[64];
    snprintf(what, sizeof what, "%s plain", mode);
    sweep(what, 0);
    snprintf(what, sizeof what, "%s threadsafe", mode);
    sweep(what, MP_THREADSAFE);
    snprintf(what, sizeof what, "%s zero", mode);
    sweep(what, MP_ZERO);
}

int main(void)
{
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("MPOOL_CHECK", "1", 1); /* before the child's first pool */
        all_sweeps("checked");
        int rc = check_done();
        fflush(NULL);
        _exit(rc);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    all_sweeps("unchecked");
    return check_done();
}
