// Per node of a program, whether it runs split over the pool's threads or on the calling thread
// alone, learned from the program's own runs on this machine (Program::run uses it).
//
// Why measured and not only modelled: the pool's cost model (framework/parallel_plan.cc) turns
// work into time with rates from one reference machine, and the fork/join, the worker's start and
// the data the other core must pull into its cache are not in it. On the 2-core reference VM a
// ResNet-20 3×3 conv at 28×28 (10 µs) ran 0.87× as fast split as on one thread, and a whole int8
// ResNet-20 0.70-0.90×: the model split layers the machine could not win on. Measuring each node
// both ways in the program's first runs, and again now and then (the machine's load changes),
// keeps every node on whichever is faster here, so a second thread never makes a program slower
// than one thread — up to the noise of the measurement.
//
// Results do not depend on the choice: every kernel a program prepares computes each output the
// same way in any split (tests/runtime/test_thread_choice.cc checks whole programs at 1, 2 and 3
// threads). Only nodes on a prepared kernel are chosen for (the plain ops may call OpenBLAS,
// whose threads a ThreadLimit does not govern); the rest always run as the pool splits them.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace finch::runtime {

class ThreadChoice {
 public:
  // Runs at a new thread count or batch before learning starts, all split as the cost model
  // plans. On the 2-core VM under load the first runs after set_num_threads(2) often found the
  // new worker taking almost no chunks (bench_threads: 0.1 of 117 per ResNet-20 run; the OS
  // had not yet given it a core), and learning there measured every split of MobileNet v1 as no
  // faster than one thread.
  static constexpr int kSettleRuns = 20;
  // Runs then measured, with every other node capped, alternating.
  static constexpr int kLearnRuns = 10;
  // After learning: every kExploreEvery runs, two measured runs, each with half the nodes the
  // other way (odd nodes, then even), so a change of load moves the choice.
  static constexpr int kExploreEvery = 32;
  // Samples kept per node and way (the choice compares their medians).
  static constexpr int kSamples = 5;
  // A node runs on the caller alone only when that is faster than split by this factor: the
  // split is the cost model's plan, and a node's own time leaves out what its split does for the
  // next node (whose input is then already spread over both cores' caches). Per node, with no
  // margin (0.97 the other way), MobileNet v1 α 0.5 224² int8 took its stem (171 µs, ~1.1×
  // split) off the worker and ran 1.13× slower than all-split at 2 threads.
  static constexpr double kAloneGain = 0.9;

  // The per-node medians miss what a node's split costs the nodes around it: a layer's output
  // written by both cores, then padded or copied by one (fp32 Winograd's pad wrote lines the other
  // core held: 3.9 µs at one thread, ~19 µs at two, perf, docs/threads.md), so a program can be
  // slower at 2 threads with every node "faster" split. So whole runs are compared too: after
  // learning, kWholeRuns runs alternate between every choosable node capped (the one-thread
  // program) and the choice, and each exploration round adds one of each; when the capped runs'
  // fastest (of the last kSamples) beats the choice's by kWholeGain, every choosable node runs on
  // the caller (a second thread then costs nothing). The margin: 2-thread runs come in slow
  // stretches on this VM (docs/threads.md), and with none (and medians) MobileNetV2 int8 (0.57 ms
  // split, 0.73 alone) went alone in 1 of 5 processes.
  static constexpr int kWholeRuns = 10;
  static constexpr double kWholeGain = 0.95;

  // `choosable[i]`: whether node i may be capped (runs on a prepared kernel).
  explicit ThreadChoice(std::vector<bool> choosable);

  // Starts one run at `threads` pool threads with a batch of `batch` (a new thread count or
  // batch starts learning again: a layer 8× larger may well pay for a split that did not).
  void begin_run(int threads, int64_t batch);
  // The thread cap for node i in this run: 1 = the caller alone, 0 = no cap.
  int cap(size_t node) const;
  // Whether this run measures its nodes (then record() each one).
  bool measuring() const { return measuring_; }
  // Whether any node of this run may split (the program holds its workers awake only then).
  bool any_split() const { return any_split_; }
  // Node i ran in `seconds`, and ran `regions` regions on the pool (0: it did not split).
  void record(size_t node, double seconds, int64_t regions);
  // Whether this run's whole time is wanted (then pass it to end_run).
  bool timing_whole() const { return flip_ == 8 || flip_ == 9; }
  // `seconds`: the whole run's time when timing_whole(), else ignored.
  void end_run(double seconds = -1);

  // Held by the run that chooses (Program::execute try-locks it): a second application thread
  // running the same program meanwhile runs it unchosen and unmeasured.
  std::mutex& mutex() { return mu_; }

  // The current choice (tests and benchmarks): true = split over the threads.
  bool split(size_t node) const { return nodes_[node].split; }
  bool learning() const { return run_ <= kSettleRuns + kLearnRuns; }
  // Whether whole runs showed the one-thread program faster, so every choosable node is capped.
  bool all_alone() const { return all_alone_; }

 private:
  struct Node {
    bool choosable = false;
    bool splits = false;  // ran at least one pool region when uncapped
    bool split = true;    // the choice
    std::vector<double> one, many;  // recent samples, seconds (rings of kSamples)
    int one_next = 0, many_next = 0;
  };
  void decide();

  std::mutex mu_;
  std::vector<Node> nodes_;
  int threads_ = 0;
  int64_t batch_ = 0;
  int64_t run_ = 0;     // runs at this thread count, this one included
  // This run: 0 = the choice, 2 = all split, 4/5 = odd/even nodes capped (learning), 6/7 = odd/even
  // nodes the other way (exploring), 8 = every choosable node capped and 9 = the per-node choice,
  // both timed whole.
  int flip_ = 0;
  bool measuring_ = false, any_split_ = true;
  bool all_alone_ = false;
  std::vector<double> whole_one_, whole_choice_;  // whole-run seconds of flips 8 and 9 (rings)
  int whole_one_next_ = 0, whole_choice_next_ = 0;
};

}  // namespace finch::runtime
