/*
 * snippets.c - the documentation's C compiles as written, and names every
 * function of the API.
 *
 *   docs_snippets snippets OUTDIR CC [-f FLAG]... [-l LIB]... -- FILE.md...
 *       Every ```c block of the files (indented ones too) is compiled with
 *       CC -std=c11 -Wall -Wextra -Werror and the FLAGs (the include
 *       directory, and the build's sanitizer flags). A block is a whole
 *       translation unit; one that defines main is also linked, with the
 *       -l arguments (the library) after it. A block whose info string is
 *       "c fragment" is the body of a function: it is compiled inside
 *       `void fragment(void) { ... }` after #include <mpool.h> and the
 *       standard headers. Errors point at the markdown file and line.
 *
 *   docs_snippets api HEADER FILE.md
 *       Every public function the header declares (MP_API, not mp__) is
 *       named in FILE.md as `name(` or `name`: the reference cannot leave
 *       one out.
 *
 * Exits 0 when all is well, 1 with one line per failure otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

#define MAX_ARGS 64

static int failures;

/* The whole of a file, NUL-terminated, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more) {
                free(buf);
                buf = NULL;
            }
            buf = more;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* Runs argv; true when it exits 0. */
static bool run(char **argv)
{
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(rc));
        return false;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

typedef struct build {
    const char *outdir, *cc;
    const char *cflags[MAX_ARGS], *libs[MAX_ARGS];
    int ncflags, nlibs;
    int blocks;
} build;

/* A file name's last component without its extension, for the outputs. */
static void stem(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, cap, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot)
        *dot = '\0';
}

/* Compiles one block: lines [body, body + len) of md, starting at line
 * `line` (the first line of code), as a unit or a fragment. */
static void compile_block(build *b, const char *md, int line, const char *code, size_t len, bool fragment)
{
    char name[256], src[1024], obj[1024], exe[1024];
    stem(md, name, sizeof name);
    snprintf(src, sizeof src, "%s/%s_%d.c", b->outdir, name, line);
    snprintf(obj, sizeof obj, "%s/%s_%d.o", b->outdir, name, line);
    snprintf(exe, sizeof exe, "%s/%s_%d", b->outdir, name, line);
    FILE *f = fopen(src, "w");
    if (!f) {
        fprintf(stderr, "%s: %s\n", src, strerror(errno));
        failures++;
        return;
    }
    if (fragment)
        fprintf(f, "#include <mpool.h>\n#include <errno.h>\n#include <stdint.h>\n#include <stdio.h>\n"
                   "#include <stdlib.h>\n#include <string.h>\nvoid fragment(void);\nvoid fragment(void)\n{\n");
    fprintf(f, "#line %d \"%s\"\n", line, md);
    fwrite(code, 1, len, f);
    if (fragment)
        fprintf(f, "\n}\n");
    fclose(f);
    b->blocks++;

    char *argv[MAX_ARGS * 2 + 16];
    int n = 0;
    argv[n++] = (char *)b->cc;
    argv[n++] = "-std=c11";
    argv[n++] = "-Wall";
    argv[n++] = "-Wextra";
    argv[n++] = "-Werror";
    for (int i = 0; i < b->ncflags; i++)
        argv[n++] = (char *)b->cflags[i];
    argv[n++] = "-c";
    argv[n++] = src;
    argv[n++] = "-o";
    argv[n++] = obj;
    argv[n] = NULL;
    if (!run(argv)) {
        fprintf(stderr, "%s:%d: this C block does not compile (%s)\n", md, line, src);
        failures++;
        return;
    }
    /* A program: link it too, so that every name it uses exists. */
    char *text = strndup(code, len);
    bool has_main = text && strstr(text, "int main(") != NULL;
    free(text);
    if (!has_main || fragment)
        return;
    n = 0;
    argv[n++] = (char *)b->cc;
    for (int i = 0; i < b->ncflags; i++)
        if (strncmp(b->cflags[i], "-I", 2) != 0)
            argv[n++] = (char *)b->cflags[i];
    argv[n++] = obj;
    for (int i = 0; i < b->nlibs; i++)
        argv[n++] = (char *)b->libs[i];
    argv[n++] = "-o";
    argv[n++] = exe;
    argv[n] = NULL;
    if (!run(argv)) {
        fprintf(stderr, "%s:%d: this C program does not link (%s)\n", md, line, src);
        failures++;
    }
}

