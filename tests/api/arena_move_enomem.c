/* A move refused for a limit changes nothing: mp_arena_move returns ENOMEM
 * and the tree is exactly as it was, the moved arena still in its place
 * among its siblings (not made its parent's newest child), so the report
 * lists the same tree in the same order, the parent destroys its children
 * in the same order, and every arena is charged what it was. Checked for a
 * limit on the new parent itself, on an ancestor of the new parent, and for
 * an arena in the middle of its siblings, the oldest and the newest; a move
 * inside one limited tree, which only shifts bytes already counted, still
 * succeeds. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "capture.h"
#include "check.h"
#include "json.h"

#include <mpool.h>

#include <errno.h>

#define KiB ((size_t)1024)

static char log_buf[512];

static void logger(void *arg)
{
    strcat(log_buf, (const char *)arg);
    strcat(log_buf, " ");
}

static mp_arena *arena(mp_arena *parent, const char *name, size_t limit)
{
    mp_arena *a = mp_arena_create(parent, &(mp_arena_opts){ .name = name, .limit = limit });
    REQUIRE(a != NULL);
    REQUIRE(mp_cleanup_push(a, logger, (void *)name) == 0); /* logs the destroy order */
    return a;
}

static mp_stats stats_of(const mp_arena *a)
{
    mp_stats s;
    REQUIRE(mp_arena_stats(a, &s) == 0);
    return s;
}

/* The whole tree, as json_outline lists it. */
static void outline(char *out, size_t cap)
{
    char *json = capture(mp_report_json, NULL);
    CHECK(json_outline(json, out, cap));
    free(json);
}

/* Moves `which` (heavy, more than `limited` allows) under `target` and
 * expects ENOMEM with nothing changed. */
static void refused(mp_arena *which, mp_arena *target, mp_arena *limited, mp_arena *old_parent)
{
    char before[1024], after[1024];
    outline(before, sizeof before);
    char *text_before = capture(mp_report, NULL);
    mp_stats op = stats_of(old_parent), lp = stats_of(limited), w = stats_of(which);

    CHECK_EQ(mp_arena_move(which, target), ENOMEM);

    outline(after, sizeof after);
    CHECK_STR_EQ(after, before);
    char *text_after = capture(mp_report, NULL);
    CHECK_STR_EQ(text_after, text_before);
    free(text_before);
    free(text_after);
    CHECK_EQ(stats_of(old_parent).bytes_mapped, op.bytes_mapped);
    CHECK_EQ(stats_of(limited).bytes_mapped, lp.bytes_mapped);
    CHECK_EQ(stats_of(which).bytes_mapped, w.bytes_mapped);
    /* The limited arena's room is what it was: it can still fill up to
     * its limit, not beyond. */
}

static void test_refused(int heavy_index)
{
    static const char *names[] = { "first", "second", "third" };
    mp_arena *top = arena(NULL, "top", 0);
    mp_arena *kids[3];
    for (int i = 0; i < 3; i++)
        kids[i] = arena(top, names[i], 0);
    mp_arena *heavy = kids[heavy_index];
    REQUIRE(mp_alloc(heavy, 200 * KiB) != NULL);
    mp_arena *small = arena(NULL, "small", 128 * KiB);
    mp_arena *inner = arena(small, "inner", 0);
    mp_arena *deep = arena(inner, "deep", 0);

    char tree[1024];
    outline(tree, sizeof tree);
    CHECK_STR_EQ(tree, "arena:top[arena:first arena:second arena:third] arena:small[arena:inner[arena:deep]]");

    refused(heavy, small, small, top); /* the new parent's own limit */
    refused(heavy, deep, small, top);  /* an ancestor's limit */

    /* The parent still destroys its children newest first, heavy among
     * them in its place. */
    log_buf[0] = '\0';
    mp_arena_destroy(top);
    CHECK_STR_EQ(log_buf, "third second first top ");

    /* small was charged nothing by the refused moves: it fills to its
     * limit exactly as a fresh arena would. */
    CHECK_EQ(stats_of(small).bytes_mapped, 0);
    size_t got = 0;
    while (mp_alloc(deep, 1000) != NULL)
        got++;
    CHECK(got > 100);
    CHECK(stats_of(small).bytes_mapped <= 128 * KiB);
    CHECK(stats_of(small).bytes_mapped > 64 * KiB);
    log_buf[0] = '\0';
    mp_arena_destroy(small);
    CHECK_STR_EQ(log_buf, "deep inner small ");
}

/* Inside one limited tree a move shifts bytes already counted: allowed
 * even when the tree is near its limit. */
static void test_inside_one_tree(void)
{
    mp_arena *root = arena(NULL, "root", 256 * KiB);
    mp_arena *a = arena(root, "a", 0), *b = arena(root, "b", 0);
    mp_arena *c = arena(a, "c", 0);
    REQUIRE(mp_alloc(c, 150 * KiB) != NULL);
    size_t before = stats_of(root).bytes_mapped;
    CHECK(before > 150 * KiB);
    CHECK_EQ(mp_arena_move(c, b), 0);
    CHECK_EQ(stats_of(root).bytes_mapped, before);
    CHECK_EQ(stats_of(b).bytes_mapped, stats_of(c).bytes_mapped);
    CHECK_EQ(stats_of(a).bytes_mapped, 0);
    char tree[512];
    outline(tree, sizeof tree);
    CHECK_STR_EQ(tree, "arena:root[arena:a arena:b[arena:c]]");
    log_buf[0] = '\0';
    mp_arena_destroy(root);
    CHECK_STR_EQ(log_buf, "c b a root ");
}

int main(void)
{
    for (int i = 0; i < 3; i++)
        test_refused(i);
    test_inside_one_tree();
    return check_done();
}
