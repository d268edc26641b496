/*
 * md2man.c - mpool's man pages, made from the markdown of docs/ at build time, so that
 * the installed pages cannot drift from the documentation they come from.
 * A converter of our own: a build needs nothing but a C compiler (no
 * pandoc, no python).
 *
 *   mpool_md2man -o OUT -n NAME -s SECTION -v VERSION -d SUMMARY
 *                [-m FILE.md=PAGE(SEC)]... [-a SEE(SEC)]... IN.md
 *       IN.md as the man page NAME(SECTION). SUMMARY is the NAME line's
 *       text. -m maps a link to FILE.md to the page that is made from it
 *       (a link then reads "text (PAGE(SEC))"); -a adds a page to SEE
 *       ALSO.
 *
 *   mpool_md2man -A DIR PAGE SECTION HEADER
 *       For every public function declared in HEADER (a line starting
 *       MP_API, its first mp_ name followed by '('), DIR/NAME.SECTION
 *       holding ".so manSECTION/PAGE.SECTION", so that `man mp_heap_alloc`
 *       opens the reference.
 *
 * The markdown it reads is the subset docs/ is written in: headings (#
 * title, ## sections, ### subsections), paragraphs, lists (- and 1.) with
 * indented continuation lines, fenced code blocks (indented ones too),
 * tables, and inline `code`, **bold**, *emphasis*, [links](url) and
 * ![images](url). Tables become tagged paragraphs: the first cell is the
 * tag, each other cell a line "header: cell". Output is plain man(7)
 * roff; non-ASCII characters pass through (man-db feeds pages through
 * preconv), except a few that have portable roff names.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MAP 32
#define MAX_CELLS 16

static struct {
    const char *md, *page; /* "objpools.md", "mpool_objpools(3)" */
} map[MAX_MAP];
static int nmap;

static FILE *out;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "md2man: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, strerror(errno));
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    if (!buf)
        die("out of memory", NULL);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap && !(buf = realloc(buf, cap *= 2)))
            die("out of memory", NULL);
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* ------------------------------------------------------------- a string */

typedef struct str {
    char *s;
    size_t len, cap;
} str;

static void str_addn(str *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        if (!(b->s = realloc(b->s, b->cap)))
            die("out of memory", NULL);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}
