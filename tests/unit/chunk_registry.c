/* Unit tests of the chunk layer: alignment, header lookup by masking, the
 * registry of live chunks, retention, and out-of-memory behaviour. */
#include "check.h"
#include "chunk.h"
#include "os.h"

#include <stdlib.h>

static void test_alloc_and_lookup(void)
{
    int owner;
    mp__chunk *c = mp__chunk_alloc(100, 0, 7, &owner);
    REQUIRE(c != NULL);
    CHECK_EQ((uintptr_t)c % MP_CHUNK_SIZE, 0);
    CHECK_EQ(c->size, MP_CHUNK_SIZE);
    CHECK_EQ(c->kind, 7);
    CHECK_PTR_EQ(c->owner, &owner);
    char *inside = (char *)c + 1000;
    CHECK_PTR_EQ(mp__chunk_of(inside), c);
    CHECK_PTR_EQ(mp__chunk_lookup(inside), c);
    CHECK_PTR_EQ(mp__chunk_lookup((char *)c + MP_CHUNK_SIZE - 1), c);
    mp__chunk_free(c);
    CHECK(mp__chunk_lookup(inside) == NULL); /* unregistered, and never read */
}

static void test_large_chunk(void)
{
    mp__chunk *c = mp__chunk_alloc(5 * MP_CHUNK_SIZE + 1, 0, 1, NULL);
    REQUIRE(c != NULL);
    /* Past the standard size a chunk is rounded to the page, not to a unit. */
    CHECK_EQ(c->size, 5 * MP_CHUNK_SIZE + mp__os_page_size());
    CHECK_PTR_EQ(mp__chunk_lookup((char *)c + 64), c);
    /* Only the first unit holds the header: later units are not chunks. */
    CHECK(mp__chunk_lookup((char *)c + 2 * MP_CHUNK_SIZE) == NULL);
    mp__chunk_free(c);
}

static void test_foreign_pointers(void)
{
    int on_stack = 0;
    char *heap = malloc(16);
    CHECK(mp__chunk_lookup(&on_stack) == NULL);
    CHECK(mp__chunk_lookup(heap) == NULL);
    CHECK(mp__chunk_lookup(NULL) == NULL);
    CHECK(mp__chunk_lookup((void *)(uintptr_t)0xffff800000000000ull) == NULL); /* beyond user space */
    CHECK(mp__chunk_lookup((void *)(uintptr_t)0x100) == NULL);
    free(heap);
}

static void test_retention(void)
{
    mp__chunk_release_retained();
    CHECK_EQ(mp__chunk_retained(), 0);
    mp__chunk *a = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL);
    REQUIRE(a != NULL);
    ((char *)a)[4096] = 42;
    mp__chunk_free(a);
    CHECK_EQ(mp__chunk_retained(), MP_CHUNK_SIZE);
    mp__chunk *b = mp__chunk_alloc(MP_CHUNK_SIZE, 8192, 2, NULL); /* zeroed up to 8192 */
    REQUIRE(b != NULL);
    CHECK_PTR_EQ(b, a);                  /* reused */
    CHECK_EQ(((char *)b)[4096], 0);      /* and zeroed again as far as asked */
    CHECK_EQ(mp__chunk_retained(), 0);
    CHECK_EQ(b->kind, 2);
    mp__chunk_free(b);
    mp__chunk_release_retained();
    CHECK_EQ(mp__chunk_retained(), 0);
}

/* A free makes room in the cache by giving back at most
 * MP_CHUNK_LARGE_BATCH of the oldest chunks; a chunk that needs more room
 * than that is not kept, and the room made stays for the next. */
static void test_large_cache_batch(void)
{
    size_t page = mp__os_page_size(), small = MP_CHUNK_SIZE + page;
    enum { MAX_SMALL = 300 };
    static mp__chunk *c[MAX_SMALL];
    size_t n = MP_CHUNK_LARGE_RETAIN / small;
    REQUIRE(n <= MAX_SMALL && n <= MP_CHUNK_LARGE_SLOTS);
    mp__chunk_release_retained();
    for (size_t i = 0; i < n; i++)
        REQUIRE((c[i] = mp__chunk_alloc_fit(small, small, 0, 1, NULL)) != NULL);
    for (size_t i = 0; i < n; i++)
        mp__chunk_free_cached(c[i]);
    CHECK_EQ(mp__chunk_cached_large(), n * small); /* full: no room for another small + a page */
    size_t big = MP_CHUNK_LARGE_RETAIN / 4; /* needs more room than a batch makes */
    REQUIRE(big > (MP_CHUNK_LARGE_BATCH + 1) * small);
    mp__chunk *b = mp__chunk_alloc_fit(big, big, 0, 1, NULL);
    REQUIRE(b != NULL);
    mp__chunk_free_cached(b);
    CHECK_EQ(mp__chunk_cached_large(), (n - MP_CHUNK_LARGE_BATCH) * small);
    mp__chunk_release_retained();
    CHECK_EQ(mp__chunk_cached_large(), 0);
}

