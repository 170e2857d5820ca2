// Work shared by the calling thread and one helper thread (addon.cc's batched small products and
// elementwise kernels): whichever thread is free takes the next item.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "kernels.h"

#ifdef SUPRA_X86
#include <immintrin.h>
#endif

namespace supra {

// Work shared by the calling thread and one helper thread, item by item: whichever thread is free takes
// the next item, so a thread the OS has put aside leaves its share to the other.
//
// With `split` the items are two runs, [0, items/2) and [items/2, items): each thread takes the items of its
// own run in order, then those left of the other's. A product streaming a weight from memory wants that:
// when the two threads take alternate items of a band, each reads a stream that jumps every item, and the
// hardware prefetchers lose it (measured on the 2-core VM, 64 KiB items of a 54 MiB weight: 33 GB/s
// alternating, 64-69 GB/s in two runs, 69-73 in two fixed halves).
class SharedWork {
 public:
  explicit SharedWork(int64_t items, bool split = false)
      : items_(items), half_(split ? items / 2 : items), second_(split ? items / 2 : items), left_(items) {}
  virtual ~SharedWork() = default;
  // Takes items until none are left; worker 0 is the calling thread, 1 the helper.
  void Drain(int worker) {
    int64_t done = 0;
    if (worker == 0) {
      done += DrainRun(next_, half_, worker);
      done += DrainRun(second_, items_, worker);
    } else {
      done += DrainRun(second_, items_, worker);
      done += DrainRun(next_, half_, worker);
    }
    left_.fetch_sub(done, std::memory_order_release);
  }
  bool Finished() const { return left_.load(std::memory_order_acquire) == 0; }
  int64_t items() const { return items_; }

 protected:
  virtual void Do(int64_t item, int worker) = 0;

 private:
  // The items of one run taken by this thread, in order; returns how many.
  int64_t DrainRun(std::atomic<int64_t>& next, int64_t end, int worker) {
    int64_t done = 0;
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < end; i = next.fetch_add(1, std::memory_order_relaxed)) {
      Do(i, worker);
      done++;
    }
    return done;
  }

  const int64_t items_;
  const int64_t half_; // the first run is [0, half_), the second [half_, items_) (empty without split)
  // Each counter on a cache line of its own, and the count of items left paid once a thread, not once an item:
  // each thread then takes its own run's items without pulling a line the other thread writes (decoding
  // products replayed back to back 1.5-2.5% faster at BF16 and int8 on the 2-core Zen 4 VM, alternating).
  alignas(64) std::atomic<int64_t> next_{0};
  alignas(64) std::atomic<int64_t> second_;
  alignas(64) std::atomic<int64_t> left_;
};

// The helper thread: after a job it spins briefly, since the attention's products and the kernels come
// back to back, then sleeps. A job is taken by exactly one of the two: the helper, which then works on it
// and acknowledges it (the caller waits for that, so a job is never freed while the helper reads it), or
// the caller, once it has run every item itself, so that a helper still asleep or descheduled (a busy
// machine) costs the caller nothing.
class HelperThread {
 public:
  HelperThread() : thread_([this] { Loop(); }) {}
  ~HelperThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true, std::memory_order_relaxed);
    }
    cv_.notify_one();
    thread_.join();
  }

  // Runs every item of `work` on this thread and the helper; returns when all are done. The caller
  // holds busy().
  void Run(SharedWork& work) {
    work_ = &work;
    const uint64_t g = posted_.load(std::memory_order_relaxed) + 1;
    {
      std::lock_guard<std::mutex> lock(mu_); // the helper checks posted_ under the lock before it sleeps
      posted_.store(g, std::memory_order_release);
    }
    cv_.notify_one();
    work.Drain(0);
    uint64_t untaken = g - 1;
    if (taken_.compare_exchange_strong(untaken, g, std::memory_order_acq_rel)) return; // the helper never saw it
    for (uint32_t spin = 0; !work.Finished() || acked_.load(std::memory_order_acquire) != g; spin++) {
      if ((spin & 1023) == 1023) std::this_thread::yield();
      else Pause();
    }
  }

  // One job at a time: the add-on may be called from several threads.
  std::mutex& busy() { return busy_; }
  // Scratch for SmallGemm, one per worker; only while holding busy().
  float* pack(int worker) { return worker == 0 ? callerPack_ : helperPack_; }

 private:
  static void Pause() {
#ifdef SUPRA_X86
    _mm_pause();
#endif
  }

  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      // spin ~50 us for the next job, then sleep
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      uint32_t spin = 0;
      while (posted_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
        if ((++spin & 255) == 0 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return stop_.load(std::memory_order_relaxed) || posted_.load(std::memory_order_relaxed) != seen; });
          break;
        }
        Pause();
      }
      if (stop_.load(std::memory_order_relaxed)) return;
      seen = posted_.load(std::memory_order_acquire);
      uint64_t untaken = seen - 1;
      if (taken_.compare_exchange_strong(untaken, seen, std::memory_order_acq_rel)) {
        work_->Drain(1);
        acked_.store(seen, std::memory_order_release);
      }
    }
  }

  float callerPack_[kSmallMaxDim * kSmallMaxDim];
  float helperPack_[kSmallMaxDim * kSmallMaxDim];
  SharedWork* work_ = nullptr;
  std::atomic<uint64_t> posted_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> taken_{0}; // the last job taken (by the helper, or back by the caller)
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::mutex busy_;
  std::thread thread_;
};

// The kernels' work in the wasm runtime's chunks (src/core/wasm/runtime.ts chunkGrain): chunk c covers
// [c·grain, min(total, (c+1)·grain)), an item each. The chunks are two runs (split): each thread streams
// its own half in order. Alternate 128 KiB chunks had AdamW at 68-71 GB/s and the gradient norm's sum of
// squares at 39-41; in two runs 86 and 47-52 (2 threads, Zen 4, 2026-12-07). The bits do not depend on
// which thread runs a chunk.
class ChunkedWork : public SharedWork {
 public:
  ChunkedWork(int64_t total, int64_t grain) : SharedWork((total + grain - 1) / grain, true), total_(total), grain_(grain) {}

 protected:
  void Do(int64_t chunk, int) override {
    const int64_t lo = chunk * grain_;
    DoRange(chunk, lo, lo + grain_ < total_ ? lo + grain_ : total_);
  }
  virtual void DoRange(int64_t chunk, int64_t lo, int64_t hi) = 0;

 private:
  const int64_t total_, grain_;
};

// The process's helper thread, started by the first job.
HelperThread& Helper();

// Two threads when OpenBLAS may use two (SUPRA_THREADS=1 keeps the add-on on one).
bool TwoThreads();

// Runs `work` on this thread and, when two threads are wanted, there is more than one item and the helper
// is free, the helper.
void RunShared(SharedWork& work);

} // namespace supra
