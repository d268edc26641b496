/*
 * report.c - markdown tables and SVG charts from the lines bench/run collects.
 *
 *     mpbench_report table W FILE        markdown table of workload W
 *     mpbench_report bars W FILE OUT [META]   SVG bar chart: median ns/op, min-max whiskers
 *     mpbench_report rss W FILE OUT [META]    SVG line chart: W5/W5h RSS over rounds (first run)
 *     mpbench_report instr W FILE        markdown table of instructions per op
 *     mpbench_report ptable PROGRAM FILE     bench/run --programs: one program's table
 *     mpbench_report psummary FILE           every program: time and peak RSS matrices, mpool's goals
 *     mpbench_report pbars time|rss FILE OUT [META]   SVG grouped bars: each program, ratios to glibc
 *
 * FILE holds the benchmark programs' RESULT and ROUND lines, each prefixed by
 * bench/run with the name the implementation is shown under and the run:
 *
 *     name=glibc rep=2 RESULT workload=w1 impl=malloc ops=.. ns_per_op=.. peak_rss_kb=..
 *     name=mpool rep=1 ROUND workload=w5 impl=mpool round=3 rss_kb=.. live_bytes=..
 *     name=mpool ICOUNT workload=w1 ops=200000 ir=10734512
 *
 * Every other line is ignored. META is bench/run's header block ("- date: ..",
 * "- machine: ..", versions, mode): each chart shows it under the plot and
 * carries it in its <desc>, so that a chart on its own says which run it is.
 * Every implementation has the same colour in every chart. Implementations are listed in the order they
 * first appear; "vs mpool" is the implementation's median over mpool's, so a
 * value above 1 means mpool is faster. In the heap workloads (W1h, W3h, W5h,
 * W6) the reference is mpool-heap, or glibc when mpool-heap has no result
 * (a library without heaps). Counts of instructions come in pairs
 * (two run lengths) and instr/op is their difference over the difference in
 * ops, which cancels start-up.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KV 16
#define MAX_IMPL 64
#define MAX_VALS 64
#define MAX_ROUNDS 1000

/* One parsed line: its kind (RESULT, ROUND, ICOUNT) and key=value pairs. */
typedef struct rec {
    char kind[16];
    int nkv;
    char key[MAX_KV][32];
    char val[MAX_KV][128];
} rec;

/* Everything collected for one implementation in the chosen workload. */
typedef struct impl {
    char name[64];
    int n;                    /* RESULT lines */
    double ns[MAX_VALS];      /* ns_per_op */
    double peak[MAX_VALS];    /* peak_rss_kb */
    double final[MAX_VALS];   /* final_rss_kb (W5) */
    double per_req[MAX_VALS]; /* ns_per_req (W3) */
    double ratio[MAX_VALS];   /* rss_per_live (W5) */
    double live;              /* live_bytes (W5) */
    int nrounds;              /* ROUND lines of the first run */
    double round_rss[MAX_ROUNDS];
    double round_live[MAX_ROUNDS];
    int nic;                  /* ICOUNT lines */
    double ic_ops[2], ic_ir[2];
} impl;

static impl impls[MAX_IMPL];
static int nimpl;

static const char *get(const rec *r, const char *key)
{
    for (int i = 0; i < r->nkv; i++)
        if (strcmp(r->key[i], key) == 0)
            return r->val[i];
    return NULL;
}

static double getd(const rec *r, const char *key)
{
    const char *v = get(r, key);
    return v ? strtod(v, NULL) : NAN;
}

static int parse_line(char *line, rec *r)
{
    memset(r, 0, sizeof *r);
    for (char *tok = strtok(line, " \t\n"); tok != NULL; tok = strtok(NULL, " \t\n")) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) {
            snprintf(r->kind, sizeof r->kind, "%s", tok);
            continue;
        }
        if (r->nkv == MAX_KV)
            continue;
        *eq = '\0';
        snprintf(r->key[r->nkv], sizeof r->key[0], "%s", tok);
        snprintf(r->val[r->nkv], sizeof r->val[0], "%s", eq + 1);
        r->nkv++;
    }
    return r->kind[0] != '\0' && get(r, "name") != NULL && get(r, "workload") != NULL;
}

static impl *impl_of(const char *name)
{
    for (int i = 0; i < nimpl; i++)
        if (strcmp(impls[i].name, name) == 0)
            return &impls[i];
    if (nimpl == MAX_IMPL) {
        fprintf(stderr, "mpbench_report: more than %d implementations\n", MAX_IMPL);
        exit(1);
    }
    impl *m = &impls[nimpl++];
    snprintf(m->name, sizeof m->name, "%s", name);
    return m;
}

