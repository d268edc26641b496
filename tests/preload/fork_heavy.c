/*
 * fork_heavy.c - fork while other threads allocate, again and again.
 *
 * Three threads allocate, reallocate and free mixed sizes without pause
 * while the main thread forks 150 times. A fork can land while another
 * thread is inside malloc, holding a lock: the allocator must leave the
 * child a heap it can use (glibc promises this; POSIX does not require it,
 * so every allocator used in its place must). Each child allocates and
 * frees with the pattern checked, starts a thread of its own that does the
 * same, one in ten forks again and waits for a grandchild, and exits with
 * a status that says what it found. The parent checks every status.
 *
 * Watchdog: a child that has not finished after 120 s (a lock left held
 * across fork deadlocks it) is killed by its own alarm, and the parent
 * reports the signal; the parent gives itself 300 s. These bound a hang;
 * they are not a measurement (a correct run takes a few seconds).
 *
 * The output is counts only, the same under any correct allocator.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 3
#define FORKS 150
#define CHILD_WATCHDOG_S 120
#define PARENT_WATCHDOG_S 300

/* Child exit statuses. */
#define CHILD_OK 0
#define CHILD_BAD_BLOCK 10
#define CHILD_NO_MEMORY 11
#define CHILD_NO_THREAD 12
#define CHILD_GRANDCHILD 13

static atomic_int stop;
static atomic_long worker_ops;

static uint64_t next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static size_t some_size(uint64_t *rng)
{
    uint64_t r = next(rng) % 100;
    return r < 85 ? 1 + next(rng) % 512 : r < 99 ? 513 + next(rng) % 16384 : 65536 + next(rng) % 500000;
}

/* Allocates and frees `ops` times over a small table of blocks, each
 * filled with a byte that says which block it is, checked before it goes.
 * Returns CHILD_OK or what went wrong. */
static int churn(uint64_t seed, long ops)
{
    enum { N = 64 };
    unsigned char *b[N] = { 0 };
    size_t len[N] = { 0 };
    uint64_t rng = seed;
    int status = CHILD_OK;
    for (long op = 0; op < ops && status == CHILD_OK; op++) {
        int i = (int)(next(&rng) % N);
        if (b[i] != NULL) {
            unsigned char want = (unsigned char)(i * 7 + seed);
            if (b[i][0] != want || b[i][len[i] - 1] != want || b[i][len[i] / 2] != want)
                status = CHILD_BAD_BLOCK;
            if (next(&rng) % 3 == 0) {
                size_t s = some_size(&rng);
                unsigned char *r = realloc(b[i], s);
                if (r == NULL) {
                    status = CHILD_NO_MEMORY;
                    break;
                }
                memset(r, want, s);
                b[i] = r;
                len[i] = s;
                continue;
            }
            free(b[i]);
            b[i] = NULL;
        } else {
            len[i] = some_size(&rng);
            b[i] = malloc(len[i]);
            if (b[i] == NULL) {
                status = CHILD_NO_MEMORY;
                break;
            }
            memset(b[i], (unsigned char)(i * 7 + seed), len[i]);
        }
    }
    for (int i = 0; i < N; i++)
        free(b[i]);
    return status;
}

static void *worker(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (churn(seed++, 1000) != CHILD_OK) {
            fprintf(stderr, "worker: a block changed under it\n");
            abort();
        }
        atomic_fetch_add_explicit(&worker_ops, 1000, memory_order_relaxed);
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    return (void *)(intptr_t)churn((uint64_t)(uintptr_t)arg, 5000);
}

static void on_alarm(int sig)
{
    static const char msg[] = "fork_heavy: watchdog: no progress, giving up\n";
    (void)sig;
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(3);
}

/* The work of a child (and of a grandchild, with grand set). */
static int child_main(int n, int grand)
{
    alarm(CHILD_WATCHDOG_S); /* default action: the child dies of SIGALRM */
    int status = churn((uint64_t)n * 31 + (uint64_t)grand, 3000);
    if (status != CHILD_OK)
        return status;
    pthread_t t;
    if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)(n + 7)) != 0)
        return CHILD_NO_THREAD;
    status = churn((uint64_t)n * 17, 3000);
    void *ret;
    if (pthread_join(t, &ret) != 0)
        return CHILD_NO_THREAD;
    if (status == CHILD_OK)
        status = (int)(intptr_t)ret;
    if (status == CHILD_OK && !grand && n % 10 == 0) {
        pid_t g = fork();
        if (g < 0)
            return CHILD_GRANDCHILD;
        if (g == 0)
            _exit(child_main(n, 1));
        int ws;
        if (waitpid(g, &ws, 0) != g || !WIFEXITED(ws) || WEXITSTATUS(ws) != CHILD_OK)
            return CHILD_GRANDCHILD;
    }
    return status;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(PARENT_WATCHDOG_S);

    pthread_t w[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        if (pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i * 1000003 + 1)) != 0) {
            perror("pthread_create");
            return 1;
        }
    /* The workers must be allocating before the first fork. */
    while (atomic_load(&worker_ops) < (long)WORKERS * 1000)
        sched_yield();

    int ok = 0, failed = 0;
    for (int n = 0; n < FORKS; n++) {
        fflush(NULL); /* nothing buffered is written twice */
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            failed++;
            break;
        }
        if (pid == 0) {
            signal(SIGALRM, SIG_DFL);
            _exit(child_main(n, 0));
        }
        /* The parent allocates too while its child runs. */
        if (churn((uint64_t)n + 5, 200) != CHILD_OK) {
            fprintf(stderr, "parent: a block changed\n");
            failed++;
        }
        int ws;
        pid_t r;
        while ((r = waitpid(pid, &ws, 0)) < 0 && errno == EINTR)
            ;
        if (r != pid) {
            perror("waitpid");
            failed++;
        } else if (WIFEXITED(ws) && WEXITSTATUS(ws) == CHILD_OK) {
            ok++;
        } else {
            if (WIFSIGNALED(ws))
                fprintf(stderr, "fork %d: the child died of signal %d%s\n", n, WTERMSIG(ws),
                        WTERMSIG(ws) == SIGALRM ? " (its watchdog: stuck, a lock held across fork?)" : "");
            else
                fprintf(stderr, "fork %d: the child exited %d\n", n, WEXITSTATUS(ws));
            failed++;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    printf("forks: %d, children (with a thread each, and %d grandchildren) ok: %d\n", FORKS, FORKS / 10, ok);
    printf("failed: %d\n", failed);
    return failed == 0 && ok == FORKS ? 0 : 1;
}
