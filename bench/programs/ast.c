/*
 * ast.c - a compiler's way of allocating, single-threaded: for each of N
 * generated source files ("units"), lex it into tokens, parse them into a
 * tree of small nodes, fold constants (freeing the nodes folded away),
 * check names through a chain of scopes (a hash table per block), lower
 * the tree to a list of instructions and print those as text; then free
 * everything but a summary of the unit. Names are interned in one table
 * that lives as long as the program, as a compiler's identifiers do.
 *
 *     ast [-n UNITS]
 *
 * Prints counts and a hash of all the generated text: the same under any
 * correct allocator.
 */
#define _GNU_SOURCE 1
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "programs.h"

/* ---------------------------------------------------------- interning */

typedef struct name {
    struct name *next;
    uint64_t hash;
    char text[];
} name;

static name **names;
static size_t names_cap, names_len;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static const char *intern(const char *s, size_t n)
{
    uint64_t h = hash_bytes(s, n);
    if (names_len * 2 >= names_cap) {
        size_t cap = names_cap ? names_cap * 2 : 1024;
        name **t = xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < names_cap; i++)
            for (name *e = names[i], *next; e != NULL; e = next) {
                next = e->next;
                e->next = t[e->hash & (cap - 1)];
                t[e->hash & (cap - 1)] = e;
            }
        free(names);
        names = t;
        names_cap = cap;
    }
    for (name *e = names[h & (names_cap - 1)]; e != NULL; e = e->next)
        if (e->hash == h && strncmp(e->text, s, n) == 0 && e->text[n] == '\0')
            return e->text;
    name *e = xmalloc(sizeof *e + n + 1);
    e->hash = h;
    memcpy(e->text, s, n);
    e->text[n] = '\0';
    e->next = names[h & (names_cap - 1)];
    names[h & (names_cap - 1)] = e;
    names_len++;
    return e->text;
}

/* ---------------------------------------------------------- the source */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap ? t->cap * 2 : 256;
        t->s = xrealloc(t->s, t->cap);
    }
}

static uint64_t rng;

static unsigned pick(unsigned n) { return (unsigned)(prog_next(&rng) % n); }

static void gen_expr(text *t, int depth, int nvars)
{
    unsigned k = depth > 3 ? pick(3) : pick(8);
    if (k == 0)
        put(t, "%u", pick(100));
    else if (k == 1 || k == 2)
        put(t, nvars > 0 && pick(3) ? "v%u" : "p%u", nvars > 0 ? pick((unsigned)nvars) : pick(3));
    else if (k == 3) {
        put(t, "f%u(", pick(40));
        unsigned args = pick(4);
        for (unsigned i = 0; i < args; i++) {
            if (i)
                put(t, ", ");
            gen_expr(t, depth + 1, nvars);
        }
        put(t, ")");
    } else {
        static const char *ops[] = { "+", "-", "*", "/", "<", "==" };
        put(t, "(");
        gen_expr(t, depth + 1, nvars);
        put(t, " %s ", ops[pick(6)]);
        gen_expr(t, depth + 1, nvars);
        put(t, ")");
    }
}

static void gen_block(text *t, int depth, int *nvars)
{
    unsigned n = 2 + pick(depth ? 4 : 8);
    put(t, "{\n");
    for (unsigned i = 0; i < n; i++) {
        unsigned k = depth > 2 ? pick(3) : pick(6);
        if (k == 0) {
            put(t, "let v%d = ", *nvars);
            gen_expr(t, 0, *nvars);
            put(t, ";\n");
            (*nvars)++;
        } else if (k == 1 && *nvars > 0) {
            put(t, "v%u = ", pick((unsigned)*nvars));
            gen_expr(t, 0, *nvars);
            put(t, ";\n");
        } else if (k == 2) {
            put(t, "return ");
            gen_expr(t, 0, *nvars);
            put(t, ";\n");
        } else if (k == 3 || k == 4) {
            put(t, "if (");
            gen_expr(t, 1, *nvars);
            put(t, ") ");
            gen_block(t, depth + 1, nvars);
            if (pick(2)) {
                put(t, " else ");
                gen_block(t, depth + 1, nvars);
            }
            put(t, "\n");
        } else {
            put(t, "while (");
            gen_expr(t, 1, *nvars);
            put(t, ") ");
            gen_block(t, depth + 1, nvars);
            put(t, "\n");
        }
    }
    put(t, "}");
}

