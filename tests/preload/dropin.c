/*
 * dropin.c - the malloc drop-in's own behaviour, which the programs of the
 * other preload tests cannot show: where every malloc name comes from, what
 * happens to pointers mpool never handed out, errno and posix_memalign's
 * error, fork and thread exit, the environment (MPOOL_SHOW_STATS,
 * MPOOL_CHECK's reports, MPOOL_TRIM_MS), out of memory.
 *
 * Built twice (CMakeLists.txt): preload_dropin_static links the static
 * form (mpool::malloc) and may look at mpool's internals; preload_dropin
 * is a plain program that CTest runs with LD_PRELOAD=libmpool-malloc.so.
 * A case that needs a process of its own (the environment is read at
 * start, a report aborts) runs this program again, as
 * `program child SCENARIO`, with the environment it needs.
 */
#define _GNU_SOURCE 1
#include "cases.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef DROPIN_STATIC
#include "chunk.h"         /* mp__chunk_retained */
#include "malloc/dropin.h" /* the bootstrap allocator */
#include <mpool.h>
#endif

/* The cases that run in both forms, and those for the static form only
 * (CMakeLists.txt reads the lines). */
#define DROPIN_CASE(name, fn, forms) CHECK_CASE(name, fn)

static size_t opaque(size_t v)
{
    volatile size_t x = v;
    return x;
}

/* A pointer the compiler knows nothing about: it may not drop a malloc
 * and free pair or fold a test of malloc's result (clang does both), nor
 * see that a free is wrong (the point of some cases). */
static void *hide(void *p)
{
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}

/* The object the dynamic linker took symbol `name` from, or "?". */
static const char *object_of_sym(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    Dl_info info;
    if (!f || !dladdr(f, &info) || !info.dli_fname)
        return "?";
    return info.dli_fname;
}

/* ------------------------------------------------------ running a child */

typedef struct outcome {
    int status;
    char err[8192]; /* its standard error */
} outcome;

static const char *self_path;

/* Runs `self child scenario` with the drop-in's variables unset (checked
 * mode off), then the NULL-terminated NAME=VALUE list set; collects how it
 * ended and its standard error. */
static outcome run_child(const char *scenario, const char *const *env)
{
    int errs[2];
    REQUIRE(pipe(errs) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(errs[0]);
        dup2(errs[1], 2);
        setenv("MPOOL_CHECK", "0", 1); /* also in a build checked by default */
        unsetenv("MPOOL_SHOW_STATS");
        unsetenv("MPOOL_TRIM_MS");
        for (; env && *env; env++)
            putenv((char *)*env);
        execl(self_path, self_path, "child", scenario, (char *)NULL);
        _exit(126);
    }
    close(errs[1]);
    outcome o = { 0 };
    size_t len = 0;
    ssize_t r;
    while (len + 1 < sizeof o.err && (r = read(errs[0], o.err + len, sizeof o.err - 1 - len)) > 0)
        len += (size_t)r;
    o.err[len] = '\0';
    close(errs[0]);
    REQUIRE(waitpid(pid, &o.status, 0) == pid);
    return o;
}

static bool exited_0(const outcome *o) { return WIFEXITED(o->status) && WEXITSTATUS(o->status) == 0; }
static bool aborted(const outcome *o) { return WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGABRT; }

#define CHECK_HAS(o, text)                                                                                  \
    do {                                                                                                    \
        if (!strstr((o).err, (text))) {                                                                     \
            fprintf(stderr, "%s:%d: the child's stderr has no \"%s\"; it is:\n%s\n", __FILE__, __LINE__,   \
                    (text), (o).err);                                                                       \
            check_failures++;                                                                               \
        }                                                                                                   \
    } while (0)

/* "allocated at <this program>": checked mode names the program's call
 * site, not the drop-in's malloc (which would mean a broken tail call). */
