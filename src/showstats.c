/*
 * showstats.c - layer 7 (reports): MPOOL_SHOW_STATS, the report of every
 * pool tree printed to stderr when the process exits, as
 * MIMALLOC_SHOW_STATS and jemalloc's stats_print do. It is the one print
 * the library makes on its own besides the error handler's, and only when
 * the user asks for it in the environment:
 *
 *   MPOOL_SHOW_STATS=1     mp_report(stderr, NULL), after a line naming the
 *                          process (1, yes, true, on and text mean the same)
 *   MPOOL_SHOW_STATS=json  mp_report_json(stderr, NULL): one line of JSON
 *   anything else, unset   nothing
 *
 * The variable is read once, by a constructor, when the library is loaded
 * (a program linked with the static library gets this file through the
 * link line's -u mp__show_stats_anchor: showstats.h). The constructor registers the
 * exit handler there and then, never from inside an allocation: with the
 * malloc drop-in, pools are made from inside malloc, where atexit (which
 * may call malloc) must not be called.
 *
 * The handler prints only if a pool was ever made (a program that links
 * mpool and never uses it prints nothing). It runs in whichever thread
 * calls exit() (or returns from main); other threads may still be using
 * pools: the report takes a snapshot under the tree lock and each pool's
 * own, as mp_report always does, so it sees consistent-enough counters
 * and never blocks them for long. A child made by fork() inherits the
 * handler and prints its own pools when it exits, with its own pid; a
 * process that ends with _exit() or a signal prints nothing. Pools
 * destroyed before the exit are not in the report. The default heap is a
 * root of the tree, so a program that only used mp_heap_default() (or the
 * malloc drop-in) sees its line.
 */
#include "common.h"
#include "showstats.h"
#include "tree.h"

#include <stdio.h>
#include <strings.h>
#include <unistd.h>

enum { SHOW_OFF, SHOW_TEXT, SHOW_JSON };

static int show_mode;  /* SHOW_*, set once by the constructor */
static int claimed;    /* the malloc drop-in reports instead: 1 (relaxed atomic) */

void mp__show_stats_claim(void) { __atomic_store_n(&claimed, 1, __ATOMIC_RELAXED); }

/* What the static link line names, so that this file is linked in. */
const char mp__show_stats_anchor = 1;

static void show_stats_at_exit(void)
{
    if (!mp__tree_pool_made() || __atomic_load_n(&claimed, __ATOMIC_RELAXED))
        return;
    int saved = errno;
    if (show_mode == SHOW_JSON) {
        mp_report_json(stderr, NULL);
    } else {
        fprintf(stderr, "mpool %s: pools at exit of process %ld (MPOOL_SHOW_STATS)\n", mp_version(),
                (long)getpid());
        mp_report(stderr, NULL);
    }
    fflush(stderr);
    errno = saved;
}

static int mode_of(const char *v)
{
    if (!v)
        return SHOW_OFF;
    if (strcasecmp(v, "json") == 0)
        return SHOW_JSON;
    static const char *const on[] = { "1", "yes", "true", "on", "text" };
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++)
        if (strcasecmp(v, on[i]) == 0)
            return SHOW_TEXT;
    return SHOW_OFF;
}

__attribute__((constructor)) static void show_stats_init(void)
{
    show_mode = mode_of(getenv("MPOOL_SHOW_STATS"));
    if (show_mode != SHOW_OFF && atexit(show_stats_at_exit) != 0)
        show_mode = SHOW_OFF; /* no room for the handler: nothing to print, and nothing else to do */
}