static void gen_unit(text *t, unsigned unit)
{
    rng = 0x5eed0000ull + unit;
    t->len = 0;
    unsigned fns = 10 + pick(10);
    for (unsigned f = 0; f < fns; f++) {
        int nvars = 0;
        put(t, "fn f%u(p0, p1, p2) ", f);
        gen_block(t, 0, &nvars);
        put(t, "\n");
    }
}

/* ------------------------------------------------------------- tokens */

enum { T_END, T_NUM, T_IDENT, T_FN, T_LET, T_IF, T_ELSE, T_WHILE, T_RETURN, T_PUNCT };

typedef struct token {
    int kind;
    char *text; /* its own copy, for numbers and identifiers */
    char punct[3];
} token;

typedef struct tokens {
    token *v;
    size_t n, cap;
} tokens;

static void lex(const char *s, tokens *out)
{
    out->n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\n')
            s++;
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 256;
            out->v = xrealloc(out->v, out->cap * sizeof *out->v);
        }
        token *t = &out->v[out->n++];
        memset(t, 0, sizeof *t);
        if (*s == '\0') {
            t->kind = T_END;
            return;
        }
        const char *b = s;
        if (*s >= '0' && *s <= '9') {
            while (*s >= '0' && *s <= '9')
                s++;
            t->kind = T_NUM;
            t->text = strndup(b, (size_t)(s - b));
        } else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) {
            while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'))
                s++;
            size_t n = (size_t)(s - b);
            static const struct {
                const char *w;
                int kind;
            } kw[] = { { "fn", T_FN }, { "let", T_LET }, { "if", T_IF }, { "else", T_ELSE },
                       { "while", T_WHILE }, { "return", T_RETURN } };
            t->kind = T_IDENT;
            for (size_t k = 0; k < sizeof kw / sizeof kw[0]; k++)
                if (strlen(kw[k].w) == n && strncmp(kw[k].w, b, n) == 0)
                    t->kind = kw[k].kind;
            if (t->kind == T_IDENT)
                t->text = strndup(b, n);
        } else {
            t->kind = T_PUNCT;
            t->punct[0] = *s++;
            if (t->punct[0] == '=' && *s == '=')
                t->punct[1] = *s++;
        }
        if ((t->kind == T_NUM || t->kind == T_IDENT) && t->text == NULL)
            prog_oom();
    }
}

static void tokens_clear(tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].text);
    t->n = 0;
}

/* --------------------------------------------------------------- nodes */

enum { N_NUM, N_VAR, N_BIN, N_CALL, N_LET, N_SET, N_IF, N_WHILE, N_RET, N_BLOCK, N_FN };

/* A node is a header and what its kind needs, no more: most are 16 to 40
 * bytes, as in a real compiler. */
typedef struct node {
    int kind;
} node;
typedef struct { node h; long num; } n_num;                                   /* N_NUM */
typedef struct { node h; const char *var; } n_var;                            /* N_VAR */
typedef struct { node h; int op; node *l, *r; } n_bin;                        /* N_BIN */
typedef struct { node h; const char *fn; int n; node **args; } n_call;        /* N_CALL */
typedef struct { node h; const char *var; node *value; } n_let;               /* N_LET, N_SET */
typedef struct { node h; node *cond, *then, *els; } n_cond;                   /* N_IF, N_WHILE */
typedef struct { node h; node *value; } n_ret;                                /* N_RET */
typedef struct { node h; int n, cap; node **stmts; } n_block;                 /* N_BLOCK */
typedef struct { node h; const char *name; const char **params; int n; node *body; } n_fn; /* N_FN */
#define AS(type, n) ((type *)(n))

static long nodes_made, nodes_folded;

static node *mk(int kind, size_t size)
{
    node *n = xmalloc(size);
    n->kind = kind;
    nodes_made++;
    return n;
}

