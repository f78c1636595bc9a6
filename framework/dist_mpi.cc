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
#include <thread>

#include "framework/dist.h"
#include "framework/error.h"

namespace finch::dist {
namespace {

// MPI counts are ints: larger buffers go in slices of this many elements.
constexpr int64_t kMaxCount = int64_t(1) << 30;

class Mpi final : public Communicator {
 public:
  Mpi() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      // SERIALIZED: the reducer's thread and the main thread both call MPI, one at a time
      // (mu_ below); the compute pool never does.
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        fail("dist: MPI_Init_thread failed; check the mpirun command and the MPI installation");
      owns_ = true;
      if (provided < MPI_THREAD_SERIALIZED)
        fail("dist: this MPI library offers thread level ", provided, " but finch needs MPI_THREAD_SERIALIZED (",
             int(MPI_THREAD_SERIALIZED), ") for its gradient reducer thread");
    }
    // Errors come back as codes, turned into sentences below, instead of MPI's default abort
    // with a library message.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, size_t(std::max(0, len)));
    v = v.substr(0, v.find_first_of(",\n"));
    backend_ = "MPI (" + v + ")";
  }
  ~Mpi() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_ && !finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return backend_; }

  void all_reduce_sum(float* data, int64_t n) override { reduce(data, n, MPI_FLOAT); }
  void all_reduce_sum(double* data, int64_t n) override { reduce(data, n, MPI_DOUBLE); }

  void broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= size_) fail("dist: broadcast from rank ", root, " of a ", size_, "-process job");
    std::lock_guard<std::mutex> lock(mu_);
    auto* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kMaxCount)
      check(MPI_Bcast(p + off, int(std::min(kMaxCount, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD),
            "MPI_Bcast");
  }

  void barrier() override {
    std::lock_guard<std::mutex> lock(mu_);
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }

  std::vector<std::string> all_gather(const std::string& blob) override {
    if (blob.size() > size_t(std::numeric_limits<int>::max() / std::max(size_, 1)))
      fail("dist: all_gather of ", blob.size(), " bytes per rank is too large (it is meant for fingerprints)");
    std::lock_guard<std::mutex> lock(mu_);
    int mine = int(blob.size());
    std::vector<int> sizes(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    check(MPI_Allgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[size_t(r)] = total;
      total += sizes[size_t(r)];
    }
    std::string all(size_t(total), '\0');
    check(MPI_Allgatherv(blob.data(), mine, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR,
                         MPI_COMM_WORLD),
          "MPI_Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(size_t(offsets[size_t(r)]), size_t(sizes[size_t(r)])));
    return out;
  }

  [[noreturn]] void abort(int code) override {
    std::fflush(stderr);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is in case a broken library does
  }

 private:
  void reduce(void* data, int64_t n, MPI_Datatype type) {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t elem = type == MPI_FLOAT ? sizeof(float) : sizeof(double);
    auto* p = static_cast<char*>(data);
    for (int64_t off = 0; off < n; off += kMaxCount) {
      MPI_Request req;
      check(MPI_Iallreduce(MPI_IN_PLACE, p + size_t(off) * elem, int(std::min(kMaxCount, n - off)), type, MPI_SUM,
                           MPI_COMM_WORLD, &req),
            "MPI_Iallreduce");
      wait_politely(req);
    }
  }

  // MPI_Wait busy-polls: a bucket posted while the other ranks are still in backward would burn
  // a core this rank's compute threads need (measured: 6 small buckets ran at 0.73× one big
  // bucket on 2 busy cores). So poll with MPI_Test (which also drives the non-blocking
  // collective's progress), spinning for the first 100 µs and sleeping 50 µs between tests after (a
  // 1 ms spin measured no better than one blocking bucket; 100 µs measured 1.2× it).
  void wait_politely(MPI_Request& req) {
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      int done = 0;
      check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) return;
      if (std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(100))
        std::this_thread::sleep_for(std::chrono::microseconds(50));
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

  std::mutex mu_;
  int rank_ = 0, size_ = 1;
  bool owns_ = false;
  std::string backend_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi() { return std::make_unique<Mpi>(); }

}  // namespace finch::dist
#endif  // FINCH_HAVE_MPI
