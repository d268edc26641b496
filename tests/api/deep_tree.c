/*
 * deep_tree.c - trees of any depth: stats, reports, fork, moves, reset and
 * destroy walk a chain of nested arenas in constant stack.
 *
 * Everything runs on a thread with a 64 KiB stack, where a recursive walk
 * of the chain (a few dozen bytes of frame per level) would overflow long
 * before its end. Every arena carries one allocation so that the sums are
 * checked, and the destroy order is checked through cleanups.
 */
#include "check.h"

#include <mpool.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEPTH 10000
#define SMALL_STACK (64 * 1024)

static size_t cleanups_run;
static size_t last_level_cleaned = DEPTH;
static int order_ok = 1;

/* Runs innermost first: each level's cleanup after every deeper one. */
static void note_cleanup(void *arg)
{
    size_t level = (size_t)(uintptr_t)arg;
    if (level != last_level_cleaned - 1)
        order_ok = 0;
    last_level_cleaned = level;
    cleanups_run++;
}

static mp_arena *make_chain(mp_arena *root, size_t depth)
{
    mp_arena *a = root;
    for (size_t i = 1; i < depth; i++) {
        mp_arena_opts o = { .name = "level", .block_size = 4096 };
        a = mp_arena_create(a, &o);
        REQUIRE(a != NULL);
        REQUIRE(mp_alloc(a, 16) != NULL);
        REQUIRE(mp_cleanup_push(a, note_cleanup, (void *)(uintptr_t)i) == 0);
    }
    return a;
}

/* How many times word starts a label ("arena root", "arena level"). */
static size_t count_labels(FILE *f, const char *word)
{
    char line[256];
    size_t n = 0, len = strlen(word);
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        const char *p = line;
        while (*p == ' ')
            p++;
        if (*p == '[') /* past the deepest indent: "[level] kind name" */
            p = strchr(p, ' ') + 1;
        n += strncmp(p, word, len) == 0;
    }
    return n;
}

/* The nesting of the JSON report: deepest '[' level and whether it closes. */
static void json_depth(FILE *f, long *deepest, long *final)
{
    long d = 0;
    int c;
    *deepest = 0;
    rewind(f);
    while ((c = fgetc(f)) != EOF) {
        d += (c == '[') - (c == ']');
        if (d > *deepest)
            *deepest = d;
    }
    *final = d;
}

static void *run(void *arg)
{
    (void)arg;
    mp_arena_opts ro = { .name = "root" };
    mp_arena *root = mp_arena_create(NULL, &ro);
    REQUIRE(root != NULL);
    mp_arena *deepest = make_chain(root, DEPTH);

    mp_stats s;
    CHECK_EQ(mp_arena_stats(root, &s), 0);
    CHECK_EQ(s.objects_in_use, DEPTH - 1);
    CHECK(s.bytes_in_use >= (DEPTH - 1) * 16); /* more with red zones under a memory tool */

    FILE *f = tmpfile();
    REQUIRE(f != NULL);
    mp_report(f, root);
    CHECK_EQ(count_labels(f, "arena "), DEPTH); /* one label per arena */
    fclose(f);

    f = tmpfile();
    REQUIRE(f != NULL);
    mp_report_json(f, root);
    long deep, final;
    json_depth(f, &deep, &final);
    CHECK_EQ(deep, DEPTH + 1); /* "pools":[ and one "children":[ per level */
    CHECK_EQ(final, 0);
    fclose(f);

    /* fork walks every pool's locks; the child can use the deepest arena. */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(mp_alloc(deepest, 8) != NULL && mp_arena_stats(root, &s) == 0 ? 0 : 1);
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* A move checks for cycles along the whole chain. */
    CHECK_EQ(mp_arena_move(root, deepest), EINVAL);

    /* Reset destroys the chain (innermost cleanups first), keeps root. */
    mp_arena_reset(root);
    CHECK_EQ(cleanups_run, DEPTH - 1);
    CHECK(order_ok);
    CHECK_EQ(mp_arena_stats(root, &s), 0);
    CHECK_EQ(s.objects_in_use, 0);

    /* And destroy, again from the top of a full chain. */
    cleanups_run = 0;
    last_level_cleaned = DEPTH;
    make_chain(root, DEPTH);
    mp_arena_destroy(root);
    CHECK_EQ(cleanups_run, DEPTH - 1);
    CHECK(order_ok);
    return NULL;
}

int main(void)
{
    pthread_attr_t attr;
    pthread_t t;
    REQUIRE(pthread_attr_init(&attr) == 0);
    REQUIRE(pthread_attr_setstacksize(&attr, SMALL_STACK) == 0);
    REQUIRE(pthread_create(&t, &attr, run, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    pthread_attr_destroy(&attr);
    return check_done();
}