static void free_node(node *n)
{
    if (n == NULL)
        return;
    switch (n->kind) {
    case N_BIN: free_node(AS(n_bin, n)->l); free_node(AS(n_bin, n)->r); break;
    case N_CALL:
        for (int i = 0; i < AS(n_call, n)->n; i++)
            free_node(AS(n_call, n)->args[i]);
        free(AS(n_call, n)->args);
        break;
    case N_LET: case N_SET: free_node(AS(n_let, n)->value); break;
    case N_IF: case N_WHILE: free_node(AS(n_cond, n)->cond); free_node(AS(n_cond, n)->then); free_node(AS(n_cond, n)->els); break;
    case N_RET: free_node(AS(n_ret, n)->value); break;
    case N_BLOCK:
        for (int i = 0; i < AS(n_block, n)->n; i++)
            free_node(AS(n_block, n)->stmts[i]);
        free(AS(n_block, n)->stmts);
        break;
    case N_FN: free(AS(n_fn, n)->params); free_node(AS(n_fn, n)->body); break;
    default: break;
    }
    free(n);
}

/* -------------------------------------------------------------- parser */

typedef struct parser {
    token *t;
} parser;

static int is_punct(const parser *p, const char *s) { return p->t->kind == T_PUNCT && strcmp(p->t->punct, s) == 0; }

static void expect(parser *p, const char *s)
{
    if (!is_punct(p, s)) {
        fprintf(stderr, "ast: parse error: expected '%s'\n", s);
        exit(1);
    }
    p->t++;
}

static node *expr(parser *p);

static node *primary(parser *p)
{
    token *t = p->t++;
    if (t->kind == T_NUM) {
        node *n = mk(N_NUM, sizeof(n_num));
        AS(n_num, n)->num = strtol(t->text, NULL, 10);
        return n;
    }
    if (t->kind == T_IDENT) {
        const char *id = intern(t->text, strlen(t->text));
        if (!is_punct(p, "(")) {
            node *n = mk(N_VAR, sizeof(n_var));
            AS(n_var, n)->var = id;
            return n;
        }
        p->t++;
        node *n = mk(N_CALL, sizeof(n_call));
        AS(n_call, n)->fn = id;
        AS(n_call, n)->n = 0;
        AS(n_call, n)->args = NULL;
        int cap = 0;
        while (!is_punct(p, ")")) {
            if (AS(n_call, n)->n > 0)
                expect(p, ",");
            if (AS(n_call, n)->n == cap) {
                cap = cap ? cap * 2 : 2;
                AS(n_call, n)->args = xrealloc(AS(n_call, n)->args, (size_t)cap * sizeof(node *));
            }
            AS(n_call, n)->args[AS(n_call, n)->n++] = expr(p);
        }
        p->t++;
        return n;
    }
    if (t->kind == T_PUNCT && strcmp(t->punct, "(") == 0) {
        node *n = expr(p);
        expect(p, ")");
        return n;
    }
    fprintf(stderr, "ast: parse error in an expression\n");
    exit(1);
}

static int prec(const parser *p)
{
    if (p->t->kind != T_PUNCT)
        return 0;
    switch (p->t->punct[0]) {
    case '*': case '/': return 3;
    case '+': case '-': return 2;
    case '<': return 1;
    case '=': return p->t->punct[1] == '=' ? 1 : 0;
    default: return 0;
    }
}

static node *binary(parser *p, int min)
{
    node *l = primary(p);
    for (int pr; (pr = prec(p)) >= min && pr > 0;) {
        int op = p->t->punct[0];
        p->t++;
        node *r = binary(p, pr + 1);
        node *n = mk(N_BIN, sizeof(n_bin));
        AS(n_bin, n)->op = op;
        AS(n_bin, n)->l = l;
        AS(n_bin, n)->r = r;
        l = n;
    }
    return l;
}

static node *expr(parser *p) { return binary(p, 1); }

static node *block(parser *p);

static node *statement(parser *p)
{
    token *t = p->t;
    int assign = t->kind == T_IDENT && p->t[1].kind == T_PUNCT && strcmp(p->t[1].punct, "=") == 0;
    if (t->kind == T_LET || assign) {
        node *n = mk(assign ? N_SET : N_LET, sizeof(n_let));
        if (!assign)
            p->t++;
        AS(n_let, n)->var = intern(p->t->text, strlen(p->t->text));
        p->t++;
        expect(p, "=");
        AS(n_let, n)->value = expr(p);
        expect(p, ";");
        return n;
    }
    if (t->kind == T_RETURN) {
        p->t++;
        node *n = mk(N_RET, sizeof(n_ret));
        AS(n_ret, n)->value = expr(p);
        expect(p, ";");
        return n;
    }
    if (t->kind == T_IF || t->kind == T_WHILE) {
        p->t++;
        node *n = mk(t->kind == T_IF ? N_IF : N_WHILE, sizeof(n_cond));
        expect(p, "(");
        AS(n_cond, n)->cond = expr(p);
        expect(p, ")");
        AS(n_cond, n)->then = block(p);
        AS(n_cond, n)->els = NULL;
        if (t->kind == T_IF && p->t->kind == T_ELSE) {
            p->t++;
            AS(n_cond, n)->els = block(p);
        }
        return n;
    }
    fprintf(stderr, "ast: parse error in a statement\n");
    exit(1);
}

