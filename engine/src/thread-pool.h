// A fixed pool of threads owned by one engine instance. The calling thread takes part in every job, so a pool of
// `threads` runs on exactly that many OS threads. No OpenMP: no extra runtime, and it cannot oversubscribe cores
// shared with libuv or onnxruntime threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sbs {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Runs fn(task, thread) for every task in [0, tasks), handing tasks out one at a time; returns when all are done.
  // thread is in [0, size()) and unique among concurrently running calls, for per-thread scratch.
  void parallel_for(int tasks, const std::function<void(int task, int thread)>& fn);

 private:
  void worker_loop(int thread);
  void run_tasks(int thread);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;          // guarded by mutex_; workers also poll the atomic copy while spinning
  std::atomic<uint64_t> generation_seen_{0};
  std::atomic<int> next_task_{0};
  std::atomic<int> active_{0};       // workers still inside the current job
  int tasks_ = 0;
  const std::function<void(int, int)>* job_ = nullptr;
  bool stopping_ = false;
};

}  // namespace sbs
