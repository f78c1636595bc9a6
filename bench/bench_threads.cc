// Whole-program thread scaling: runs .finch programs at 1 and 2 threads in alternating rounds and
// prints the median latency of each, and with --profile the per-node time at each thread count
// (the layers a second thread slows down, sorted by how much), so a pool change is judged on the
// networks it is for, side by side in one process.
//
//   build/bin/bench_threads /tmp/p/resnet20-fp32.finch /tmp/p/resnet20-int8.finch --iters 300 --rounds 3
//   build/bin/bench_threads /tmp/p/resnet20-fp32.finch --profile
// With --fusion-ab it instead times each program with and without the load-time fusion
// (ProgramOptions::fuse: a qadd run as its qconv2d's epilogue), alternating the two in every
// round, after checking that they give the same outputs:
//   build/bin/bench_threads /tmp/p/resnet20-int8.finch --fusion-ab --iters 300 --rounds 5
// With --igemm-ab the int8 convs' indirect conv (kernels/qs8_igemm.h) against the phase-plane
// GEMM the same way, in one program (kernels::qs8::set_igemm_enabled between the runs):
//   build/bin/bench_threads /tmp/p/resnet20-int8.finch --igemm-ab --iters 300 --rounds 5
// With --choice-ab the per-node thread choice (runtime/thread_choice.h) against every node split
// as the cost model plans (ProgramOptions::choose_threads off), one program each, the same way:
//   build/bin/bench_threads /tmp/p/resnet20-int8.finch --choice-ab --iters 300 --rounds 5
// With --lanes it times nothing: per conv node, the share of its input that another thread wrote
// at --threads threads, from the chunk partitions (runtime/lane_traffic.h), with the depthwise
// convs split by bands and, for comparison, by channels as before:
//   build/bin/bench_threads /tmp/p/mnv1-int8.finch --lanes
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <ctime>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/parallel_internal.h"
#include "framework/random.h"
#include "kernels/qs8_igemm.h"
#include "runtime/executor.h"
#include "runtime/lane_traffic.h"
#include "runtime/program_file.h"
#include "runtime/thread_choice.h"
#include "runtime/verify.h"

namespace {

using namespace finch;
using Clock = std::chrono::steady_clock;

int64_t parse_count(const char* flag, const char* s, int64_t lo, int64_t hi) {
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < lo || v > hi)
    fail(flag, " expects an integer in [", lo, ", ", hi, "], got '", s, "'");
  return v;
}

// Random inputs at the declared shapes (batch 1): N(0, 1) floats, uniform codes for coded ones.
std::vector<Tensor> inputs_for(const runtime::Graph& g, const std::string& what) {
  Generator gen(1);
  std::vector<Tensor> xs;
  for (int32_t i : g.inputs) {
    const runtime::Value& v = g.values[size_t(i)];
    Shape s = v.shape;
    if (s.empty()) fail(what, ": input '", v.name, "' is a scalar; expected a batch dimension");
    s[0] = 1;
    if (v.dtype == DType::f32) xs.push_back(randn(s, gen));
    else if ((v.dtype == DType::i8 || v.dtype == DType::u8) && v.quant)
      xs.push_back(randint(v.quant->qmin, v.quant->qmax + 1, s, gen, v.dtype));
    else
      fail(what, ": input '", v.name, "' has dtype ", dtype_name(v.dtype), "; expected f32 or coded i8/u8");
  }
  return xs;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The 10th percentile: on the shared machine the runs least disturbed by other processes, the
// closest this machine comes to a quiet one (the median mixes in how busy the others were).
double p10(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 10];
}

// The median ms of one program fused and unfused at 1..max_threads, the two alternating. With
// `igemm` instead: one program, the int8 convs on the indirect conv (qs8_igemm.h) or on the
// phase-plane GEMM, switched between the runs by quant::kernels::qs8::set_igemm_enabled.
enum class Ab { fusion, igemm, choice };