static void str_add(str *b, const char *s) { str_addn(b, s, strlen(s)); }
static void str_clear(str *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

/* ------------------------------------------------------------ inline */

/* Fonts: a stack, so that `code` inside **bold** returns to bold. */
static char fonts[16] = "R";
static int nfonts = 1;

static void font_push(str *b, char f)
{
    if (nfonts < (int)sizeof fonts)
        fonts[nfonts++] = f;
    char esc[4] = { '\\', 'f', f, 0 };
    str_add(b, esc);
}

static void font_pop(str *b)
{
    if (nfonts > 1)
        nfonts--;
    char esc[4] = { '\\', 'f', fonts[nfonts - 1], 0 };
    str_add(b, esc);
}

/* One character of text (code: a hyphen is a minus, so that a command or
 * a flag can be copied from the page). */
static size_t put_char(str *b, const char *s, bool code)
{
    static const struct {
        const char *utf8, *roff;
    } named[] = {
        { "\xc3\x97", "\\(mu" },     /* multiplication sign */
        { "\xe2\x80\x93", "\\(en" }, /* en dash */
        { "\xe2\x80\x94", "\\(em" }, /* em dash */
        { "\xe2\x89\xa4", "\\(<=" }, { "\xe2\x89\xa5", "\\(>=" }, { "\xe2\x86\x92", "\\(->" },
        { "\xe2\x80\xa6", "..." },   { "\xc2\xbd", "\\(12" },     { "\xc2\xb5", "\\(mc" },
    };
    if (*s == '\\') {
        str_add(b, "\\e");
        return 1;
    }
    if (*s == '-' && code) {
        str_add(b, "\\-");
        return 1;
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t n = strlen(named[i].utf8);
        if (strncmp(s, named[i].utf8, n) == 0) {
            str_add(b, named[i].roff);
            return n;
        }
    }
    str_addn(b, s, 1);
    return 1;
}

/* The page a link to url names, or NULL. */
static const char *page_of(const char *url, size_t n)
{
    const char *hash = memchr(url, '#', n);
    size_t file = hash ? (size_t)(hash - url) : n;
    for (int i = 0; i < nmap; i++) {
        size_t m = strlen(map[i].md);
        /* "objpools.md", "docs/objpools.md", "../docs/objpools.md" */
        if (file >= m && strncmp(url + file - m, map[i].md, m) == 0 && (file == m || url[file - m - 1] == '/'))
            return map[i].page;
    }
    return NULL;
}

/* s[0..n) with markdown's inline marks turned into roff. */
static void convert(str *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *c = s + i;
        if (*c == '`') { /* code span */
            const char *end = memchr(c + 1, '`', n - i - 1);
            if (end) {
                font_push(b, 'B');
                for (const char *p = c + 1; p < end;)
                    p += put_char(b, p, true);
                font_pop(b);
                i = (size_t)(end - s) + 1;
                continue;
            }
        }
        if (c[0] == '*' && i + 1 < n && c[1] == '*') { /* **bold** */
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < n; j++)
                if (s[j] == '*' && s[j + 1] == '*') {
                    end = s + j;
                    break;
                }
            if (end && end > c + 2) {
                font_push(b, 'B');
                convert(b, c + 2, (size_t)(end - c - 2));
                font_pop(b);
                i = (size_t)(end - s) + 2;
                continue;
            }
        }
        if (c[0] == '*' && i + 1 < n && !isspace((unsigned char)c[1])) { /* *emphasis* */
            const char *end = NULL;
            for (size_t j = i + 1; j < n; j++)
                if (s[j] == '*' && !isspace((unsigned char)s[j - 1])) {
                    end = s + j;
                    break;
                }
            if (end) {
                font_push(b, 'I');
                convert(b, c + 1, (size_t)(end - c - 1));
                font_pop(b);
                i = (size_t)(end - s) + 1;
                continue;
            }
        }
        if (c[0] == '[' || (c[0] == '!' && i + 1 < n && c[1] == '[')) { /* [text](url), ![alt](url) */
            bool image = c[0] == '!';
            const char *text = c + (image ? 2 : 1);
            const char *close = NULL;
            int depth = 0;
            for (const char *p = text; p < s + n; p++) {
                if (*p == '[')
                    depth++;
                else if (*p == ']' && depth-- == 0) {
                    close = p;
                    break;
                }
            }
            const char *url = close && close + 1 < s + n && close[1] == '(' ? close + 2 : NULL;
            const char *url_end = url ? memchr(url, ')', (size_t)(s + n - url)) : NULL;
            if (url_end) {
                size_t tn = (size_t)(close - text), un = (size_t)(url_end - url);
                const char *page = image ? NULL : page_of(url, un);
                if (image) {
                    str_add(b, "[");
                    convert(b, text, tn);
                    str_add(b, "]");
                } else if (page) {
                    /* "[debugging.md](debugging.md#x)" reads as the page alone */
                    bool text_is_file = memchr(text, '.', tn) && tn <= un && strncmp(url, text, tn) == 0;
                    if (!text_is_file) {
                        convert(b, text, tn);
                        str_add(b, " (");
                    }
                    font_push(b, 'B');
                    size_t pn = strcspn(page, "(");
                    str_addn(b, page, pn);
                    font_pop(b);
                    str_add(b, page + pn);
                    if (!text_is_file)
                        str_add(b, ")");
                } else if (url[0] == '#') {
                    convert(b, text, tn);
                } else {
                    convert(b, text, tn);
                    if (!(tn == un && strncmp(text, url, tn) == 0)) {
                        str_add(b, " (");
                        for (const char *p = url; p < url_end;)
                            p += put_char(b, p, false);
                        str_add(b, ")");
                    }
                }
                i = (size_t)(url_end - s) + 1;
                continue;
            }
        }
        i += put_char(b, c, false);
    }
}

/* Writes converted text: one roff line per line of it, never starting
 * with a space, a dot or an apostrophe (which roff would read as a
 * request). */
