// Data-parallel training: parameter broadcast, bucketed gradient averaging overlapped with
// backward on a background thread, and the launch fingerprint check.
#include "train/distributed.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/nn/norm.h"
#include "autograd/node.h"
#include "framework/error.h"
#include "framework/random.h"
#include "train/fingerprint.h"

namespace finch::train {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

uint64_t hash_tensor(const Tensor& t, uint64_t h) {
  if (!t.defined()) return fingerprint_hash("undefined", 9, h);
  const Tensor c = t.contiguous();
  h = fingerprint_hash(shape_str(c.shape()) + dtype_name(c.dtype()), h);
  return fingerprint_hash(c.raw_data(), c.nbytes(), h);
}

// Synchronized BatchNorm's communicator: the duplicate, with every all-reduce counted into the
// reducer's CommStats (the training thread alone calls it, so no lock).
class CountingComm final : public dist::Communicator {
 public:
  CountingComm(std::unique_ptr<dist::Communicator> inner, CommStats& stats) : inner_(std::move(inner)), stats_(stats) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string backend() const override { return inner_->backend(); }
  void all_reduce_sum(float* d, int64_t n) override { counted(d, n); }
  void all_reduce_sum(double* d, int64_t n) override { counted(d, n); }
  void broadcast(void* d, int64_t bytes, int root) override { inner_->broadcast(d, bytes, root); }
  void barrier() override { inner_->barrier(); }
  std::vector<std::string> all_gather(const std::string& blob) override { return inner_->all_gather(blob); }
  [[noreturn]] void abort(int code) override {
    inner_->abort(code);
    std::_Exit(code);  // (abort() is [[noreturn]], which a virtual call does not tell the compiler)
  }
  dist::Communicator& inner() { return *inner_; }

 private:
  template <typename T>
  void counted(T* d, int64_t n) {
    const auto t0 = Clock::now();
    inner_->all_reduce_sum(d, n);
    stats_.sync_bn_seconds += since(t0);
    stats_.sync_bn_bytes += n * int64_t(sizeof(T));
    ++stats_.sync_bn_calls;
  }
  std::unique_ptr<dist::Communicator> inner_;
  CommStats& stats_;
};

}  // namespace

DataParallel::DataParallel(dist::Communicator& comm, nn::Module& model, int64_t bucket_bytes) : comm_(comm), model_(model) {
  if (bucket_bytes < 1) fail("data-parallel training: the bucket size must be at least 1 byte, got ", bucket_bytes);
  std::vector<Tensor> params;
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    if (p.dtype() != DType::f32 || !p.is_contiguous())
      fail("data-parallel training: parameter '", name, "' is ", dtype_name(p.dtype()),
           p.is_contiguous() ? "" : " and not contiguous", "; the gradient reducer averages contiguous F32 parameters");
    params.push_back(p);
  }
  // Reverse registration order: the last layers' gradients are ready first in backward.
  std::reverse(params.begin(), params.end());
  int64_t bytes_in_bucket = 0;
  for (const Tensor& p : params) {
    const int64_t bytes = p.numel() * int64_t(sizeof(float));
    if (buckets_.empty() || (bytes_in_bucket > 0 && bytes_in_bucket + bytes > bucket_bytes)) {
      buckets_.emplace_back();
      bytes_in_bucket = 0;
    }
    Bucket& b = buckets_.back();
    slot_of_[p.impl()] = slots_.size();
    slots_.push_back({p, buckets_.size() - 1, int64_t(b.buffer.size())});
    b.slots.push_back(slots_.size() - 1);
    b.buffer.resize(b.buffer.size() + size_t(p.numel()));
    bytes_in_bucket += bytes;
  }
  for (Bucket& b : buckets_) b.pending = int64_t(b.slots.size());
  filled_.assign(slots_.size(), false);
  if (comm_.size() > 1) thread_ = std::thread([this] { comm_loop(); });
}

DataParallel::~DataParallel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    // Only on an error path (backward threw, or the job is ending after another failure): the
    // thread waits for a bucket the other ranks may never join; release it, or the join below
    // would hold this rank's exit (and the job's abort) for up to the watchdog's timeout.
    if (reducing_) comm_.interrupt();
  }
  if (bn_comm_) nn::convert_sync_batchnorm(model_, nullptr);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t DataParallel::gradient_bytes() const {
  int64_t n = 0;
  for (const Bucket& b : buckets_) n += int64_t(b.buffer.size() * sizeof(float));
  return n;
}