void fusion_ab(const std::string& path, int64_t iters, int64_t warmup, int64_t rounds, int64_t max_threads,
               Ab mode) {
  namespace qs8 = quant::kernels::qs8;
  const bool igemm = mode == Ab::igemm;
  runtime::ProgramOptions off;
  off.fuse = mode != Ab::fusion;
  off.choose_threads = mode != Ab::choice;
  runtime::Program fused(runtime::read_program(path), path), plain(runtime::read_program(path), path, off);
  const std::vector<Tensor> xs = inputs_for(fused.graph(), path);
  const std::vector<Tensor> a = fused.run(xs);
  qs8::set_igemm_enabled(!igemm);
  const std::vector<Tensor> b = plain.run(xs);
  qs8::set_igemm_enabled(true);
  const char* what = igemm ? "the indirect conv" : mode == Ab::choice ? "the thread choice" : "the fusion";
  for (size_t k = 0; k < a.size(); ++k) {
    const Tensor fa = a[k].to(DType::f32).contiguous(), fb = b[k].to(DType::f32).contiguous();
    if (fa.to_vector<float>() != fb.to_vector<float>()) fail(path, ": output ", k, " differs with ", what);
  }
  // Also the calling thread's CPU time per run: at 1 thread it leaves out the time the OS gave
  // other processes in the middle of a run, which dominates wall-time noise on a loaded machine.
  auto cpu_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return 1e3 * double(ts.tv_sec) + 1e-6 * double(ts.tv_nsec);
  };
  std::vector<std::vector<double>> ms(2 * size_t(max_threads + 1)), cpu(ms.size());
  for (int64_t r = 0; r < rounds; ++r)
    for (int t = 1; t <= int(max_threads); ++t) {
      set_num_threads(t);
      for (int which = 0; which < 2; ++which) {
        const int pick = int(r + which) % 2;  // alternate which goes first
        runtime::Program& p = pick == 0 ? fused : plain;
        qs8::set_igemm_enabled(!igemm || pick == 0);
        for (int64_t w = 0; w < warmup; ++w) p.run(xs);
        for (int64_t k = 0; k < iters; ++k) {
          const auto t0 = Clock::now();
          const double c0 = cpu_ms();
          p.run(xs);
          cpu[size_t(2 * t + pick)].push_back(cpu_ms() - c0);
          ms[size_t(2 * t + pick)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
      }
    }
  qs8::set_igemm_enabled(true);
  std::printf("%s: %lld nodes fused away\n", path.c_str(), static_cast<long long>(fused.fused_nodes()));
  if (mode == Ab::choice && fused.thread_choice()) {
    // The choice at the last thread count: the nodes that run on the caller alone.
    std::printf("  at %d threads on the caller alone:", int(max_threads));
    for (size_t n = 0; n < fused.graph().nodes.size(); ++n)
      if (!fused.thread_choice()->split(n)) std::printf(" %s", fused.graph().nodes[n].name.c_str());
    std::printf("\n");
  }
  const char* on = igemm ? "indirect" : mode == Ab::choice ? "chosen" : "fused";
  const char* no = igemm ? "phase-plane" : mode == Ab::choice ? "cost-model" : "unfused";
  for (int t = 1; t <= int(max_threads); ++t) {
    const double f = median(ms[size_t(2 * t)]), u = median(ms[size_t(2 * t + 1)]);
    const double fc = median(cpu[size_t(2 * t)]), uc = median(cpu[size_t(2 * t + 1)]);
    std::printf("  %d thr: %s %.4f ms, %s %.4f ms, %s / %s %.3f; caller CPU %.4f / %.4f ms = %.3f\n", t, on, f, no,
                u, on, no, f / u, fc, uc, fc / uc);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> programs;
    int64_t iters = 300, warmup = 50, rounds = 3, max_threads = 2;
    bool profile = false, ab = false, lanes = false;
    Ab mode = Ab::fusion;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&] {
        if (i + 1 >= argc) fail(a, " needs a value");
        return argv[++i];
      };
      if (a == "--iters") iters = parse_count("--iters", next(), 1, 1000000);
      else if (a == "--warmup") warmup = parse_count("--warmup", next(), 0, 1000000);
      else if (a == "--rounds") rounds = parse_count("--rounds", next(), 1, 1000);
      else if (a == "--threads") max_threads = parse_count("--threads", next(), 2, 64);
      else if (a == "--profile") profile = true;
      else if (a == "--fusion-ab") ab = true;
      else if (a == "--igemm-ab") ab = true, mode = Ab::igemm;
      else if (a == "--choice-ab") ab = true, mode = Ab::choice;
      else if (a == "--lanes") lanes = true;
      else if (!a.empty() && a[0] == '-')
        fail("unknown option ", a,
             " (--iters, --warmup, --rounds, --threads, --profile, --fusion-ab, --igemm-ab, --choice-ab, --lanes)");
      else programs.push_back(a);
    }
    if (programs.empty())
      fail("usage: bench_threads PROGRAM... [--iters N] [--warmup N] [--rounds R] [--threads T] "
           "[--profile | --fusion-ab | --igemm-ab | --choice-ab | --lanes]");
    for (const std::string& path : programs) {
      if (lanes) {
        const runtime::Graph g = runtime::read_program(path);
        const auto by_channels = runtime::lane_traffic(g, int(max_threads), /*dw_by_channels=*/true);
        const auto now = runtime::lane_traffic(g, int(max_threads));
        std::printf("%s at %lld threads: input read across threads, depthwise split by channels -> as now\n",
                    path.c_str(), static_cast<long long>(max_threads));
        int64_t reads = 0, cross_before = 0, cross_now = 0;
        for (size_t i = 0; i < now.size(); ++i) {
          std::printf("  %-24.24s %-12s %6.1f %% -> %6.1f %%  (%lld elements read)\n", now[i].name.c_str(),
                      now[i].split.c_str(), 100 * by_channels[i].share(), 100 * now[i].share(),
                      static_cast<long long>(now[i].reads));
          reads += now[i].reads, cross_before += by_channels[i].cross, cross_now += now[i].cross;
        }
        std::printf("  all convs: %lld -> %lld of %lld elements read across threads\n",
                    static_cast<long long>(cross_before), static_cast<long long>(cross_now),
                    static_cast<long long>(reads));
        continue;
      }
      if (ab) {
        fusion_ab(path, iters, warmup, rounds, max_threads, mode);
        continue;
      }
      runtime::Graph g = runtime::read_program(path);
      if (const auto problems = runtime::verify(g, path); !problems.empty()) throw Error(problems[0]);
      runtime::Program p(std::move(g), path);
      const std::vector<Tensor> xs = inputs_for(p.graph(), path);
      // Per thread count: every timed run's ms (all rounds), and the per-node seconds summed.
      std::vector<std::vector<double>> ms(size_t(max_threads) + 1);
      std::vector<std::vector<double>> node_s(size_t(max_threads) + 1);
      std::vector<int64_t> node_runs(size_t(max_threads) + 1, 0);
      for (int64_t r = 0; r < rounds; ++r)
        for (int t = 1; t <= int(max_threads); ++t) {
          set_num_threads(t);
          for (int64_t w = 0; w < warmup; ++w) p.run(xs);
          runtime::Program* pp = &p;
          pp->set_profiling(profile);
          const std::vector<double> before = p.node_seconds();
          const int64_t runs_before = p.profiled_runs();
          detail::reset_pool_stats();
          for (int64_t k = 0; k < iters; ++k) {
            const auto t0 = Clock::now();
            p.run(xs);
            ms[size_t(t)].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          }
          pp->set_profiling(false);
          if (t > 1) {
            const detail::PoolStats st = detail::pool_stats();
            const double runs = double(iters);
            std::printf("  [%d thr, round %lld] per run: %.1f regions (%.1f inline, %.1f solo, %.1f shared), %.1f chunks "
                        "(%.1f by workers), %.2f waits (%.1f us), %.3f stalls, %.3f absences\n",
                        t, static_cast<long long>(r), double(st.regions) / runs, double(st.inline_regions) / runs,
                        double(st.solo_regions) / runs, double(st.shared_regions) / runs, double(st.chunks) / runs,
                        double(st.worker_chunks) / runs, double(st.waits) / runs, 1e-3 * double(st.wait_ns) / runs,
                        double(st.stalls) / runs, double(st.absences) / runs);
          }
          if (profile) {
            auto& acc = node_s[size_t(t)];
            acc.resize(p.node_seconds().size(), 0.0);
            for (size_t n = 0; n < acc.size(); ++n)
              acc[n] += p.node_seconds()[n] - (n < before.size() ? before[n] : 0.0);
            node_runs[size_t(t)] += p.profiled_runs() - runs_before;
          }
        }
      std::printf("%s:", path.c_str());
      for (int t = 1; t <= int(max_threads); ++t) std::printf("  %d thr %.3f ms", t, median(ms[size_t(t)]));
      std::printf("  (1 thr / %d thr = %.2fx; p10", int(max_threads), median(ms[1]) / median(ms[size_t(max_threads)]));
      for (int t = 1; t <= int(max_threads); ++t) std::printf(" %.3f", p10(ms[size_t(t)]));
      std::printf(" ms = %.2fx)\n", p10(ms[1]) / p10(ms[size_t(max_threads)]));
      if (profile) {
        // Mean µs per node per run at 1 and at max threads, largest regressions first.
        const auto& nodes = p.graph().nodes;
        std::vector<size_t> order(nodes.size());
        for (size_t n = 0; n < order.size(); ++n) order[n] = n;
        auto us = [&](int t, size_t n) {
          return 1e6 * node_s[size_t(t)][n] / double(std::max<int64_t>(1, node_runs[size_t(t)]));
        };
        const int T = int(max_threads);
        std::sort(order.begin(), order.end(),
                  [&](size_t a, size_t b) { return us(T, a) - us(1, a) > us(T, b) - us(1, b); });
        double sum1 = 0, sumT = 0;
        std::printf("  %-40s %-22s %9s %9s\n", "node", "op", "1 thr us", "N thr us");
        for (size_t n : order) {
          sum1 += us(1, n), sumT += us(T, n);
          std::printf("  %-40.40s %-22.22s %9.2f %9.2f\n", nodes[n].name.c_str(), nodes[n].op.c_str(), us(1, n),
                      us(T, n));
        }
        std::printf("  %-63s %9.2f %9.2f\n", "sum of nodes", sum1, sumT);
      }
    }
    set_num_threads(1);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_threads: %s\n", e.what());
    return 1;
  }
}