static void check_site_is_ours(const outcome *o, const char *what)
{
    const char *base = strrchr(self_path, '/');
    base = base ? base + 1 : self_path;
    char want[256];
    snprintf(want, sizeof want, "%s %s+0x", what, base);
    CHECK_HAS(*o, want);
}

/* ---------------------------------------------------- child scenarios */

static void *kept[2000]; /* blocks a scenario keeps to the end */

static void scenario_alloc(void)
{
    char *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = hide(malloc(opaque((size_t)i * 50 + 1)));
        REQUIRE(p[i] != NULL);
    }
    for (int i = 0; i < 100; i++)
        free(p[i]);
}

/* As coreutils do at exit: the reports must still come out. */
static void scenario_close_stderr(void)
{
    kept[0] = hide(malloc(opaque(24)));
    fclose(stderr);
}

static void scenario_double_free(void)
{
    char *p = hide(malloc(opaque(24)));
    free(hide(p));
    free(hide(p));
}

static void scenario_overflow(void)
{
    char *p = hide(malloc(opaque(24)));
    p[opaque(24)] = 1;
    free(hide(p));
}

static void scenario_use_after_free(void)
{
    char *p = hide(malloc(opaque(40)));
    free(hide(p));
    p[opaque(3)] = 7;
    /* Through the quarantine and back: the fill check sees the write. */
    for (int i = 0; i < 5000; i++)
        free(hide(malloc(opaque(40))));
    for (int i = 0; i < 2000; i++)
        kept[i] = hide(malloc(opaque(40)));
}

static char static_block[64];

static void scenario_foreign_free(void)
{
    free(hide(static_block + 16));
    scenario_alloc();
}

static void scenario_foreign_realloc(void)
{
    void *q = hide(realloc(hide(static_block + 16), 100));
    free(q);
}

static void scenario_leak(void)
{
    kept[0] = hide(malloc(opaque(24)));
    kept[1] = hide(malloc(opaque(3000)));
    kept[2] = hide(malloc(opaque(200000))); /* a large one */
    scenario_alloc();
}

/* Blocks from posix_memalign only, kept to the end: a small alignment, a
 * cache line, a page, and size 0. */
static void scenario_leak_aligned(void)
{
    static const size_t align[] = { 8, 64, 4096, 16 }, size[] = { 24, 3000, 200000, 0 };
    for (int i = 0; i < 4; i++)
        REQUIRE(posix_memalign(&kept[i], align[i], opaque(size[i])) == 0);
    for (int i = 0; i < 4; i++)
        kept[i] = hide(kept[i]);
}

/* Out of memory: the address space capped 256 MiB above what the process
 * has; every function fails with NULL and ENOMEM (posix_memalign returns
 * it), nothing aborts, and after the frees everything works again. */
static void scenario_oom(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    REQUIRE(f && fscanf(f, "%lu", &pages) == 1);
    fclose(f);
    struct rlimit rl = { .rlim_cur = pages * (unsigned long)sysconf(_SC_PAGESIZE) + (256ul << 20) };
    rl.rlim_max = rl.rlim_cur;
    REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0);
    enum { MAXB = 1 << 22 };
    static void *b[MAXB];
    size_t n = 0, big = 0;
    for (; n < MAXB; n++, big++) {
        errno = 0;
        if (!(b[n] = hide(malloc(opaque(1 << 20)))))
            break;
    }
    REQUIRE(n < MAXB && errno == ENOMEM);
    for (; n < MAXB; n++) {
        errno = 0;
        if (!(b[n] = hide(malloc(opaque(100)))))
            break;
        *(char *)b[n] = 1;
    }
    REQUIRE(n < MAXB && errno == ENOMEM && big >= 16);
    errno = 0;
    REQUIRE(hide(calloc(1, opaque(1 << 22))) == NULL && errno == ENOMEM);
    void *p = &n;
    REQUIRE(posix_memalign(&p, 4096, opaque(1 << 22)) == ENOMEM && p == &n);
    errno = 0;
    REQUIRE(hide(realloc(b[0], opaque(1 << 24))) == NULL && errno == ENOMEM);
    for (size_t i = 0; i < n; i++)
        free(b[i]);
    for (int i = 0; i < 100; i++) { /* and everything works again */
        void *q = hide(malloc(opaque(1 << 20)));
        REQUIRE(q != NULL);
        memset(q, 1, 1 << 20);
        free(q);
    }
}

