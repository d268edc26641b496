/* mp_heap_foreach visits exactly the live allocations, each once, with
 * its size (at least the size asked for, at most the usable size), and
 * returns how many: of every size regime (0 bytes, small, aligned, a chunk
 * of its own, reallocated), after frees, and with blocks that other threads
 * allocated or freed: threads that exited (their caches retired), and
 * threads parked at a quiet point with freed blocks still in their caches,
 * which must not be visited. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "heap.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>

/* The live set a walk must match: pointers, sizes asked for, and how many
 * times each was visited. */
typedef struct live {
    void **ptr;
    size_t *size;
    size_t *seen;
    size_t n, cap;
    size_t strays; /* visits of pointers not in the set, or with a bad size */
} live;

static void live_add(live *l, void *p, size_t size)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->ptr = realloc(l->ptr, l->cap * sizeof *l->ptr);
        l->size = realloc(l->size, l->cap * sizeof *l->size);
        l->seen = realloc(l->seen, l->cap * sizeof *l->seen);
        REQUIRE(l->ptr && l->size && l->seen);
    }
    l->ptr[l->n] = p;
    l->size[l->n] = size;
    l->n++;
}

static void live_remove(live *l, size_t i)
{
    l->n--;
    l->ptr[i] = l->ptr[l->n];
    l->size[i] = l->size[l->n];
}

static void live_free(live *l)
{
    free(l->ptr);
    free(l->size);
    free(l->seen);
}

/* What one walk visited, in order: visit calls nothing of the library. */
typedef struct visits {
    void **ptr;
    size_t *size;
    size_t n, cap;
} visits;

static void visit(void *p, size_t size, void *arg)
{
    visits *v = arg;
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 1024;
        v->ptr = realloc(v->ptr, v->cap * sizeof *v->ptr);
        v->size = realloc(v->size, v->cap * sizeof *v->size);
        REQUIRE(v->ptr && v->size);
    }
    v->ptr[v->n] = p;
    v->size[v->n++] = size;
}

/* Walks h and checks the walk against l. */
static void walk_matches(mp_heap *h, live *l, int line)
{
    visits v = { 0 };
    errno = 0;
    size_t got = mp_heap_foreach(h, visit, &v);
    int err = errno;
    if (l->cap)
        memset(l->seen, 0, l->cap * sizeof *l->seen);
    l->strays = 0;
    for (size_t k = 0; k < v.n; k++) {
        size_t i = 0;
        while (i < l->n && l->ptr[i] != v.ptr[k])
            i++;
        if (i == l->n) {
            fprintf(stderr, "line %d: visit of %p (%zu bytes), which is not live\n", line, v.ptr[k], v.size[k]);
            l->strays++;
            continue;
        }
        l->seen[i]++;
        if (v.size[k] < l->size[i] || v.size[k] > mp_usable_size(v.ptr[k])) {
            fprintf(stderr, "line %d: visit of %p with size %zu; asked %zu, usable %zu\n", line, v.ptr[k],
                    v.size[k], l->size[i], mp_usable_size(v.ptr[k]));
            l->strays++;
        }
    }
    size_t missed = 0, twice = 0;
    for (size_t i = 0; i < l->n; i++) {
        missed += l->seen[i] == 0;
        twice += l->seen[i] > 1;
    }
    if (got != l->n || v.n != l->n || missed || twice || l->strays) {
        fprintf(stderr,
                "line %d: foreach returned %zu (%zu visits) for %zu live; %zu missed, %zu twice, %zu strays (errno %d)\n",
                line, got, v.n, l->n, missed, twice, l->strays, err);
        check_failures++;
    }
    free(v.ptr);
    free(v.size);
}
#define WALK_MATCHES(h, l) walk_matches((h), (l), __LINE__)

static mp_heap *make(void)
{
    mp_heap *h = mp_heap_create(NULL, &(mp_heap_opts){ .name = "walked" });
    REQUIRE(h != NULL);
    return h;
}

