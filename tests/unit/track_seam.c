/*
 * track_seam.c - the memory-tool seam (track.h): without a tool it says so
 * and every hook leaves memory as it was; with ASan (a sanitizer build) it
 * says so, and the hooks poison and unpoison exactly the bytes they name.
 */
#include "check.h"
#include "track.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif
#endif

static _Alignas(64) char block[256];

int main(void)
{
    int pool;
    bool active = mp__track_active();
    CHECK_EQ(active, mp__track_active()); /* decided once */
#ifdef HAVE_ASAN
    CHECK(active);
    mp__track_pool_create(&pool, false);
    mp__track_block_new(&pool, block, sizeof block);
    CHECK(__asan_address_is_poisoned(block));
    CHECK(__asan_address_is_poisoned(block + 255));
    mp__track_obj_out(&pool, block + 64, 64, true);
    CHECK(!__asan_address_is_poisoned(block + 64));
    CHECK(!__asan_address_is_poisoned(block + 127));
    CHECK(__asan_address_is_poisoned(block + 128));
    CHECK(__asan_address_is_poisoned(block + 63));
    mp__track_obj_in(&pool, block + 64, 64);
    CHECK(__asan_address_is_poisoned(block + 64));
    mp__track_release(block, sizeof block);
    CHECK(!__asan_address_is_poisoned(block));
    CHECK(!__asan_address_is_poisoned(block + 255));
    mp__track_pool_destroy(&pool);
#else
    if (check_tool_attached())
        return 77; /* memcheck: what it sees is checked by tests/tools */
    CHECK(!active);
    memset(block, 0x5a, sizeof block);
    mp__track_pool_create(&pool, false);
    mp__track_block_new(&pool, block, sizeof block);
    mp__track_obj_out(&pool, block, 64, false);
    mp__track_obj_in(&pool, block, 64);
    mp__track_chunk_idle(block, sizeof block);
    mp__track_release(block, sizeof block);
    mp__track_pool_destroy(&pool);
    for (size_t i = 0; i < sizeof block; i++)
        if (block[i] != 0x5a)
            CHECK(block[i] == 0x5a);
#endif
    return check_done();
}
