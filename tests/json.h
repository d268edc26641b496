/*
 * json.h - a strict reader of what mp_report_json prints, for the tests and
 * fuzz targets that check it.
 *
 * json_outline(text, out, cap) checks that text is exactly one JSON value
 * followed by an optional newline, valid by RFC 8259 (strings are valid
 * UTF-8 with no control characters, escapes well formed, surrogates
 * paired, numbers well formed), and writes the pool tree it describes to
 * out: each pool as KIND:NAME, its children in brackets, siblings separated
 * by a space, in the order printed. Names are decoded (escapes turned into
 * UTF-8). Two roots, the first with two children:
 *     arena:top[objpool:p arena:kid] reserve:r
 * Returns false (out then holds a description of the first error) when
 * the text is not valid JSON or not in the report's shape.
 *
 * json_decoded_name(text, n, out, cap) copies the decoded name of the n-th
 * pool (0: the first, in the order printed, depth first), with its length;
 * -1 when there is none or the text is invalid. Header-only, no allocation.
 */
#ifndef MP_TEST_JSON_H
#define MP_TEST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct json_reader {
    const unsigned char *p, *end;
    char *out; /* outline, NUL-terminated */
    size_t len, cap;
    bool ok;
    const char *error;
    long want_name; /* json_decoded_name: pools to skip before the one wanted */
    char *name_out;
    size_t name_cap;
    long name_len; /* length of the name found, -1: none */
} json_reader;

static inline void json_fail(json_reader *r, const char *why)
{
    if (r->ok) {
        r->ok = false;
        r->error = why;
    }
}

static inline void json_emit(json_reader *r, const char *s, size_t n)
{
    if (!r->out)
        return;
    for (size_t i = 0; i < n && r->len + 1 < r->cap; i++)
        r->out[r->len++] = s[i];
    r->out[r->len] = '\0';
}

