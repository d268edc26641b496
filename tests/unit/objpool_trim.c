/* mp_objpool_trim means "give the memory back now": besides the pool's
 * empty slabs, the chunks the chunk layer keeps for reuse (from any pool)
 * go back to the OS too. */
#include "check.h"
#include "chunk.h"

#include <mpool.h>

enum { N = 500 }; /* 500 KiB of 1 KiB objects: several chunks */

static void churn(mp_objpool *p)
{
    static void *v[N];
    for (size_t i = 0; i < N; i++)
        REQUIRE((v[i] = mp_objpool_get(p)) != NULL);
    for (size_t i = 0; i < N; i++)
        mp_objpool_put(p, v[i]);
}

int main(void)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 1024, .flags = MP_SINGLE_THREAD });
    REQUIRE(p != NULL);
    churn(p);

    /* Another pool's memory, freed by its destroy, is kept for reuse... */
    mp_objpool *q = mp_objpool_create(NULL, &(mp_objpool_opts){ .obj_size = 1024, .flags = MP_SINGLE_THREAD });
    REQUIRE(q != NULL);
    churn(q);
    mp_objpool_destroy(q);
    CHECK(mp__chunk_retained() > 0);

    /* ...until a trim, which also empties p's own slabs into it first. */
    mp_objpool_trim(p);
    CHECK_EQ(mp__chunk_retained(), 0);
    mp_stats s;
    CHECK_EQ(mp_objpool_stats(p, &s), 0);
    CHECK_EQ(s.bytes_mapped, 0);

    /* The pool still works after it. */
    churn(p);
    mp_objpool_destroy(p);
    return check_done();
}