/* Reads FILE, keeping the lines of workload w. */
static void load(const char *path, const char *w)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    char line[2048];
    rec r;
    while (fgets(line, sizeof line, f) != NULL) {
        if (!parse_line(line, &r) || strcmp(get(&r, "workload"), w) != 0)
            continue;
        impl *m = impl_of(get(&r, "name"));
        if (strcmp(r.kind, "RESULT") == 0 && m->n < MAX_VALS) {
            int i = m->n++;
            m->ns[i] = getd(&r, "ns_per_op");
            m->peak[i] = getd(&r, "peak_rss_kb");
            m->final[i] = getd(&r, "final_rss_kb");
            m->per_req[i] = getd(&r, "ns_per_req");
            m->ratio[i] = getd(&r, "rss_per_live");
            m->live = getd(&r, "live_bytes");
        } else if (strcmp(r.kind, "ROUND") == 0) {
            const char *rep = get(&r, "rep");
            int round = (int)getd(&r, "round");
            if (rep != NULL && strcmp(rep, "1") == 0 && round >= 1 && round <= MAX_ROUNDS) {
                m->round_rss[round - 1] = getd(&r, "rss_kb");
                m->round_live[round - 1] = getd(&r, "live_bytes");
                if (round > m->nrounds)
                    m->nrounds = round;
            }
        } else if (strcmp(r.kind, "ICOUNT") == 0 && m->nic < 2) {
            m->ic_ops[m->nic] = getd(&r, "ops");
            m->ic_ir[m->nic] = getd(&r, "ir");
            m->nic++;
        }
    }
    fclose(f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, min and max of v[0..n) (n > 0); NaN when any is missing. */
static double median(const double *v, int n, double *lo, double *hi)
{
    double s[MAX_VALS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    if (lo != NULL)
        *lo = s[0];
    if (hi != NULL)
        *hi = s[n - 1];
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* A time with about three significant digits. */
static void fmt_ns(char *buf, size_t size, double ns)
{
    if (isnan(ns))
        snprintf(buf, size, "-");
    else if (ns < 9.995) /* so that 9.999 prints as 10.0 */
        snprintf(buf, size, "%.2f", ns);
    else if (ns < 99.95)
        snprintf(buf, size, "%.1f", ns);
    else
        snprintf(buf, size, "%.0f", ns);
}

static const impl *find(const char *name)
{
    for (int i = 0; i < nimpl; i++)
        if (strcmp(impls[i].name, name) == 0 && impls[i].n > 0)
            return &impls[i];
    return NULL;
}

static int heap_workload(const char *w)
{
    return strcmp(w, "w1h") == 0 || strcmp(w, "w3h") == 0 || strcmp(w, "w5h") == 0 || strcmp(w, "w6") == 0;
}

/* The implementation the others are compared with, and highlighted. */
static const char *ref_name(const char *w)
{
    if (!heap_workload(w))
        return "mpool";
    for (int i = 0; i < nimpl; i++)
        if (strcmp(impls[i].name, "mpool-heap") == 0 && (impls[i].n > 0 || impls[i].nic > 0))
            return "mpool-heap";
    return "glibc";
}

static int table(const char *w)
{
    int w3 = strcmp(w, "w3") == 0 || strcmp(w, "w3h") == 0, w5 = strcmp(w, "w5") == 0 || strcmp(w, "w5h") == 0;
    int w6 = strcmp(w, "w6") == 0;
    const char *ref_id = ref_name(w);
    const impl *ref = find(ref_id);
    double ref_ns = ref ? median(ref->ns, ref->n, NULL, NULL) : NAN;
    printf("| impl | ns/op median | min–max |%s%s vs %s | peak RSS MB |%s\n", w3 ? " ns/request |" : "",
           w6 ? " M ops/s |" : "", ref_id, w5 ? " final RSS MB | final RSS / live bytes |" : "");
    printf("|---|---:|---:|%s%s---:|---:|%s\n", w3 ? "---:|" : "", w6 ? "---:|" : "", w5 ? "---:|---:|" : "");
    for (int i = 0; i < nimpl; i++) {
        const impl *m = &impls[i];
        if (m->n == 0)
            continue;
        double lo, hi, med = median(m->ns, m->n, &lo, &hi);
        char a[32], b[32], c[32], d[32];
        fmt_ns(a, sizeof a, med);
        fmt_ns(b, sizeof b, lo);
        fmt_ns(c, sizeof c, hi);
        printf("| %s%s%s | %s | %s–%s |", m == ref ? "**" : "", m->name, m == ref ? "**" : "", a, b, c);
        if (w3) {
            fmt_ns(d, sizeof d, median(m->per_req, m->n, NULL, NULL));
            printf(" %s |", d);
        }
        if (w6)
            printf(" %.2f |", med > 0 ? 1000.0 / med : 0.0);
        if (isnan(ref_ns) || ref_ns <= 0)
            printf(" - |");
        else
            printf(" %.2fx |", med / ref_ns);
        printf(" %.1f |", median(m->peak, m->n, NULL, NULL) / 1024.0);
        if (w5)
            printf(" %.1f | %.2f |", median(m->final, m->n, NULL, NULL) / 1024.0,
                   median(m->ratio, m->n, NULL, NULL));
        printf("\n");
    }
    return 0;
}

/* ------------------------------------------------------------------ SVG */

/* Every implementation has one colour in every chart, whichever others the
 * chart shows: a fixed colour per known name, and for any other name a
 * palette entry chosen by a hash of the name. */
static const struct {
    const char *name, *colour;
} colours[] = {
    { "mpool", "#e8590c" },    { "mpool-st", "#ffa94d" }, { "mpool-heap", "#d9480f" }, { "mpool-default", "#f08c00" },
    { "mpool-keep", "#ffc078" },
    { "glibc", "#1c7ed6" },    { "jemalloc", "#37b24d" },
    { "mimalloc", "#7048e8" }, { "tcmalloc", "#e64980" }, { "tbb", "#0ca678" },        { "talloc", "#74b816" },
    { "apr", "#ae3ec9" },      { "gslice", "#1098ad" },   { "dpdk-cache", "#f59f00" }, { "dpdk-nocache", "#5c940d" },
    { "floor", "#adb5bd" },
};
static const char *const palette[] = { "#364fc7", "#c2255c", "#087f5b", "#5f3dc4", "#a61e4d",
                                       "#2b8a3e", "#862e9c", "#0b7285", "#e67700", "#495057" };

static const char *colour_of_name(const char *name)
{
    for (size_t i = 0; i < sizeof colours / sizeof colours[0]; i++)
        if (strcmp(colours[i].name, name) == 0)
            return colours[i].colour;
    unsigned h = 5381;
    for (const char *c = name; *c; c++)
        h = h * 33 + (unsigned char)*c;
    return palette[h % (sizeof palette / sizeof palette[0])];
}

static const char *colour_of(const impl *m) { return colour_of_name(m->name); }

/* A round step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to max. */
static double nice_step(double max, int ticks)
{
    double raw = max / ticks, p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    return f;
}

/* ------------------------------------------------ the run, in each chart */

#define MAX_META 32
#define META_LINE_H 13.0
static const char *meta_path;   /* bench/run's header block, or NULL */
static char meta[MAX_META][256]; /* its lines, wrapped to the chart's width */
static int nmeta;

/* Reads META (lines "- key: value") and wraps each to `width` characters,
 * continuation lines indented. */
static void load_meta(int width)
{
    nmeta = 0;
    if (meta_path == NULL)
        return;
    FILE *f = fopen(meta_path, "r");
    if (f == NULL) {
        perror(meta_path);
        exit(1);
    }
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        const char *p = strncmp(line, "- ", 2) == 0 ? line + 2 : line;
        for (int first = 1; *p != '\0' && nmeta < MAX_META; first = 0) {
            size_t avail = (size_t)(first ? width : width - 4), cut = strlen(p);
            if (cut > avail) {
                cut = avail;
                while (cut > 0 && p[cut] != ' ')
                    cut--;
                if (cut == 0)
                    cut = avail;
            }
            snprintf(meta[nmeta++], sizeof meta[0], "%s%.*s", first ? "" : "    ", (int)cut, p);
            p += cut;
            while (*p == ' ')
                p++;
        }
    }
    fclose(f);
}

/* The height the run's lines take under a chart. */
static double meta_height(void) { return nmeta ? 10 + nmeta * META_LINE_H : 0; }

/* The run's lines: in <desc> (call right after <svg>) ... */
static void meta_desc(FILE *f)
{
    if (nmeta == 0)
        return;
    fputs("<desc>", f);
    for (int i = 0; i < nmeta; i++) {
        xml_text(f, meta[i]);
        fputc('\n', f);
    }
    fputs("</desc>\n", f);
}

/* ... and as small grey text from y down. */
static void meta_text(FILE *f, double y)
{
    for (int i = 0; i < nmeta; i++) {
        fprintf(f, "<text x=\"10\" y=\"%.0f\" font-size=\"10\" fill=\"#868e96\" xml:space=\"preserve\">",
                y + 10 + (i + 1) * META_LINE_H - 3);
        xml_text(f, meta[i]);
        fputs("</text>\n", f);
    }
}

static int bars(const char *w, const char *out)
{
    const char *ref_id = ref_name(w);
    const double left = 130, plot_w = 500, row_h = 28, top = 44;
    int rows = 0;
    double max = 0;
    for (int i = 0; i < nimpl; i++) {
        if (impls[i].n == 0)
            continue;
        double lo, hi;
        median(impls[i].ns, impls[i].n, &lo, &hi);
        if (hi > max)
            max = hi;
        rows++;
    }
    if (rows == 0 || !(max > 0))
        return 0;
    double step = nice_step(max, 5);
    double scale_max = ceil(max * 1.05 / step) * step;
    load_meta(118);
    double height = top + rows * row_h + 40 + meta_height(), width = left + plot_w + 110;
    FILE *f = open_out(out);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"13\">\n",
            width, height, width, height);
    meta_desc(f);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%c%s: ns per operation "
               "(median, whiskers min–max; shorter is faster)</text>\n",
            10.0, 'W', w + 1);
    double bottom = top + rows * row_h;
    for (double t = 0; t <= scale_max + step / 2; t += step) {
        double x = left + t / scale_max * plot_w;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#dee2e6\"/>\n", x, top - 4,
                x, bottom);
        char lab[32];
        snprintf(lab, sizeof lab, "%g", t);
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#495057\">%s</text>\n", x,
                bottom + 16, lab);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#495057\">ns/op</text>\n",
            left + plot_w / 2, bottom + 34);
    int row = 0;
    for (int i = 0; i < nimpl; i++) {
        const impl *m = &impls[i];
        if (m->n == 0)
            continue;
        double lo, hi, med = median(m->ns, m->n, &lo, &hi);
        double y = top + row * row_h, cy = y + row_h / 2;
        int hl = strcmp(m->name, ref_id) == 0;
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\"%s>", left - 8, cy + 4,
                hl ? " font-weight=\"bold\"" : "");
        xml_text(f, m->name);
        fprintf(f, "</text>\n");
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"%s/>\n", left,
                y + 5, med / scale_max * plot_w, row_h - 10, colour_of(m),
                hl ? " stroke=\"#a61e4d\" stroke-width=\"1.5\"" : "");
        double x1 = left + lo / scale_max * plot_w, x2 = left + hi / scale_max * plot_w;
        fprintf(f, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f\" stroke=\"#212529\" "
                   "stroke-width=\"1.2\" fill=\"none\"/>\n",
                x1, cy, x2, x1, cy - 5, cy + 5, x2, cy - 5, cy + 5);
        char lab[32];
        fmt_ns(lab, sizeof lab, med);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\"%s>%s</text>\n", (x2 > left + med / scale_max * plot_w ? x2 : left + med / scale_max * plot_w) + 6,
                cy + 4, hl ? " font-weight=\"bold\"" : "", lab);
        row++;
    }
    meta_text(f, bottom + 40);
    fprintf(f, "</svg>\n");
    fclose(f);
    return 0;
}