static void emit_text(const char *s, size_t n)
{
    str b = { 0 };
    convert(&b, s, n);
    const char *p = b.s ? b.s : "";
    while (*p) {
        while (*p == ' ')
            p++;
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            if (*p == '.' || *p == '\'')
                fputs("\\&", out);
            fwrite(p, 1, len, out);
            fputc('\n', out);
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    free(b.s);
}

/* ------------------------------------------------------------- blocks */

typedef struct line {
    const char *s;
    size_t n;
} line;

static size_t indent_of(line l)
{
    size_t i = 0;
    while (i < l.n && l.s[i] == ' ')
        i++;
    return i;
}

static bool blank(line l) { return indent_of(l) == l.n; }

static bool starts(line l, size_t at, const char *p)
{
    size_t n = strlen(p);
    return l.n >= at + n && strncmp(l.s + at, p, n) == 0;
}

/* A line that closes a code block: ``` alone, indented or not. */
static bool closes_fence(line l)
{
    size_t i = indent_of(l);
    return starts(l, i, "```") && blank((line){ l.s + i + 3, l.n - i - 3 });
}

/* A list item's marker at the line's start: its length, or 0. */
static size_t list_marker(line l, char *tag, size_t cap)
{
    size_t i = indent_of(l);
    if (i > 1)
        return 0;
    if (l.n > i + 1 && (l.s[i] == '-' || l.s[i] == '*') && l.s[i + 1] == ' ') {
        snprintf(tag, cap, "\\(bu");
        return i + 2;
    }
    size_t d = i;
    while (d < l.n && isdigit((unsigned char)l.s[d]))
        d++;
    if (d > i && d + 1 < l.n && l.s[d] == '.' && l.s[d + 1] == ' ') {
        snprintf(tag, cap, "%.*s.", (int)(d - i), l.s + i);
        return d + 2;
    }
    return 0;
}

/* A heading's text for .SH: the words in capitals, code kept as it is. */
static void emit_heading(const char *macro, const char *s, size_t n, bool upper)
{
    str b = { 0 };
    bool code = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '`') {
            code = !code;
            continue;
        }
        if (c == '"' || c == '*')
            continue;
        if (upper && !code)
            c = (char)toupper((unsigned char)c);
        str_addn(&b, &c, 1);
    }
    str conv = { 0 };
    convert(&conv, b.s ? b.s : "", b.len);
    fprintf(out, "%s \"%s\"\n", macro, conv.s ? conv.s : "");
    free(b.s);
    free(conv.s);
}

/* Splits a table row into trimmed cells; returns how many. */
static int cells_of(line l, line *cell, int max)
{
    const char *p = l.s, *end = l.s + l.n;
    while (p < end && *p == ' ')
        p++;
    if (p < end && *p == '|')
        p++;
    int n = 0;
    while (p < end && n < max) {
        const char *bar = p;
        bool code = false;
        while (bar < end && (*bar != '|' || code)) {
            if (*bar == '`')
                code = !code;
            bar++;
        }
        if (bar == end && n > 0 && blank((line){ p, (size_t)(end - p) }))
            break;
        const char *a = p, *z = bar;
        while (a < z && *a == ' ')
            a++;
        while (z > a && z[-1] == ' ')
            z--;
        cell[n++] = (line){ a, (size_t)(z - a) };
        if (bar == end)
            break;
        p = bar + 1;
    }
    return n;
}

static bool is_separator(line l)
{
    for (size_t i = 0; i < l.n; i++)
        if (!strchr("|-: ", l.s[i]))
            return false;
    return l.n > 0;
}

