/* Pool names that are not plain ASCII, in mp_report_json and mp_report:
 *   - a long name is kept whole, whatever characters it ends with (names
 *     used to be cut at 47 bytes, inside a character: 2-, 3- and 4-byte
 *     characters around that length are kept);
 *   - valid UTF-8 passes through the JSON report unchanged;
 *   - every byte of an invalid sequence (a stray continuation byte, an
 *     overlong form, a surrogate, a code point above U+10FFFF, a truncated
 *     sequence, 0xff) is escaped as \u00XX, so the report is valid JSON and
 *     decodes to the valid parts and U+00XX for each bad byte;
 *   - quotes, backslashes and control characters are escaped as before.
 * Every report is read by tests/json.h, which rejects invalid UTF-8. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "capture.h"
#include "check.h"
#include "json.h"

#include <mpool.h>

/* The name of the one root pool as the JSON report decodes it; the report
 * must be valid. */
static long json_name(char *out, size_t cap)
{
    char *json = capture(mp_report_json, NULL);
    char why[256];
    if (!json_outline(json, why, sizeof why))
        fprintf(stderr, "report: %s\n%s", why, json);
    long n = json_decoded_name(json, 0, out, cap);
    free(json);
    return n;
}

/* True when s[0..n) is valid UTF-8. */
static bool valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t k = json_utf8_len(p, end);
        if (!k)
            return false;
        p += k;
    }
    return true;
}

static mp_arena *named(const char *name)
{
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = name });
    REQUIRE(a != NULL);
    return a;
}

/* A name of `ascii` 'a's then `tail`: the JSON name is the same. */
static void check_whole(size_t ascii, const char *tail)
{
    char name[128], got[128];
    memset(name, 'a', ascii);
    strcpy(name + ascii, tail);
    const char *want = name;
    mp_arena *a = named(name);
    long n = json_name(got, sizeof got);
    CHECK_EQ(n, (long)strlen(want));
    CHECK_STR_EQ(got, want);
    /* The text report holds the same bytes, valid too. */
    char *text = capture(mp_report, NULL);
    CHECK(valid_utf8(text, strlen(text)));
    CHECK(strstr(text, want) != NULL);
    free(text);
    mp_arena_destroy(a);
}

static void test_cut(void)
{
    check_whole(46, "\xc3\xa9");              /* é across byte 47 */
    check_whole(45, "\xe2\x82\xac");          /* € across it */
    check_whole(44, "\xe2\x82\xac"); /* ends exactly at 47 */
    check_whole(44, "\xf0\x9f\x98\x80");      /* a 4-byte character across it */
    check_whole(43, "\xf0\x9f\x98\x80"); /* ends exactly at 47 */
    check_whole(45, "\xc3\xa9xyz");         /* and ASCII after it */
    check_whole(47, "\xc3\xa9");              /* starting at byte 47 */
}

/* A name with bad bytes; want: what its JSON decodes to. */
static void check_escaped(const char *name, const char *want)
{
    char got[128];
    mp_arena *a = named(name);
    long n = json_name(got, sizeof got);
    CHECK_EQ(n, (long)strlen(want));
    CHECK_STR_EQ(got, want);
    mp_arena_destroy(a);
}

static void test_invalid(void)
{
    /* Expected: U+00XX for each bad byte XX, in UTF-8 (C2 XX or C3 XX-40). */
    check_escaped("a\xff" "b", "a\xc3\xbf" "b");
    check_escaped("\x80lead", "\xc2\x80lead");                        /* stray continuation */
    check_escaped("over\xc0\xaf", "over\xc3\x80\xc2\xaf");            /* overlong '/' */
    check_escaped("sur\xed\xa0\x80", "sur\xc3\xad\xc2\xa0\xc2\x80");  /* a surrogate */
    check_escaped("big\xf4\x90\x80\x80", "big\xc3\xb4\xc2\x90\xc2\x80\xc2\x80"); /* above U+10FFFF */
    check_escaped("cut\xe2\x82", "cut\xc3\xa2\xc2\x82");              /* truncated at the end */
    check_escaped("mid\xe2\x82z", "mid\xc3\xa2\xc2\x82z");            /* truncated, then ASCII */
    check_escaped("\xc3\xa9\xe9\xc3\xa9", "\xc3\xa9\xc3\xa9\xc3\xa9"); /* é, Latin-1 é, é */
}

static void test_valid(void)
{
    const char *names[] = { "na\xc3\xafve \xcf\x80ool \xe2\x82\xac \xf0\x9f\x98\x80",
                            "\xef\xbf\xbf\xf4\x8f\xbf\xbf", /* U+FFFF, U+10FFFF */
                            "\x7f del" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        mp_arena *a = named(names[i]);
        char *json = capture(mp_report_json, NULL);
        CHECK(strstr(json, names[i]) != NULL); /* raw, not escaped */
        free(json);
        char got[128];
        CHECK_EQ(json_name(got, sizeof got), (long)strlen(names[i]));
        CHECK_STR_EQ(got, names[i]);
        mp_arena_destroy(a);
    }
    /* Escapes JSON needs, as before. */
    mp_arena *a = named("q\"b\\c\x01\x1f\t");
    char got[128];
    CHECK_EQ(json_name(got, sizeof got), 8);
    CHECK_STR_EQ(got, "q\"b\\c\x01\x1f\t");
    mp_arena_destroy(a);
}

/* Object pools and reserves keep their names whole too. */
static void test_kinds(void)
{
    char name[64];
    memset(name, 'o', 46);
    strcpy(name + 46, "\xc3\xa9");
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = name, .obj_size = 8 });
    REQUIRE(p != NULL);
    char got[128];
    CHECK_EQ(json_name(got, sizeof got), 48);
    CHECK_STR_EQ(got, name);
    mp_objpool_destroy(p);
    mp_reserve *r = mp_reserve_create(NULL, &(mp_reserve_opts){ .name = name, .min_reserved = 1, .elem_size = 8 });
    REQUIRE(r != NULL);
    CHECK_EQ(json_name(got, sizeof got), 48);
    CHECK_STR_EQ(got, name);
    mp_reserve_destroy(r);
}

int main(void)
{
    test_cut();
    test_invalid();
    test_valid();
    test_kinds();
    return check_done();
}
