// cxx_threads.cpp - what a C++ program asks of malloc, from several threads.
//
// Each of four threads runs the same deterministic churn: new and delete
// of mixed sizes (arrays, objects, an over-aligned type that goes through
// aligned operator new), std::string, std::map and std::vector growing and
// shrinking, exceptions (whose objects libstdc++ allocates), and
// shared_ptr messages sent to the next thread, which drops the last
// reference, so that memory is freed on a thread other than the one that
// allocated it. Every thread checks what it reads back; the program prints
// one checksum per thread and the messages' total, all independent of
// timing, and run.sh compares them with and without the preload.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 20000;

std::atomic<long> failures{0};

void fail(const char *what, int thread, long round)
{
    std::fprintf(stderr, "thread %d, round %ld: %s\n", thread, round, what);
    failures++;
}

std::uint64_t mix(std::uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

// A type whose alignment is past what malloc guarantees: new calls the
// aligned operator new, which libstdc++ serves with aligned_alloc.
struct alignas(128) Wide {
    unsigned char bytes[300];
};

// A message passed to the next thread.
struct Message {
    std::uint64_t sum;
    std::vector<std::uint32_t> payload;
    std::string label;
};

// One inbox per thread: a deque of shared pointers under a mutex.
struct Inbox {
    std::mutex lock;
    std::condition_variable ready;
    std::deque<std::shared_ptr<Message>> items;
    bool closed = false;
};

Inbox inboxes[kThreads];
std::uint64_t received_sum[kThreads];
long received_count[kThreads];

void drain(int me, bool wait_for_close)
{
    Inbox &in = inboxes[me];
    for (;;) {
        std::shared_ptr<Message> m;
        {
            std::unique_lock<std::mutex> g(in.lock);
            if (wait_for_close)
                in.ready.wait(g, [&] { return !in.items.empty() || in.closed; });
            if (in.items.empty())
                return;
            m = std::move(in.items.front());
            in.items.pop_front();
        }
        std::uint64_t s = 0;
        for (std::uint32_t v : m->payload)
            s += v;
        if (s != m->sum)
            fail("a message's payload changed", me, -1);
        received_sum[me] += s + m->label.size();
        received_count[me]++;
        // m goes out of scope here: the last reference, on this thread.
    }
}

void churn(int me, std::uint64_t *result)
{
    std::uint64_t rng = 1000 + static_cast<std::uint64_t>(me), check = 0;
    auto next = [&rng] { return rng = mix(rng + 0x9e3779b97f4a7c15ull); };
    std::map<std::string, std::vector<int>> table;
    std::vector<std::unique_ptr<char[]>> arrays;
    std::vector<std::size_t> array_sizes;
    for (long round = 0; round < kRounds; round++) {
        // Raw new[] / delete[] of mixed sizes, some kept for a while.
        std::size_t n = 1 + next() % (next() % 8 == 0 ? 70000 : 300);
        std::unique_ptr<char[]> a(new char[n]);
        std::memset(a.get(), static_cast<int>(n & 0x7f), n);
        arrays.push_back(std::move(a));
        array_sizes.push_back(n);
        if (arrays.size() > 64) {
            std::size_t victim = next() % arrays.size();
            const char *p = arrays[victim].get();
            std::size_t vn = array_sizes[victim];
            if (p[0] != static_cast<char>(vn & 0x7f) || p[vn - 1] != static_cast<char>(vn & 0x7f))
                fail("a new[] array changed", me, round);
            check += vn;
            arrays[victim] = std::move(arrays.back());
            array_sizes[victim] = array_sizes.back();
            arrays.pop_back();
            array_sizes.pop_back();
        }

        // Over-aligned objects.
        Wide *w = new Wide[1 + next() % 4];
        if (reinterpret_cast<std::uintptr_t>(w) % alignof(Wide) != 0)
            fail("new of an over-aligned type is not aligned", me, round);
        w[0].bytes[0] = 1;
        delete[] w;
        auto one = std::make_unique<Wide>();
        if (reinterpret_cast<std::uintptr_t>(one.get()) % alignof(Wide) != 0)
            fail("make_unique of an over-aligned type is not aligned", me, round);

        // Strings and a map of vectors, growing and shrinking.
        std::string key = "key-" + std::to_string(next() % 500);
        std::vector<int> &v = table[key];
        std::size_t grow = next() % 200;
        for (std::size_t i = 0; i < grow; i++)
            v.push_back(static_cast<int>(i));
        if (v.size() > 1000) {
            v.erase(v.begin(), v.begin() + static_cast<long>(v.size() / 2));
            v.shrink_to_fit();
        }
        if (next() % 5 == 0)
            table.erase(table.begin());
        std::string text;
        for (int i = 0; i < 20; i++)
            text += key;
        check += text.size() + table.size();

        // An exception: libstdc++ allocates the object with malloc.
        if (round % 50 == 0) {
            try {
                throw std::runtime_error(std::string(100 + round % 400, 'e'));
            } catch (const std::runtime_error &e) {
                check += std::strlen(e.what());
            }
        }

        // A message for the next thread, which frees it.
        if (round % 3 == 0) {
            auto m = std::make_shared<Message>();
            std::size_t len = next() % 2000;
            m->payload.resize(len);
            m->sum = 0;
            for (std::size_t i = 0; i < len; i++) {
                m->payload[i] = static_cast<std::uint32_t>(next());
                m->sum += m->payload[i];
            }
            m->label = "from-" + std::to_string(me) + "-" + std::to_string(round);
            Inbox &to = inboxes[(me + 1) % kThreads];
            {
                std::lock_guard<std::mutex> g(to.lock);
                to.items.push_back(std::move(m));
            }
            to.ready.notify_one();
        }
        if (round % 16 == 0)
            drain(me, false);
    }
    for (auto &kv : table)
        check += kv.first.size() * 31 + kv.second.size();
    *result = check;
}

} // namespace

int main()
{
    std::uint64_t results[kThreads] = {};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; i++)
        threads.emplace_back(churn, i, &results[i]);
    for (auto &t : threads)
        t.join();
    // Every sender is done: each inbox is drained by a thread of its own.
    std::vector<std::thread> drainers;
    for (int i = 0; i < kThreads; i++) {
        {
            std::lock_guard<std::mutex> g(inboxes[i].lock);
            inboxes[i].closed = true;
        }
        drainers.emplace_back(drain, i, true);
    }
    for (auto &t : drainers)
        t.join();
    long count = 0;
    std::uint64_t sum = 0;
    for (int i = 0; i < kThreads; i++) {
        std::printf("thread %d: checksum %llu\n", i, static_cast<unsigned long long>(results[i]));
        count += received_count[i];
        sum += received_sum[i];
    }
    std::printf("messages: %ld received, sum %llu\n", count, static_cast<unsigned long long>(sum));
    if (failures != 0) {
        std::fprintf(stderr, "%ld check(s) failed\n", failures.load());
        return 1;
    }
    return 0;
}