/* One implementation's RSS over rounds, as a polyline. */
static void rss_line(FILE *f, const impl *m, const char *colour, double width, double left,
                     double plot_w, double bottom, double plot_h, double scale, int rounds)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" points=\"", colour, width);
    for (int r = 1; r <= m->nrounds; r++)
        fprintf(f, "%.1f,%.1f ", left + (rounds > 1 ? (r - 1) / (double)(rounds - 1) : 0.5) * plot_w,
                bottom - m->round_rss[r - 1] / 1024.0 / scale * plot_h);
    fprintf(f, "\"/>\n");
}

static int rss_chart(const char *w, const char *out)
{
    const char *ref_id = ref_name(w);
    const double left = 70, plot_w = 560, plot_h = 300, top = 40;
    int rounds = 0;
    double max = 0;
    for (int i = 0; i < nimpl; i++) {
        const impl *m = &impls[i];
        if (m->nrounds > rounds)
            rounds = m->nrounds;
        for (int r = 0; r < m->nrounds; r++) {
            if (m->round_rss[r] > max)
                max = m->round_rss[r];
            if (m->round_live[r] / 1024 > max)
                max = m->round_live[r] / 1024;
        }
    }
    if (rounds == 0 || !(max > 0))
        return 0;
    double max_mb = max / 1024, step = nice_step(max_mb, 5);
    double scale = ceil(max_mb * 1.05 / step) * step;
    load_meta(126);
    double width = left + plot_w + 150, height = top + plot_h + 50 + meta_height();
    double bottom = top + plot_h;
    FILE *f = open_out(out);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"13\">\n",
            width, height, width, height);
    meta_desc(f);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">W%s: resident memory after "
               "each round (first run; dashed: live bytes)</text>\n",
            w + 1);