/* Freed standard chunks stay backed (their bytes past zero_len as they
 * were) up to MP_CHUNK_HOT of them, or a quarter of the live ones when
 * that is more; the rest are decommitted (they read zero). */
static void test_hot_bound_scales(void)
{
    enum { LIVE = 4 * (MP_CHUNK_HOT + 40) };
    static mp__chunk *c[LIVE];
    mp__chunk_release_retained();
    for (size_t i = 0; i < LIVE; i++) {
        REQUIRE((c[i] = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL)) != NULL);
        ((char *)c[i])[4096] = 42;
    }
    /* The k-th free leaves LIVE - k live, and stays backed while fewer
     * than a quarter of those (and MP_CHUNK_HOT or more) are. */
    size_t freed = 2 * MP_CHUNK_HOT, backed_bound = 0;
    for (size_t i = 0; i < freed; i++) {
        mp__chunk_free(c[LIVE - 1 - i]);
        size_t live = LIVE - 1 - i;
        backed_bound += backed_bound < MP_CHUNK_HOT || backed_bound < live / 4;
    }
    size_t backed = 0;
    for (size_t i = 0; i < freed; i++) {
        REQUIRE((c[LIVE - 1 - i] = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL)) != NULL);
        backed += ((char *)c[LIVE - 1 - i])[4096] == 42;
    }
    CHECK_EQ(backed, backed_bound);
    CHECK(backed > MP_CHUNK_HOT);
    for (size_t i = 0; i < LIVE; i++)
        mp__chunk_free(c[i]);
    mp__chunk_release_retained();
}

/* Free standard chunks are kept up to MP_CHUNK_RETAIN bytes, or as many
 * as are live when that is more; the rest go back to the OS. */
static void test_retain_bound_scales(void)
{
    enum { LIVE = 2 * (MP_CHUNK_RETAIN / MP_CHUNK_SIZE) + 100 };
    static mp__chunk *c[LIVE];
    mp__chunk_release_retained();
    for (size_t i = 0; i < LIVE; i++)
        REQUIRE((c[i] = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL)) != NULL);
    size_t kept = 0; /* what the rule keeps, free by free */
    for (size_t i = 0; i < LIVE; i++) {
        mp__chunk_free(c[LIVE - 1 - i]);
        size_t live = (LIVE - 1 - i) * MP_CHUNK_SIZE;
        size_t bound = live > MP_CHUNK_RETAIN ? live : MP_CHUNK_RETAIN;
        kept += (kept + 1) * MP_CHUNK_SIZE <= bound;
    }
    CHECK_EQ(mp__chunk_retained(), kept * MP_CHUNK_SIZE);
    CHECK(kept * MP_CHUNK_SIZE > MP_CHUNK_RETAIN);
    mp__chunk_release_retained();
    CHECK_EQ(mp__chunk_retained(), 0);
}

/* A large chunk in the cache goes back once standard chunks have grown on
 * net by its size; standard chunks turning over do not count. */
static void test_large_cache_sheds_on_growth(void)
{
    mp__chunk_release_retained();
    mp__chunk *l = mp__chunk_alloc_fit(4 * MP_CHUNK_SIZE, 4 * MP_CHUNK_SIZE, 0, 1, NULL);
    REQUIRE(l != NULL);
    mp__chunk_free_cached(l);
    CHECK_EQ(mp__chunk_cached_large(), 4 * MP_CHUNK_SIZE);
    mp__chunk *s[4];
    for (int i = 0; i < 3; i++)
        REQUIRE((s[i] = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL)) != NULL);
    CHECK_EQ(mp__chunk_cached_large(), 4 * MP_CHUNK_SIZE); /* grown by 3 chunks: kept */
    for (int round = 0; round < 10; round++) { /* turnover: a freed chunk taken again */
        mp__chunk_free(s[2]);
        REQUIRE((s[2] = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL)) != NULL);
    }
    CHECK_EQ(mp__chunk_cached_large(), 4 * MP_CHUNK_SIZE);
    REQUIRE((s[3] = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL)) != NULL);
    CHECK_EQ(mp__chunk_cached_large(), 0); /* grown by its size: given back */
    for (int i = 0; i < 4; i++)
        mp__chunk_free(s[i]);
    mp__chunk_release_retained();
}

