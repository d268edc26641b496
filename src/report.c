/*
 * report.c - layer 7: mp_report and mp_report_json.
 *
 * A report is taken in two steps. A snapshot is made under the tree lock:
 * one entry per pool in report order (pre-order, siblings oldest first),
 * with its depth, kind, a copy of its name and its counters (each pool's
 * stats callback takes the pool's own lock: tree, then pool). Then the lock
 * is dropped and the snapshot printed: a slow FILE * (a pipe, a terminal)
 * never stalls the creates and destroys of other threads, and a stream
 * whose writes call back into mpool cannot deadlock.
 *
 * The snapshot's memory is sized with the lock held, allocated with it
 * dropped, and the walk retried if the tree grew meanwhile. With no memory
 * for a snapshot, the report is printed under the lock instead.
 */
#include "error.h"
#include "meta.h"
#include "os.h"
#include "tree.h"

#include <stdio.h>

typedef struct entry {
    mp__kind kind;
    int depth;       /* 0 for the report's top pools */
    size_t name_off; /* into the snapshot's names */
    mp_stats stats;
    const mp__class_row *rows; /* its size classes (a heap's), nrows of them */
    size_t nrows;
    /* Text only (collapse_runs): more > 0: this entry stands for itself
     * and the more - 1 alike siblings after it and the `under` pools
     * below them, its stats the sum of all their own; hidden: inside such
     * a group; run_seen: its run was looked at. */
    size_t more, under;
    bool hidden, run_seen;
} entry;

typedef struct snapshot {
    entry *e;
    size_t n;
    char *names;
    mp__class_row *rows; /* every entry's class rows, in entry order */
} snapshot;

/* Counts the pools under top (NULL: every tree), the bytes of their
 * names and the class rows they may have (tree lock held). */
static void measure(const mp__node *top, size_t *count, size_t *bytes, size_t *rows)
{
    int depth = 0;
    *count = *bytes = *rows = 0;
    for (const mp__node *n = mp__tree_first(top); n; n = mp__tree_next(n, top, &depth)) {
        ++*count;
        *bytes += strlen(n->name) + 1;
        if (n->ops->classes)
            *rows += MP__CLASS_ROWS_MAX;
    }
}

/* Fills s, whose arrays hold cap entries and cap_bytes of names (tree
 * lock held). False when the tree outgrew them. */
static bool fill(snapshot *s, const mp__node *top, size_t cap, size_t cap_bytes, size_t cap_rows)
{
    int depth = 0;
    size_t off = 0, used = 0;
    s->n = 0;
    for (const mp__node *n = mp__tree_first(top); n; n = mp__tree_next(n, top, &depth)) {
        size_t len = strlen(n->name) + 1;
        if (s->n == cap || len > cap_bytes - off || (n->ops->classes && cap_rows - used < MP__CLASS_ROWS_MAX))
            return false;
        entry *e = &s->e[s->n++];
        *e = (entry){ .kind = n->kind, .depth = depth, .name_off = off };
        memcpy(s->names + off, n->name, len);
        off += len;
        n->ops->stats(n, &e->stats);
        if (n->ops->classes) {
            e->rows = s->rows + used;
            e->nrows = n->ops->classes(n, s->rows + used, MP__CLASS_ROWS_MAX);
            used += e->nrows;
        }
    }
    return true;
}

static void snapshot_free(snapshot *s)
{
    mp__meta_free(s->e);
    mp__meta_free(s->names);
    mp__meta_free(s->rows);
    *s = (snapshot){ 0 };
}

/* The pools under top (NULL: all), or false with errno EINVAL when top is
 * not a live arena, ENOMEM when no memory could be had for the snapshot. */
