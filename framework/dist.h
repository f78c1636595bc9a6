// The process group of a data-parallel run: rank, size, all-reduce, broadcast, barrier and
// all-gather, with a single-process implementation (every call a no-op) and an MPI one.
//
// Which one a program gets is decided once, at the first world() call: the MPI communicator when
// finch was built with MPI (FINCH_HAVE_MPI) and the process was started by mpirun (OpenMPI's
// OMPI_COMM_WORLD_SIZE, or PMI/PMIx variables of other launchers); otherwise the single-process
// one, so nothing changes for a plain run. Launched by mpirun with several processes but built
// without MPI is an error sentence (N copies would silently train N unrelated models).
//
// Threads: MPI is initialized with MPI_THREAD_SERIALIZED and every call goes through one mutex,
// so the gradient reducer's background thread (train/distributed.h) and the main thread may
// both call in, never at once. The compute pool's threads never call MPI.
//
// Faults: the MPI communicator sets MPI_ERRORS_RETURN, turns a failed call into a finch::Error
// sentence, and abort() ends every rank of the job (MPI_Abort) — a rank that throws must call it
// (apps do, in run_with_user_errors), or the others would wait forever in their next collective.
// A rank that hangs without dying (SIGSTOP, a deadlocked reader) is caught by the watchdog:
// every collective is non-blocking and polled, and a wait longer than timeout() seconds is a
// finch::Error sentence on the ranks that wait, which then abort the job.
//
// Several communicators (duplicate()) over the same processes: collectives on different ones
// never match each other, so two threads may each keep their own order (the gradient reducer's
// buckets on one, synchronized BatchNorm on another: train/distributed.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace finch::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single process" or "MPI (Open MPI v4.1.4)": what summary.json and the logs name.
  virtual std::string backend() const = 0;
  // data[i] ← Σ over ranks of data[i], in place (f32 and f64 buffers).
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  virtual void all_reduce_sum(double* data, int64_t n) = 0;
  // The same, then divided by size(): the average data-parallel gradients need.
  void all_reduce_avg(float* data, int64_t n);
  // Every rank's `bytes` bytes at `data` become rank `root`'s.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Every rank's `blob` (small: fingerprints, names), indexed by rank, on every rank.
  virtual std::vector<std::string> all_gather(const std::string& blob) = 0;
  // Ends every process of the job with exit code `code` (after the caller printed why).
  [[noreturn]] virtual void abort(int code) = 0;
  // A communicator over the same processes whose collectives are independent of this one's
  // (MPI_Comm_dup), with this one's timeout. Collective: every rank calls it at the same point.
  virtual std::unique_ptr<Communicator> duplicate();

  // The watchdog: a collective that waits longer than `seconds` for the other ranks fails with a
  // sentence (0: wait forever, MPI's own behaviour and the default). Not negative, not NaN.
  void set_timeout(double seconds);
  double timeout() const { return timeout_.load(); }
  // Makes every wait of this communicator, current and future, fail at its next poll: how a
  // thread whose collective is stranded (another thread of the process already failed and the
  // job is about to be aborted) is released instead of joined forever.
  void interrupt() { interrupted_.store(true); }
  bool interrupted() const { return interrupted_.load(); }

 private:
  std::atomic<double> timeout_{0.0};
  std::atomic<bool> interrupted_{false};
};

// The world communicator (created on first use, as described above; lives until exit).
Communicator& world();
// True when this finch was built with MPI (the -np 2 tests skip otherwise).
bool built_with_mpi();
// The process count the launcher announces in the environment (OMPI_COMM_WORLD_SIZE, PMIX_SIZE,
// PMI_SIZE), or 1 when none is set. A value that is not a positive integer is an error sentence.
int launcher_world_size();

// The single-process communicator: rank 0 of 1; reductions and broadcasts leave data as it is.
std::unique_ptr<Communicator> make_single_process();

// Splits `order` (one epoch's sample order, the same on every rank) for rank `rank` of `size`:
// positions rank, rank + size, rank + 2·size, … of the first size·⌊n/size⌋ entries. Every rank
// gets exactly ⌊n/size⌋ samples (the n mod size last ones of the order sit out this epoch; the
// order is reshuffled each epoch, so it is different ones), which keeps the batch count and the
// last batch's size equal on all ranks. With a batch of B per rank, step k of the N ranks together
// covers positions [N·B·k, N·B·(k+1)) of `order` — the samples one process with batch N·B
// would take at step k, which is what makes N × B equal to 1 × N·B.
std::vector<int64_t> shard(const std::vector<int64_t>& order, int rank, int size);

}  // namespace finch::dist