#ifdef DROPIN_STATIC
/* A heap's worth of blocks allocated and freed. */
static void churn_and_free(void)
{
    enum { N = 10000 };
    static void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(opaque(4000));
        REQUIRE(b[i] != NULL);
        memset(b[i], 1, 4000);
    }
    for (int i = 0; i < N; i++)
        free(b[i]);
}

/* Exits 0 when the chunks the frees gave back were released to the OS
 * (trimmed), 1 when some are still retained. */
static void exit_retained(void)
{
    size_t retained = mp__chunk_retained();
    fprintf(stderr, "retained %zu\n", retained);
    _exit(retained == 0 ? 0 : 1);
}

/* Then enough calls for the countdown to run out twice. */
static void scenario_trim(void)
{
    churn_and_free();
    for (int i = 0; i < 3000; i++)
        free(hide(malloc(opaque(16))));
    exit_retained();
}

/* Then malloc_trim. */
static void scenario_malloc_trim(void)
{
    churn_and_free();
    if (malloc_trim(0) != 1)
        _exit(2);
    exit_retained();
}

/* Blocks of the bootstrap area, as a thread's start would hand out: free
 * takes them without a word (checked mode too), realloc copies them,
 * malloc_usable_size knows them. */
static void scenario_boot(void)
{
    char *b = mp__malloc_boot_alloc(100, 0);
    REQUIRE(b != NULL && ((uintptr_t)b & 15) == 0);
    memset(b, 'b', 100);
    REQUIRE(malloc_usable_size(b) == 100);
    char *q = hide(realloc(hide(b), 300));
    REQUIRE(q != NULL && q != b && q[0] == 'b' && q[99] == 'b' && malloc_usable_size(q) >= 300);
    free(q);
    free(hide(b));
    char *a = mp__malloc_boot_alloc(10, 4096);
    REQUIRE(a != NULL && ((uintptr_t)a & 4095) == 0);
    free(hide(a));
    errno = 0;
    REQUIRE(mp__malloc_boot_alloc((size_t)2 << 20, 0) == NULL && errno == ENOMEM); /* past the area */
}
#endif

typedef struct scenario {
    const char *name;
    void (*run)(void);
} scenario;

static const scenario scenarios[] = {
    { "alloc", scenario_alloc },
    { "close_stderr", scenario_close_stderr },
    { "double_free", scenario_double_free },
    { "overflow", scenario_overflow },
    { "use_after_free", scenario_use_after_free },
    { "foreign_free", scenario_foreign_free },
    { "foreign_realloc", scenario_foreign_realloc },
    { "leak", scenario_leak },
    { "leak_aligned", scenario_leak_aligned },
    { "oom", scenario_oom },
#ifdef DROPIN_STATIC
    { "trim", scenario_trim },
    { "malloc_trim", scenario_malloc_trim },
    { "boot", scenario_boot },
#endif
};

/* ------------------------------------------------------------------ cases */

static const char *const malloc_names[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "malloc_usable_size", "malloc_trim", "cfree",
    "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
    "__libc_valloc", "__libc_pvalloc",
};

/* Every malloc name comes from the drop-in (the program itself for the
 * static form), the C library's own allocations are the drop-in's, and the
 * shared library exports nothing else. */
