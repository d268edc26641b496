/* Out-of-memory sweep for reserves (SQLite's fault simulator, applied to the
 * reserve's source and to the library's own allocations). One scenario -
 * create min 4; alloc 6 with timeout 0; one short timed alloc; free 3;
 * resize 8; resize 2; alloc 2; free all; destroy - runs:
 *   - with a source that fails only at its k-th call, for k = 1 up to one
 *     past the calls of a clean run;
 *   - with a source that fails at its k-th call and every call after;
 *   - with a healthy source and mp__os_fail_after(k) (the reserve's own
 *     metadata), for k = 1, 2, ... until a run makes fewer than k calls;
 * each with no parent and under an arena. In every run:
 *   - each call succeeds or fails the documented way (NULL + ENOMEM from
 *     create and a timeout-0 alloc, NULL + ETIMEDOUT from a timed one,
 *     ENOMEM from resize, which then changes nothing);
 *   - after every step the books balance: the source's elements out equal
 *     the reserve's level plus the elements the scenario holds, the level
 *     never exceeds min_reserved, and the statistics agree;
 *   - at the end the source has every element back (live count 0) and
 *     nothing leaks (run under valgrind --leak-check=full and ASan). */
#define _GNU_SOURCE 1
#include "check.h"
#include "os.h"

#include <mpool.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>

/* ------------------------------------------------------ faulty source */

enum { HOLD_MAX = 16 };

typedef enum mode { NO_FAULT, SRC_ONCE, SRC_FROM, OS_ONCE } mode;
static const char *const mode_name[] = { "clean", "source fails once", "source fails from then on",
                                         "os layer fails once" };

#include "reserve_source.h"

/* ----------------------------------------------------------- one run */

typedef struct run {
    mode m;
    unsigned long k;
    source src;
    mp_reserve *r;
    void *held[HOLD_MAX];
    size_t nheld;
    size_t errors;   /* calls that failed the wrong way, or books that did not balance */
    size_t observed; /* calls that reported a clean failure */
} run;

