/* Generational handles across threads (public header only; run under
 * TSan by make test-tsan):
 *   cross        8 threads get objects, publish their handles in shared
 *                slots, take other threads' handles out and put them (by
 *                handle, pointer, mp_free or put_bulk), and deref whatever
 *                handle a slot holds meanwhile: a handle taken out derefs
 *                to its object (its taker is the only one who may put it),
 *                and to NULL + ESTALE once put; a peeked one to its object
 *                or NULL + ESTALE, never EINVAL; objects read under a
 *                slot's lock (the lock every put of them takes) are whole;
 *                the counters balance at the end.
 *   racing_puts  two threads put one object at once, by handle and by
 *                handle or pointer: exactly one put happens, the other is
 *                reported.
 *   stale_reused one thread gets and puts one slot over and over; others
 *                deref the handles it has put: always NULL + ESTALE,
 *                though the slot is out again. */
#define _GNU_SOURCE 1
#include "cases.h"
#include "threads.h"

#include <mpool.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define THREADS 8
#define SLOTS 64

/* Iterations: fewer under TSan, which runs this some 20 times slower;
 * MPOOL_STRESS_SCALE scales them (tests/README). */
static long iterations(long full)
{
    const char *s = getenv("MPOOL_STRESS_SCALE");
    double scale = s ? atof(s) : 1.0;
    long n = (long)((double)(CHECK_TSAN ? full / 10 : full) * (scale > 0 ? scale : 1.0));
    return n > 100 ? n : 100;
}

typedef struct item {
    mp_handle self; /* the handle it was published under */
    uint64_t check; /* check_mix(self) */
    char pad[40];
} item;

static mp_objpool *pool;
static _Atomic mp_handle slots[SLOTS];
static struct {
    pthread_mutex_t mu;
    mp_handle h; /* guarded by mu; every put of its object takes mu */
} locked[SLOTS];
static atomic_long gets, bad_peeks, reports;

static void counting(const char *msg, const void *ptr, void *arg)
{
    (void)msg;
    (void)ptr;
    (void)arg;
    atomic_fetch_add(&reports, 1);
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A new object, stamped with its handle. */
static mp_handle make_item(void)
{
    item *it = mp_objpool_get(pool);
    REQUIRE(it != NULL);
    atomic_fetch_add(&gets, 1);
    mp_handle h = mp_objpool_handle(pool, it);
    CHECK(h != 0);
    it->self = h;
    it->check = check_mix(h);
    return h;
}

/* h is ours alone: its object is out until we put it. */
static void put_owned(mp_handle h, uint64_t how)
{
    item *it = mp_objpool_deref(pool, h);
    if (!it) {
        fprintf(stderr, "owned handle %#llx: deref NULL, errno %d\n", (unsigned long long)h, errno);
        check_failures++;
        return;
    }
    CHECK(it->self == h && it->check == check_mix(h));
    void *v = it;
    switch (how % 4) {
    case 0: mp_objpool_put_handle(pool, h); break;
    case 1: mp_objpool_put(pool, it); break;
    case 2: mp_free(it); break;
    default: mp_objpool_put_bulk(pool, &v, 1); break;
    }
    errno = 0;
    CHECK(mp_objpool_deref(pool, h) == NULL);
    CHECK_EQ(errno, ESTALE);
}

static void *cross_thread(void *arg)
{
    uint64_t rng = 0x243f6a8885a308d3ull * *(const uint64_t *)arg + 1;
    long n = iterations(200000);
    for (long i = 0; i < n; i++) {
        uint64_t r = next(&rng);
        size_t k = (size_t)(r >> 8) % SLOTS;
        switch (r % 8) {
        case 0: case 1: case 2: { /* publish, and take out what was there */
            mp_handle old = atomic_exchange(&slots[k], make_item());
            if (old)
                put_owned(old, r >> 40);
            break;
        }
        case 3: { /* take out and put */
            mp_handle old = atomic_exchange(&slots[k], 0);
            if (old)
                put_owned(old, r >> 40);
            break;
        }
        case 4: case 5: { /* peek: its taker may put it meanwhile */
            mp_handle h = atomic_load(&slots[k]);
            errno = 0;
            if (h && !mp_objpool_deref(pool, h) && errno != ESTALE)
                atomic_fetch_add(&bad_peeks, 1);
            break;
        }
        default: { /* read or replace under the slot's lock */
            pthread_mutex_lock(&locked[k].mu);
            mp_handle h = locked[k].h;
            if (h) {
                const item *it = mp_objpool_deref(pool, h);
                CHECK(it != NULL && it->self == h && it->check == check_mix(h));
            }
            if (r & (1u << 20)) {
                if (h)
                    put_owned(h, r >> 40);
                locked[k].h = (r & (1u << 21)) ? make_item() : 0;
            }
            pthread_mutex_unlock(&locked[k].mu);
            break;
        }
        }
    }
    return NULL;
}

static void test_cross(void)
{
    pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "cross", .obj_size = sizeof(item),
                                                        .max_free = 256, .flags = MP_HANDLES });
    REQUIRE(pool != NULL);
    for (int k = 0; k < SLOTS; k++)
        pthread_mutex_init(&locked[k].mu, NULL);
    uint64_t seeds[THREADS];
    for (int i = 0; i < THREADS; i++)
        seeds[i] = (uint64_t)i + 1;
    threads_run_together(THREADS, cross_thread, seeds, sizeof seeds[0]);
    for (int k = 0; k < SLOTS; k++) {
        mp_handle h = atomic_exchange(&slots[k], 0);
        if (h)
            put_owned(h, (uint64_t)k);
        if (locked[k].h)
            put_owned(locked[k].h, (uint64_t)k + 1);
        locked[k].h = 0;
        pthread_mutex_destroy(&locked[k].mu);
    }
    CHECK_EQ(atomic_load(&bad_peeks), 0);
    mp_stats s;
    REQUIRE(mp_objpool_stats(pool, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, atomic_load(&gets));
    CHECK_EQ(s.frees, atomic_load(&gets));
    mp_objpool_destroy(pool);
}

