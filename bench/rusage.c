/*
 * rusage.c - mpbench_rusage: runs a command and reports its wall time, CPU
 * time and peak resident memory, for bench/run --programs.
 *
 *     mpbench_rusage [-p LIB] -o FILE -- COMMAND [ARG...]
 *
 * The command runs with LD_PRELOAD=LIB in its environment (-p), or with
 * LD_PRELOAD removed; this program itself is never preloaded. Its standard
 * streams are the command's. When the command has ended, one line goes to
 * FILE:
 *
 *     wall_s=1.234567 user_s=1.100000 sys_s=0.120000 peak_rss_kb=52340 status=0
 *
 * peak_rss_kb is the largest resident set of the command or of any
 * process it started and waited for (wait4's ru_maxrss: a shell script's
 * figure is that of its biggest program). status is the exit status, or
 * 128 + the signal that killed it. The program exits with that status, or
 * 125 when the command could not be run at all.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(const struct timeval *tv) { return (double)tv->tv_sec + (double)tv->tv_usec / 1e6; }

static int usage(void)
{
    fprintf(stderr, "usage: mpbench_rusage [-p LIB] -o FILE -- COMMAND [ARG...]\n");
    return 125;
}

int main(int argc, char **argv)
{
    const char *lib = NULL, *out = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            lib = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else
            return usage();
    }
    if (out == NULL || i >= argc)
        return usage();

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("mpbench_rusage: fork");
        return 125;
    }
    if (pid == 0) {
        if (lib != NULL)
            setenv("LD_PRELOAD", lib, 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(argv[i], argv + i);
        fprintf(stderr, "mpbench_rusage: %s: %s\n", argv[i], strerror(errno));
        _exit(125);
    }
    int ws;
    struct rusage ru;
    pid_t r;
    while ((r = wait4(pid, &ws, 0, &ru)) < 0 && errno == EINTR)
        ;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r != pid) {
        perror("mpbench_rusage: wait4");
        return 125;
    }
    int status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        perror(out);
        return 125;
    }
    fprintf(f, "wall_s=%.6f user_s=%.6f sys_s=%.6f peak_rss_kb=%ld status=%d\n", wall, seconds(&ru.ru_utime),
            seconds(&ru.ru_stime), ru.ru_maxrss, status);
    if (fclose(f) != 0) {
        perror(out);
        return 125;
    }
    return status;
}
