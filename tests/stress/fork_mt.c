/* 1,000 forks while other threads allocate. Three worker threads keep
 * every kind busy - gets and puts on a thread-safe object pool and on a
 * capped one, allocations from an arena of their own, thread-safe child
 * arenas made, used and destroyed under a shared MP_THREADSAFE arena, a
 * reserve's allocs and frees, small pools created and destroyed - while
 * the main thread forks, one child at a
 * time. Each child, single-threaded and under a watchdog (SIGALRM after
 * 60 s kills a child that hangs on a lock the fork left held), must:
 *   - get and put on the inherited pools, its objects handed out once and
 *     keeping their stamps; the capped pool gives at least what the
 *     workers could not have been holding;
 *   - allocate from the inherited arena and the reserve;
 *   - create pools of every kind, use them, destroy them;
 *   - print a valid mp_report_json of the whole tree;
 *   - destroy every inherited pool (their objects held by threads that do
 *     not exist in the child included);
 * and exit 0. The parent checks every child's exit, and at the end that
 * the workers' own checks held and the counters balance.
 *
 * Size: MPOOL_STRESS_SCALE (a number, default 1) multiplies the 1,000
 * forks; the default under TSan is 1/2, under ASan 1/5 (a fork there
 * copies the page tables of a large shadow memory). Seeds are fixed
 * (worker i starts from check_mix(0xf0e4 + i), printed with its errors);
 * synchronisation is by atomics and joins, never by sleeping; the
 * watchdog is the only clock.
 */
#define _GNU_SOURCE 1
#include "check.h"
#include "json.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

enum { WORKERS = 3, HOLD = 16, CAP = 64, FULL_FORKS = 1000, RESERVE_MIN = 8 };

#define FREE_MARK 0x46524545u
#define OUT_MARK 0x2a4f5554u

typedef struct obj {
    uint32_t mark;
    uint32_t owner; /* worker id + 1; the child uses 1000 */
    uint64_t seq;
} obj;

static mp_objpool *pool, *capped;
static mp_arena *arena;
static mp_reserve *reserve;
static atomic_bool stop;
static atomic_size_t errors;
static atomic_size_t started;

typedef struct worker {
    uint32_t id;
    uint64_t rng, seq, ops;
    obj *held[HOLD], *held_capped[HOLD];
    size_t nheld, ncapped;
    void *elems[HOLD];
    size_t nelems;
    mp_arena *own; /* single-threaded, a root: a fork child never uses it */
    size_t allocs;
} worker;

static worker workers[WORKERS];

static uint64_t next_rand(uint64_t *r)
{
    *r ^= *r << 13;
    *r ^= *r >> 7;
    *r ^= *r << 17;
    return *r;
}

static void stamp(obj *o, uint32_t owner, uint64_t seq)
{
    o->mark = OUT_MARK;
    o->owner = owner;
    o->seq = seq;
}

static bool stamped(const obj *o, uint32_t owner) { return o->mark == OUT_MARK && o->owner == owner; }

static void worker_error(const worker *w, const char *what)
{
    if (atomic_fetch_add(&errors, 1) < 10)
        fprintf(stderr, "worker %u (seed %#llx), op %llu: %s (errno %d)\n", w->id,
                (unsigned long long)(check_mix(0xf0e4u + w->id) | 1), (unsigned long long)w->ops, what, errno);
}