/* The registry holds each live chunk's owner: mp__chunk_owned_by answers
 * for the owner only, for live chunks only, and never reads the address. */
static void test_owned_by(void)
{
    int mine, theirs;
    mp__chunk *c = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, &mine);
    mp__chunk *big = mp__chunk_alloc(3 * MP_CHUNK_SIZE, 0, 1, &mine);
    mp__chunk *anon = mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL);
    REQUIRE(c && big && anon);
    CHECK(mp__chunk_owned_by((uintptr_t)c, &mine));
    CHECK(!mp__chunk_owned_by((uintptr_t)c, &theirs));
    CHECK(mp__chunk_owned_by((uintptr_t)big, &mine));
    CHECK(!mp__chunk_owned_by((uintptr_t)big + MP_CHUNK_SIZE, &mine)); /* not a chunk start */
    CHECK(mp__chunk_registered((uintptr_t)anon));                        /* live, with no owner */
    CHECK(!mp__chunk_owned_by((uintptr_t)anon, &mine));
    CHECK(!mp__chunk_owned_by(0, &mine));
    CHECK(!mp__chunk_owned_by((uintptr_t)0xffff800000000000ull, &mine)); /* beyond user space */
    mp__chunk_free(c);
    CHECK(!mp__chunk_owned_by((uintptr_t)c, &mine)); /* freed (retained or unmapped) */
    mp__chunk_free(big);
    CHECK(!mp__chunk_owned_by((uintptr_t)big, &mine));
    mp__chunk_free(anon);
    CHECK(!mp__chunk_registered((uintptr_t)anon));
    mp__chunk_release_retained();
    CHECK(!mp__chunk_owned_by((uintptr_t)c, &mine)); /* now unmapped: answered without reading it */
}

/* Large chunks freed with mp__chunk_free_cached are reused by
 * mp__chunk_alloc_fit within its bounds, stay unregistered meanwhile, and
 * are bounded in bytes (the oldest go first). */
static void test_large_cache(void)
{
    size_t page = mp__os_page_size();
    mp__chunk_release_retained();
    mp__chunk *a = mp__chunk_alloc_fit(4 * MP_CHUNK_SIZE, 4 * MP_CHUNK_SIZE, 0, 1, NULL);
    REQUIRE(a != NULL);
    CHECK_EQ(a->size, 4 * MP_CHUNK_SIZE);
    ((char *)a)[MP_CHUNK_SIZE] = 42;
    mp__chunk_free_cached(a);
    CHECK_EQ(mp__chunk_cached_large(), 4 * MP_CHUNK_SIZE);
    CHECK(!mp__chunk_registered((uintptr_t)a)); /* cached is not live */
    CHECK(mp__chunk_lookup((char *)a + 64) == NULL);

    /* Too small for the request, or larger than its bound: not taken. */
    mp__chunk *b = mp__chunk_alloc_fit(5 * MP_CHUNK_SIZE, 6 * MP_CHUNK_SIZE, 0, 1, NULL);
    mp__chunk *c = mp__chunk_alloc_fit(2 * MP_CHUNK_SIZE, 3 * MP_CHUNK_SIZE, 0, 1, NULL);
    REQUIRE(b && c);
    CHECK(b != a && c != a);
    CHECK_EQ(mp__chunk_cached_large(), 4 * MP_CHUNK_SIZE);
    mp__chunk_free(b); /* not cached: gone to the OS */
    mp__chunk_free(c);
    CHECK_EQ(mp__chunk_cached_large(), 4 * MP_CHUNK_SIZE);

    /* Within them: the same chunk, its size what it was, zeroed as far as asked. */
    int owner;
    mp__chunk *d = mp__chunk_alloc_fit(3 * MP_CHUNK_SIZE + 1, 4 * MP_CHUNK_SIZE, 100, 9, &owner);
    REQUIRE(d != NULL);
    CHECK_PTR_EQ(d, a);
    CHECK_EQ(d->size, 4 * MP_CHUNK_SIZE);
    CHECK_EQ(d->kind, 9);
    CHECK_EQ(((char *)d)[MP_CHUNK_SIZE], 42); /* past zero_len: what it held */
    CHECK(mp__chunk_owned_by((uintptr_t)d, &owner));
    CHECK_EQ(mp__chunk_cached_large(), 0);
    mp__chunk_free_cached(d);

    /* The bound: chunks of a quarter of it each; the oldest leave first. */
    size_t quarter = MP_CHUNK_LARGE_RETAIN / 4;
    mp__chunk *q[5];
    for (int i = 0; i < 5; i++)
        REQUIRE((q[i] = mp__chunk_alloc_fit(quarter, quarter, 0, 1, NULL)) != NULL);
    for (int i = 0; i < 5; i++)
        mp__chunk_free_cached(q[i]);
    CHECK_EQ(mp__chunk_cached_large(), MP_CHUNK_LARGE_RETAIN);
    mp__chunk *again = mp__chunk_alloc_fit(quarter, quarter, 0, 1, NULL);
    REQUIRE(again != NULL);
    CHECK(again != q[0] && again != (mp__chunk *)a); /* those two left first */
    mp__chunk_free(again);
    /* Larger than a quarter of the bound: never cached. */
    mp__chunk *huge = mp__chunk_alloc_fit(quarter + page, quarter + page, 0, 1, NULL);
    REQUIRE(huge != NULL);
    size_t before = mp__chunk_cached_large();
    mp__chunk_free_cached(huge);
    CHECK_EQ(mp__chunk_cached_large(), before);
    mp__chunk_release_retained();
    CHECK_EQ(mp__chunk_cached_large(), 0);
}