#define XR(r) (left + (rounds > 1 ? ((r)-1) / (double)(rounds - 1) : 0.5) * plot_w)
#define YM(mb) (bottom - (mb) / scale * plot_h)
    for (double t = 0; t <= scale + step / 2; t += step) {
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#dee2e6\"/>\n", left, YM(t),
                left + plot_w, YM(t));
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#495057\">%g</text>\n", left - 6,
                YM(t) + 4, t);
    }
    int xstep = rounds <= 10 ? 1 : rounds <= 25 ? 2 : rounds / 10;
    for (int r = 1; r <= rounds; r += xstep)
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#495057\">%d</text>\n", XR(r),
                bottom + 16, r);
    fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#495057\">round</text>\n",
            left + plot_w / 2, bottom + 34);
    fprintf(f, "<text x=\"16\" y=\"%.1f\" fill=\"#495057\" transform=\"rotate(-90 16 %.1f)\" "
               "text-anchor=\"middle\">RSS MB</text>\n",
            top + plot_h / 2, top + plot_h / 2);
    int shown = 0, live_drawn = 0;
    for (int i = 0; i < nimpl; i++) {
        const impl *m = &impls[i];
        if (m->nrounds == 0)
            continue;
        if (!live_drawn) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"#495057\" stroke-dasharray=\"5 4\" points=\"");
            for (int r = 1; r <= m->nrounds; r++)
                fprintf(f, "%.1f,%.1f ", XR(r), YM(m->round_live[r - 1] / 1048576.0));
            fprintf(f, "\"/>\n");
            live_drawn = 1;
        }
        int hl = strcmp(m->name, ref_id) == 0;
        if (!hl) /* the reference's line is drawn last, on top */
            rss_line(f, m, colour_of(m), 1.8, left, plot_w, bottom, plot_h, scale, rounds);
        double ly = top + 10 + shown * 20;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
                left + plot_w + 14, ly, left + plot_w + 34, ly, colour_of(m));
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\"%s>", left + plot_w + 40, ly + 4,
                hl ? " font-weight=\"bold\"" : "");
        xml_text(f, m->name);
        fprintf(f, "</text>\n");
        shown++;
    }
    for (int i = 0; i < nimpl; i++)
        if (impls[i].nrounds > 0 && strcmp(impls[i].name, ref_id) == 0)
            rss_line(f, &impls[i], colour_of(&impls[i]), 3, left, plot_w, bottom, plot_h, scale, rounds);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#495057\" "
               "stroke-dasharray=\"5 4\"/>\n<text x=\"%.0f\" y=\"%.1f\">live bytes</text>\n",
            left + plot_w + 14, top + 10 + shown * 20.0, left + plot_w + 34, top + 10 + shown * 20.0,
            left + plot_w + 40, top + 14 + shown * 20.0);