static void test_owner(void)
{
#ifdef DROPIN_STATIC
    Dl_info me;
    REQUIRE(dladdr((void *)test_owner, &me) && me.dli_fname);
    const char *want = me.dli_fname;
#else
    const char *want = object_of_sym("malloc");
    CHECK(strstr(want, "libmpool-malloc.so") != NULL);
    CHECK(dlsym(RTLD_DEFAULT, "mp_heap_alloc") == NULL);
    CHECK(dlsym(RTLD_DEFAULT, "mp__tls_fast") == NULL);
#endif
    for (size_t i = 0; i < sizeof malloc_names / sizeof *malloc_names; i++) {
        const char *got = object_of_sym(malloc_names[i]);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "%s comes from %s, want %s\n", malloc_names[i], got, want);
            check_failures++;
        }
    }
    /* Memory the C library allocates for us: a drop-in block (a foreign
     * one would have usable size 0). */
    char *s = strdup("from the C library");
    CHECK(malloc_usable_size(s) >= 19);
#ifdef DROPIN_STATIC
    CHECK(mp_usable_size(s) >= 19);
#endif
    free(s);
    void *(*libc_memalign)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
    REQUIRE(libc_memalign != NULL);
    void *a = libc_memalign(256, 1000);
    CHECK(a != NULL && ((uintptr_t)a & 255) == 0 && malloc_usable_size(a) >= 1000);
    free(a);
    printf("owner: %zu malloc names from the drop-in\n", sizeof malloc_names / sizeof *malloc_names);
}

/* Pointers mpool never handed out: the C library's own malloc's, static
 * data, the stack, a block that ends at an unreadable page. free leaves
 * them alone (glibc's block is intact and glibc's free takes it back),
 * realloc copies them, malloc_usable_size says 0. */
static void test_foreign(void)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    REQUIRE(libc != NULL);
    void *(*libc_malloc)(size_t) = (void *(*)(size_t))dlsym(libc, "malloc");
    void (*libc_free)(void *) = (void (*)(void *))dlsym(libc, "free");
    REQUIRE(libc_malloc && libc_free);
    Dl_info info;
    REQUIRE(dladdr((void *)libc_malloc, &info) && info.dli_fname);
    REQUIRE(strstr(info.dli_fname, "libc.so") != NULL);

    char *g = libc_malloc(100), pattern[100];
    REQUIRE(g != NULL);
    for (int i = 0; i < 100; i++)
        g[i] = pattern[i] = (char)(i * 7 + 1);
    free(hide(g));
    CHECK(memcmp(g, pattern, 100) == 0);
    CHECK_EQ(malloc_usable_size(g), 0);
    char *q = realloc(hide(g), opaque(5000));
    REQUIRE(q != NULL);
    CHECK(q != g && memcmp(q, pattern, 100) == 0 && malloc_usable_size(q) >= 5000);
    free(q);
    CHECK(memcmp(g, pattern, 100) == 0);
    libc_free(g); /* still glibc's, untouched */
    dlclose(libc);

    int local = 5;
    free(hide(static_block + 8));
    free(hide(&local));
    CHECK_EQ(local, 5);

    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    REQUIRE(mprotect(m + ps, ps, PROT_NONE) == 0);
    char *edge = m + ps - 100;
    memcpy(edge, pattern, 100);
    q = realloc(hide(edge), opaque(3 * ps)); /* reads what it can, up to the unreadable page */
    REQUIRE(q != NULL);
    CHECK(memcmp(q, pattern, 100) == 0);
    free(q);
    munmap(m, 2 * ps);
    printf("foreign: glibc's block, static data, the stack, a block at an unreadable page: left alone, copied by "
           "realloc\n");
}

/* posix_memalign returns its error, leaves the pointer and errno alone;
 * the other functions set errno as glibc does. */
