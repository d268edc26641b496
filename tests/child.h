/* child.h - runs a misuse scenario in a forked child and collects what it
 * reported, for the checked-mode tests of every pool kind.
 *
 * With `custom`, the child installs a handler that records every message
 * (mp_set_error_handler); without, the default handler prints to stderr and
 * aborts. Either way the parent gets how the child ended, the number of
 * messages and the first of them, and what the child wrote to stderr. A
 * scenario that hangs is killed after 60 s rather than holding the pipes
 * (and so ctest) open. */
#ifndef MP_TEST_CHILD_H
#define MP_TEST_CHILD_H

#include "check.h"

#include <mpool.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_MSG_MAX 1024

typedef struct child_outcome {
    int status;                /* from waitpid */
    int messages;              /* handler calls (custom handler only) */
    char first[CHILD_MSG_MAX]; /* the first message */
    char err[CHILD_MSG_MAX];   /* what the child wrote to stderr */
} child_outcome;

static int child_report_fd = -1;

/* The child's handler: each message to the pipe, ended by a record
 * separator (messages may hold newlines). */
static inline void child_record(const char *msg, const void *ptr, void *arg)
{
    (void)ptr;
    (void)arg;
    char buf[CHILD_MSG_MAX];
    int n = snprintf(buf, sizeof buf, "%s\x1e", msg);
    if (n > 0 && write(child_report_fd, buf, (size_t)n) < 0)
        _exit(3);
}

static inline void child_read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
}

/* Runs scenario in a child (mpool_check: MPOOL_CHECK for the child, or
 * NULL to leave the environment as it is). */
static inline child_outcome child_run(void (*scenario)(void), bool custom, const char *mpool_check)
{
    int msgs[2], errs[2];
    REQUIRE(pipe(msgs) == 0 && pipe(errs) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(msgs[0]);
        close(errs[0]);
        dup2(errs[1], 2);
        child_report_fd = msgs[1];
        alarm(60);
        if (mpool_check)
            setenv("MPOOL_CHECK", mpool_check, 1);
        if (custom)
            mp_set_error_handler(child_record, NULL);
        scenario();
        _exit(0);
    }
    close(msgs[1]);
    close(errs[1]);
    child_outcome o = { 0 };
    char all[8 * CHILD_MSG_MAX];
    child_read_all(msgs[0], all, sizeof all);
    child_read_all(errs[0], o.err, sizeof o.err);
    close(msgs[0]);
    close(errs[0]);
    REQUIRE(waitpid(pid, &o.status, 0) == pid);
    for (char *s = all, *e; (e = strchr(s, '\x1e')) != NULL; s = e + 1) {
        if (o.messages++ == 0) {
            size_t n = (size_t)(e - s) < sizeof o.first - 1 ? (size_t)(e - s) : sizeof o.first - 1;
            memcpy(o.first, s, n);
            o.first[n] = '\0';
        }
    }
    return o;
}

/* Runs scenario in a child with the recording handler: true when the
 * child reported nothing and exited 0 (else what it did is printed). */
static inline bool child_runs_clean(void (*scenario)(void))
{
    child_outcome o = child_run(scenario, true, NULL);
    bool clean = o.messages == 0 && WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0;
    if (!clean)
        fprintf(stderr, "child: %d message(s), first \"%s\", status %#x, stderr \"%s\"\n", o.messages, o.first,
                o.status, o.err);
    return clean;
}

#endif /* MP_TEST_CHILD_H */
