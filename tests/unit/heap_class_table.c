/* The size classes as the inline mp_heap_alloc computes them (mpool.h:
 * a table up to 1024 bytes, arithmetic above) are the library's
 * (mp__heap_class_of), for every small size; and each size fits its class. */
#include "check.h"
#include "../src/heap.h" /* the library's, not tests/heap.h */

int main(void)
{
    for (size_t size = 1; size <= MP_HEAP_SMALL_MAX; size++) {
        unsigned lib = mp__heap_class_of(size);
        if (mp__heap_class(size) != lib) {
            fprintf(stderr, "size %zu: inline class %u, library class %u\n", size, mp__heap_class(size), lib);
            check_failures++;
        }
        if (mp__heap_class_size(lib) < size || (lib > 0 && mp__heap_class_size(lib - 1) >= size)) {
            fprintf(stderr, "size %zu: class %u of %zu bytes is not the smallest that fits\n", size, lib,
                    mp__heap_class_size(lib));
            check_failures++;
        }
    }
    CHECK_EQ(mp__heap_class_of(MP_HEAP_SMALL_MAX), MP_HEAP_NCLASS - 1);
    return check_done();
}
