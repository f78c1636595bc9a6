// The MPI communicator (compiled to nothing unless CMake found MPI and set FINCH_HAVE_MPI).
#ifdef FINCH_HAVE_MPI
// The C API only: without these, mpi.h in a C++ file drags in the deprecated C++ bindings,
// which need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include "framework/dist.h"
#include "framework/error.h"

namespace finch::dist {
namespace {

// MPI counts are ints: larger buffers go in slices of this many elements.
constexpr int64_t kMaxCount = int64_t(1) << 30;

// MPI_THREAD_SERIALIZED is a promise about the whole process: no two threads inside MPI at once,
// whichever communicator they use. So one mutex for every communicator, held for each MPI call
// only — never across a wait, or the reducer's thread waiting for a bucket would keep the
// training thread from posting the BatchNorm collective the other rank needs before it can
// join that bucket (a deadlock across the two ranks).
std::mutex& mpi_mutex() {
  static std::mutex mu;
  return mu;
}

class Mpi final : public Communicator {
 public:
  // The world communicator: initializes MPI.
  Mpi() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      // SERIALIZED: the reducer's thread and the main thread both call MPI, one at a time
      // (mpi_mutex); the compute pool never does.
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        fail("dist: MPI_Init_thread failed; check the mpirun command and the MPI installation");
      owns_ = true;
      if (provided < MPI_THREAD_SERIALIZED)
        fail("dist: this MPI library offers thread level ", provided, " but finch needs MPI_THREAD_SERIALIZED (",
             int(MPI_THREAD_SERIALIZED), ") for its gradient reducer thread");
    }
    comm_ = MPI_COMM_WORLD;
    // Errors come back as codes, turned into sentences below, instead of MPI's default abort
    // with a library message.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, size_t(std::max(0, len)));
    v = v.substr(0, v.find_first_of(",\n"));
    backend_ = "MPI (" + v + ")";
  }
  // A duplicate of `parent` (its communicator already made by MPI_Comm_idup).
  Mpi(const Mpi& parent, MPI_Comm comm) : comm_(comm), rank_(parent.rank_), size_(parent.size_), backend_(parent.backend_) {
    std::lock_guard<std::mutex> lock(mpi_mutex());
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  }
  ~Mpi() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (comm_ != MPI_COMM_WORLD) {
      std::lock_guard<std::mutex> lock(mpi_mutex());
      MPI_Comm_free(&comm_);
    } else if (owns_) {
      MPI_Finalize();
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return backend_; }

  void all_reduce_sum(float* data, int64_t n) override { reduce(data, n, MPI_FLOAT); }
  void all_reduce_sum(double* data, int64_t n) override { reduce(data, n, MPI_DOUBLE); }