void DataParallel::broadcast_parameters() {
  auto send = [&](const std::string& name, const Tensor& t) {
    if (!t.is_contiguous()) fail("data-parallel training: '", name, "' is not contiguous and cannot be broadcast");
    comm_.broadcast(t.raw_data(), int64_t(t.nbytes()), 0);
  };
  // Parameters and buffers alike: BN running statistics must start equal too.
  for (const auto& list : {model_.named_parameters(), model_.named_buffers()})
    for (const auto& [name, t] : list) send(name, t);
}

int64_t DataParallel::enable_sync_batchnorm() {
  if (!bn_comm_) bn_comm_ = std::make_unique<CountingComm>(comm_.duplicate(), stats_);
  return nn::convert_sync_batchnorm(model_, bn_comm_.get());
}

void DataParallel::backward(const Tensor& loss) {
  const auto t0 = Clock::now();
  if (comm_.size() == 1) {
    finch::backward(loss);
  } else {
    {
      autograd::GradReadyScope scope([this](const Tensor& leaf) { on_ready(leaf); });
      finch::backward(loss);
    }
    finish();
  }
  stats_.backward_seconds += since(t0);
  ++stats_.steps;
}

void DataParallel::on_ready(const Tensor& leaf) {
  const auto it = slot_of_.find(leaf.impl());
  if (it == slot_of_.end() || filled_[it->second]) return;
  const Slot& s = slots_[it->second];
  Bucket& b = buckets_[s.bucket];
  const Tensor g = leaf.grad().to(DType::f32).contiguous();
  std::memcpy(b.buffer.data() + s.offset, g.data<float>(), size_t(g.numel()) * sizeof(float));
  filled_[it->second] = true;
  if (--b.pending == 0) launch_ready_buckets();
}

void DataParallel::launch_ready_buckets() {
  bool any = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
      queue_.push_back(next_launch_++);
      any = true;
    }
  }
  if (any) cv_.notify_all();
}

void DataParallel::finish() {
  // Parameters backward did not reach on this rank contribute zeros (or the .grad they hold).
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (filled_[i]) continue;
    const Slot& s = slots_[i];
    Bucket& b = buckets_[s.bucket];
    float* dst = b.buffer.data() + s.offset;
    const Tensor g = s.param.grad();
    if (g.defined()) {
      const Tensor c = g.to(DType::f32).contiguous();
      std::memcpy(dst, c.data<float>(), size_t(c.numel()) * sizeof(float));
    } else {
      std::fill(dst, dst + s.param.numel(), 0.0f);
    }
    filled_[i] = true;
    --b.pending;
  }
  launch_ready_buckets();
  const auto t0 = Clock::now();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_ == buckets_.size() || error_; });
    error = error_;
    stats_.reduce_seconds += reduce_seconds_;
    reduce_seconds_ = 0;
    done_ = 0;
  }
  stats_.wait_seconds += since(t0);
  if (error) std::rethrow_exception(error);
  // Average (sum / N) into each parameter's .grad: in place when it is a plain F32 buffer that
  // only .grad holds, else a fresh tensor.
  const float inv = 1.0f / float(comm_.size());
  for (const Slot& s : slots_) {
    const float* src = buckets_[s.bucket].buffer.data() + s.offset;
    Tensor g = s.param.grad();
    if (!g.defined() || g.dtype() != DType::f32 || !g.is_contiguous() || g.shape() != s.param.shape())
      g = empty(s.param.shape(), DType::f32);
    float* dst = g.data<float>();
    for (int64_t k = 0; k < s.param.numel(); ++k) dst[k] = src[k] * inv;
    s.param.set_grad(g);
  }
  for (Bucket& b : buckets_) {
    b.pending = int64_t(b.slots.size());
    stats_.bytes += int64_t(b.buffer.size() * sizeof(float));
  }
  std::fill(filled_.begin(), filled_.end(), false);
  next_launch_ = 0;
}

