// The single-process communicator, the choice of world() at first use, and epoch sharding.
#include "framework/dist.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "framework/error.h"

namespace finch::dist {

#ifdef FINCH_HAVE_MPI
// framework/dist_mpi.cc (compiled with MPI only).
std::unique_ptr<Communicator> make_mpi();
#endif

void Communicator::all_reduce_avg(float* data, int64_t n) {
  all_reduce_sum(data, n);
  if (size() == 1) return;
  const float inv = 1.0f / float(size());
  for (int64_t i = 0; i < n; ++i) data[i] *= inv;
}

std::unique_ptr<Communicator> Communicator::duplicate() {
  fail("dist: the ", backend(), " communicator cannot be duplicated (synchronized BatchNorm needs a second one)");
}

void Communicator::set_timeout(double seconds) {
  // 1e7 s (four months): beyond that a typo, not a timeout.
  if (!(seconds >= 0 && seconds <= 1e7))
    fail("dist: the collective timeout should be a number of seconds in [0, 1e7] (0: wait forever), but it is ",
         seconds);
  timeout_.store(seconds);
}

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single process"; }
  void all_reduce_sum(float*, int64_t) override {}
  void all_reduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int root) override {
    if (root != 0) fail("dist: broadcast from rank ", root, " in a single-process run (only rank 0 exists)");
  }
  void barrier() override {}
  std::vector<std::string> all_gather(const std::string& blob) override { return {blob}; }
  [[noreturn]] void abort(int code) override { std::exit(code); }
  std::unique_ptr<Communicator> duplicate() override { return std::make_unique<SingleProcess>(); }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process() { return std::make_unique<SingleProcess>(); }

bool built_with_mpi() {
#ifdef FINCH_HAVE_MPI
  return true;
#else
  return false;
#endif
}

int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"}) {
    const char* v = std::getenv(var);
    if (!v) continue;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > (1 << 24))
      fail("dist: the environment variable ", var, " should be the process count of the launch (a positive "
           "integer), but it is '", v, "'");
    return int(n);
  }
  return 1;
}

Communicator& world() {
  static std::unique_ptr<Communicator> comm;
  static std::once_flag once;
  std::call_once(once, [] {
    const int n = launcher_world_size();
#ifdef FINCH_HAVE_MPI
    // Under a launcher, even with -np 1: the run then reports MPI as its backend, as asked.
    if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK")) {
      comm = make_mpi();
      return;
    }
#endif
    if (n > 1)
      fail("dist: this process was started by an MPI launcher with ", n, " processes, but finch was built "
           "without MPI (install libopenmpi-dev and re-run cmake); refusing to train ", n, " unrelated models");
    comm = make_single_process();
  });
  if (!comm) fail("dist: the communicator failed to start earlier in this process");
  return *comm;
}

std::vector<int64_t> shard(const std::vector<int64_t>& order, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    fail("dist::shard: rank ", rank, " is not in [0, ", size, ")");
  const int64_t per_rank = int64_t(order.size()) / size;
  std::vector<int64_t> mine(static_cast<size_t>(per_rank));
  for (int64_t k = 0; k < per_rank; ++k) mine[size_t(k)] = order[size_t(k * size + rank)];
  return mine;
}

}  // namespace finch::dist