static inline void json_ws(json_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static inline bool json_take(json_reader *r, char c)
{
    json_ws(r);
    if (r->p < r->end && *r->p == (unsigned char)c) {
        r->p++;
        return true;
    }
    return false;
}

/* Length of the valid UTF-8 sequence at p (p < end), 0 if it is not one. */
static inline size_t json_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n = end - p;
    if (c < 0x80)
        return 1;
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

/* Appends code point cp as UTF-8 to buf (room for 4 at buf[*n]). */
static inline void json_put_utf8(char *buf, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        buf[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        buf[(*n)++] = (char)(0xc0 | cp >> 6);
        buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        buf[(*n)++] = (char)(0xe0 | cp >> 12);
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        buf[(*n)++] = (char)(0xf0 | cp >> 18);
        buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static inline long json_hex4(json_reader *r)
{
    if (r->end - r->p < 4) {
        json_fail(r, "short \\u escape");
        return -1;
    }
    long v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = *r->p++;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            json_fail(r, "bad hex digit in \\u escape");
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

/* Reads a string (the opening quote next); its decoded bytes go to buf
 * (cap bytes, NUL-terminated, truncated if longer) when buf is not NULL.
 * Returns the decoded length. */
static inline size_t json_string_in(json_reader *r, char *buf, size_t cap)
{
    size_t n = 0;
    char tmp[4];
    if (!json_take(r, '"')) {
        json_fail(r, "string expected");
        return 0;
    }
    while (r->ok) {
        if (r->p >= r->end) {
            json_fail(r, "unterminated string");
            break;
        }
        unsigned char c = *r->p;
        size_t k = 0;
        if (c == '"') {
            r->p++;
            break;
        }
        if (c < 0x20) {
            json_fail(r, "control character in a string");
            break;
        }
        if (c == '\\') {
            r->p++;
            if (r->p >= r->end) {
                json_fail(r, "unterminated escape");
                break;
            }
            unsigned char e = *r->p++;
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                static const char with[] = "\"\\/\b\f\n\r\t";
                tmp[k++] = with[simple - "\"\\/bfnrt"];
            } else if (e == 'u') {
                long cp = json_hex4(r);
                if (cp < 0)
                    break;
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    json_fail(r, "lone low surrogate");
                    break;
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') {
                        json_fail(r, "lone high surrogate");
                        break;
                    }
                    r->p += 2;
                    long lo = json_hex4(r);
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        json_fail(r, "bad surrogate pair");
                        break;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                json_put_utf8(tmp, &k, (uint32_t)cp);
            } else {
                json_fail(r, "unknown escape");
                break;
            }
        } else {
            k = json_utf8_len(r->p, r->end);
            if (!k) {
                json_fail(r, "invalid UTF-8 in a string");
                break;
            }
            memcpy(tmp, r->p, k);
            r->p += k;
        }
        for (size_t i = 0; i < k; i++, n++)
            if (buf && n + 1 < cap)
                buf[n] = tmp[i];
    }
    if (buf && cap)
        buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

static inline void json_number(json_reader *r)
{
    json_ws(r);
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (r->p < r->end && *r->p == '0')
        r->p++;
    else if (r->p < r->end && *r->p >= '1' && *r->p <= '9')
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    else
        { json_fail(r, "value expected"); return; }
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
            { json_fail(r, "digit expected after '.'"); return; }
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9')
            { json_fail(r, "digit expected in exponent"); return; }
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
    }
}

static inline void json_value(json_reader *r, int depth);

static inline void json_word(json_reader *r, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        { json_fail(r, "value expected"); return; }
    r->p += n;
}

static inline void json_value(json_reader *r, int depth)
{
    if (depth > 200)
        { json_fail(r, "nested too deeply"); return; }
    json_ws(r);
    if (r->p >= r->end)
        { json_fail(r, "value expected"); return; }
    switch (*r->p) {
    case '"':
        json_string_in(r, NULL, 0);
        return;
    case '{':
        r->p++;
        if (json_take(r, '}'))
            return;
        do {
            json_string_in(r, NULL, 0);
            if (!json_take(r, ':'))
                { json_fail(r, "':' expected"); return; }
            json_value(r, depth + 1);
        } while (r->ok && json_take(r, ','));
        if (r->ok && !json_take(r, '}'))
            json_fail(r, "'}' expected");
        return;
    case '[':
        r->p++;
        if (json_take(r, ']'))
            return;
        do
            json_value(r, depth + 1);
        while (r->ok && json_take(r, ','));
        if (r->ok && !json_take(r, ']'))
            json_fail(r, "']' expected");
        return;
    case 't': json_word(r, "true"); return;
    case 'f': json_word(r, "false"); return;
    case 'n': json_word(r, "null"); return;
    default: json_number(r); return;
    }
}

static inline void json_pool_list(json_reader *r, int depth);

/* One pool object: {"kind":..,"name":..,"stats":{..},"children":[..]}. */
static inline void json_pool(json_reader *r, int depth)
{
    char kind[32] = "", name[256];
    bool have_kind = false, have_name = false, have_children = false;
    if (!json_take(r, '{'))
        { json_fail(r, "pool object expected"); return; }
    do {
        char key[32];
        json_string_in(r, key, sizeof key);
        if (!json_take(r, ':'))
            { json_fail(r, "':' expected"); return; }
        if (!r->ok)
            return;
        if (strcmp(key, "kind") == 0) {
            json_string_in(r, kind, sizeof kind);
            have_kind = true;
        } else if (strcmp(key, "name") == 0) {
            size_t n = json_string_in(r, name, sizeof name);
            have_name = true;
            if (r->want_name == 0 && r->name_out) {
                size_t c = n < r->name_cap - 1 ? n : r->name_cap - 1;
                c = c < sizeof name - 1 ? c : sizeof name - 1;
                memcpy(r->name_out, name, c);
                r->name_out[c] = '\0';
                r->name_len = (long)n;
            }
            r->want_name--;
            if (!have_kind)
                { json_fail(r, "\"name\" before \"kind\""); return; }
            json_emit(r, kind, strlen(kind));
            json_emit(r, ":", 1);
            json_emit(r, name, strlen(name));
        } else if (strcmp(key, "children") == 0) {
            if (!have_name)
                { json_fail(r, "\"children\" before \"name\""); return; }
            have_children = true;
            json_pool_list(r, depth + 1);
        } else {
            json_value(r, depth + 1);
        }
    } while (r->ok && json_take(r, ','));
    if (r->ok && !json_take(r, '}'))
        { json_fail(r, "'}' expected"); return; }
    if (r->ok && !(have_kind && have_name && have_children))
        json_fail(r, "pool without kind, name or children");
}

/* [pool, pool, ...]; in the outline as [child child] when depth > 0 and
 * there are children, as nothing when there are none. */
static inline void json_pool_list(json_reader *r, int depth)
{
    if (depth > 200)
        { json_fail(r, "nested too deeply"); return; }
    if (!json_take(r, '['))
        { json_fail(r, "array of pools expected"); return; }
    if (json_take(r, ']'))
        return; /* no children: nothing in the outline */
    json_emit(r, "[", depth ? 1 : 0);
    bool first = true;
    do {
        if (!first)
            json_emit(r, " ", 1);
        first = false;
        json_pool(r, depth);
    } while (r->ok && json_take(r, ','));
    if (r->ok && !json_take(r, ']'))
        json_fail(r, "']' expected");
    json_emit(r, "]", depth ? 1 : 0);
}

/* The whole report: {"mpool":"X.Y.Z","pools":[...]} and a newline. */
static inline void json_report(json_reader *r)
{
    if (!json_take(r, '{'))
        { json_fail(r, "'{' expected"); return; }
    char key[32];
    json_string_in(r, key, sizeof key);
    if (!r->ok || strcmp(key, "mpool") != 0 || !json_take(r, ':'))
        { json_fail(r, "\"mpool\" expected"); return; }
    json_string_in(r, NULL, 0);
    if (!json_take(r, ','))
        { json_fail(r, "',' expected"); return; }
    json_string_in(r, key, sizeof key);
    if (!r->ok || strcmp(key, "pools") != 0 || !json_take(r, ':'))
        { json_fail(r, "\"pools\" expected"); return; }
    json_pool_list(r, 0);
    if (r->ok && !json_take(r, '}'))
        { json_fail(r, "'}' expected"); return; }
    if (r->ok && r->p < r->end && *r->p == '\n')
        r->p++;
    if (r->ok && r->p != r->end)
        json_fail(r, "text after the report");
}

static inline bool json_outline(const char *text, char *out, size_t cap)
{
    json_reader r = { .p = (const unsigned char *)text, .end = (const unsigned char *)text + strlen(text),
                      .out = out, .cap = cap, .ok = true, .want_name = -1 };
    if (cap)
        out[0] = '\0';
    json_report(&r);
    if (!r.ok && cap)
        snprintf(out, cap, "invalid at byte %zu: %s", (size_t)(r.p - (const unsigned char *)text), r.error);
    return r.ok;
}

static inline long json_decoded_name(const char *text, long n, char *out, size_t cap)
{
    json_reader r = { .p = (const unsigned char *)text, .end = (const unsigned char *)text + strlen(text),
                      .ok = true, .want_name = n, .name_out = out, .name_cap = cap, .name_len = -1 };
    json_report(&r);
    return r.ok ? r.name_len : -1;
}

#endif /* MP_TEST_JSON_H */
