// The all-reduce alone, as data-parallel training calls it (framework/dist.h, F32 sum in place):
// median time per call for bucket sizes from 4 KiB to MAX_MIB (default 4; BERT-mini's tied word
// embedding is a 30 MiB bucket alone), ranks lined up by a barrier before each call so the time
// is the transfer, not one rank waiting for a slower one.
// Run: mpirun --allow-run-as-root --oversubscribe -np 2 build/bin/bench_allreduce [ITERATIONS] [MAX_MIB]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "framework/dist.h"
#include "framework/error.h"

int main(int argc, char** argv) {
  try {
    const int iters = argc > 1 ? std::atoi(argv[1]) : 30;
    if (iters < 1 || iters > 100000) finch::fail("bench_allreduce: ITERATIONS must be in [1, 100000], got ", argv[1]);
    const int max_mib = argc > 2 ? std::atoi(argv[2]) : 4;
    if (max_mib < 1 || max_mib > 1024) finch::fail("bench_allreduce: MAX_MIB must be in [1, 1024], got ", argv[2]);
    finch::dist::Communicator& comm = finch::dist::world();
    if (comm.rank() == 0)
      std::printf("%d processes, %s; median of %d calls after a barrier each\n%10s %12s %12s\n", comm.size(),
                  comm.backend().c_str(), iters, "bytes", "us/call", "busbw GB/s");
    for (int64_t bytes = 4096; bytes <= (int64_t(max_mib) << 20); bytes *= 2) {
      std::vector<float> buf(size_t(bytes / 4), 1.0f);
      std::vector<double> us;
      for (int i = 0; i < iters + 2; ++i) {
        comm.barrier();
        const auto t0 = std::chrono::steady_clock::now();
        comm.all_reduce_sum(buf.data(), int64_t(buf.size()));
        const double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        if (i >= 2) us.push_back(t);  // two warm-up calls
      }
      std::sort(us.begin(), us.end());
      const double med = us[us.size() / 2];
      // Bus bandwidth as NCCL's tests define it: 2(N-1)/N of the buffer crosses each link.
      const double busbw = 2.0 * (comm.size() - 1) / comm.size() * double(bytes) / (med * 1e3);
      if (comm.rank() == 0) std::printf("%10lld %12.1f %12.3f\n", static_cast<long long>(bytes), med, busbw);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_allreduce: %s\n", e.what());
    if (finch::dist::launcher_world_size() > 1) finch::dist::world().abort(1);
    return 1;
  }
}
