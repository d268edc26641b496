# objects.py - an interpreter's way of allocating: Python objects of every
# size made and dropped in great numbers (dicts, lists, tuples, strings,
# instances), a JSON round trip, sorting, and an index that grows and is
# pruned. Prints digests that depend only on the data.
#
#     python3 objects.py [EVENTS]
import hashlib
import json
import sys


class Event:
    __slots__ = ("kind", "user", "tags", "payload")

    def __init__(self, kind, user, tags, payload):
        self.kind = kind
        self.user = user
        self.tags = tags
        self.payload = payload


def events(n, seed):
    x = seed
    kinds = ["open", "read", "write", "close", "stat", "seek", "sync"]
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        yield Event(kinds[x % 7], "user%d" % (x % 5000), tuple("t%d" % ((x >> s) % 50) for s in (3, 7, 11)),
                    {"i": i, "size": x % 65536, "path": "/data/%d/%d.bin" % (x % 97, x % 10007)})


def main(n):
    by_user = {}
    counts = {}
    for e in events(n, 7):
        counts[e.kind] = counts.get(e.kind, 0) + 1
        lst = by_user.setdefault(e.user, [])
        lst.append(e)
        if len(lst) > 40:
            del lst[:20]
    digest = hashlib.sha256()
    for user in sorted(by_user):
        recs = [{"k": e.kind, "t": list(e.tags), "p": e.payload} for e in by_user[user]]
        text = json.dumps(recs, sort_keys=True)
        back = json.loads(text)
        digest.update(("%s:%d:%d;" % (user, len(back), sum(r["p"]["size"] for r in back))).encode())
    words = {}
    for e in events(n * 3 // 4, 11):
        for part in e.payload["path"].split("/"):
            words[part] = words.get(part, 0) + 1
    top = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    print("kinds", sorted(counts.items()))
    print("users", len(by_user), "digest", digest.hexdigest()[:16])
    print("words", len(words), "top", top)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200000)
