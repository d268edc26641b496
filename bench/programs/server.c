/*
 * server.c - a threaded server's way of allocating: T worker threads each
 * handle their share of N requests. A request allocates its record, a set
 * of header strings and a body of mixed size (mostly under a few KiB, now
 * and then hundreds of KiB); it reads and writes a shared session table
 * (replacing a session frees memory another thread may have allocated);
 * it builds a response by appending to a growing buffer; and it hands the
 * response to the next worker, which "sends" and frees it. So a good share
 * of the frees happen on a thread other than the one that allocated.
 *
 *     server [-t THREADS] [-n REQUESTS]
 *
 * Prints counts and checksums that do not depend on timing or on the
 * allocator. No thread ever waits for another except at the end.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "programs.h"

#define MAX_THREADS 64
#define SESSION_STRIPES 64
#define SESSION_BUCKETS 4096 /* per stripe */
#define SESSION_IDS 50000

/* ------------------------------------------------------------ sessions */

typedef struct session {
    struct session *next;
    unsigned id;
    size_t len;
    char *data;
} session;

static struct stripe {
    pthread_mutex_t lock;
    session *bucket[SESSION_BUCKETS];
    char pad[64];
} stripes[SESSION_STRIPES];

/* Looks session id up; creates it, replaces its data or drops it as the
 * request asks. Returns a byte of its data (0 if there is none), which the
 * checksums do not use: what a session holds depends on the order in which
 * threads got to it. */
static unsigned session_touch(unsigned id, unsigned what, uint64_t *rng)
{
    struct stripe *s = &stripes[id % SESSION_STRIPES];
    unsigned b = (id / SESSION_STRIPES) % SESSION_BUCKETS, seen = 0;
    /* Allocate outside the lock, as a careful server does. */
    size_t len = 64 + prog_next(rng) % 2048;
    char *fresh = xmalloc(len);
    memset(fresh, (int)(id & 0xff), len);
    session *spare = xmalloc(sizeof *spare);
    char *old = NULL;
    session *gone = NULL;
    pthread_mutex_lock(&s->lock);
    session **pp = &s->bucket[b];
    while (*pp != NULL && (*pp)->id != id)
        pp = &(*pp)->next;
    if (*pp == NULL) {
        spare->id = id;
        spare->len = len;
        spare->data = fresh;
        spare->next = s->bucket[b];
        s->bucket[b] = spare;
        spare = NULL;
        fresh = NULL;
    } else if (what % 16 == 0) {
        gone = *pp;
        *pp = gone->next;
    } else if (what % 4 == 0) {
        old = (*pp)->data;
        (*pp)->data = fresh;
        (*pp)->len = len;
        fresh = NULL;
    } else {
        seen = (unsigned char)(*pp)->data[(*pp)->len / 2];
    }
    pthread_mutex_unlock(&s->lock);
    free(fresh);
    free(spare);
    free(old);
    if (gone != NULL) {
        free(gone->data);
        free(gone);
    }
    return seen;
}

static void sessions_free(void)
{
    for (int i = 0; i < SESSION_STRIPES; i++)
        for (int b = 0; b < SESSION_BUCKETS; b++)
            for (session *e = stripes[i].bucket[b], *next; e != NULL; e = next) {
                next = e->next;
                free(e->data);
                free(e);
            }
}

/* ------------------------------------------------------------ outboxes */

/* A response on its way to be sent by another worker. */
typedef struct response {
    struct response *next;
    uint64_t sum;
    size_t len;
    char *body;
} response;

static struct outbox {
    pthread_mutex_t lock;
    response *head;
    char pad[64];
} outbox[MAX_THREADS];

static void outbox_push(int to, response *r)
{
    pthread_mutex_lock(&outbox[to].lock);
    r->next = outbox[to].head;
    outbox[to].head = r;
    pthread_mutex_unlock(&outbox[to].lock);
}

/* Sends (checks and frees) everything in worker me's outbox. */
static void outbox_drain(int me, uint64_t *sent, long *count)
{
    pthread_mutex_lock(&outbox[me].lock);
    response *r = outbox[me].head;
    outbox[me].head = NULL;
    pthread_mutex_unlock(&outbox[me].lock);
    for (response *next; r != NULL; r = next) {
        next = r->next;
        uint64_t sum = 0;
        for (size_t i = 0; i < r->len; i += 61)
            sum += (unsigned char)r->body[i];
        if (sum != r->sum) {
            fprintf(stderr, "server: a response changed on its way\n");
            exit(1);
        }
        *sent += sum;
        (*count)++;
        free(r->body);
        free(r);
    }
}

/* ------------------------------------------------------------ requests */

typedef struct request {
    unsigned id, session;
    int nheaders;
    char **names, **values;
    size_t body_len;
    char *body;
    char peer[48];
} request;

static size_t body_size(uint64_t *rng)
{
    uint64_t r = prog_next(rng) % 1000;
    if (r < 700)
        return 64 + prog_next(rng) % 960;
    if (r < 950)
        return 1024 + prog_next(rng) % 15360;
    if (r < 995)
        return 16384 + prog_next(rng) % 114688;
    return 262144 + prog_next(rng) % 786432;
}