/* A large chunk resized keeps its contents, header and registration, and
 * its old place is no longer registered when it moved. */
static void test_resize(void)
{
    int owner;
    size_t page = mp__os_page_size();
    mp__chunk *c = mp__chunk_alloc(2 * MP_CHUNK_SIZE, 0, 5, &owner);
    REQUIRE(c != NULL);
    for (size_t i = sizeof *c; i < c->size; i += page)
        ((unsigned char *)c)[i] = (unsigned char)(i / page);
    /* Something in the way, so the growth may have to move. */
    mp__chunk *blocker = mp__chunk_alloc(2 * MP_CHUNK_SIZE, 0, 5, NULL);
    REQUIRE(blocker != NULL);
    mp__chunk *g = mp__chunk_resize(c, 64 * MP_CHUNK_SIZE);
    REQUIRE(g != NULL);
    CHECK_EQ((uintptr_t)g % MP_CHUNK_SIZE, 0);
    CHECK_EQ(g->size, 64 * MP_CHUNK_SIZE);
    CHECK_EQ(g->kind, 5);
    CHECK(mp__chunk_owned_by((uintptr_t)g, &owner));
    CHECK_PTR_EQ(mp__chunk_lookup((char *)g + 100), g);
    if (g != c)
        CHECK(!mp__chunk_registered((uintptr_t)c));
    size_t wrong = 0;
    for (size_t i = sizeof *c; i < 2 * MP_CHUNK_SIZE; i += page)
        wrong += ((unsigned char *)g)[i] != (unsigned char)(i / page);
    CHECK_EQ(wrong, 0);
    CHECK_EQ(((char *)g)[64 * MP_CHUNK_SIZE - 1], 0); /* grown: zero */
    /* Shrinking is always in place. */
    mp__chunk *s = mp__chunk_resize(g, 3 * MP_CHUNK_SIZE);
    CHECK_PTR_EQ(s, g);
    CHECK_EQ(s->size, 3 * MP_CHUNK_SIZE);
    CHECK_EQ(((unsigned char *)s)[sizeof *s + page], 1);
    /* Growth that fails leaves the chunk as it was. */
    mp__os_fail_after(1);
    errno = 0;
    mp__chunk *f = mp__chunk_resize(s, 1024 * MP_CHUNK_SIZE);
    mp__os_fail_after(0);
    if (!f) {
        CHECK_EQ(errno, ENOMEM);
        CHECK(mp__chunk_owned_by((uintptr_t)s, &owner));
        CHECK_EQ(s->size, 3 * MP_CHUNK_SIZE);
        CHECK_EQ(((unsigned char *)s)[sizeof *s + page], 1);
    } else {
        s = f;
    }
    mp__chunk_free(s);
    mp__chunk_free(blocker);
}

static void test_out_of_memory(void)
{
    mp__chunk_release_retained();
    mp__os_fail_after(1);
    errno = 0;
    CHECK(mp__chunk_alloc(MP_CHUNK_SIZE, 0, 1, NULL) == NULL);
    CHECK_EQ(errno, ENOMEM);
    mp__os_fail_after(0);
    errno = 0;
    CHECK(mp__chunk_alloc(SIZE_MAX - 10, 0, 1, NULL) == NULL);
    CHECK_EQ(errno, ENOMEM);
}

int main(void)
{
    test_alloc_and_lookup();
    test_large_chunk();
    test_foreign_pointers();
    test_retention();
    test_owned_by();
    test_large_cache();
    test_large_cache_batch();
    test_hot_bound_scales();
    test_retain_bound_scales();
    test_large_cache_sheds_on_growth();
    test_resize();
    test_out_of_memory();
    return check_done();
}