static void worker_step(worker *w)
{
    uint64_t r = next_rand(&w->rng);
    uint32_t me = w->id + 1;
    switch (r % 8) {
    case 0:
    case 1: /* the plain pool */
        if (w->nheld < HOLD && (r & 8)) {
            obj *o = mp_objpool_get(pool);
            if (!o) {
                worker_error(w, "get");
                return;
            }
            stamp(o, me, ++w->seq);
            w->held[w->nheld++] = o;
        } else if (w->nheld) {
            obj *o = w->held[--w->nheld];
            if (!stamped(o, me))
                worker_error(w, "object damaged while out");
            o->mark = FREE_MARK;
            mp_objpool_put(pool, o);
        }
        break;
    case 2: /* the capped pool */
        if (w->ncapped < HOLD && (r & 8)) {
            obj *o = mp_objpool_get(capped);
            if (!o) {
                worker_error(w, "get from the capped pool");
                return;
            }
            stamp(o, me, ++w->seq);
            w->held_capped[w->ncapped++] = o;
        } else if (w->ncapped) {
            obj *o = w->held_capped[--w->ncapped];
            if (!stamped(o, me))
                worker_error(w, "capped object damaged while out");
            o->mark = FREE_MARK;
            mp_free(o);
        }
        break;
    case 3: { /* its own arena, reset now and then */
        size_t n = 1 + (r >> 8) % 300;
        unsigned char *p = mp_alloc(w->own, n);
        if (!p) {
            worker_error(w, "arena alloc");
            return;
        }
        memset(p, (int)me, n);
        if ((r >> 20) & 1)
            mp_arena_free(w->own, p);
        if (++w->allocs % 512 == 0)
            mp_arena_reset(w->own);
        break;
    }
    case 4: { /* a thread-safe child of the shared arena, made, used, destroyed */
        mp_arena *kid = mp_arena_create(arena, &(mp_arena_opts){ .name = "worker kid", .flags = MP_THREADSAFE });
        if (!kid) {
            worker_error(w, "child arena");
            return;
        }
        for (int i = 0; i < 4; i++) {
            char *s = mp_printf(kid, "%u:%llu:%d", me, (unsigned long long)w->seq, i);
            if (!s)
                worker_error(w, "printf");
        }
        mp_arena_destroy(kid);
        break;
    }
    case 5: /* the reserve */
        if (w->nelems < HOLD && (r & 8)) {
            void *e = mp_reserve_alloc(reserve, 0);
            if (e) {
                memset(e, (int)me, 32);
                w->elems[w->nelems++] = e;
            }
        } else if (w->nelems) {
            mp_reserve_free(reserve, w->elems[--w->nelems]);
        }
        break;
    case 6: { /* a pool of its own, made and destroyed */
        mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "worker pool", .obj_size = 40 });
        if (!p) {
            worker_error(w, "create");
            return;
        }
        void *o = mp_objpool_get(p);
        mp_objpool_put(p, o);
        mp_objpool_destroy(p);
        break;
    }
    default: {
        mp_stats s;
        if (mp_objpool_stats(pool, &s) != 0)
            worker_error(w, "stats");
        break;
    }
    }
    w->ops++;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    worker_step(w);
    atomic_fetch_add(&started, 1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        worker_step(w);
    while (w->nheld) {
        obj *o = w->held[--w->nheld];
        o->mark = FREE_MARK;
        mp_objpool_put(pool, o);
    }
    while (w->ncapped) {
        obj *o = w->held_capped[--w->ncapped];
        o->mark = FREE_MARK;
        mp_objpool_put(capped, o);
    }
    while (w->nelems)
        mp_reserve_free(reserve, w->elems[--w->nelems]);
    return NULL;
}

/* ------------------------------------------------------------- the child */

static void child_body(unsigned round)
{
    alarm(60); /* the watchdog: a child stuck on a lock dies, and fails */
    uint64_t seq = 0;
    obj *mine[200];

    /* The inherited pools give objects out once each, and take them back. */
    for (int i = 0; i < 200; i++) {
        mine[i] = mp_objpool_get(pool);
        REQUIRE(mine[i] != NULL);
        for (int j = 0; j < i; j++) /* not one we hold already (a fresh one is not read: it may be unset) */
            CHECK(mine[j] != mine[i]);
        stamp(mine[i], 1000, ++seq);
    }
    for (int i = 0; i < 200; i++) {
        CHECK(stamped(mine[i], 1000) && mine[i]->seq == (uint64_t)i + 1);
        mine[i]->mark = FREE_MARK;
        mp_objpool_put(pool, mine[i]);
    }
    size_t got = 0;
    obj *o;
    errno = 0;
    while (got < CAP && (o = mp_objpool_get(capped)) != NULL) {
        stamp(o, 1000, ++seq);
        mine[got++] = o;
    }
    CHECK(got >= CAP - WORKERS * HOLD); /* the workers held at most that many */
    if (got < CAP)
        CHECK_EQ(errno, ENOMEM);
    while (got) {
        o = mine[--got];
        CHECK(stamped(o, 1000));
        o->mark = FREE_MARK;
        mp_objpool_put(capped, o);
    }

    for (int i = 0; i < 50; i++) {
        unsigned char *p = mp_alloc(arena, 100 + (size_t)i);
        REQUIRE(p != NULL);
        memset(p, 0xc4, 100 + (size_t)i);
    }
    void *e[RESERVE_MIN];
    for (int i = 0; i < RESERVE_MIN; i++) {
        e[i] = mp_reserve_alloc(reserve, 0);
        REQUIRE(e[i] != NULL);
    }
    for (int i = 0; i < RESERVE_MIN; i++)
        mp_reserve_free(reserve, e[i]);

    /* New pools of every kind, used and destroyed. */
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "child", .limit = 1 << 20 });
    REQUIRE(a != NULL);
    mp_arena *kid = mp_arena_create(a, &(mp_arena_opts){ .name = "child kid" });
    mp_objpool *p = mp_objpool_create(a, &(mp_objpool_opts){ .name = "child pool", .obj_size = 24, .initial = 10 });
    mp_reserve *r = mp_reserve_create(a, &(mp_reserve_opts){ .name = "child reserve", .min_reserved = 2,
                                                             .elem_size = 16 });
    REQUIRE(kid && p && r);
    char *s = mp_printf(kid, "round %u", round);
    REQUIRE(s != NULL);
    void *x = mp_objpool_get(p), *y = mp_reserve_alloc(r, 0);
    REQUIRE(x && y);
    mp_objpool_put(p, x);
    mp_reserve_free(r, y);

    char *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    REQUIRE(f != NULL);
    mp_report_json(f, NULL);
    REQUIRE(fclose(f) == 0);
    char outline[4096];
    CHECK(json_outline(json, outline, sizeof outline));
    CHECK(strstr(outline, "arena:child[arena:child kid objpool:child pool reserve:child reserve]") != NULL);
    free(json);

    mp_arena_destroy(a);
    /* The inherited pools go too, whatever the missing threads held. */
    mp_reserve_destroy(reserve);
    mp_objpool_destroy(pool);
    mp_objpool_destroy(capped);
    mp_arena_destroy(arena);
}

