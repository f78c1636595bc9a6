// Containers: Sequential (children "0", "1", ... whose forwards chain) and ModuleList (an
// indexable list of children with no forward of its own), named like torch.nn's.
#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "autograd/nn/module.h"

namespace finch::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<ModulePtr> modules);
  explicit Sequential(const std::vector<ModulePtr>& modules);
  std::string type_name() const override { return "Sequential"; }

  // Appends `m` as child str(size()).
  void push_back(ModulePtr m);
  size_t size() const { return layers_.size(); }
  const ModulePtr& operator[](size_t i) const;
  // Calls each child's forward on the previous one's output.
  Tensor forward_impl(const Tensor& x) override;

 private:
  std::vector<ModulePtr> layers_;
};

class ModuleList : public Module {
 public:
  ModuleList() = default;
  ModuleList(std::initializer_list<ModulePtr> modules);
  std::string type_name() const override { return "ModuleList"; }

  void push_back(ModulePtr m);
  size_t size() const { return items_.size(); }
  const ModulePtr& operator[](size_t i) const;
  std::vector<ModulePtr>::const_iterator begin() const { return items_.begin(); }
  std::vector<ModulePtr>::const_iterator end() const { return items_.end(); }

 private:
  std::vector<ModulePtr> items_;
};

}  // namespace finch::nn
