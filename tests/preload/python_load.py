# python_load.py - a Python program that allocates in the usual ways:
# dicts and lists of objects, strings built and split, threads filling
# their own tables, and os.fork with children that allocate and report back
# through a pipe. Everything printed is independent of timing and of the
# allocator; run.sh compares it with and without the preload.
import hashlib
import json
import os
import threading


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class Record:
    def __init__(self, key, n):
        self.key = key
        self.values = [n * i % 1009 for i in range(n % 50)]
        self.tags = {"t%d" % (n % 7): n, "len": len(self.values)}


def churn(seed, rounds):
    table = {}
    rng = seed
    for r in range(rounds):
        rng = (rng * 1103515245 + 12345) & 0x7FFFFFFF
        key = "k%d" % (rng % 3000)
        if key in table and rng % 3 == 0:
            del table[key]
        else:
            table[key] = Record(key, rng % 997)
        if r % 1000 == 0:
            text = " ".join("%s=%d" % (k, len(v.values)) for k, v in sorted(table.items())[:200])
            table["text%d" % r] = Record(text[:40], len(text.split()))
    return {k: [v.key, v.values, v.tags] for k, v in table.items()}


def thread_work(i, out):
    out[i] = digest(churn(1000 + i, 10000))


def child_work(i, w):
    data = churn(5000 + i, 5000)
    big = [bytes(range(256)) * (j % 64 + 1) for j in range(2000)]
    os.write(w, ("%d %s %d\n" % (i, digest(data), sum(map(len, big)))).encode())


def main():
    print("single:", digest(churn(1, 30000)))

    results = [None] * 4
    threads = [threading.Thread(target=thread_work, args=(i, results)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        print("thread %d: %s" % (i, r))

    lines = []
    for i in range(8):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                child_work(i, w)
                os._exit(0)
            except BaseException:
                os._exit(1)
        os.close(w)
        with os.fdopen(r) as f:
            lines.append(f.read().strip())
        _, status = os.waitpid(pid, 0)
        if os.WEXITSTATUS(status) != 0:
            print("child %d failed" % i)
            return 1
    for line in lines:
        print("child", line)

    words = {}
    for n in range(200000):
        w = "w%x" % (n * 2654435761 % 40000)
        words[w] = words.get(w, 0) + 1
    print("words:", len(words), max(words.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
