/*
 * prodcons.c - producers and consumers: P threads allocate messages of
 * varying size (mostly small, some of several KiB, a few of hundreds of
 * KiB), fill them and pass them through one bounded queue to C threads,
 * which check and free them. Every message is freed by a thread other than
 * the one that allocated it. Messages travel in batches of up to 32, as a
 * real pipeline hands them over, so that the queue's lock is not all there
 * is to measure.
 *
 *     prodcons [-p PRODUCERS] [-c CONSUMERS] [-n MESSAGES]
 *
 * Prints the number of messages, their bytes and a checksum: the same
 * under any correct allocator, whichever consumer got which message.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "programs.h"

#define BATCH 32
#define QUEUE_BATCHES 64
#define MAX_THREADS 64

typedef struct message {
    uint32_t producer, seq;
    uint32_t len; /* payload bytes */
    uint32_t sum; /* of the sampled payload bytes */
    unsigned char payload[];
} message;

typedef struct batch {
    int n;
    message *m[BATCH];
} batch;

/* A ring of batches under one lock. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    batch ring[QUEUE_BATCHES];
    int head, count, producers_left;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .not_empty = PTHREAD_COND_INITIALIZER,
        .not_full = PTHREAD_COND_INITIALIZER };

static long per_producer;

static uint32_t payload_size(uint64_t *rng)
{
    uint64_t r = prog_next(rng) % 1000;
    if (r < 600)
        return (uint32_t)(16 + prog_next(rng) % 240);
    if (r < 900)
        return (uint32_t)(256 + prog_next(rng) % 1792);
    if (r < 998)
        return (uint32_t)(2048 + prog_next(rng) % 14336);
    return (uint32_t)(65536 + prog_next(rng) % 196608);
}

static uint32_t sample_sum(const message *m)
{
    uint32_t s = 0;
    for (uint32_t i = 0; i < m->len; i += 97)
        s += m->payload[i];
    return s + m->payload[m->len - 1];
}

static void push(const batch *b)
{
    pthread_mutex_lock(&q.lock);
    while (q.count == QUEUE_BATCHES)
        pthread_cond_wait(&q.not_full, &q.lock);
    q.ring[(q.head + q.count) % QUEUE_BATCHES] = *b;
    q.count++;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
}

/* Takes a batch; returns 0 when the producers are done and the queue is empty. */
static int pop(batch *b)
{
    pthread_mutex_lock(&q.lock);
    while (q.count == 0 && q.producers_left > 0)
        pthread_cond_wait(&q.not_empty, &q.lock);
    if (q.count == 0) {
        pthread_mutex_unlock(&q.lock);
        return 0;
    }
    *b = q.ring[q.head];
    q.head = (q.head + 1) % QUEUE_BATCHES;
    q.count--;
    pthread_cond_signal(&q.not_full);
    pthread_mutex_unlock(&q.lock);
    return 1;
}

static void *producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    uint64_t rng = 0xabcdefull + id;
    batch b = { 0 };
    for (long k = 0; k < per_producer; k++) {
        uint32_t len = payload_size(&rng);
        message *m = xmalloc(sizeof *m + len);
        m->producer = id;
        m->seq = (uint32_t)k;
        m->len = len;
        memset(m->payload, (int)((id * 31 + k) & 0xff), len);
        m->payload[len - 1] = (unsigned char)k;
        m->sum = sample_sum(m);
        b.m[b.n++] = m;
        if (b.n == BATCH) {
            push(&b);
            b.n = 0;
        }
    }
    if (b.n > 0)
        push(&b);
    pthread_mutex_lock(&q.lock);
    q.producers_left--;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

typedef struct tally {
    long messages;
    uint64_t bytes, sum;
} tally;

static void *consumer(void *arg)
{
    tally *t = arg;
    batch b;
    while (pop(&b)) {
        for (int i = 0; i < b.n; i++) {
            message *m = b.m[i];
            if (sample_sum(m) != m->sum) {
                fprintf(stderr, "prodcons: message %u/%u changed in the queue\n", m->producer, m->seq);
                exit(1);
            }
            t->messages++;
            t->bytes += m->len;
            t->sum += m->sum * (uint64_t)(m->seq % 7 + 1);
            free(m);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int producers = 2, consumers = 2;
    long total = 2000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            producers = atoi(argv[++i]);
        else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            consumers = atoi(argv[++i]);
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            total = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: prodcons [-p PRODUCERS] [-c CONSUMERS] [-n MESSAGES]\n");
            return 2;
        }
    }
    if (producers < 1 || consumers < 1 || producers > MAX_THREADS || consumers > MAX_THREADS) {
        fprintf(stderr, "prodcons: 1 to %d producers and consumers\n", MAX_THREADS);
        return 2;
    }
    per_producer = total / producers;
    q.producers_left = producers;
    pthread_t pt[MAX_THREADS], ct[MAX_THREADS];
    tally tallies[MAX_THREADS] = { { 0 } };
    for (int i = 0; i < consumers; i++)
        if (pthread_create(&ct[i], NULL, consumer, &tallies[i]) != 0)
            return perror("pthread_create"), 1;
    for (int i = 0; i < producers; i++)
        if (pthread_create(&pt[i], NULL, producer, (void *)(uintptr_t)i) != 0)
            return perror("pthread_create"), 1;
    for (int i = 0; i < producers; i++)
        pthread_join(pt[i], NULL);
    tally all = { 0 };
    for (int i = 0; i < consumers; i++) {
        pthread_join(ct[i], NULL);
        all.messages += tallies[i].messages;
        all.bytes += tallies[i].bytes;
        all.sum += tallies[i].sum;
    }
    printf("producers %d, consumers %d, messages %ld, payload %llu bytes, checksum %llu\n", producers, consumers,
           all.messages, (unsigned long long)all.bytes, (unsigned long long)all.sum);
    return all.messages == per_producer * producers ? 0 : 1;
}