  void broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= size_) fail("dist: broadcast from rank ", root, " of a ", size_, "-process job");
    auto* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kMaxCount) {
      MPI_Request req;
      post([&] { return MPI_Ibcast(p + off, int(std::min(kMaxCount, bytes - off)), MPI_BYTE, root, comm_, &req); },
           "MPI_Ibcast");
      wait(req, "a broadcast");
    }
  }

  void barrier() override {
    MPI_Request req;
    post([&] { return MPI_Ibarrier(comm_, &req); }, "MPI_Ibarrier");
    wait(req, "a barrier");
  }

  std::vector<std::string> all_gather(const std::string& blob) override {
    if (blob.size() > size_t(std::numeric_limits<int>::max() / std::max(size_, 1)))
      fail("dist: all_gather of ", blob.size(), " bytes per rank is too large (it is meant for fingerprints)");
    int mine = int(blob.size());
    std::vector<int> sizes(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    MPI_Request req;
    post([&] { return MPI_Iallgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm_, &req); }, "MPI_Iallgather");
    wait(req, "an all-gather");
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[size_t(r)] = total;
      total += sizes[size_t(r)];
    }
    std::string all(size_t(total), '\0');
    post([&] {
      return MPI_Iallgatherv(blob.data(), mine, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, comm_,
                             &req);
    }, "MPI_Iallgatherv");
    wait(req, "an all-gather");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(size_t(offsets[size_t(r)]), size_t(sizes[size_t(r)])));
    return out;
  }

  [[noreturn]] void abort(int code) override {
    std::fflush(stderr);
    std::fflush(stdout);
    // Another thread may be between two polls of a stranded collective: take the MPI mutex when
    // it comes free (a poll holds it for microseconds), but do not let a thread stuck inside MPI
    // keep the job alive — after a second, abort regardless.
    std::unique_lock<std::mutex> lock(mpi_mutex(), std::defer_lock);
    for (int i = 0; i < 1000 && !lock.try_lock(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is in case a broken library does
  }

  std::unique_ptr<Communicator> duplicate() override {
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Request req;
    post([&] { return MPI_Comm_idup(comm_, &dup, &req); }, "MPI_Comm_idup");
    wait(req, "duplicating the communicator");
    auto d = std::make_unique<Mpi>(*this, dup);
    d->set_timeout(timeout());
    return d;
  }

 private:
  void reduce(void* data, int64_t n, MPI_Datatype type) {
    const size_t elem = type == MPI_FLOAT ? sizeof(float) : sizeof(double);
    auto* p = static_cast<char*>(data);
    for (int64_t off = 0; off < n; off += kMaxCount) {
      MPI_Request req;
      post([&] {
        return MPI_Iallreduce(MPI_IN_PLACE, p + size_t(off) * elem, int(std::min(kMaxCount, n - off)), type, MPI_SUM,
                              comm_, &req);
      }, "MPI_Iallreduce");
      wait(req, "an all-reduce");
    }
  }

  // Runs `start` (an MPI call that posts a non-blocking collective) under the MPI mutex.
  template <typename F>
  void post(F&& start, const char* call) {
    std::lock_guard<std::mutex> lock(mpi_mutex());
    check(start(), call);
  }

  // MPI_Wait busy-polls: a bucket posted while the other ranks are still in backward would burn
  // a core this rank's compute threads need (measured: 6 small buckets ran at 0.73× one big
  // bucket on 2 busy cores). So poll with MPI_Test (which also drives the non-blocking
  // collective's progress — every pending one of the process, whichever thread posted it),
  // spinning for the first 100 µs and sleeping 50 µs between tests after (a 1 ms spin measured
  // no better than one blocking bucket; 100 µs measured 1.2× it). Each test takes the MPI mutex
  // alone, so another thread can post and poll its own collectives in between.
  //
  // The watchdog lives here: past timeout() seconds the wait fails with a sentence (the request
  // is left pending; the caller aborts the job, and nothing reuses its buffer before that).
  void wait(MPI_Request& req, const char* what) {
    const auto t0 = std::chrono::steady_clock::now();
    const double limit = timeout();
    for (;;) {
      int done = 0;
      {
        std::lock_guard<std::mutex> lock(mpi_mutex());
        check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
      }
      if (done) return;
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (interrupted())
        fail("dist: rank ", rank_, " of ", size_, " stopped waiting in ", what,
             " because another thread of this process failed first (its message says why)");
      if (limit > 0 && waited > limit) {
        std::ostringstream secs;
        secs << limit;
        fail("dist: rank ", rank_, " of ", size_, " waited more than ", secs.str(), " s (--dist-timeout) for the other ",
             size_ - 1 == 1 ? "process" : "processes", " in ", what,
             ": a process of the job is hung (stopped, deadlocked, or stuck reading data) or far slower than this "
             "one; ending the job");
      }
      if (waited > 100e-6) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  void check(int rc, const char* call) const {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fail("dist: ", call, " failed on rank ", rank_, " of ", size_, " (", std::string(msg, size_t(std::max(0, len))),
         "); another process of the job has probably died");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
  std::string backend_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi() { return std::make_unique<Mpi>(); }

}  // namespace finch::dist
#endif  // FINCH_HAVE_MPI