#undef XR
#undef YM
    meta_text(f, bottom + 50);
    fprintf(f, "</svg>\n");
    fclose(f);
    return 0;
}

/* ---------------------------------------------------------- instructions */

static double instr_per_op(const impl *m)
{
    if (m->nic != 2 || m->ic_ops[1] == m->ic_ops[0])
        return NAN;
    return (m->ic_ir[1] - m->ic_ir[0]) / (m->ic_ops[1] - m->ic_ops[0]);
}

static int instr(const char *w)
{
    const char *ref_id = ref_name(w);
    double floor_per = NAN;
    for (int i = 0; i < nimpl; i++)
        if (strcmp(impls[i].name, "floor") == 0)
            floor_per = instr_per_op(&impls[i]);
    printf("| impl | instr/op | above the floor |\n|---|---:|---:|\n");
    for (int i = 0; i < nimpl; i++) {
        const impl *m = &impls[i];
        double per = instr_per_op(m);
        if (isnan(per))
            continue;
        int hl = strcmp(m->name, ref_id) == 0;
        printf("| %s%s%s | %.1f |", hl ? "**" : "", m->name, hl ? "**" : "", per);
        if (isnan(floor_per) || strcmp(m->name, "floor") == 0)
            printf(" |\n");
        else
            printf(" %.1f |\n", per - floor_per);
    }
    return 0;
}

/* -------------------------------------------------------------- programs */

/* bench/run --programs: whole programs under each allocator, one line per run:
 *
 *     name=glibc rep=1 PROGRAM workload=ast wall_s=1.23 user_s=.. sys_s=.. peak_rss_kb=52340 status=0
 *
 * and, from a program that reports them, final_rss_kb= and live_bytes=.
 * Ratios are to glibc's median (to the first implementation's when glibc did
 * not run); "peers" are all the implementations but mpool's own (mpool, and
 * mpool-keep: the drop-in with MPOOL_KEEP_MEMORY=1). */

#define MAX_PW 32 /* programs */
#define MAX_PI 16 /* implementations */

typedef struct pcell {
    int n;                                   /* runs */
    double wall[MAX_VALS], rss[MAX_VALS];    /* wall_s, peak_rss_kb */
    double final[MAX_VALS];                  /* final_rss_kb, NaN when not reported */
    double live;                             /* live_bytes */
} pcell;

static char pw[MAX_PW][32]; /* programs, in the order they first appear */
static int npw;
static char pi[MAX_PI][64]; /* implementations, likewise */
static int npi;
static pcell pc[MAX_PW][MAX_PI];

enum { P_WALL, P_RSS, P_FINAL };

