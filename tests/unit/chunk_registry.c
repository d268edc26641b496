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
    test_out_of_memory();
    return check_done();
}
