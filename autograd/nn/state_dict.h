// StateDict: an insertion-ordered name -> Tensor map, the unit of checkpoints (module weights,
// optimizer state). Names follow PyTorch ("layer1.0.conv1.weight", "state.3.exp_avg").
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "framework/error.h"
#include "framework/tensor.h"

namespace finch::nn {

class StateDict {
 public:
  using Item = std::pair<std::string, Tensor>;

  // Adds `name`, or replaces its tensor keeping its position (like assigning in a Python dict).
  void insert(const std::string& name, const Tensor& t) {
    auto it = index_.find(name);
    if (it != index_.end()) {
      items_[it->second].second = t;
      return;
    }
    index_.emplace(name, items_.size());
    items_.emplace_back(name, t);
  }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // The tensor stored under `name`; throws finch::Error naming the key when it is absent.
  const Tensor& at(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) fail("StateDict: no entry named '", name, "'");
    return items_[it->second].second;
  }
  // Null when absent.
  const Tensor* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    k.reserve(items_.size());
    for (const auto& [n, t] : items_) k.push_back(n);
    return k;
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::vector<Item>::const_iterator begin() const { return items_.begin(); }
  std::vector<Item>::const_iterator end() const { return items_.end(); }

 private:
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace finch::nn