static void bad(run *x, int line, const char *fmt, ...) MP_PRINTF(3, 4);
static void bad(run *x, int line, const char *fmt, ...)
{
    fprintf(stderr, "%s, k = %lu, line %d: ", mode_name[x->m], x->k, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    x->errors++;
}
#define BAD(x, ...) bad((x), __LINE__, __VA_ARGS__)

/* The books after every step. */
static void balance(run *x, int line)
{
    mp_stats s;
    if (mp_reserve_stats(x->r, &s) != 0) {
        bad(x, line, "stats failed");
        return;
    }
    if (x->src.live != s.reserve_level + x->nheld)
        bad(x, line, "source has %zu out, reserve level + held = %zu", x->src.live, s.reserve_level + x->nheld);
    if (s.objects_in_use != x->nheld)
        bad(x, line, "objects_in_use %zu, held %zu", s.objects_in_use, x->nheld);
    if (s.allocs - s.frees != s.objects_in_use)
        bad(x, line, "allocs - frees = %zu, objects_in_use %zu", s.allocs - s.frees, s.objects_in_use);
    if (s.reserve_level > s.reserve_min)
        bad(x, line, "level %zu above min %zu", s.reserve_level, s.reserve_min);
    if (x->src.bad_frees)
        bad(x, line, "%zu bad give-backs to the source", x->src.bad_frees);
}
#define BALANCE(x) balance((x), __LINE__)

static mp_stats stats_now(run *x)
{
    mp_stats s = { 0 };
    REQUIRE(mp_reserve_stats(x->r, &s) == 0);
    return s;
}

/* An alloc: an element, or NULL + ENOMEM (timeout 0) or ETIMEDOUT. */
static void alloc_one(run *x, int64_t timeout)
{
    errno = 0;
    void *e = mp_reserve_alloc(x->r, timeout);
    int err = errno;
    if (e) {
        REQUIRE(x->nheld < HOLD_MAX);
        x->held[x->nheld++] = e;
    } else if (err != (timeout == 0 ? ENOMEM : ETIMEDOUT)) {
        BAD(x, "alloc failed with errno %d, want %d", err, timeout == 0 ? ENOMEM : ETIMEDOUT);
    } else {
        x->observed++;
    }
    BALANCE(x);
}

static void free_one(run *x, size_t i)
{
    mp_reserve_free(x->r, x->held[i]);
    x->held[i] = x->held[--x->nheld];
    BALANCE(x);
}

static void resize(run *x, size_t n)
{
    mp_stats before = stats_now(x);
    int rc = mp_reserve_resize(x->r, n);
    mp_stats after = stats_now(x);
    if (rc == 0) {
        if (after.reserve_min != n)
            BAD(x, "resize(%zu) gave min %zu", n, after.reserve_min);
        size_t want = n > before.reserve_min ? n : (before.reserve_level < n ? before.reserve_level : n);
        if (after.reserve_level != want)
            BAD(x, "resize gave level %zu, want %zu", after.reserve_level, want);
    } else if (rc == ENOMEM) {
        x->observed++;
        if (after.reserve_min != before.reserve_min || after.reserve_level != before.reserve_level)
            BAD(x, "a failed resize changed min or level (min now %zu, level now %zu)", after.reserve_min,
                after.reserve_level);
    } else {
        BAD(x, "resize(%zu) returned %d", n, rc);
    }
    BALANCE(x);
}

static void scenario(run *x, mp_arena *parent)
{
    errno = 0;
    x->r = mp_reserve_create(parent, &(mp_reserve_opts){ .name = "faulty", .min_reserved = 4, .alloc = src_alloc,
                                                         .free = src_free, .src = &x->src });
    if (!x->r) {
        if (errno != ENOMEM)
            BAD(x, "create failed with errno %d, want %d", errno, ENOMEM);
        else
            x->observed++;
        if (x->src.live != 0)
            BAD(x, "a failed create left %zu elements out", x->src.live);
        return;
    }
    BALANCE(x);
    for (int i = 0; i < 6; i++)
        alloc_one(x, 0);
    alloc_one(x, 1000); /* 1 us: an element at once, or a wait that runs out */
    for (int i = 0; i < 3 && x->nheld; i++)
        free_one(x, 0);
    resize(x, 8);
    resize(x, 2);
    alloc_one(x, 0);
    alloc_one(x, 0);
    while (x->nheld)
        free_one(x, x->nheld - 1);
    mp_reserve_destroy(x->r);
    if (x->src.live != 0 || x->src.bad_frees)
        BAD(x, "after destroy the source has %zu out, %zu bad give-backs", x->src.live, x->src.bad_frees);
}

/* Runs the scenario once with a fault at k (k = 0: none). Returns the
 * calls made at the place that fails: the source's, or the os layer's. */
static unsigned long run_once(mode m, unsigned long k, bool under_arena, run *x)
{
    *x = (run){ .m = m, .k = k };
    if (m == SRC_ONCE || m == SRC_FROM) {
        x->src.fail_at = k;
        x->src.persistent = m == SRC_FROM;
    }
    mp_arena *a = NULL;
    if (under_arena)
        REQUIRE((a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "faults-parent" })) != NULL);
    unsigned long before = mp__os_calls();
    if (m == OS_ONCE)
        mp__os_fail_after(k);
    scenario(x, a);
    unsigned long os_calls = mp__os_calls() - before;
    mp__os_fail_after(0);
    if (a) {
        mp_stats s;
        REQUIRE(mp_arena_stats(a, &s) == 0);
        CHECK_EQ(s.reserve_min, 0); /* the reserve left its parent */
        mp_arena_destroy(a);
    }
    return m == OS_ONCE ? os_calls : x->src.calls;
}

static void sweep(mode m, bool under_arena)
{
    run x;
    unsigned long clean = run_once(NO_FAULT, 0, under_arena, &x);
    CHECK_EQ(x.errors, 0);
    CHECK_EQ(x.observed, 0);
    unsigned long k, observed_runs = 0;
    for (k = 1;; k++) {
        unsigned long calls = run_once(m, k, under_arena, &x);
        CHECK_EQ(x.errors, 0);
        observed_runs += x.observed != 0;
        if (m == OS_ONCE ? calls < k : k > clean)
            break;
        REQUIRE(k < 100000);
    }
    CHECK(observed_runs > 0 || m == OS_ONCE);
    printf("%-28s %-12s %lu source calls in a clean run; runs with k = 1..%lu, %lu reported a failure\n",
           mode_name[m], under_arena ? "under arena" : "root", clean, k, observed_runs);
}

int main(void)
{
    for (int arena = 0; arena < 2; arena++) {
        sweep(SRC_ONCE, arena);
        sweep(SRC_FROM, arena);
        sweep(OS_ONCE, arena);
    }
    /* The clean run makes the calls the scenario describes: 4 to fill, 7
     * allocs (the source first, always healthy), 4 to grow to 8, 2 allocs. */
    run x;
    CHECK_EQ(run_once(NO_FAULT, 0, false, &x), 4 + 7 + 4 + 2);
    return check_done();
}