/* Every ```c block of one markdown file. */
static void snippets_of(build *b, const char *md)
{
    char *text = slurp(md);
    if (!text) {
        fprintf(stderr, "%s: %s\n", md, strerror(errno));
        failures++;
        return;
    }
    int line = 1, code_line = 0;
    bool in_c = false, in_other = false, fragment = false;
    size_t indent = 0;
    char *code = NULL;
    size_t len = 0, cap = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        size_t sp = 0;
        while (sp < n && p[sp] == ' ')
            sp++;
        bool fence = n - sp >= 3 && strncmp(p + sp, "```", 3) == 0;
        if (!in_c && !in_other && fence) {
            char info[64] = "";
            snprintf(info, sizeof info, "%.*s", (int)(n - sp - 3), p + sp + 3);
            for (char *e = info + strlen(info); e > info && isspace((unsigned char)e[-1]);)
                *--e = '\0';
            if (strcmp(info, "c") == 0 || strcmp(info, "c fragment") == 0) {
                in_c = true;
                fragment = strcmp(info, "c fragment") == 0;
                indent = sp;
                code_line = line + 1;
                len = 0;
            } else {
                in_other = true;
            }
        } else if ((in_c || in_other) && fence && n - sp == 3) {
            if (in_c)
                compile_block(b, md, code_line, code ? code : "", len, fragment);
            in_c = in_other = false;
        } else if (in_c) {
            size_t drop = sp < indent ? sp : indent; /* a block indented in a list */
            if (len + n + 2 > cap) {
                cap = (len + n + 2) * 2;
                char *more = realloc(code, cap);
                if (!more) {
                    fprintf(stderr, "out of memory\n");
                    exit(1);
                }
                code = more;
            }
            memcpy(code + len, p + drop, n - drop);
            len += n - drop;
            code[len++] = '\n';
        }
        if (!nl)
            break;
        p = nl + 1;
        line++;
    }
    if (in_c || in_other) {
        fprintf(stderr, "%s:%d: a code block is not closed\n", md, code_line - 1);
        failures++;
    }
    free(code);
    free(text);
}

/* ------------------------------------------------------------------ api */

static bool named_in(const char *doc, const char *name)
{
    char want[160];
    snprintf(want, sizeof want, "`%s(", name);
    if (strstr(doc, want))
        return true;
    snprintf(want, sizeof want, "`%s`", name);
    return strstr(doc, want) != NULL;
}

static int api(const char *header, const char *md)
{
    char *h = slurp(header), *doc = slurp(md);
    if (!h || !doc) {
        fprintf(stderr, "cannot read %s or %s\n", header, md);
        return 1;
    }
    int names = 0;
    /* Each declaration line "MP_API ... mp_name(": the first mp_ name
     * followed by '(' on the line. */
    for (char *p = h; (p = strstr(p, "MP_API ")) != NULL; p++) {
        if (p > h && p[-1] != '\n')
            continue; /* the macro's own definition, or a mention */
        char *eol = strchr(p, '\n');
        for (char *q = p; q && q < eol && (q = strstr(q, "mp_")) != NULL && q < eol; q++) {
            if (q > p && (isalnum((unsigned char)q[-1]) || q[-1] == '_'))
                continue;
            size_t n = 0;
            while (isalnum((unsigned char)q[n]) || q[n] == '_')
                n++;
            if (q[n] != '(')
                continue;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)n, q);
            if (strncmp(name, "mp__", 4) == 0)
                break;
            names++;
            if (!named_in(doc, name)) {
                fprintf(stderr, "%s: `%s` is declared in %s but not documented\n", md, name, header);
                failures++;
            }
            break;
        }
    }
    if (names < 40) {
        fprintf(stderr, "%s: only %d public functions found: is the reader still right?\n", header, names);
        failures++;
    }
    if (!failures)
        printf("%d public functions, each documented in %s\n", names, md);
    free(h);
    free(doc);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "api") == 0)
        return api(argv[2], argv[3]);
    if (argc < 5 || strcmp(argv[1], "snippets") != 0) {
        fprintf(stderr, "usage: %s snippets OUTDIR CC [-f FLAG]... [-l LIB]... -- FILE.md...\n"
                        "       %s api HEADER FILE.md\n",
                argv[0], argv[0]);
        return 2;
    }
    build b = { .outdir = argv[2], .cc = argv[3] };
    int i = 4;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (i + 1 < argc && strcmp(argv[i], "-f") == 0 && b.ncflags < MAX_ARGS)
            b.cflags[b.ncflags++] = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "-l") == 0 && b.nlibs < MAX_ARGS)
            b.libs[b.nlibs++] = argv[++i];
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    for (i++; i < argc; i++)
        snippets_of(&b, argv[i]);
    printf("%d C blocks compiled, %d failed\n", b.blocks, failures);
    return failures ? 1 : 0;
}
