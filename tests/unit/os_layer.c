/* Unit tests of the os layer: aligned reservation, decommit, release,
 * clock, deadlines, and fault injection. */
#include "check.h"
#include "meta.h"
#include "common.h"
#include "os.h"

#include <stdint.h>

static void test_reserve_alignment(void)
{
    size_t aligns[] = { 0, 4096, 65536, 1 << 20 };
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        size_t size = 3 * 65536;
        unsigned char *p = mp__os_reserve(size, aligns[i]);
        REQUIRE(p != NULL);
        size_t a = aligns[i] ? aligns[i] : mp__os_page_size();
        CHECK_EQ((uintptr_t)p % a, 0);
        CHECK_EQ(p[0], 0); /* zero-filled */
        CHECK_EQ(p[size - 1], 0);
        p[0] = 1;
        p[size - 1] = 2; /* the whole range is writable */
        mp__os_decommit(p, size);
        CHECK_EQ(p[0], 0); /* decommitted pages read back as zero */
        CHECK_EQ(p[size - 1], 0);
        mp__os_release(p, size);
    }
}

static void test_reserve_bad_sizes(void)
{
    errno = 0;
    CHECK(mp__os_reserve(0, 0) == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mp__os_reserve(SIZE_MAX - 100, 65536) == NULL);
    CHECK_EQ(errno, ENOMEM);
}

static void test_fault_injection(void)
{
    mp__meta_free(mp__meta_alloc(64)); /* its class now has a span: no mapping below */
    unsigned long before = mp__os_calls();
    mp__os_fail_after(2);
    void *a = mp__os_reserve(4096, 0); /* 1st: succeeds */
    errno = 0;
    void *b = mp__meta_alloc(64); /* 2nd: fails */
    int err = errno;
    void *c = mp__meta_alloc(64); /* later calls succeed again */
    CHECK(a != NULL);
    CHECK(b == NULL);
    CHECK_EQ(err, ENOMEM);
    CHECK(c != NULL);
    CHECK_EQ(mp__os_calls() - before, 3);
    mp__os_release(a, 4096);
    mp__meta_free(c);
    mp__os_fail_after(0);
}

static void test_clock(void)
{
    int64_t t0 = mp__os_now_ns();
    int64_t t1 = mp__os_now_ns();
    CHECK(t0 > 0);
    CHECK(t1 >= t0);
    CHECK_EQ(mp__os_deadline(MP_WAIT_FOREVER), INT64_MAX);
    CHECK_EQ(mp__os_deadline(INT64_MAX), INT64_MAX); /* overflow saturates */
    int64_t d = mp__os_deadline(1000000000);
    CHECK(d >= t1 + 1000000000);
}

int main(void)
{
    test_reserve_alignment();
    test_reserve_bad_sizes();
    test_fault_injection();
    test_clock();
    return check_done();
}
