/* How many objects a pool's magazines hold (objpool_create.c): about
 * 32 KiB of objects of up to a page, at most 128 of them, and 4 of larger
 * objects, so that a thread keeps little memory back in large ones. */
#include "check.h"
#include "objpool.h"

#include <mpool.h>

static size_t mag_cap_for(size_t obj_size)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = obj_size });
    REQUIRE(p != NULL);
    size_t cap = p->mag_cap;
    mp_objpool_destroy(p);
    return cap;
}

int main(void)
{
    CHECK_EQ(mag_cap_for(16), 128);   /* 32 KiB would be 2048: at most 128 */
    CHECK_EQ(mag_cap_for(256), 128);
    CHECK_EQ(mag_cap_for(1024), 32);
    CHECK_EQ(mag_cap_for(4096), 8);   /* a page: still about 32 KiB */
    CHECK_EQ(mag_cap_for(4097), 4);   /* past a page: 4, not 7 */
    CHECK_EQ(mag_cap_for(16384), 4);  /* not 8: 64 KiB per magazine */
    CHECK_EQ(mag_cap_for(1 << 20), 4);
    /* A heap's classes follow the same rule: its 16 KiB class too. */
    mp_heap *h = mp_heap_create(NULL, NULL);
    REQUIRE(h != NULL);
    void *big = mp_heap_alloc(h, 16000);
    REQUIRE(big != NULL);
    CHECK_EQ(((mp_objpool *)mp__chunk_of(big)->owner)->mag_cap, 4);
    mp_free(big);
    mp_heap_destroy(h);
    return check_done();
}