static void emit_table(line *rows, int nrows)
{
    line head[MAX_CELLS];
    int nh = cells_of(rows[0], head, MAX_CELLS);
    for (int r = 1; r < nrows; r++) {
        if (is_separator(rows[r]))
            continue;
        line cell[MAX_CELLS];
        int nc = cells_of(rows[r], cell, MAX_CELLS);
        if (nc == 0)
            continue;
        fputs(".TP\n", out);
        if (cell[0].n)
            emit_text(cell[0].s, cell[0].n);
        else
            fputs("\\&\n", out);
        bool first = true;
        for (int c = 1; c < nc; c++) {
            if (!cell[c].n)
                continue;
            if (!first)
                fputs(".br\n", out);
            first = false;
            str b = { 0 };
            if (c < nh && head[c].n) {
                str_add(&b, "*");
                str_addn(&b, head[c].s, head[c].n);
                str_add(&b, "*: ");
            }
            str_addn(&b, cell[c].s, cell[c].n);
            emit_text(b.s, b.len);
            free(b.s);
        }
    }
}

static void convert_page(const char *text)
{
    /* The lines. */
    size_t cap = 1024, n = 0;
    line *l = malloc(cap * sizeof *l);
    for (const char *p = text; l && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (n == cap && !(l = realloc(l, (cap *= 2) * sizeof *l)))
            break;
        l[n++] = (line){ p, len };
        if (!nl)
            break;
        p = nl + 1;
    }
    if (!l)
        die("out of memory", NULL);

    bool described = false; /* .SH DESCRIPTION written (text before the first ##) */
    bool in_item = false;   /* the last block was a list item: indented text continues it */
    str para = { 0 };
    size_t i = 0;
    while (i < n) {
        line cur = l[i];
        size_t ind = indent_of(cur);
        if (blank(cur)) {
            i++;
            continue;
        }
        if (starts(cur, ind, "<!--")) { /* a comment, to its end */
            while (i < n && !(l[i].n >= 3 && strncmp(l[i].s + l[i].n - 3, "-->", 3) == 0))
                i++;
            i++;
            continue;
        }
        if (cur.s[0] == '#') {
            size_t level = 0;
            while (level < cur.n && cur.s[level] == '#')
                level++;
            const char *t = cur.s + level;
            size_t tn = cur.n - level;
            while (tn && *t == ' ')
                t++, tn--;
            if (level == 1) { /* the title: the NAME line says it */
                i++;
                continue;
            }
            emit_heading(level == 2 ? ".SH" : ".SS", t, tn, level == 2);
            described = true;
            in_item = false;
            i++;
            continue;
        }
        if (!described) {
            fputs(".SH DESCRIPTION\n", out);
            described = true;
        }
        if (starts(cur, ind, "```")) { /* a code block, to its fence */
            fputs(in_item && ind ? ".sp\n" : ".PP\n", out);
            fputs(".nf\n.RS 4\n", out);
            for (i++; i < n && !closes_fence(l[i]); i++) {
                line c = l[i];
                size_t drop = indent_of(c) < ind ? indent_of(c) : ind;
                str b = { 0 };
                for (size_t k = drop; k < c.n;)
                    k += put_char(&b, c.s + k, true);
                if (b.len && (b.s[0] == '.' || b.s[0] == '\''))
                    fputs("\\&", out);
                fputs(b.s ? b.s : "", out);
                fputc('\n', out);
                free(b.s);
            }
            fputs(".RE\n.fi\n", out);
            i++;
            if (!ind)
                in_item = false;
            continue;
        }
        if (cur.s[ind] == '|') { /* a table */
            size_t start = i;
            while (i < n && !blank(l[i]) && l[i].s[indent_of(l[i])] == '|')
                i++;
            emit_table(l + start, (int)(i - start));
            in_item = false;
            continue;
        }
        char tag[32];
        size_t body = list_marker(cur, tag, sizeof tag);
        /* A paragraph, a list item, or (indented, after an item) more of it. */
        str_clear(&para);
        if (body) {
            fprintf(out, ".IP %s %d\n", tag, tag[0] == '\\' ? 2 : 4);
            str_addn(&para, cur.s + body, cur.n - body);
            in_item = true;
        } else if (in_item && ind >= 2) {
            fputs(".IP\n", out);
            str_addn(&para, cur.s, cur.n);
        } else {
            fputs(".PP\n", out);
            str_addn(&para, cur.s, cur.n);
            in_item = false;
        }
        for (i++; i < n; i++) {
            line nx = l[i];
            size_t ni = indent_of(nx);
            char t2[32];
            if (blank(nx) || nx.s[0] == '#' || starts(nx, ni, "```") || nx.s[ni] == '|' ||
                list_marker(nx, t2, sizeof t2))
                break;
            str_add(&para, "\n");
            str_addn(&para, nx.s, nx.n);
        }
        emit_text(para.s, para.len);
    }
    free(para.s);
    free(l);
}