static bool snapshot_take(snapshot *s, const mp_arena *root)
{
    const mp__node *top = (const mp__node *)root;
    *s = (snapshot){ 0 };
    for (;;) {
        size_t count, bytes, rows;
        mp__tree_lock();
        bool live = !top || mp__node_live(top, MP__KIND_ARENA);
        if (live)
            measure(top, &count, &bytes, &rows);
        mp__tree_unlock();
        if (!live) {
            errno = EINVAL;
            return false;
        }
        /* Room for a few pools made meanwhile saves a second round. */
        count += 8;
        bytes += 8 * 64;
        rows += 2 * MP__CLASS_ROWS_MAX;
        s->e = mp__meta_alloc(count * sizeof *s->e);
        s->names = mp__meta_alloc(bytes);
        s->rows = mp__meta_alloc(rows * sizeof *s->rows);
        if (!s->e || !s->names || !s->rows) {
            snapshot_free(s);
            errno = ENOMEM;
            return false;
        }
        mp__tree_lock();
        live = !top || mp__node_live(top, MP__KIND_ARENA);
        bool done = live && fill(s, top, count, bytes, rows);
        mp__tree_unlock();
        if (done)
            return true;
        snapshot_free(s);
        if (!live) {
            errno = EINVAL;
            return false;
        }
    }
}

/* How a report prints: its first line(s), one pool, its end. `state` is
 * the printer's own (the JSON printer's open objects). */
typedef struct printer {
    void (*head)(FILE *out, int *state);
    void (*pool)(FILE *out, const entry *e, const char *name, int *state);
    /* n more alike siblings, summed in e; NULL: print every pool */
    void (*more)(FILE *out, const entry *e, const char *name);
    void (*tail)(FILE *out, int *state);
} printer;

/* The text report shows at most SAME_SHOWN of a run of more than
 * SAME_MAX siblings of one kind and name (a pool per connection, per
 * flow), then one line for the rest: "... and N more", their figures
 * summed. JSON always has every pool. */
#define SAME_MAX 8
#define SAME_SHOWN 3

/* The entry after e[i]'s subtree. */
static size_t after_subtree(const snapshot *s, size_t i)
{
    size_t j = i + 1;
    while (j < s->n && s->e[j].depth > s->e[i].depth)
        j++;
    return j;
}

static bool same_pool(const snapshot *s, size_t i, size_t j)
{
    return j < s->n && s->e[j].depth == s->e[i].depth && s->e[j].kind == s->e[i].kind &&
           strcmp(s->names + s->e[j].name_off, s->names + s->e[i].name_off) == 0;
}

/* Marks, in every run of more than SAME_MAX alike siblings, the siblings
 * past the first SAME_SHOWN (with their subtrees) to show as one line:
 * the first of them stands for all, with their figures summed. One pass,
 * no recursion: each entry's run is looked at once. */
static void collapse_runs(snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].run_seen || s->e[i].hidden)
            continue;
        size_t run = 0, end = i;
        for (; same_pool(s, i, end); end = after_subtree(s, end)) {
            s->e[end].run_seen = true;
            run++;
        }
        if (run <= SAME_MAX)
            continue;
        size_t k = i;
        for (size_t shown = 0; shown < SAME_SHOWN; shown++)
            k = after_subtree(s, k);
        entry *sum = &s->e[k];
        sum->more = run - SAME_SHOWN;
        sum->under = (end - k) - sum->more;
        sum->nrows = 0;
        for (size_t m = k + 1; m < end; m++) { /* each pool's own figures, as the report shows them */
            mp__stats_add(&sum->stats, &s->e[m].stats);
            s->e[m].hidden = true;
        }
    }
}

/* Prints the pools under root from a snapshot; with no memory for one,
 * while walking the tree under its lock (a report must not fail for want
 * of memory, which is when one is wanted most), at the price of holding
 * the lock while it prints. */
static void report(FILE *out, const mp_arena *root, const printer *pr)
{
    snapshot s;
    int state = 0, saved = errno;
    if (snapshot_take(&s, root)) {
        if (pr->more)
            collapse_runs(&s);
        pr->head(out, &state);
        for (size_t i = 0; i < s.n; i++) {
            const entry *e = &s.e[i];
            if (e->more)
                pr->more(out, e, s.names + e->name_off);
            else if (!e->hidden)
                pr->pool(out, e, s.names + e->name_off, &state);
        }
        pr->tail(out, &state);
        snapshot_free(&s);
    } else if (errno == ENOMEM) {
        const mp__node *top = (const mp__node *)root;
        int depth = 0;
        mp__tree_lock();
        if (!top || mp__node_live(top, MP__KIND_ARENA)) {
            pr->head(out, &state);
            for (const mp__node *n = mp__tree_first(top); n; n = mp__tree_next(n, top, &depth)) {
                entry e = { .kind = n->kind, .depth = depth };
                n->ops->stats(n, &e.stats);
                pr->pool(out, &e, n->name, &state);
            }
            pr->tail(out, &state);
        }
        mp__tree_unlock();
    }
    errno = saved;
}