static void test_errors(void)
{
    int sentinel;
    void *p = &sentinel;
    static const size_t bad[] = { 0, 3, 4, 12, 24, 100 };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 4242;
        CHECK_EQ(posix_memalign(&p, opaque(bad[i]), 64), EINVAL);
        CHECK(p == &sentinel);
        CHECK_EQ(errno, 4242);
    }
    static const size_t huge[] = { SIZE_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 56 };
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        errno = 4242;
        CHECK_EQ(posix_memalign(&p, 64, opaque(huge[i])), ENOMEM);
        CHECK(p == &sentinel);
        CHECK_EQ(errno, 4242);
    }
    errno = 4242;
    CHECK_EQ(posix_memalign(&p, 64, 100), 0);
    CHECK(p != &sentinel && ((uintptr_t)p & 63) == 0);
    CHECK_EQ(errno, 4242);
    free(p);

    errno = 0;
    CHECK(hide(aligned_alloc(opaque(24), 100)) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(hide(memalign(opaque(SIZE_MAX / 2 + 2), 1)) == NULL && errno == EINVAL);
    p = memalign(opaque(24), 100); /* glibc: the next power of two */
    CHECK(p != NULL && ((uintptr_t)p & 31) == 0);
    free(p);
    errno = 0;
    CHECK(hide(pvalloc(opaque(SIZE_MAX - 10))) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(hide(reallocarray(NULL, opaque(SIZE_MAX / 2), 3)) == NULL && errno == ENOMEM);
    p = hide(malloc(10));
    CHECK(hide(realloc(p, opaque(0))) == NULL); /* as glibc: p is freed */
    printf("errors: posix_memalign returns EINVAL and ENOMEM, errno untouched; the others set it as glibc\n");
}

/* fork while two threads allocate: every child allocates, in a thread too. */
static atomic_bool churn_stop;

static void *churn(void *arg)
{
    uint64_t x = (uintptr_t)arg;
    void *slot[64] = { 0 };
    while (!atomic_load(&churn_stop)) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        size_t i = (x >> 33) % 64, size = (x >> 40) % 20000 + 1;
        free(slot[i]);
        slot[i] = hide(malloc(size));
        if (slot[i])
            memset(slot[i], (int)i, size < 64 ? size : 64);
    }
    for (int i = 0; i < 64; i++)
        free(slot[i]);
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        free(hide(malloc((size_t)i * 37 + 1)));
    return hide(malloc(100));
}

static void test_fork(void)
{
    pthread_t t[2];
    for (uintptr_t i = 0; i < 2; i++)
        REQUIRE(pthread_create(&t[i], NULL, churn, (void *)(i + 1)) == 0);
    int good = 0;
    for (int i = 0; i < 40; i++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            alarm(20); /* stuck on a lock held across fork: killed */
            void *b[200];
            for (int k = 0; k < 200; k++) {
                b[k] = malloc((size_t)k * 997 + 1);
                if (!b[k])
                    _exit(2);
            }
            for (int k = 0; k < 200; k++)
                free(b[k]);
            pthread_t ct;
            void *r = NULL;
            if (pthread_create(&ct, NULL, child_thread, NULL) != 0 || pthread_join(ct, &r) != 0 || !r)
                _exit(3);
            free(r);
            _exit(0);
        }
        int st;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            good++;
        else
            fprintf(stderr, "fork %d: child status %#x\n", i, st);
    }
    atomic_store(&churn_stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(good, 40);
    printf("fork: 40 children of a threaded parent allocated, in a thread too\n");
}

/* Threads that exit: their blocks freed by others, and a key destructor
 * that frees and allocates after the thread's caches were retired. */
static pthread_key_t late_key;
static atomic_int late_ran;

static void late_destructor(void *v)
{
    char *mine = v;
    CHECK(mine[0] == 'k' && mine[99] == 'k');
    free(mine);
    char *p = hide(malloc(200));
    if (p) {
        memset(p, 1, 200);
        free(p);
        atomic_fetch_add(&late_ran, 1);
    }
}

enum { EXIT_BLOCKS = 400 };

static void *exiting(void *arg)
{
    char **handed = arg;
    char *k = malloc(100);
    REQUIRE(k != NULL);
    memset(k, 'k', 100);
    pthread_setspecific(late_key, k);
    char *own[EXIT_BLOCKS];
    for (int i = 0; i < EXIT_BLOCKS; i++) {
        size_t size = (size_t)i * 61 % 30000 + 1;
        char *p = malloc(size);
        REQUIRE(p != NULL);
        memset(p, (char)i, size);
        if (i % 2)
            handed[i / 2] = p;
        else
            own[i / 2] = p;
    }
    for (int i = 0; i < EXIT_BLOCKS / 2; i++)
        free(own[i]);
    return NULL;
}