static node *block(parser *p)
{
    expect(p, "{");
    node *b = mk(N_BLOCK, sizeof(n_block));
    AS(n_block, b)->n = AS(n_block, b)->cap = 0;
    AS(n_block, b)->stmts = NULL;
    while (!is_punct(p, "}")) {
        if (AS(n_block, b)->n == AS(n_block, b)->cap) {
            AS(n_block, b)->cap = AS(n_block, b)->cap ? AS(n_block, b)->cap * 2 : 4;
            AS(n_block, b)->stmts = xrealloc(AS(n_block, b)->stmts, (size_t)AS(n_block, b)->cap * sizeof(node *));
        }
        AS(n_block, b)->stmts[AS(n_block, b)->n++] = statement(p);
    }
    p->t++;
    return b;
}

static node *function(parser *p)
{
    if (p->t->kind != T_FN) {
        fprintf(stderr, "ast: parse error: expected fn\n");
        exit(1);
    }
    p->t++;
    node *f = mk(N_FN, sizeof(n_fn));
    AS(n_fn, f)->name = intern(p->t->text, strlen(p->t->text));
    p->t++;
    expect(p, "(");
    AS(n_fn, f)->n = 0;
    AS(n_fn, f)->params = NULL;
    while (!is_punct(p, ")")) {
        if (AS(n_fn, f)->n > 0)
            expect(p, ",");
        AS(n_fn, f)->params = xrealloc(AS(n_fn, f)->params, (size_t)(AS(n_fn, f)->n + 1) * sizeof(char *));
        AS(n_fn, f)->params[AS(n_fn, f)->n++] = intern(p->t->text, strlen(p->t->text));
        p->t++;
    }
    p->t++;
    AS(n_fn, f)->body = block(p);
    return f;
}

/* ------------------------------------------------------- constant folding */

static node *fold(node *n)
{
    switch (n->kind) {
    case N_BIN: {
        AS(n_bin, n)->l = fold(AS(n_bin, n)->l);
        AS(n_bin, n)->r = fold(AS(n_bin, n)->r);
        node *l = AS(n_bin, n)->l, *r = AS(n_bin, n)->r;
        if (l->kind == N_NUM && r->kind == N_NUM && !(AS(n_bin, n)->op == '/' && AS(n_num, r)->num == 0)) {
            long a = AS(n_num, l)->num, b = AS(n_num, r)->num, v;
            switch (AS(n_bin, n)->op) {
            case '+': v = a + b; break;
            case '-': v = a - b; break;
            case '*': v = a * b; break;
            case '/': v = a / b; break;
            case '<': v = a < b; break;
            default: v = a == b; break;
            }
            free_node(n);
            node *c = mk(N_NUM, sizeof(n_num));
            AS(n_num, c)->num = v;
            nodes_folded++;
            return c;
        }
        if ((AS(n_bin, n)->op == '*' && r->kind == N_NUM && AS(n_num, r)->num == 1) ||
            (AS(n_bin, n)->op == '+' && r->kind == N_NUM && AS(n_num, r)->num == 0)) {
            AS(n_bin, n)->l = NULL;
            free_node(n);
            nodes_folded++;
            return l;
        }
        return n;
    }
    case N_CALL:
        for (int i = 0; i < AS(n_call, n)->n; i++)
            AS(n_call, n)->args[i] = fold(AS(n_call, n)->args[i]);
        return n;
    case N_LET: case N_SET: AS(n_let, n)->value = fold(AS(n_let, n)->value); return n;
    case N_RET: AS(n_ret, n)->value = fold(AS(n_ret, n)->value); return n;
    case N_IF: case N_WHILE:
        AS(n_cond, n)->cond = fold(AS(n_cond, n)->cond);
        AS(n_cond, n)->then = fold(AS(n_cond, n)->then);
        if (AS(n_cond, n)->els)
            AS(n_cond, n)->els = fold(AS(n_cond, n)->els);
        return n;
    case N_BLOCK:
        for (int i = 0; i < AS(n_block, n)->n; i++)
            AS(n_block, n)->stmts[i] = fold(AS(n_block, n)->stmts[i]);
        return n;
    case N_FN: AS(n_fn, n)->body = fold(AS(n_fn, n)->body); return n;
    default: return n;
    }
}