/* ------------------------------------------------------------------ text */

#define LABEL_WIDTH 40
#define INDENT_MAX 12

/* Formats a byte count in at most 9 characters: "512 B", "1.5 KiB", ... */
static void human_bytes(char *buf, size_t len, size_t v)
{
    static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%zu B", v);
    else
        snprintf(buf, len, "%.1f %s", d, unit[u]);
}

/* A heap's size classes in use, a line each under it: the class's block
 * size as its label, then in use, mapped, objects and allocs in the
 * pool's columns. */
static void text_classes(FILE *out, const entry *e)
{
    int indent = (e->depth <= INDENT_MAX ? e->depth : INDENT_MAX) * 2 + 2;
    for (size_t i = 0; i < e->nrows; i++) {
        const mp__class_row *r = &e->rows[i];
        char label[48], in_use[16], mapped[16];
        snprintf(label, sizeof label, "%*sclass %zu B", indent, "", r->size);
        human_bytes(in_use, sizeof in_use, r->objects_in_use * r->size);
        human_bytes(mapped, sizeof mapped, r->bytes_mapped);
        fprintf(out, "%-*s %10s %10s %10s %10s %10zu %10zu\n", LABEL_WIDTH, label, in_use, mapped, "", "",
                r->objects_in_use, r->allocs);
    }
}

/* The figures of e in their columns, after a label of len characters
 * (on a line of its own when it is longer than its column). */
static void text_columns(FILE *out, const entry *e, int len)
{
    const mp_stats *st = &e->stats;
    char in_use[16], mapped[16], meta[16], peak[16];
    human_bytes(in_use, sizeof in_use, st->bytes_in_use);
    human_bytes(mapped, sizeof mapped, st->bytes_mapped);
    human_bytes(meta, sizeof meta, st->bytes_meta);
    human_bytes(peak, sizeof peak, st->bytes_peak);
    if (len > LABEL_WIDTH)
        fprintf(out, "\n%*s", LABEL_WIDTH, "");
    else if (len >= 0)
        fprintf(out, "%*s", LABEL_WIDTH - len, "");
    fprintf(out, " %10s %10s %10s %10s %10zu %10zu", in_use, mapped, meta, peak, st->objects_in_use, st->allocs);
}

/* One pool: its label ("  " per level, kind, name), then the figures in
 * columns (meta: the pool's bookkeeping, mp_stats.bytes_meta). Past
 * INDENT_MAX levels the label says its level in brackets
 * instead of indenting further. A label too long for its column keeps its whole name on a line
 * of its own, and the figures follow on the next, in their columns. */
static void text_pool(FILE *out, const entry *e, const char *name, int *state)
{
    (void)state;
    const mp_stats *st = &e->stats;
    const char *kind = mp__kind_name(e->kind);
    int len;
    if (e->depth <= INDENT_MAX)
        len = fprintf(out, "%*s%s %s", e->depth * 2, "", kind, name);
    else
        len = fprintf(out, "%*s[%d] %s %s", INDENT_MAX * 2, "", e->depth, kind, name);
    text_columns(out, e, len);
    if (e->kind == MP__KIND_RESERVE)
        fprintf(out, "  reserve %zu/%zu, used %zu, waits %zu, timeouts %zu", st->reserve_level, st->reserve_min,
                st->reserve_used, st->waits, st->timeouts);
    else if (st->waits || st->timeouts || st->failures)
        fprintf(out, "  waits %zu, timeouts %zu, failures %zu", st->waits, st->timeouts, st->failures);
    fputc('\n', out);
    text_classes(out, e);
}

/* The rest of a long run of alike siblings: "... and N more KIND NAME"
 * (", M pools under them" when they have children), then the own figures
 * of all of them summed (peak: the sum of their peaks). */