static void pload(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    char line[2048];
    rec r;
    while (fgets(line, sizeof line, f) != NULL) {
        if (!parse_line(line, &r) || strcmp(r.kind, "PROGRAM") != 0)
            continue;
        const char *w = get(&r, "workload"), *name = get(&r, "name");
        int wi = 0, ii = 0;
        while (wi < npw && strcmp(pw[wi], w) != 0)
            wi++;
        while (ii < npi && strcmp(pi[ii], name) != 0)
            ii++;
        if (wi == MAX_PW || ii == MAX_PI) {
            fprintf(stderr, "mpbench_report: more than %d programs or %d implementations\n", MAX_PW, MAX_PI);
            exit(1);
        }
        if (wi == npw)
            snprintf(pw[npw++], sizeof pw[0], "%s", w);
        if (ii == npi)
            snprintf(pi[npi++], sizeof pi[0], "%s", name);
        pcell *c = &pc[wi][ii];
        if (c->n == MAX_VALS)
            continue;
        c->wall[c->n] = getd(&r, "wall_s");
        c->rss[c->n] = getd(&r, "peak_rss_kb");
        c->final[c->n] = getd(&r, "final_rss_kb");
        c->live = getd(&r, "live_bytes");
        c->n++;
    }
    fclose(f);
}

/* The median of one measure of a cell (NaN if it has none), and its range. */
static double pmed(const pcell *c, int what, double *lo, double *hi)
{
    const double *v = what == P_WALL ? c->wall : what == P_RSS ? c->rss : c->final;
    if (c->n == 0 || isnan(v[0]))
        return NAN;
    return median(v, c->n, lo, hi);
}

/* The implementation ratios are taken to. */
static int pref(void)
{
    for (int i = 0; i < npi; i++)
        if (strcmp(pi[i], "glibc") == 0)
            return i;
    return 0;
}

/* mpool, or a setting of it: not a peer. */
static int pmine(int i) { return strncmp(pi[i], "mpool", 5) == 0; }

/* The implementation with the lowest median of `what` in program w, among
 * all or among the peers only; -1 if none ran. */
static int pbest(int w, int what, int peers_only)
{
    int best = -1;
    double bv = 0;
    for (int i = 0; i < npi; i++) {
        if (peers_only && pmine(i))
            continue;
        double v = pmed(&pc[w][i], what, NULL, NULL);
        if (!isnan(v) && (best < 0 || v < bv)) {
            best = i;
            bv = v;
        }
    }
    return best;
}

static int pfind(const char *w)
{
    for (int i = 0; i < npw; i++)
        if (strcmp(pw[i], w) == 0)
            return i;
    return -1;
}

static void fmt_s(char *buf, size_t size, double s)
{
    snprintf(buf, size, isnan(s) ? "-" : s < 9.995 ? "%.2f" : "%.1f", s);
}

static int ptable(const char *wname)
{
    int w = pfind(wname);
    if (w < 0)
        return 0;
    int ref = pref(), fast = pbest(w, P_WALL, 0), lean = pbest(w, P_RSS, 0), finals = 0;
    for (int i = 0; i < npi; i++)
        finals |= !isnan(pmed(&pc[w][i], P_FINAL, NULL, NULL));
    double ref_t = pmed(&pc[w][ref], P_WALL, NULL, NULL);
    double fast_t = fast < 0 ? NAN : pmed(&pc[w][fast], P_WALL, NULL, NULL);
    double lean_r = lean < 0 ? NAN : pmed(&pc[w][lean], P_RSS, NULL, NULL);
    printf("| impl | wall s median | min–max | vs %s | vs fastest | peak RSS MB | vs leanest |%s\n", pi[ref],
           finals ? " final RSS MB | final RSS / live |" : "");
    printf("|---|---:|---:|---:|---:|---:|---:|%s\n", finals ? "---:|---:|" : "");
    for (int i = 0; i < npi; i++) {
        const pcell *c = &pc[w][i];
        if (c->n == 0)
            continue;
        double lo, hi, t = pmed(c, P_WALL, &lo, &hi), r = pmed(c, P_RSS, NULL, NULL);
        char a[32], b[32], d[32];
        fmt_s(a, sizeof a, t);
        fmt_s(b, sizeof b, lo);
        fmt_s(d, sizeof d, hi);
        int hl = strcmp(pi[i], "mpool") == 0;
        printf("| %s%s%s | %s | %s–%s | %.2fx | %.2fx | %.1f | %.2fx |", hl ? "**" : "", pi[i], hl ? "**" : "", a, b, d,
               t / ref_t, t / fast_t, r / 1024, r / lean_r);
        if (finals) {
            double fin = pmed(c, P_FINAL, NULL, NULL);
            if (isnan(fin))
                printf(" - | - |");
            else
                printf(" %.1f | %.2f |", fin / 1024, c->live > 0 ? fin * 1024 / c->live : NAN);
        }
        printf("\n");
    }
    return 0;
}

/* One matrix of the summary: a row per program, a column per
 * implementation, each cell the median over the reference's. */
