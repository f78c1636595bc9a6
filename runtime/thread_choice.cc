// ThreadChoice (thread_choice.h): the per-node split-or-not choice learned from a program's runs.
#include "runtime/thread_choice.h"

#include <algorithm>

namespace finch::runtime {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void push(std::vector<double>& ring, int& next, double s) {
  if (int(ring.size()) < ThreadChoice::kSamples) {
    ring.push_back(s);
    return;
  }
  ring[size_t(next)] = s;
  next = (next + 1) % ThreadChoice::kSamples;
}

}  // namespace

ThreadChoice::ThreadChoice(std::vector<bool> choosable) : nodes_(choosable.size()) {
  for (size_t i = 0; i < nodes_.size(); ++i) nodes_[i].choosable = choosable[i];
}

void ThreadChoice::begin_run(int threads, int64_t batch) {
  if (threads != threads_ || batch != batch_) {  // choices for one say nothing about another
    threads_ = threads, batch_ = batch, run_ = 0;
    all_alone_ = false;
    whole_one_.clear(), whole_choice_.clear(), whole_one_next_ = whole_choice_next_ = 0;
    for (Node& n : nodes_) {
      const bool c = n.choosable;
      n = Node();
      n.choosable = c;
    }
  }
  ++run_;
  measuring_ = false, flip_ = 0;
  if (threads_ <= 1) {
    any_split_ = false;
    return;
  }
  const int64_t r = run_ - kSettleRuns;  // the learning runs are r = 1 .. kLearnRuns + 1
  if (r < 1) {
    // Settling: whether each node splits is learned, nothing is timed.
    measuring_ = true, flip_ = 2;
  } else if (r <= kLearnRuns + 1) {
    // Half the nodes capped, alternating by node and run: each node is timed both ways in runs
    // with the workers awake and the same mix of split neighbours (a run of all-capped nodes let
    // the workers fall asleep, and the next run's first split nodes found no worker).
    measuring_ = true, flip_ = r % 2 ? 4 : 5;
  } else if (r <= kLearnRuns + 1 + kWholeRuns) {
    flip_ = (r - kLearnRuns) % 2 ? 9 : 8;  // the whole-run comparison, alternating
  } else {
    const int64_t phase = (r - kLearnRuns - 2 - kWholeRuns) % kExploreEvery;
    if (phase == kExploreEvery - 4) flip_ = 8;
    if (phase == kExploreEvery - 3) flip_ = 9;
    if (phase == kExploreEvery - 2) measuring_ = true, flip_ = 6;
    if (phase == kExploreEvery - 1) measuring_ = true, flip_ = 7;
  }
  // Measured and whole-timed runs keep the workers awake throughout (an all-capped run that let
  // them sleep would leave the next timed run's first split nodes without a worker).
  any_split_ = measuring_ || timing_whole();
  for (size_t i = 0; i < nodes_.size() && !any_split_; ++i)
    any_split_ = nodes_[i].splits && cap(i) == 0;
}

int ThreadChoice::cap(size_t node) const {
  const Node& n = nodes_[node];
  if (threads_ <= 1 || !n.choosable) return 0;
  const bool odd = node % 2;
  switch (flip_) {
    case 2: return 0;
    case 4: return odd ? 1 : 0;
    case 5: return odd ? 0 : 1;
    case 6: return n.split != odd ? 0 : 1;  // odd nodes the other way
    case 7: return n.split == odd ? 0 : 1;  // even nodes the other way
    case 8: return 1;
    case 9: return n.split ? 0 : 1;
    default: return n.split && !all_alone_ ? 0 : 1;
  }
}

void ThreadChoice::record(size_t node, double seconds, int64_t regions) {
  Node& n = nodes_[node];
  if (regions > 0) n.splits = true;
  if (run_ <= kSettleRuns + 1 || !n.choosable) return;
  // Uncapped, a node that splits but ran no pool region this time ran on the caller anyway (the
  // pool was backing off under load, or another thread held it): no sample of splitting.
  if (cap(node) == 0 && n.splits && regions == 0) return;
  if (cap(node) == 1)
    push(n.one, n.one_next, seconds);
  else
    push(n.many, n.many_next, seconds);
}

void ThreadChoice::end_run(double seconds) {
  if (measuring_ && run_ >= kSettleRuns + kLearnRuns + 1) decide();
  if (!timing_whole() || !(seconds >= 0)) return;
  if (flip_ == 8) push(whole_one_, whole_one_next_, seconds);
  else push(whole_choice_, whole_choice_next_, seconds);
  // Three of each at least, compared by their fastest: what disturbs a run (another process, a
  // worker still waking, a slow stretch of the 2-thread mode) only adds time, and it disturbed
  // the split runs more often than the capped ones (medians chose "alone" for ResNet-20 fp32 in 2
  // of 3 processes although split ran 0.50 ms against 0.58).
  if (whole_one_.size() >= 3 && whole_choice_.size() >= 3)
    all_alone_ = *std::min_element(whole_one_.begin(), whole_one_.end()) <
                 kWholeGain * *std::min_element(whole_choice_.begin(), whole_choice_.end());
}

void ThreadChoice::decide() {
  for (Node& n : nodes_) {
    if (!n.choosable || n.one.empty() || n.many.empty()) continue;
    // A node that never ran a pool region has nothing to win from a cap: it stays as planned.
    n.split = !n.splits || !(median(n.one) < kAloneGain * median(n.many));
  }
}

}  // namespace finch::runtime