/* ----------------------------------------------------------- racing puts */

static mp_handle race_h;
static void *race_obj;

static void *put_by_handle(void *arg)
{
    (void)arg;
    mp_objpool_put_handle(pool, race_h);
    return NULL;
}

static void *put_by_pointer(void *arg)
{
    (void)arg;
    mp_objpool_put(pool, race_obj);
    return NULL;
}

static void test_racing_puts(void)
{
    pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "race", .obj_size = 32, .flags = MP_HANDLES });
    REQUIRE(pool != NULL);
    mp_set_error_handler(counting, NULL);
    long rounds = iterations(2000) / 10;
    for (long i = 0; i < rounds; i++) {
        race_obj = mp_objpool_get(pool);
        race_h = mp_objpool_handle(pool, race_obj);
        atomic_store(&reports, 0);
        if (i & 1) {
            threads_run_together(2, put_by_handle, NULL, 0);
        } else {
            pthread_t t[2];
            pthread_barrier_t go;
            REQUIRE(pthread_barrier_init(&go, NULL, 2) == 0);
            threads_entry e[2] = { { put_by_handle, NULL, &go }, { put_by_pointer, NULL, &go } };
            threads_start(&t[0], 1, threads_enter_together, &e[0], 0);
            threads_start(&t[1], 1, threads_enter_together, &e[1], 0);
            threads_join(t, 2);
            pthread_barrier_destroy(&go);
        }
        CHECK_EQ(atomic_load(&reports), 1);
        errno = 0;
        CHECK(mp_objpool_deref(pool, race_h) == NULL && errno == ESTALE);
    }
    mp_set_error_handler(NULL, NULL);
    mp_stats s;
    REQUIRE(mp_objpool_stats(pool, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0);
    CHECK_EQ(s.allocs, rounds);
    CHECK_EQ(s.frees, rounds);
    mp_objpool_destroy(pool);
}

/* ----------------------------------------------------------- stale reuse */

static _Atomic mp_handle last_put;
static atomic_int stop;

static void *reuse_one_slot(void *arg)
{
    (void)arg;
    long n = iterations(300000);
    for (long i = 0; i < n; i++) {
        void *o = mp_objpool_get(pool);
        mp_handle h = mp_objpool_handle(pool, o);
        CHECK_PTR_EQ(mp_objpool_deref(pool, h), o);
        mp_objpool_put(pool, o); /* the same slot comes back next time: LIFO */
        atomic_store(&last_put, h);
    }
    atomic_store(&stop, 1);
    return NULL;
}

static void *deref_put_ones(void *arg)
{
    (void)arg;
    long derefs = 0;
    while (!atomic_load(&stop) || derefs == 0) {
        mp_handle h = atomic_load(&last_put);
        if (!h)
            continue;
        errno = 0;
        void *o = mp_objpool_deref(pool, h);
        if (o || errno != ESTALE) {
            fprintf(stderr, "deref of the put handle %#llx: %p errno %d\n", (unsigned long long)h, o, errno);
            atomic_fetch_add(&bad_peeks, 1);
        }
        derefs++;
    }
    return NULL;
}

static void test_stale_reused(void)
{
    pool = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "one slot", .obj_size = 64, .flags = MP_HANDLES });
    REQUIRE(pool != NULL);
    atomic_store(&bad_peeks, 0);
    pthread_t t[4];
    threads_start(&t[0], 1, reuse_one_slot, NULL, 0);
    threads_start(&t[1], 3, deref_put_ones, NULL, 0);
    threads_join(t, 4);
    CHECK_EQ(atomic_load(&bad_peeks), 0);
    mp_objpool_destroy(pool);
}

static const check_case cases[] = {
    CHECK_CASE(cross, test_cross),
    CHECK_CASE(racing_puts, test_racing_puts),
    CHECK_CASE(stale_reused, test_stale_reused),
};

int main(int argc, char **argv) { return check_cases(argc, argv, cases, CHECK_NCASES(cases)); }