static void pmatrix(int what)
{
    int ref = pref();
    printf("| program | %s |", pi[ref]);
    for (int i = 0; i < npi; i++)
        if (i != ref)
            printf(" %s |", pi[i]);
    printf("\n|---|---:|");
    for (int i = 1; i < npi; i++)
        printf("---:|");
    printf("\n");
    for (int w = 0; w < npw; w++) {
        double rv = pmed(&pc[w][ref], what, NULL, NULL);
        int best = pbest(w, what, 0);
        if (what == P_WALL)
            printf("| %s | %s%.2f s%s |", pw[w], best == ref ? "**" : "", rv, best == ref ? "**" : "");
        else
            printf("| %s | %s%.1f MB%s |", pw[w], best == ref ? "**" : "", rv / 1024, best == ref ? "**" : "");
        for (int i = 0; i < npi; i++) {
            if (i == ref)
                continue;
            double v = pmed(&pc[w][i], what, NULL, NULL);
            if (isnan(v) || isnan(rv))
                printf(" – |");
            else
                printf(" %s%.2fx%s |", best == i ? "**" : "", v / rv, best == i ? "**" : "");
        }
        printf("\n");
    }
}

/* Implementation mp (mpool, or a setting of it) against the goals: faster
 * than the reference, within 10% of the fastest peer and ahead of all, and
 * within 10% of the leanest peer's peak RSS. */
static void pgoals(int mp)
{
    int n = 0, beats_ref = 0, near_fast = 0, fastest = 0, near_lean = 0;
    for (int w = 0; w < npw; w++) {
        double t = pmed(&pc[w][mp], P_WALL, NULL, NULL), r = pmed(&pc[w][mp], P_RSS, NULL, NULL);
        int fp = pbest(w, P_WALL, 1), lp = pbest(w, P_RSS, 1);
        if (isnan(t) || fp < 0)
            continue;
        n++;
        double ref_t = pmed(&pc[w][pref()], P_WALL, NULL, NULL), fp_t = pmed(&pc[w][fp], P_WALL, NULL, NULL);
        beats_ref += t < ref_t;
        near_fast += t <= fp_t * 1.10;
        fastest += t < fp_t;
        near_lean += r <= pmed(&pc[w][lp], P_RSS, NULL, NULL) * 1.10;
    }
    if (n == 0)
        return;
    printf("\n%s against the goals, over the %d programs it ran (peers: the other allocators):\n\n", pi[mp], n);
    printf("- faster than %s: %d of %d (goal: all)\n", pi[pref()], beats_ref, n);
    printf("- within 10%% of the fastest peer: %d of %d (goal: all)\n", near_fast, n);
    printf("- faster than every peer: %d of %d (goal: at least half)\n", fastest, n);
    printf("- peak RSS within 10%% of the leanest peer: %d of %d (goal: all)\n", near_lean, n);
}

/* Where speed and memory pull apart: for each program, the allocators
 * (any of them) within 10% of both the fastest one's time and the leanest
 * one's peak RSS. */
static void pfrontier(void)
{
    printf("\nWithin 10%% of both the fastest and the leanest of all (time and peak RSS at once):\n\n");
    for (int w = 0; w < npw; w++) {
        int fast = pbest(w, P_WALL, 0), lean = pbest(w, P_RSS, 0);
        if (fast < 0 || lean < 0)
            continue;
        double ft = pmed(&pc[w][fast], P_WALL, NULL, NULL), lr = pmed(&pc[w][lean], P_RSS, NULL, NULL);
        printf("- %s:", pw[w]);
        int any = 0;
        for (int i = 0; i < npi; i++) {
            double t = pmed(&pc[w][i], P_WALL, NULL, NULL), r = pmed(&pc[w][i], P_RSS, NULL, NULL);
            if (!isnan(t) && !isnan(r) && t <= ft * 1.10 && r <= lr * 1.10) {
                printf("%s %s", any ? "," : "", pi[i]);
                any = 1;
            }
        }
        printf("%s\n", any ? "" : " none");
    }
}

static int psummary(void)
{
    if (npw == 0 || npi == 0)
        return 0;
    const char *ref = pi[pref()];
    printf("Wall time: %s's median in seconds, the others' as a ratio to it (below 1: faster than %s); the fastest "
           "in bold.\n\n", ref, ref);
    pmatrix(P_WALL);
    printf("\nPeak RSS: %s's median in MB, the others' as a ratio to it (below 1: leaner); the leanest in bold.\n\n",
           ref);
    pmatrix(P_RSS);
    for (int mp = 0; mp < npi; mp++)
        if (pmine(mp))
            pgoals(mp);
    pfrontier();
    return 0;
}

/* Grouped bars: a group per program, a bar per implementation, the median
 * over the reference's (time: with min–max whiskers). */
