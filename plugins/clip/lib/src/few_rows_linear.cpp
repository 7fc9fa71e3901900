#include "few_rows_linear.hpp"

#include <pthread.h>

#include <ATen/ATen.h>
#include <c10/util/intrusive_ptr.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "blas.hpp"
#include "docarray/row_products.hpp"
#include "small_gemm.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace clip::kernels::detail {

namespace {

void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// One helper thread that takes the second half of a product. A thread
// started per product costs 20-30 us, a tenth of a 12-row product; this one
// is started once, spins for a while after each part (the next layer's
// product follows within microseconds) and then sleeps on a condition
// variable. The caller never waits for a helper that has not started: when
// its own half is done and the helper has not claimed the other, it takes
// that half back (after an idle spell the woken helper may be scheduled on
// the caller's own core, and waiting for it there took a 12-token text from
// 0.47 to 0.7-1 ms). Two cores is what CLIP inference uses per process here
// (more would split the weight rows further; not measured). It lives as
// long as the process (never destroyed: a thread parked at exit is
// harmless).
class Helper {
 public:
  Helper() : thread_([this] { loop(); }) { thread_.detach(); }

  // Runs part(0) here and part(1) on the helper, or here too if the helper
  // has not begun it by the time part(0) is done; returns when both are.
  template <typename Part>
  void run(const Part& part) {
    job_ = [](const void* p) { (*static_cast<const Part*>(p))(1); };
    arg_ = &part;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      state_.store(kPosted, std::memory_order_release);
    }
    wake_.notify_one();
    part(0);
    int expected = kPosted;
    if (state_.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel)) return part(1);
    for (int spins = 0; state_.load(std::memory_order_acquire) != kDone; ++spins) {
      if (spins < kSpins) cpu_relax();
      else std::this_thread::yield();  // the helper may share this core
    }
    state_.store(kIdle, std::memory_order_relaxed);
  }

 private:
  enum : int { kIdle, kPosted, kClaimed, kDone };

  void loop() {
    for (;;) {
      // Spin first: the next product usually comes within microseconds.
      // After sleeping, spin again whether or not there was work: a wake-up
      // that came too late (the caller took its half back) is followed by
      // the next product within microseconds.
      for (int i = 0; i < kSpins && state_.load(std::memory_order_acquire) != kPosted; ++i) cpu_relax();
      {
        std::unique_lock<std::mutex> lock(mutex_);
        if (state_.load(std::memory_order_acquire) != kPosted) wake_.wait(lock);
      }
      int expected = kPosted;
      if (!state_.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) continue;  // taken back
      job_(arg_);
      state_.store(kDone, std::memory_order_release);
    }
  }

  static constexpr int kSpins = 4000;  // about 0.2 ms of pause instructions here
  std::mutex mutex_;
  std::condition_variable wake_;
  void (*job_)(const void*) = nullptr;  // written by the caller before it posts
  const void* arg_ = nullptr;
  std::atomic<int> state_{kIdle};
  std::thread thread_;
};

// One product uses the helper at a time (a product on another thread
// meanwhile runs alone rather than wait). A forked child has no helper
// thread: fork waits for the product in flight, and the child makes its own.
std::mutex helper_use;
Helper* helper_instance = nullptr;

Helper& helper() {
  static const bool registered = [] {
    ::pthread_atfork([] { helper_use.lock(); }, [] { helper_use.unlock(); },
                     [] {
                       helper_instance = nullptr;
                       helper_use.unlock();
                     });
    return true;
  }();
  (void)registered;
  if (!helper_instance) helper_instance = new Helper();
  return *helper_instance;
}

// One transposed copy per weight: the weight is known by its storage, held
// weakly (the address cannot be reused while the weak reference lives; a
// view such as the patch embedding's reshape, made anew at each call, finds
// its parameter's copy), and checked by place, shape and version counter (shared
// with every view) at each use.
struct TransposedCopy {
  c10::weak_intrusive_ptr<c10::StorageImpl> storage;
  const void* data;
  std::int64_t rows, columns, version;
  at::Tensor transposed;
};
std::mutex transposed_mutex;
std::vector<TransposedCopy>& transposed_copies() {
  static auto* copies = [] {
    // A fork while another thread scans the copies would leave the child's
    // mutex locked for good: fork waits for the scan instead.
    ::pthread_atfork([] { transposed_mutex.lock(); }, [] { transposed_mutex.unlock(); },
                     [] { transposed_mutex.unlock(); });
    return new std::vector<TransposedCopy>();  // never destroyed: used until exit
  }();
  return *copies;
}