/* ------------------------------------------------------------- scopes */

/* One hash table of names per block, chained to the enclosing block's. */
typedef struct scope {
    struct scope *up;
    const char **slot;
    int *slot_id;
    size_t cap, len;
} scope;

static scope *scope_open(scope *up)
{
    scope *s = xmalloc(sizeof *s);
    s->up = up;
    s->cap = 8;
    s->len = 0;
    s->slot = xcalloc(s->cap, sizeof *s->slot);
    s->slot_id = xmalloc(s->cap * sizeof *s->slot_id);
    return s;
}

static void scope_close(scope *s)
{
    free(s->slot);
    free(s->slot_id);
    free(s);
}

static void scope_add(scope *s, const char *var, int id)
{
    if (s->len * 4 >= s->cap * 3) {
        size_t cap = s->cap * 2;
        const char **slot = xcalloc(cap, sizeof *slot);
        int *slot_id = xmalloc(cap * sizeof *slot_id);
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i] != NULL) {
                size_t j = (uintptr_t)s->slot[i] / 8 & (cap - 1);
                while (slot[j] != NULL)
                    j = (j + 1) & (cap - 1);
                slot[j] = s->slot[i];
                slot_id[j] = s->slot_id[i];
            }
        free(s->slot);
        free(s->slot_id);
        s->slot = slot;
        s->slot_id = slot_id;
        s->cap = cap;
    }
    size_t j = (uintptr_t)var / 8 & (s->cap - 1);
    while (s->slot[j] != NULL && s->slot[j] != var)
        j = (j + 1) & (s->cap - 1);
    if (s->slot[j] == NULL)
        s->len++;
    s->slot[j] = var;
    s->slot_id[j] = id;
}

static int scope_find(const scope *s, const char *var)
{
    for (; s != NULL; s = s->up) {
        size_t j = (uintptr_t)var / 8 & (s->cap - 1);
        while (s->slot[j] != NULL) {
            if (s->slot[j] == var)
                return s->slot_id[j];
            j = (j + 1) & (s->cap - 1);
        }
    }
    return -1;
}

/* ------------------------------------------------------------ lowering */

typedef struct insn {
    struct insn *next;
    int op, dst, a, b;
    const char *sym;
} insn;

typedef struct lower {
    insn *head, **tail;
    int temps, vars;
    long count;
} lower;

static int emit(lower *lw, int op, int a, int b, const char *sym)
{
    insn *i = xmalloc(sizeof *i);
    i->next = NULL;
    i->op = op;
    i->dst = lw->temps++;
    i->a = a;
    i->b = b;
    i->sym = sym;
    *lw->tail = i;
    lw->tail = &i->next;
    lw->count++;
    return i->dst;
}

static int lower_expr(lower *lw, const node *n, const scope *sc)
{
    switch (n->kind) {
    case N_NUM: return emit(lw, 'k', (int)AS(n_num, n)->num, 0, NULL);
    case N_VAR: return emit(lw, 'v', scope_find(sc, AS(n_var, n)->var), 0, AS(n_var, n)->var);
    case N_BIN: {
        int a = lower_expr(lw, AS(n_bin, n)->l, sc), b = lower_expr(lw, AS(n_bin, n)->r, sc);
        return emit(lw, AS(n_bin, n)->op, a, b, NULL);
    }
    default: {
        int last = -1;
        for (int i = 0; i < AS(n_call, n)->n; i++)
            last = emit(lw, 'a', lower_expr(lw, AS(n_call, n)->args[i], sc), i, NULL);
        return emit(lw, 'c', last, AS(n_call, n)->n, AS(n_call, n)->fn);
    }
    }
}