static void text_more(FILE *out, const entry *e, const char *name)
{
    int indent = (e->depth <= INDENT_MAX ? e->depth : INDENT_MAX) * 2;
    int len = fprintf(out, "%*s... and %zu more %s %s", indent, "", e->more, mp__kind_name(e->kind), name);
    if (e->under)
        len += fprintf(out, ", %zu pools under them", e->under);
    text_columns(out, e, len);
    fputc('\n', out);
}

static void text_head(FILE *out, int *state)
{
    (void)state;
    fprintf(out, "%-*s %10s %10s %10s %10s %10s %10s\n", LABEL_WIDTH, "pool", "in use", "mapped", "meta", "peak",
            "objects", "allocs");
}

static void text_tail(FILE *out, int *state)
{
    (void)out;
    (void)state;
}

void mp_report(FILE *out, const mp_arena *root)
{
    static const printer text = { text_head, text_pool, text_more, text_tail };
    if (out)
        report(out, root, &text);
}

/* ------------------------------------------------------------------ JSON */

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when the bytes
 * there are not one: a stray continuation byte, an overlong form, a
 * surrogate, a code point past U+10FFFF, or a sequence cut short. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* A JSON string. Valid UTF-8 passes through; quotes, backslashes and
 * control characters are escaped; every byte that is not part of valid
 * UTF-8 is written as the code point of the same value (\u0080..\u00ff),
 * so the output is always valid JSON and no byte is lost. */
static void json_string(FILE *out, const char *str)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)str; *c;) {
        size_t n = utf8_len(c);
        if (n == 1 && (*c == '"' || *c == '\\'))
            fprintf(out, "\\%c", *c);
        else if (n == 1 && *c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else if (n == 0)
            fprintf(out, "\\u%04x", *c);
        else
            fwrite(c, 1, n, out);
        c += n ? n : 1;
    }
    fputc('"', out);
}

static void json_stats(FILE *out, const mp_stats *s)
{
    fprintf(out,
            "{\"bytes_in_use\":%zu,\"bytes_peak\":%zu,\"bytes_mapped\":%zu,\"objects_in_use\":%zu,"
            "\"allocs\":%zu,\"frees\":%zu,\"waits\":%zu,\"timeouts\":%zu,\"failures\":%zu,"
            "\"reserve_level\":%zu,\"reserve_min\":%zu,\"reserve_used\":%zu,\"bytes_meta\":%zu}",
            s->bytes_in_use, s->bytes_peak, s->bytes_mapped, s->objects_in_use, s->allocs, s->frees, s->waits,
            s->timeouts, s->failures, s->reserve_level, s->reserve_min, s->reserve_used, s->bytes_meta);
}

/* Pools come in pre-order with depths: one deeper than the one before is
 * its first child; one as deep or shallower first closes the objects it
 * leaves. *open is the depth of the innermost object still open. */
static void json_head(FILE *out, int *open)
{
    *open = -1;
    fprintf(out, "{\"mpool\":\"%s\",\"pools\":[", mp_version());
}

static void json_pool(FILE *out, const entry *e, const char *name, int *open)
{
    if (e->depth <= *open) {
        for (; *open >= e->depth; --*open)
            fputs("]}", out);
        fputc(',', out);
    }
    fputs("{\"kind\":", out);
    json_string(out, mp__kind_name(e->kind));
    fputs(",\"name\":", out);
    json_string(out, name);
    fputs(",\"stats\":", out);
    json_stats(out, &e->stats);
    if (e->kind == MP__KIND_HEAP) {
        fputs(",\"classes\":[", out);
        for (size_t i = 0; i < e->nrows; i++) {
            const mp__class_row *r = &e->rows[i];
            fprintf(out, "%s{\"size\":%zu,\"objects_in_use\":%zu,\"allocs\":%zu,\"frees\":%zu,\"bytes_mapped\":%zu}",
                    i ? "," : "", r->size, r->objects_in_use, r->allocs, r->frees, r->bytes_mapped);
        }
        fputc(']', out);
    }
    fputs(",\"children\":[", out);
    *open = e->depth;
}

static void json_tail(FILE *out, int *open)
{
    for (; *open >= 0; --*open)
        fputs("]}", out);
    fputs("]}\n", out);
}

void mp_report_json(FILE *out, const mp_arena *root)
{
    static const printer json = { json_head, json_pool, NULL, json_tail };
    if (out)
        report(out, root, &json);
}
