/* MPOOL_SHOW_STATS: the report of every pool tree on stderr at exit.
 *
 * The program runs itself as a child (`show_stats child SCENARIO`) with the
 * variable set or unset, and reads what the child wrote to stderr:
 *   - 1: the text report after a line naming the process; json: one line of
 *     valid JSON; unset, 0 or an unknown value: nothing;
 *   - nothing when no pool was ever made, or when the process ends with
 *     _exit();
 *   - a program that only used mp_heap_default() sees the default heap;
 *   - exit() called from a thread while the main thread waits prints the
 *     report once, and the process ends;
 *   - after fork(), the child prints its own pools at its exit and the
 *     parent its own at its exit. */
#define _POSIX_C_SOURCE 200809L
#include "cases.h"
#include "json.h"

#include <mpool.h>

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self; /* argv[0] */

/* ------------------------------------------------------- the child's side */

static void *exit_from_thread(void *arg)
{
    (void)arg;
    exit(0); /* the main thread is still in pthread_join */
}

static int child(const char *scenario)
{
    if (strcmp(scenario, "none") == 0)
        return 0;
    if (strcmp(scenario, "heap_default") == 0) {
        void *p = mp_heap_alloc(mp_heap_default(), 100);
        return p ? 0 : 1; /* kept live: the report shows it */
    }
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "show-objpool", .obj_size = 64 });
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "show-arena" });
    if (!p || !a || !mp_objpool_get(p) || !mp_alloc(a, 10))
        return 1;
    if (strcmp(scenario, "pools") == 0)
        return 0;
    if (strcmp(scenario, "quick_exit") == 0)
        _exit(0);
    if (strcmp(scenario, "thread_exit") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, exit_from_thread, NULL) != 0)
            return 1;
        pthread_join(t, NULL);
        return 1; /* not reached */
    }
    if (strcmp(scenario, "fork") == 0) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            mp_arena_create(NULL, &(mp_arena_opts){ .name = "show-forked" });
            exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 1;
        return 0;
    }
    return 2;
}

/* ------------------------------------------------------ the parent's side */

typedef struct run {
    int status;
    char err[16384];
} run;

/* Runs `self child scenario` with MPOOL_SHOW_STATS=value (NULL: unset). */
static run run_child(const char *scenario, const char *value)
{
    run r = { 0 };
    int errs[2];
    REQUIRE(pipe(errs) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(errs[0]);
        dup2(errs[1], 2);
        close(errs[1]);
        alarm(60);
        if (value)
            setenv("MPOOL_SHOW_STATS", value, 1);
        else
            unsetenv("MPOOL_SHOW_STATS");
        execl(self, self, "child", scenario, (char *)NULL);
        _exit(127);
    }
    close(errs[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < sizeof r.err && (n = read(errs[0], r.err + len, sizeof r.err - 1 - len)) > 0)
        len += (size_t)n;
    r.err[len] = '\0';
    close(errs[0]);
    REQUIRE(waitpid(pid, &r.status, 0) == pid);
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
        fprintf(stderr, "child %s (MPOOL_SHOW_STATS=%s) ended with status 0x%x; its stderr:\n%s\n", scenario,
                value ? value : "(unset)", r.status, r.err);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    return r;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

#define CHECK_HAS(r, s)                                                                            \
    do {                                                                                           \
        if (!strstr((r).err, (s))) {                                                               \
            fprintf(stderr, "%s:%d: stderr lacks \"%s\"; it was:\n%s\n", __FILE__, __LINE__, (s), (r).err); \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)
#define CHECK_EMPTY(r)                                                                             \
    do {                                                                                           \
        if ((r).err[0]) {                                                                          \
            fprintf(stderr, "%s:%d: stderr should be empty; it was:\n%s\n", __FILE__, __LINE__, (r).err); \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

static void test_text(void)
{
    run r = run_child("pools", "1");
    CHECK_HAS(r, "(MPOOL_SHOW_STATS)");
    CHECK_HAS(r, "\npool ");
    CHECK_HAS(r, "objpool show-objpool");
    CHECK_HAS(r, "arena show-arena");
    CHECK_EQ(count(r.err, "MPOOL_SHOW_STATS"), 1);
    run y = run_child("pools", "yes");
    CHECK_HAS(y, "objpool show-objpool");
}

static void test_json(void)
{
    run r = run_child("pools", "json");
    char outline[1024];
    if (!json_outline(r.err, outline, sizeof outline))
        fprintf(stderr, "not the JSON report: %s\n%s\n", outline, r.err);
    CHECK(json_outline(r.err, outline, sizeof outline));
    CHECK(strstr(outline, "objpool:show-objpool") != NULL);
    CHECK(strstr(outline, "arena:show-arena") != NULL);
    CHECK_EQ(count(r.err, "\n"), 1);
}

static void test_off(void)
{
    const char *off[] = { NULL, "0", "", "no", "verbose" };
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        run r = run_child("pools", off[i]);
        CHECK_EMPTY(r);
    }
}

static void test_no_pool(void)
{
    run r = run_child("none", "1");
    CHECK_EMPTY(r);
    run j = run_child("none", "json");
    CHECK_EMPTY(j);
}

static void test_quick_exit(void)
{
    run r = run_child("quick_exit", "1");
    CHECK_EMPTY(r);
}

static void test_heap_default(void)
{
    run r = run_child("heap_default", "1");
    CHECK_HAS(r, "heap default");
    run j = run_child("heap_default", "json");
    CHECK_HAS(j, "\"kind\":\"heap\",\"name\":\"default\"");
}

static void test_thread_exit(void)
{
    run r = run_child("thread_exit", "1");
    CHECK_HAS(r, "objpool show-objpool");
    CHECK_EQ(count(r.err, "MPOOL_SHOW_STATS"), 1);
}

static void test_fork(void)
{
    run r = run_child("fork", "1");
    CHECK_EQ(count(r.err, "MPOOL_SHOW_STATS"), 2);  /* the forked child's, then the parent's */
    CHECK_EQ(count(r.err, "objpool show-objpool"), 2); /* the child inherited it */
    CHECK_EQ(count(r.err, "arena show-forked"), 1);   /* made in the child only */
}

static const check_case cases[] = {
    CHECK_CASE(text, test_text),
    CHECK_CASE(json, test_json),
    CHECK_CASE(off, test_off),
    CHECK_CASE(no_pool, test_no_pool),
    CHECK_CASE(quick_exit, test_quick_exit),
    CHECK_CASE(heap_default, test_heap_default),
    CHECK_CASE(thread_exit, test_thread_exit),
    CHECK_CASE(fork, test_fork),
};

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child(argv[2]);
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