static void test_thread_exit(void)
{
    REQUIRE(pthread_key_create(&late_key, late_destructor) == 0);
    enum { THREADS = 8, WAVES = 3 };
    static char *handed[THREADS][EXIT_BLOCKS / 2];
    int bad = 0;
    for (int w = 0; w < WAVES; w++) {
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            REQUIRE(pthread_create(&t[i], NULL, exiting, handed[i]) == 0);
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < THREADS; i++)
            for (int k = 0; k < EXIT_BLOCKS / 2; k++) {
                int idx = 2 * k + 1;
                size_t size = (size_t)idx * 61 % 30000 + 1;
                char *p = handed[i][k];
                bad += p[0] != (char)idx || p[size - 1] != (char)idx;
                free(p);
            }
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(atomic_load(&late_ran), THREADS * WAVES);
    printf("thread_exit: %d threads' blocks freed by another; destructors allocated after the caches retired\n",
           THREADS * WAVES);
}

/* MPOOL_SHOW_STATS=1: the report and the drop-in's line at exit, also
 * from a program that closed stderr; otherwise nothing. */
static void test_show_stats(void)
{
    const char *on[] = { "MPOOL_SHOW_STATS=1", NULL };
    outcome o = run_child("alloc", on);
    CHECK(exited_0(&o));
    CHECK_HAS(o, "heap default");
    CHECK_HAS(o, "mpool: malloc: 0 foreign pointers left alone");
    o = run_child("foreign_free", on);
    CHECK(exited_0(&o));
    CHECK_HAS(o, "mpool: malloc: 1 foreign pointer left alone");
    o = run_child("close_stderr", on);
    CHECK(exited_0(&o));
    CHECK_HAS(o, "mpool: malloc: 0 foreign pointers left alone");
    const char *off[] = { "MPOOL_SHOW_STATS=0", NULL };
    o = run_child("alloc", off);
    CHECK(exited_0(&o) && o.err[0] == '\0');
    o = run_child("alloc", NULL);
    CHECK(exited_0(&o) && o.err[0] == '\0');
    printf("show_stats: a report at exit with MPOOL_SHOW_STATS=1 only\n");
}

/* MPOOL_CHECK=1: a debugging malloc. Each misuse is reported with the
 * program's sites and aborts; leaks are listed at exit (stderr closed or
 * not). Without it the same programs say nothing. */
static void test_checked(void)
{
    const char *on[] = { "MPOOL_CHECK=1", NULL };
    outcome o = run_child("double_free", on);
    CHECK(aborted(&o));
    CHECK_HAS(o, "mpool: double free: heap 'default'");
    check_site_is_ours(&o, "allocated at");
    check_site_is_ours(&o, "freed at");
    o = run_child("overflow", on);
    CHECK(aborted(&o));
    CHECK_HAS(o, "mpool: write past the end of an allocation");
    check_site_is_ours(&o, "allocated at");
    o = run_child("use_after_free", on);
    CHECK(aborted(&o));
    CHECK_HAS(o, "mpool: write to a freed allocation");
    check_site_is_ours(&o, "allocated at");
    o = run_child("foreign_free", on);
    CHECK(aborted(&o));
    CHECK_HAS(o, "mpool: free of a pointer mpool never handed out");
    check_site_is_ours(&o, "called from");
    o = run_child("foreign_realloc", on);
    CHECK(aborted(&o));
    CHECK_HAS(o, "mpool: realloc of a pointer mpool never handed out");
    check_site_is_ours(&o, "called from");
    o = run_child("leak", on);
    CHECK(exited_0(&o));
    CHECK_HAS(o, "mpool: leak: heap 'default': ");
    CHECK_HAS(o, "still out at exit");
    check_site_is_ours(&o, "allocated at");
    o = run_child("leak_aligned", on); /* posix_memalign names its caller too */
    CHECK(exited_0(&o));
    {
        const char *base = strrchr(self_path, '/');
        char want[256];
        snprintf(want, sizeof want, "allocated at %s+0x", base ? base + 1 : self_path);
        int ours = 0, sites = 0;
        for (const char *p = o.err; (p = strstr(p, "allocated at ")) != NULL; p++)
            sites++;
        for (const char *p = o.err; (p = strstr(p, want)) != NULL; p++)
            ours++;
        CHECK_EQ(sites, 4);
        CHECK_EQ(ours, 4);
    }
    o = run_child("close_stderr", on);
    CHECK(exited_0(&o));
    CHECK_HAS(o, "still out at exit");
    check_site_is_ours(&o, "allocated at");

    o = run_child("foreign_free", NULL);
    CHECK(exited_0(&o) && o.err[0] == '\0');
    o = run_child("leak", NULL);
    CHECK(exited_0(&o) && o.err[0] == '\0');
    printf("checked: double free, overflow, write after free, foreign pointers, leaks: reported with the "
           "program's sites\n");
}