static double scale(void)
{
    const char *s = getenv("MPOOL_STRESS_SCALE");
    if (s && *s)
        return strtod(s, NULL);
#if defined(__SANITIZE_THREAD__)
    return 0.5;
#elif defined(__SANITIZE_ADDRESS__)
    return 0.2;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return 0.5;
#elif __has_feature(address_sanitizer)
    return 0.2;
#endif
#endif
    return 1;
}

int main(void)
{
    double sc = scale();
    REQUIRE(sc > 0);
    int forks = (int)(FULL_FORKS * sc);
    if (forks < 10)
        forks = 10;
    /* Objects are freed with mp_free, and a destroy in the child with
     * objects out is expected: no leak reports. */
    pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "shared", .obj_size = sizeof(obj),
                                                       .flags = MP_LEAK_IGNORE });
    capped = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "capped", .obj_size = 128, .max_live = CAP,
                                                         .flags = MP_LEAK_IGNORE });
    arena = mp_arena_create(NULL, &(mp_arena_opts){ .name = "shared arena", .flags = MP_THREADSAFE });
    reserve = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = "shared reserve", .min_reserved = RESERVE_MIN,
                                                          .elem_size = 32, .flags = MP_LEAK_IGNORE });
    REQUIRE(pool && capped && arena && reserve);

    pthread_t th[WORKERS];
    for (uint32_t i = 0; i < WORKERS; i++)
        workers[i] = (worker){ .id = i, .rng = check_mix(0xf0e4u + i) | 1 };
    for (uint32_t i = 0; i < WORKERS; i++) {
        workers[i].own = mp_arena_create(NULL, &(mp_arena_opts){ .name = "worker" });
        REQUIRE(workers[i].own != NULL);
    }
    threads_start(th, WORKERS, worker_main, workers, sizeof *workers);
    while (atomic_load(&started) < WORKERS)
        sched_yield(); /* every worker is past its first operation */

    int bad = 0;
    for (int i = 0; i < forks; i++) {
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            child_body((unsigned)i);
            fflush(NULL);
            _exit(check_failures ? 1 : 0);
        }
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "fork %d: the child %s %d\n", i, WIFSIGNALED(status) ? "died of signal" : "exited with",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            if (++bad == 5)
                break;
        }
    }
    atomic_store(&stop, true);
    threads_join(th, WORKERS);
    CHECK_EQ(bad, 0);
    CHECK_EQ(atomic_load(&errors), 0);

    uint64_t ops = 0;
    for (int i = 0; i < WORKERS; i++)
        ops += workers[i].ops;
    mp_stats s, c, r;
    REQUIRE(mp_objpool_stats(pool, &s) == 0 && mp_objpool_stats(capped, &c) == 0 && mp_reserve_stats(reserve, &r) == 0);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, s.frees);
    CHECK_EQ(c.objects_in_use, 0);
    CHECK_EQ(c.allocs, c.frees);
    CHECK_EQ(r.objects_in_use, 0);
    CHECK_EQ(r.reserve_level, RESERVE_MIN);
    printf("%d forks while %d threads ran %llu operations\n", forks, WORKERS, (unsigned long long)ops);
    mp_reserve_destroy(reserve);
    mp_objpool_destroy(pool);
    mp_objpool_destroy(capped);
    mp_arena_destroy(arena);
    for (int i = 0; i < WORKERS; i++)
        mp_arena_destroy(workers[i].own);
    return check_done();
}