void DataParallel::comm_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  size_t head = 0;  // queue_ index of the next bucket; the queue is cleared once the step is done
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || head < queue_.size(); });
    if (stop_) return;
    const size_t b = queue_[head++];
    reducing_ = true;
    lock.unlock();
    const auto t0 = Clock::now();
    std::exception_ptr error;
    try {
      comm_.all_reduce_sum(buckets_[b].buffer.data(), int64_t(buckets_[b].buffer.size()));
    } catch (...) {
      error = std::current_exception();
    }
    const double secs = since(t0);
    lock.lock();
    reducing_ = false;
    reduce_seconds_ += secs;
    if (error && !error_) error_ = error;
    if (++done_ == buckets_.size()) {
      queue_.clear();
      head = 0;
    }
    cv_.notify_all();
    if (error_) {
      // The communicator is broken: stop here; finish() rethrows on the training thread.
      cv_.wait(lock, [&] { return stop_; });
      return;
    }
  }
}

void check_same_launch(dist::Communicator& comm, const std::vector<std::pair<std::string, std::string>>& items) {
  if (comm.size() == 1) return;
  std::string blob;
  for (const auto& [k, v] : items) blob.append(k).append(1, '\x1f').append(v).append(1, '\x1e');
  const std::vector<std::string> all = comm.all_gather(blob);
  auto parse = [](const std::string& s) {
    std::vector<std::pair<std::string, std::string>> out;
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t us = s.find('\x1f', pos), rs = s.find('\x1e', pos);
      if (us == std::string::npos || rs == std::string::npos || us > rs) break;
      out.push_back({s.substr(pos, us - pos), s.substr(us + 1, rs - us - 1)});
      pos = rs + 1;
    }
    return out;
  };
  const auto ref = parse(all[0]);
  for (size_t r = 1; r < all.size(); ++r) {
    const auto other = parse(all[r]);
    for (size_t i = 0; i < std::max(ref.size(), other.size()); ++i) {
      const std::string k0 = i < ref.size() ? ref[i].first : "(nothing)";
      const std::string kr = i < other.size() ? other[i].first : "(nothing)";
      const std::string v0 = i < ref.size() ? ref[i].second : "";
      const std::string vr = i < other.size() ? other[i].second : "";
      if (k0 != kr)
        fail("data-parallel launch mismatch: rank ", r, " describes its run with '", kr, "' where rank 0 has '",
             k0, "' (different program versions?); every process of the job must run the same program");
      if (v0 != vr)
        fail("data-parallel launch mismatch: rank ", r, " has ", kr, " = ", vr, " but rank 0 has ", k0, " = ", v0,
             "; every process of the job must run the same model with the same options and data");
    }
  }
}

std::vector<std::pair<std::string, std::string>> model_fingerprint(const nn::Module& model) {
  uint64_t h = kFingerprintSeed;
  int64_t tensors = 0, values = 0;
  for (const auto& list : {model.named_parameters(), model.named_buffers()})
    for (const auto& [name, t] : list) {
      h = fingerprint_hash(name + shape_str(t.shape()) + dtype_name(t.dtype()), h);
      ++tensors;
      values += t.numel();
    }
  return {{"the model's tensors", std::to_string(tensors) + " tensors of " + std::to_string(values) + " values"},
          {"the model's layout (hash of names, shapes, dtypes)", fingerprint_hex(h)}};
}

std::vector<std::pair<std::string, std::string>> dataset_fingerprint(const data::Dataset& data,
                                                                     const std::string& name) {
  const int64_t n = data.size();
  uint64_t h = kFingerprintSeed;
  for (int64_t i : {int64_t(0), n / 2, n - 1}) {
    if (i < 0 || i >= n) continue;
    Generator gen(12345);  // augmentation, if any, draws the same on every rank
    const data::Sample s = data.get(i, gen);
    h = hash_tensor(s.image, h);
    h = hash_tensor(s.target, h);
    h = fingerprint_hash(&s.label, sizeof(s.label), h);
  }
  return {{name + " size", std::to_string(n) + " samples"}, {name + " content (hash of 3 samples)", fingerprint_hex(h)}};
}

}  // namespace finch::train