static void lower_stmt(lower *lw, const node *n, scope *sc)
{
    switch (n->kind) {
    case N_LET:
        scope_add(sc, AS(n_let, n)->var, lw->vars++);
        /* fall through */
    case N_SET: emit(lw, '=', lower_expr(lw, AS(n_let, n)->value, sc), scope_find(sc, AS(n_let, n)->var), AS(n_let, n)->var); break;
    case N_RET: emit(lw, 'r', lower_expr(lw, AS(n_ret, n)->value, sc), 0, NULL); break;
    case N_IF: case N_WHILE: {
        int c = lower_expr(lw, AS(n_cond, n)->cond, sc);
        emit(lw, n->kind == N_IF ? '?' : 'w', c, 0, NULL);
        lower_stmt(lw, AS(n_cond, n)->then, sc);
        if (AS(n_cond, n)->els) {
            emit(lw, ':', 0, 0, NULL);
            lower_stmt(lw, AS(n_cond, n)->els, sc);
        }
        emit(lw, ';', 0, 0, NULL);
        break;
    }
    case N_BLOCK: {
        scope *inner = scope_open(sc);
        for (int i = 0; i < AS(n_block, n)->n; i++)
            lower_stmt(lw, AS(n_block, n)->stmts[i], inner);
        scope_close(inner);
        break;
    }
    default: break;
    }
}

/* --------------------------------------------------------------- main */

/* What is kept of each unit until the end, as an object file's symbols. */
typedef struct summary {
    struct summary *next;
    char *name;
    uint64_t hash;
    long insns;
} summary;

int main(int argc, char **argv)
{
    long units = 120;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            units = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: ast [-n UNITS]\n");
            return 2;
        }
    }
    text src = { 0 }, out = { 0 };
    tokens toks = { 0 };
    summary *kept = NULL;
    uint64_t hash = 0;
    long ntokens = 0, ninsns = 0, bytes = 0;
    for (long u = 0; u < units; u++) {
        gen_unit(&src, (unsigned)u);
        lex(src.s, &toks);
        ntokens += (long)toks.n;
        parser p = { toks.v };
        node **fns = NULL;
        int nfns = 0;
        while (p.t->kind != T_END) {
            fns = xrealloc(fns, (size_t)(nfns + 1) * sizeof *fns);
            fns[nfns++] = function(&p);
        }
        tokens_clear(&toks);
        lower lw = { NULL, NULL, 0, 0, 0 };
        lw.tail = &lw.head;
        for (int f = 0; f < nfns; f++) {
            fns[f] = fold(fns[f]);
            scope *sc = scope_open(NULL);
            for (int k = 0; k < AS(n_fn, fns[f])->n; k++)
                scope_add(sc, AS(n_fn, fns[f])->params[k], lw.vars++);
            emit(&lw, 'f', 0, 0, AS(n_fn, fns[f])->name);
            lower_stmt(&lw, AS(n_fn, fns[f])->body, sc);
            scope_close(sc);
            free_node(fns[f]);
        }
        free(fns);
        out.len = 0;
        for (insn *i = lw.head, *next; i != NULL; i = next) {
            next = i->next;
            put(&out, "t%d = %c t%d t%d %s\n", i->dst, i->op, i->a, i->b, i->sym ? i->sym : "");
            free(i);
        }
        uint64_t h = hash_bytes(out.s, out.len);
        hash = hash * 31 + h;
        bytes += (long)out.len;
        ninsns += lw.count;
        summary *s = xmalloc(sizeof *s);
        char nm[32];
        snprintf(nm, sizeof nm, "unit%ld.o", u);
        s->name = xstrdup(nm);
        s->hash = h;
        s->insns = lw.count;
        s->next = kept;
        kept = s;
    }
    long nkept = 0;
    for (summary *s = kept, *next; s != NULL; s = next) {
        next = s->next;
        nkept += s->insns > 0;
        free(s->name);
        free(s);
    }
    free(src.s);
    free(out.s);
    free(toks.v);
    printf("units %ld, tokens %ld, nodes %ld, folded %ld, instructions %ld, text %ld bytes, names %zu\n", units,
           ntokens, nodes_made, nodes_folded, ninsns, bytes, names_len);
    printf("hash %016llx, units kept %ld\n", (unsigned long long)hash, nkept);
    return 0;
}