static void test_oom(void)
{
    outcome o = run_child("oom", NULL);
    if (!exited_0(&o))
        fprintf(stderr, "oom child: status %#x, stderr:\n%s\n", o.status, o.err);
    CHECK(exited_0(&o));
    printf("oom: NULL and ENOMEM under an address-space cap, no abort\n");
}

#ifdef DROPIN_STATIC
/* MPOOL_TRIM_MS=0 releases what the frees gave back; without it (or with
 * a value that is not a number) the chunk layer keeps some for reuse. */
static void test_trim(void)
{
    const char *now[] = { "MPOOL_TRIM_MS=0", NULL };
    outcome o = run_child("trim", now);
    CHECK(exited_0(&o));
    const char *bad[] = { "MPOOL_TRIM_MS=soon", NULL };
    o = run_child("trim", bad);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 1);
    o = run_child("trim", NULL);
    CHECK(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 1);
    o = run_child("malloc_trim", NULL);
    CHECK(exited_0(&o));
    printf("trim: MPOOL_TRIM_MS=0 and malloc_trim give freed memory back\n");
}

/* The bootstrap area's blocks, where the drop-in meets them later. */
static void test_boot(void)
{
    const char *on[] = { "MPOOL_CHECK=1", "MPOOL_SHOW_STATS=1", NULL };
    outcome o = run_child("boot", on);
    if (!exited_0(&o))
        fprintf(stderr, "boot child: status %#x, stderr:\n%s\n", o.status, o.err);
    CHECK(exited_0(&o));
    CHECK_HAS(o, "mpool: malloc: 0 foreign pointers left alone, ");
    CHECK(strstr(o.err, " 0 bytes of bootstrap memory") == NULL);
    printf("boot: bootstrap blocks freed quietly, copied by realloc, sized\n");
}
#endif

static const check_case cases[] = {
    DROPIN_CASE(owner, test_owner, both),
    DROPIN_CASE(foreign, test_foreign, both),
    DROPIN_CASE(errors, test_errors, both),
    DROPIN_CASE(fork, test_fork, both),
    DROPIN_CASE(thread_exit, test_thread_exit, both),
    DROPIN_CASE(show_stats, test_show_stats, both),
    DROPIN_CASE(checked, test_checked, both),
    DROPIN_CASE(oom, test_oom, both),
#ifdef DROPIN_STATIC
    DROPIN_CASE(trim, test_trim, static),
    DROPIN_CASE(boot, test_boot, static),
#endif
};

int main(int argc, char **argv)
{
    self_path = "/proc/self/exe";
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) {
        path[n] = '\0';
        self_path = path;
    }
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++)
            if (strcmp(argv[2], scenarios[i].name) == 0) {
                scenarios[i].run();
                return check_done();
            }
        return 2;
    }
    return check_cases(argc, argv, cases, CHECK_NCASES(cases));
}