static void test_one_thread(void)
{
    mp_heap *h = make();
    live l = { 0 };
    WALK_MATCHES(h, &l); /* empty */
    for (size_t i = 0; i < 3000; i++) {
        size_t size = i % 500 == 7 ? 2 * MiB + i : i % 3 == 0 ? i % 64 : 16 + i * 31 % 9000;
        void *p = i % 11 == 0 ? mp_heap_alloc_aligned(h, size, 4096) : mp_heap_alloc(h, size);
        REQUIRE(p != NULL);
        live_add(&l, p, size);
    }
    WALK_MATCHES(h, &l);
    /* Free a third, reallocate a third. */
    for (size_t i = 0; i < l.n; i++)
        if (i % 3 == 0) {
            mp_free(l.ptr[i]);
            live_remove(&l, i);
        } else if (i % 3 == 1) {
            size_t size = l.size[i] * 2 + 1;
            void *q = mp_heap_realloc(h, l.ptr[i], size);
            REQUIRE(q != NULL);
            l.ptr[i] = q;
            l.size[i] = size;
        }
    WALK_MATCHES(h, &l);
    CHECK_EQ(heap_stats(h).objects_in_use, l.n);
    while (l.n) {
        mp_free(l.ptr[l.n - 1]);
        l.n--;
    }
    WALK_MATCHES(h, &l);
    live_free(&l);
    mp_heap_destroy(h);
}

/* ------------------------------------------------------ other threads */

enum { WORKERS = 4, PER_WORKER = 2000 };

typedef struct worker {
    mp_heap *h;
    unsigned id;
    void *kept[PER_WORKER]; /* the blocks it leaves live */
    size_t kept_size[PER_WORKER];
    size_t nkept;
    pthread_barrier_t *parked, *go; /* NULL: exit at once */
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    void *mine[PER_WORKER];
    for (size_t i = 0; i < PER_WORKER; i++) {
        size_t size = 8 + (i * 131 + w->id * 7) % 3000;
        REQUIRE((mine[i] = mp_heap_alloc(w->h, size)) != NULL);
        if (i % 2) {
            w->kept[w->nkept] = mine[i];
            w->kept_size[w->nkept++] = size;
        }
    }
    for (size_t i = 0; i < PER_WORKER; i += 2) /* half freed: into this thread's cache */
        mp_free(mine[i]);
    if (w->parked) {
        pthread_barrier_wait(w->parked); /* quiet: main walks the heap now */
        pthread_barrier_wait(w->go);
        for (size_t i = 0; i < w->nkept; i++)
            mp_free(w->kept[i]);
        w->nkept = 0;
    }
    return NULL;
}

static void collect(live *l, worker *ws)
{
    for (size_t t = 0; t < WORKERS; t++)
        for (size_t i = 0; i < ws[t].nkept; i++)
            live_add(l, ws[t].kept[i], ws[t].kept_size[i]);
}

static void test_exited_threads(void)
{
    mp_heap *h = make();
    static worker ws[WORKERS];
    for (unsigned t = 0; t < WORKERS; t++)
        ws[t] = (worker){ .h = h, .id = t };
    threads_run(WORKERS, worker_main, ws, sizeof *ws);
    live l = { 0 };
    collect(&l, ws);
    WALK_MATCHES(h, &l);
    CHECK_EQ(heap_stats(h).objects_in_use, WORKERS * PER_WORKER / 2);
    for (size_t i = 0; i < l.n; i++)
        mp_free(l.ptr[i]);
    l.n = 0;
    WALK_MATCHES(h, &l);
    live_free(&l);
    mp_heap_destroy(h);
}

static void test_parked_threads(void)
{
    mp_heap *h = make();
    static worker ws[WORKERS];
    pthread_barrier_t parked, go;
    REQUIRE(pthread_barrier_init(&parked, NULL, WORKERS + 1) == 0);
    REQUIRE(pthread_barrier_init(&go, NULL, WORKERS + 1) == 0);
    for (unsigned t = 0; t < WORKERS; t++)
        ws[t] = (worker){ .h = h, .id = t, .parked = &parked, .go = &go };
    pthread_t th[WORKERS];
    threads_start(th, WORKERS, worker_main, ws, sizeof *ws);
    pthread_barrier_wait(&parked);
    live l = { 0 };
    collect(&l, ws);
    void *own = mp_heap_alloc(h, 77);
    REQUIRE(own != NULL);
    live_add(&l, own, 77);
    WALK_MATCHES(h, &l); /* the freed half, in the parked threads' caches, is not live */
    pthread_barrier_wait(&go);
    threads_join(th, WORKERS);
    mp_free(own);
    l.n = 0;
    WALK_MATCHES(h, &l);
    HEAP_CHECK_EMPTY(h);
    pthread_barrier_destroy(&parked);
    pthread_barrier_destroy(&go);
    live_free(&l);
    mp_heap_destroy(h);
}

static const check_case cases[] = {
    CHECK_CASE(one_thread, test_one_thread),
    CHECK_CASE(exited_threads, test_exited_threads),
    CHECK_CASE(parked_threads, test_parked_threads),
};

int main(int argc, char **argv) { return check_cases(argc, argv, cases, CHECK_NCASES(cases)); }
