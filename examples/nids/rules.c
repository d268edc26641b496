/*
 * rules.c - the rule file parser (format: README.md, "Rule files").
 *
 * One rule per line; '#' starts a comment line; tokens are bare words or
 * double-quoted strings with \xHH, \\, \", \n, \r, \t and \0 escapes. Every
 * error names the file, the line and the column and stops the parse.
 */
#include "nids.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_THRESHOLD_MAX 1024u

typedef struct lexer {
    const char *name;
    const char *p, *end; /* the current line, without its newline */
    const char *line_start;
    int line;
    char *err;
    size_t errlen;
} lexer;

static int lex_fail(lexer *lx, const char *at, const char *fmt, ...)
{
    int n = snprintf(lx->err, lx->errlen, "%s:%d:%d: ", lx->name, lx->line, (int)(at - lx->line_start) + 1);
    if (n >= 0 && (size_t)n < lx->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(lx->err + n, lx->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void skip_space(lexer *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
        lx->p++;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Next token into out (cap bytes, NUL-terminated for words). Returns its
 * length, or -1 (error set; also when there is no token: what names it). */
static int next_token(lexer *lx, uint8_t *out, size_t cap, bool want_quoted, const char *what)
{
    skip_space(lx);
    const char *at = lx->p;
    if (lx->p >= lx->end)
        return lex_fail(lx, at, "missing %s", what);
    size_t n = 0;
    if (*lx->p != '"') {
        if (want_quoted)
            return lex_fail(lx, at, "%s must be a double-quoted string", what);
        while (lx->p < lx->end && *lx->p != ' ' && *lx->p != '\t') {
            if (n + 1 >= cap)
                return lex_fail(lx, at, "%s too long (at most %zu bytes)", what, cap - 1);
            out[n++] = (uint8_t)*lx->p++;
        }
        out[n] = 0;
        return (int)n;
    }
    lx->p++;
    for (;;) {
        if (lx->p >= lx->end)
            return lex_fail(lx, at, "unterminated string in %s", what);
        int c = (unsigned char)*lx->p++;
        if (c == '"')
            break;
        if (c == '\\') {
            if (lx->p >= lx->end)
                return lex_fail(lx, lx->p, "unterminated escape in %s", what);
            const char *esc = lx->p - 1;
            int e = (unsigned char)*lx->p++;
            switch (e) {
            case '\\': c = '\\'; break;
            case '"': c = '"'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case '0': c = 0; break;
            case 'x': {
                int hi = lx->p < lx->end ? hexval((unsigned char)lx->p[0]) : -1;
                int lo = lx->p + 1 < lx->end ? hexval((unsigned char)lx->p[1]) : -1;
                if (hi < 0 || lo < 0)
                    return lex_fail(lx, esc, "\\x needs two hex digits in %s", what);
                c = hi * 16 + lo;
                lx->p += 2;
                break;
            }
            default:
                return lex_fail(lx, esc, "unknown escape \\%c in %s", isprint(e) ? e : '?', what);
            }
        }
        if (n + 1 >= cap)
            return lex_fail(lx, at, "%s too long (at most %zu bytes)", what, cap - 1);
        out[n++] = (uint8_t)c;
    }
    if (lx->p < lx->end && *lx->p != ' ' && *lx->p != '\t')
        return lex_fail(lx, lx->p, "expected a space after the closing quote of %s", what);
    out[n] = 0;
    return (int)n;
}

/* An unsigned decimal integer token in [lo, hi]. */
static int next_uint(lexer *lx, const char *what, unsigned long lo, unsigned long hi, unsigned long *out)
{
    uint8_t tok[32];
    skip_space(lx);
    const char *at = lx->p;
    if (next_token(lx, tok, sizeof tok, false, what) < 0)
        return -1;
    char *e;
    errno = 0;
    unsigned long v = strtoul((char *)tok, &e, 10);
    if (!isdigit(tok[0]) || *e || errno || v < lo || v > hi)
        return lex_fail(lx, at, "%s must be an integer from %lu to %lu, not '%s'", what, lo, hi, (char *)tok);
    *out = v;
    return 0;
}

/* Seconds, as "10" or "2.5" (at most 9 decimals), > 0 and <= 1 day. */
static int next_seconds(lexer *lx, const char *what, uint64_t *ns)
{
    uint8_t tok[32];
    skip_space(lx);
    const char *at = lx->p;
    if (next_token(lx, tok, sizeof tok, false, what) < 0)
        return -1;
    uint64_t whole = 0, frac = 0, scale = 1000000000u;
    const uint8_t *s = tok;
    bool ok = isdigit(*s);
    while (ok && isdigit(*s) && whole <= 86400)
        whole = whole * 10 + (uint64_t)(*s++ - '0');
    if (ok && *s == '.') {
        s++;
        ok = isdigit(*s);
        while (ok && isdigit(*s) && scale > 1) {
            scale /= 10;
            frac += (uint64_t)(*s++ - '0') * scale;
        }
    }
    if (!ok || *s || whole > 86400 || whole * 1000000000u + frac == 0)
        return lex_fail(lx, at, "%s must be seconds (e.g. 10 or 2.5) above 0 and at most 86400, not '%s'", what,
                        (char *)tok);
    *ns = whole * 1000000000u + frac;
    return 0;
}

/* The port field: any, N (either side), src:N (the sender's port) or
 * dst:N (the receiver's port), N from 0 to 65535. */
static int next_port(lexer *lx, rule *r)
{
    char tok[16];
    skip_space(lx);
    const char *at = lx->p;
    if (next_token(lx, (uint8_t *)tok, sizeof tok, false, "port") < 0)
        return -1;
    r->port = -1;
    r->port_dir = PORT_EITHER;
    if (!strcmp(tok, "any"))
        return 0;
    const char *num = tok;
    if (!strncmp(tok, "src:", 4) || !strncmp(tok, "dst:", 4)) {
        r->port_dir = tok[0] == 's' ? PORT_SRC : PORT_DST;
        num += 4;
    }
    char *e;
    errno = 0;
    unsigned long v = strtoul(num, &e, 10);
    if (!isdigit((unsigned char)num[0]) || *e || errno || v > 65535)
        return lex_fail(lx, at, "port must be an integer from 0 to 65535, src:N, dst:N or any, not '%s'", tok);
    r->port = (int)v;
    return 0;
}

static int end_of_line(lexer *lx)
{
    skip_space(lx);
    if (lx->p < lx->end)
        return lex_fail(lx, lx->p, "unexpected text after the message");
    return 0;
}

static int parse_line(lexer *lx, rule *r)
{
    uint8_t kind[16];
    const char *at = lx->p;
    if (next_token(lx, kind, sizeof kind, false, "rule kind") < 0)
        return -1;
    r->line = lx->line;
    if (!strcmp((char *)kind, "payload"))
        r->kind = RULE_PAYLOAD;
    else if (!strcmp((char *)kind, "portscan"))
        r->kind = RULE_PORTSCAN;
    else if (!strcmp((char *)kind, "synflood"))
        r->kind = RULE_SYNFLOOD;
    else
        return lex_fail(lx, at, "unknown rule kind '%s' (payload, portscan or synflood)", (char *)kind);

    skip_space(lx);
    at = lx->p;
    if (next_token(lx, (uint8_t *)r->id, sizeof r->id, false, "rule id") < 0)
        return -1;
    for (const char *c = r->id; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
            return lex_fail(lx, at, "rule id '%s': only letters, digits, '_', '-' and '.'", r->id);

    if (r->kind == RULE_PAYLOAD) {
        uint8_t tok[16];
        skip_space(lx);
        at = lx->p;
        if (next_token(lx, tok, sizeof tok, false, "protocol") < 0)
            return -1;
        if (!strcmp((char *)tok, "any"))
            r->proto = 0;
        else if (!strcmp((char *)tok, "tcp"))
            r->proto = IPPROTO_TCP_;
        else if (!strcmp((char *)tok, "udp"))
            r->proto = IPPROTO_UDP_;
        else if (!strcmp((char *)tok, "icmp"))
            r->proto = IPPROTO_ICMP_;
        else
            return lex_fail(lx, at, "protocol must be tcp, udp, icmp or any, not '%s'", (char *)tok);
        if (next_port(lx, r) < 0)
            return -1;
        skip_space(lx);
        at = lx->p;
        int n = next_token(lx, r->pat, sizeof r->pat, true, "pattern");
        if (n < 0)
            return -1;
        if (n == 0)
            return lex_fail(lx, at, "empty pattern");
        r->patlen = (size_t)n;
    } else {
        unsigned long th;
        if (r->kind == RULE_PORTSCAN) {
            if (next_uint(lx, "port count", 1, SCAN_THRESHOLD_MAX, &th) < 0)
                return -1;
        } else if (next_uint(lx, "SYN count", 1, 10000000, &th) < 0) {
            return -1;
        }
        r->threshold = (uint32_t)th;
        if (next_seconds(lx, "window", &r->window_ns) < 0)
            return -1;
    }
    if (next_token(lx, (uint8_t *)r->msg, sizeof r->msg, true, "message") < 0)
        return -1;
    for (char *c = r->msg; *c; c++)
        if (!isprint((unsigned char)*c))
            *c = '?'; /* alerts stay one line each */
    return end_of_line(lx);
}

int rules_parse(ruleset *rs, const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    memset(rs, 0, sizeof *rs);
    lexer lx = { .name = name, .err = err, .errlen = errlen };
    size_t cap = 0, n = 0;
    rule *v = NULL;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lx.line++;
        lx.line_start = lx.p = p;
        lx.end = le > p && le[-1] == '\r' ? le - 1 : le;
        p = nl ? nl + 1 : end;
        skip_space(&lx);
        if (lx.p == lx.end || *lx.p == '#')
            continue;
        if (memchr(lx.p, 0, (size_t)(lx.end - lx.p))) {
            lex_fail(&lx, lx.p, "NUL byte in rule file");
            goto bad;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rule *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                snprintf(err, errlen, "%s: out of memory", name);
                goto bad;
            }
            v = nv;
        }
        rule *r = &v[n];
        memset(r, 0, sizeof *r);
        if (parse_line(&lx, r) < 0)
            goto bad;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(v[i].id, r->id)) {
                lex_fail(&lx, lx.line_start, "duplicate rule id '%s' (first on line %d)", r->id, v[i].line);
                goto bad;
            }
        n++;
    }
    /* Payload rules first (their index is their bit in a flow's mask). */
    rs->rules = calloc(n ? n : 1, sizeof *rs->rules);
    if (!rs->rules) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto bad;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == RULE_PAYLOAD) {
            if (rs->npayload == RULES_PAYLOAD_MAX) {
                snprintf(err, errlen, "%s:%d: more than %d payload rules", name, v[i].line, RULES_PAYLOAD_MAX);
                goto bad;
            }
            rs->rules[rs->n++] = v[i];
            rs->npayload++;
        }
    for (size_t i = 0; i < n; i++)
        if (v[i].kind != RULE_PAYLOAD) {
            const rule **slot = v[i].kind == RULE_PORTSCAN ? &rs->portscan : &rs->synflood;
            if (*slot) {
                snprintf(err, errlen, "%s:%d: a second %s rule (the first is on line %d)", name, v[i].line,
                         v[i].kind == RULE_PORTSCAN ? "portscan" : "synflood", (*slot)->line);
                goto bad;
            }
            rs->rules[rs->n] = v[i];
            *slot = &rs->rules[rs->n++];
        }
    free(v);
    return 0;
bad:
    free(v);
    rules_free(rs);
    return -1;
}

int rules_load(ruleset *rs, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    while (text) {
        len += fread(text + len, 1, cap - len, f);
        if (len < cap)
            break;
        if (cap >= (1u << 24)) {
            fclose(f);
            free(text);
            snprintf(err, errlen, "%s: larger than 16 MiB", path);
            return -1;
        }
        char *nt = realloc(text, cap *= 2);
        if (!nt)
            free(text);
        text = nt;
    }
    bool rerr = ferror(f);
    fclose(f);
    if (!text || rerr) {
        free(text);
        snprintf(err, errlen, "%s: %s", path, rerr ? "read error" : "out of memory");
        return -1;
    }
    int rc = rules_parse(rs, path, text, len, err, errlen);
    free(text);
    return rc;
}

void rules_free(ruleset *rs)
{
    free(rs->rules);
    memset(rs, 0, sizeof *rs);
}