/* ------------------------------------------------------------- aliases */

static int aliases(const char *dir, const char *page, const char *section, const char *header)
{
    char *h = slurp(header);
    int made = 0;
    for (char *p = h; (p = strstr(p, "MP_API ")) != NULL; p++) {
        if (p > h && p[-1] != '\n')
            continue;
        char *eol = strchr(p, '\n');
        for (char *q = p; (q = strstr(q, "mp_")) != NULL && (!eol || q < eol); q++) {
            if (isalnum((unsigned char)q[-1]) || q[-1] == '_')
                continue;
            size_t n = 0;
            while (isalnum((unsigned char)q[n]) || q[n] == '_')
                n++;
            if (q[n] != '(')
                continue;
            if (strncmp(q, "mp__", 4) == 0)
                break;
            char path[4096];
            snprintf(path, sizeof path, "%s/%.*s.%s", dir, (int)n, q, section);
            FILE *f = fopen(path, "w");
            if (!f)
                die(path, strerror(errno));
            fprintf(f, ".so man%s/%s.%s\n", section, page, section);
            fclose(f);
            made++;
            break;
        }
    }
    free(h);
    if (made < 40)
        die(header, "too few public functions found");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "-A") == 0)
        return aliases(argv[2], argv[3], argv[4], argv[5]);
    const char *outpath = NULL, *name = NULL, *section = NULL, *version = "", *summary = "";
    const char *see[MAX_MAP];
    int nsee = 0, i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        const char *v = argv[i + 1];
        switch (argv[i][1]) {
        case 'o': outpath = v; break;
        case 'n': name = v; break;
        case 's': section = v; break;
        case 'v': version = v; break;
        case 'd': summary = v; break;
        case 'a':
            if (nsee < MAX_MAP)
                see[nsee++] = v;
            break;
        case 'm': {
            const char *eq = strchr(v, '=');
            if (!eq || nmap == MAX_MAP)
                die("bad -m", v);
            map[nmap].md = strndup(v, (size_t)(eq - v));
            map[nmap++].page = eq + 1;
            break;
        }
        default: die("unknown option", argv[i]);
        }
    }
    if (i + 1 != argc || !outpath || !name || !section) {
        fprintf(stderr, "usage: %s -o OUT -n NAME -s SECTION [-v VERSION] [-d SUMMARY] [-m FILE.md=PAGE(SEC)]... "
                        "[-a PAGE(SEC)]... IN.md\n       %s -A DIR PAGE SECTION HEADER\n",
                argv[0], argv[0]);
        return 2;
    }
    char *text = slurp(argv[i]);
    out = fopen(outpath, "w");
    if (!out)
        die(outpath, strerror(errno));
    const char *src = strrchr(argv[i], '/');
    fprintf(out, ".\\\" %s(%s), made from %s by md2man: edit the markdown, not this file.\n", name, section,
            src ? src + 1 : argv[i]);
    fprintf(out, ".TH \"%s\" \"%s\" \"\" \"mpool %s\" \"mpool manual\"\n", name, section, version);
    fputs(".nh\n.ad l\n.SH NAME\n", out);
    fprintf(out, "%s \\- ", name);
    emit_text(summary, strlen(summary));
    convert_page(text);
    if (nsee) {
        fputs(".SH \"SEE ALSO\"\n", out);
        for (int k = 0; k < nsee; k++) {
            size_t pn = strcspn(see[k], "(");
            fprintf(out, "\\fB%.*s\\fR%s%s\n", (int)pn, see[k], see[k] + pn, k + 1 < nsee ? "," : "");
        }
    }
    if (fclose(out) != 0)
        die(outpath, strerror(errno));
    free(text);
    return 0;
}