static const char *header_names[] = { "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language",
                                      "Cookie", "Referer", "Connection", "Cache-Control", "X-Request-Id",
                                      "X-Forwarded-For", "Content-Type", "Authorization", "If-None-Match" };
#define NHEADER_NAMES (sizeof header_names / sizeof header_names[0])

static int nthreads = 4;
static long nrequests = 300000;

typedef struct worker {
    int me;
    uint64_t handled_sum; /* over the requests it handled */
    uint64_t built_sum;   /* over the responses it built */
    uint64_t sent_sum;    /* over the responses it sent */
    long handled, sent;
    pthread_barrier_t *done;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    uint64_t rng = 0x1234567ull * (uint64_t)(w->me + 1);
    long mine = nrequests / nthreads + (w->me < nrequests % nthreads);
    for (long k = 0; k < mine; k++) {
        request *rq = xmalloc(sizeof *rq);
        rq->id = (unsigned)(k * nthreads + w->me);
        rq->session = (unsigned)(prog_next(&rng) % SESSION_IDS);
        snprintf(rq->peer, sizeof rq->peer, "10.%u.%u.%u:%u", rq->id % 250, rq->id / 250 % 250, rq->id % 7,
                 1024 + rq->id % 60000);
        rq->nheaders = 6 + (int)(prog_next(&rng) % 14);
        rq->names = xmalloc((size_t)rq->nheaders * sizeof *rq->names);
        rq->values = xmalloc((size_t)rq->nheaders * sizeof *rq->values);
        uint64_t sum = 0;
        for (int h = 0; h < rq->nheaders; h++) {
            rq->names[h] = xstrdup(header_names[prog_next(&rng) % NHEADER_NAMES]);
            size_t vl = 8 + prog_next(&rng) % 180;
            rq->values[h] = xmalloc(vl + 1);
            memset(rq->values[h], 'a' + (int)(vl % 26), vl);
            rq->values[h][vl] = '\0';
            sum += strlen(rq->names[h]) + vl;
        }
        rq->body_len = body_size(&rng);
        rq->body = xmalloc(rq->body_len);
        memset(rq->body, (int)(rq->id & 0x7f), rq->body_len);
        for (size_t i = 0; i < rq->body_len; i += 4096)
            sum += (unsigned char)rq->body[i];

        session_touch(rq->session, (unsigned)prog_next(&rng), &rng);

        /* The response: a status line, headers, and chunks appended to a
         * buffer that grows by realloc. */
        response *r = xmalloc(sizeof *r);
        size_t cap = 256, len = 0, want = 200 + rq->body_len / 2 + prog_next(&rng) % 4096;
        char *b = xmalloc(cap);
        while (len < want) {
            size_t chunk = 100 + prog_next(&rng) % 3000;
            if (len + chunk > cap) {
                while (len + chunk > cap)
                    cap *= 2;
                b = xrealloc(b, cap);
            }
            memset(b + len, 'A' + (int)(chunk % 26), chunk);
            len += chunk;
        }
        r->body = b;
        r->len = len;
        r->sum = 0;
        for (size_t i = 0; i < len; i += 61)
            r->sum += (unsigned char)b[i];
        w->built_sum += r->sum;
        outbox_push((w->me + 1) % nthreads, r);

        for (int h = 0; h < rq->nheaders; h++) {
            free(rq->names[h]);
            free(rq->values[h]);
        }
        free(rq->names);
        free(rq->values);
        free(rq->body);
        free(rq);
        w->handled_sum += sum;
        w->handled++;
        if (k % 8 == 0)
            outbox_drain(w->me, &w->sent_sum, &w->sent);
    }
    pthread_barrier_wait(w->done); /* nobody pushes after this */
    outbox_drain(w->me, &w->sent_sum, &w->sent);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            nrequests = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: server [-t THREADS] [-n REQUESTS]\n");
            return 2;
        }
    }
    if (nthreads < 1 || nthreads > MAX_THREADS) {
        fprintf(stderr, "server: 1 to %d threads\n", MAX_THREADS);
        return 2;
    }
    for (int i = 0; i < SESSION_STRIPES; i++)
        pthread_mutex_init(&stripes[i].lock, NULL);
    for (int i = 0; i < nthreads; i++)
        pthread_mutex_init(&outbox[i].lock, NULL);
    pthread_barrier_t done;
    pthread_barrier_init(&done, NULL, (unsigned)nthreads);
    pthread_t t[MAX_THREADS];
    worker w[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].me = i;
        w[i].done = &done;
        if (pthread_create(&t[i], NULL, work, &w[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    uint64_t handled_sum = 0, built = 0, sent = 0;
    long handled = 0, nsent = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        handled_sum += w[i].handled_sum;
        built += w[i].built_sum;
        sent += w[i].sent_sum;
        handled += w[i].handled;
        nsent += w[i].sent;
    }
    sessions_free();
    if (built != sent || nsent != handled) {
        fprintf(stderr, "server: %ld responses built, %ld sent\n", handled, nsent);
        return 1;
    }
    printf("threads %d, requests %ld, request sum %llu, responses sent %ld, response sum %llu\n", nthreads, handled,
           (unsigned long long)handled_sum, nsent, (unsigned long long)sent);
    return 0;
}