static int pbars(int what, const char *out)
{
    if (npw == 0 || npi == 0)
        return 0;
    int ref = pref();
    const double bw = 14, gap = 22, left = 60, top = 70, plot_h = 280;
    double group_w = npi * bw + gap, plot_w = npw * group_w;
    double max = 1;
    for (int w = 0; w < npw; w++) {
        double rv = pmed(&pc[w][ref], what, NULL, NULL);
        for (int i = 0; i < npi; i++) {
            double lo, hi, v = pmed(&pc[w][i], what, &lo, &hi);
            if (isnan(v) || isnan(rv))
                continue;
            double m = (what == P_WALL ? hi : v) / rv;
            if (m > max)
                max = m;
        }
    }
    double step = nice_step(max, 5), scale = ceil(max * 1.08 / step) * step;
    double width = left + plot_w + 20;
    if (width < 740) /* the title's width */
        width = 740;
    load_meta((int)(width / 6.2));
    double bottom = top + plot_h, height = bottom + 40 + meta_height();
    FILE *f = open_out(out);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"13\">\n",
            width, height, width, height);
    meta_desc(f);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Programs: %s over %s's "
               "(median%s; below 1 is %s)</text>\n",
            what == P_WALL ? "wall time" : "peak RSS", pi[ref], what == P_WALL ? ", whiskers min–max" : "",
            what == P_WALL ? "faster" : "leaner");
    /* Legend. */
    double lx = 10;
    for (int i = 0; i < npi; i++) {
        fprintf(f, "<rect x=\"%.0f\" y=\"34\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", lx, colour_of_name(pi[i]));
        fprintf(f, "<text x=\"%.0f\" y=\"45\"%s>", lx + 16, strcmp(pi[i], "mpool") == 0 ? " font-weight=\"bold\"" : "");
        xml_text(f, pi[i]);
        fprintf(f, "</text>\n");
        lx += 16 + 8.0 * (double)strlen(pi[i]) + 18;
    }
#define YV(v) (bottom - (v) / scale * plot_h)
    for (double t = 0; t <= scale + step / 2; t += step) {
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#dee2e6\"/>\n", left, YV(t),
                left + plot_w, YV(t));
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#495057\">%g</text>\n", left - 6, YV(t) + 4,
                t);
    }
    for (int w = 0; w < npw; w++) {
        double gx = left + w * group_w + gap / 2, rv = pmed(&pc[w][ref], what, NULL, NULL);
        for (int i = 0; i < npi; i++) {
            double lo, hi, v = pmed(&pc[w][i], what, &lo, &hi);
            if (isnan(v) || isnan(rv))
                continue;
            double x = gx + i * bw;
            int hl = strcmp(pi[i], "mpool") == 0;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"%s><title>%s %s: "
                       "%.2f</title></rect>\n",
                    x + 1, YV(v / rv), bw - 2, bottom - YV(v / rv), colour_of_name(pi[i]),
                    hl ? " stroke=\"#a61e4d\" stroke-width=\"1.5\"" : "", pw[w], pi[i], v / rv);
            if (what == P_WALL)
                fprintf(f, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"#212529\" "
                           "stroke-width=\"1\" fill=\"none\"/>\n",
                        x + bw / 2, YV(lo / rv), YV(hi / rv), x + 3, YV(lo / rv), x + bw - 3, x + 3, YV(hi / rv),
                        x + bw - 3);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">", gx + npi * bw / 2, bottom + 18);
        xml_text(f, pw[w]);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#495057\" stroke-dasharray=\"5 4\"/>\n",
            left, YV(1.0), left + plot_w, YV(1.0));
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#495057\"/>\n", left, bottom,
            left + plot_w, bottom);
#undef YV
    meta_text(f, bottom + 30);
    fprintf(f, "</svg>\n");
    fclose(f);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: mpbench_report table W FILE | bars W FILE OUT.svg [META] | rss W FILE OUT.svg [META] | "
                    "instr W FILE | ptable PROGRAM FILE | psummary FILE | pbars time|rss FILE OUT.svg [META]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "table") == 0) {
        load(argv[3], argv[2]);
        return table(argv[2]);
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "bars") == 0) {
        meta_path = argc == 6 ? argv[5] : NULL;
        load(argv[3], argv[2]);
        return bars(argv[2], argv[4]);
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "rss") == 0) {
        meta_path = argc == 6 ? argv[5] : NULL;
        load(argv[3], argv[2]);
        return rss_chart(argv[2], argv[4]);
    }
    if (argc == 4 && strcmp(argv[1], "instr") == 0) {
        load(argv[3], argv[2]);
        return instr(argv[2]);
    }
    if (argc == 4 && strcmp(argv[1], "ptable") == 0) {
        pload(argv[3]);
        return ptable(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "psummary") == 0) {
        pload(argv[2]);
        return psummary();
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "pbars") == 0 &&
        (strcmp(argv[2], "time") == 0 || strcmp(argv[2], "rss") == 0)) {
        meta_path = argc == 6 ? argv[5] : NULL;
        pload(argv[3]);
        return pbars(strcmp(argv[2], "time") == 0 ? P_WALL : P_RSS, argv[4]);
    }
    return usage();
}
