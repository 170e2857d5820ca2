// The helper thread's instance and the rule for when work is shared (see helper_thread.h).
#include "helper_thread.h"

#include <cblas.h>

namespace supra {

HelperThread& Helper() {
  static HelperThread helper; // its thread starts with the first job
  return helper;
}

bool TwoThreads() { return openblas_get_num_threads() >= 2; }

// One item stays on this thread: a decoding step's swiglu, where waking the helper costs more than the
// work (the wasm runtime keeps a single chunk, under 64 Ki float touches, on one thread the same way).
void RunShared(SharedWork& work) {
  if (work.items() > 1 && TwoThreads()) {
    HelperThread& helper = Helper();
    std::unique_lock<std::mutex> lock(helper.busy(), std::try_to_lock);
    if (lock.owns_lock()) {
      helper.Run(work);
      return;
    }
  }
  work.Drain(0);
}

} // namespace supra