// w^T ([in, out], contiguous), made once per weight and kept while the
// weight lives and is unchanged (same storage, same version: an optimizer
// step or a load of new weights makes a new copy). Undefined for an
// inference tensor (no version to check it by). Thread-safe.
at::Tensor transposed_weight(const at::Tensor& w) {
  if (w.is_inference() || !w.has_storage()) return {};
  const std::int64_t version = w._version();
  const void* data = w.data_ptr();
  const c10::StorageImpl* storage = w.storage().unsafeGetStorageImpl();
  auto& copies = transposed_copies();  // first call registers the fork handlers: before the lock
  std::lock_guard<std::mutex> lock(transposed_mutex);
  for (auto it = copies.begin(); it != copies.end();) {
    // Weights freed since (a model unloaded) drop their copies here.
    if (it->storage.expired()) {
      it = copies.erase(it);
      continue;
    }
    if (it->storage._unsafe_get_target() == storage && it->data == data && it->rows == w.size(0) &&
        it->columns == w.size(1)) {
      if (it->version == version) return it->transposed;
      it = copies.erase(it);  // changed in place: made again below
      continue;
    }
    ++it;
  }
  at::Tensor transposed = w.detach().t().contiguous();
  copies.push_back({w.storage().getWeakStorageImpl(), data, w.size(0), w.size(1), version, transposed});
  return transposed;
}

// Weights small_gemm takes over their transposed copy: short rows (the copy
// is small: CLIP small's weights), outputs in sixteens, an AVX-512 CPU.
bool transposed_path(std::int64_t in, std::int64_t out) {
  return in <= 256 && out % 16 == 0 && small_gemm_available();
}

// Products the row kernel takes when there is no transposed copy.
bool row_kernel_rows(std::int64_t rows, std::int64_t in) { return rows <= 32 || (rows <= 80 && in >= 512); }

}  // namespace

bool own_product(std::int64_t rows, std::int64_t in, std::int64_t out) {
  // Each tile of row_products ends with one sum across a vector's lanes per
  // output, a fixed cost that long input rows amortise: with 512 inputs and
  // more, 50 and 77 rows still beat OpenBLAS, whose packing of the whole
  // weight matrix reads it twice from memory (ViT-B/32 at batch 1: an image
  // 66.7 -> 58.5 ms, a 77-token text 44.7 -> 41.1 ms). Short rows (CLIP
  // small's 128 and 192 inputs) go through small_gemm over w^T, on one core,
  // which beats OpenBLAS on two up to about a thousand rows and loses at
  // five thousand (small, 2026-12-07: a 77-token text 1.56 -> 0.94 ms, 8
  // images 3.9k -> 4.8-5.1k/s, 64 images of 17 rows 5.2k -> 5.3-5.7k/s, 64
  // 77-token texts 1.62k -> 1.44-1.54k/s).
  return rows > 0 && (row_kernel_rows(rows, in) || (rows <= 2048 && transposed_path(in, out)));
}

void few_rows_product(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t out, float* y,
                      std::int64_t ldy) {
  // Split only products worth a hand-off (2 us or more of work).
  const bool split = blas_threads() > 1 && static_cast<double>(rows) * in * out >= 2e5 && out >= 32;
  std::unique_lock<std::mutex> lock(helper_use, std::defer_lock);
  if (!split || !lock.try_lock()) return docarray::row_products(x, rows, w, in, in, 0, out, y, ldy);
  const std::int64_t half = (out / 2 + 15) / 16 * 16;
  helper().run([&](int part) {
    if (part == 0) docarray::row_products(x, rows, w, in, in, 0, half, y, ldy);
    else docarray::row_products(x, rows, w, in, in, half, out, y, ldy);
  });
}

void few_rows_linear(const float* x, std::int64_t rows, std::int64_t in, const at::Tensor& w, float* y,
                     std::int64_t ldy) {
  // The row kernel ends each output with a sum across a vector's lanes,
  // which rows of 128 inputs do not amortise (12 x 128 x 512 in 22 us,
  // while 12 x 512 x 128 takes 11): over w^T, small_gemm has no such sums.
  // Kept to short rows, where the copy is small (CLIP small's weights);
  // ViT-B/32's rows of 512 and 768 stay with the row kernel, which reads
  // the weights once and splits them over the cores.
  const std::int64_t out = w.size(0);
  if (transposed_path(in, out)) {
    if (const at::Tensor wt = transposed_weight(w); wt.defined()) {
      SmallGemm g;
      g.m = rows;
      g.n = out;
      g.k = in;
      g.a = x;
      g.a_row = in;
      g.a_col = 1;
      g.b = wt.data_ptr<float>();
      g.ldb = out;
      g.c = y;
      g.ldc = ldy;
      return small_gemm(g);
    }
  }
  // No copy to be had (a weight made under InferenceMode has no version to
  // check one by): the row kernel where it would take the product, BLAS beyond.
  if (row_kernel_rows(rows, in)) return few_rows_product(x, rows, in, w.data_ptr<float>(), out, y, ldy);
  gemm(false, true, rows, out, in, 1, x, in, w.data_ptr<float>(), in, 0, y, ldy);
}

}  // namespace clip::kernels::detail
