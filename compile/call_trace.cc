// Call traces through nn::CallTracer.
#include "compile/call_trace.h"

#include <unordered_map>

#include "autograd/capture.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::compile {

std::string CallSite::key() const {
  const std::string name = path.empty() ? "<input>" : path;
  return call == 0 ? name : name + "#" + std::to_string(call);
}

namespace {

class Recorder : public nn::CallTracer, public autograd::OpListener {
 public:
  Recorder(CallTrace& t, const std::unordered_map<const nn::Module*, std::string>& paths) : t_(t), paths_(paths) {}
  void enter(nn::Module& m, const Tensor& x, int64_t call) override {
    CallSite s;
    s.module = &m;
    const auto it = paths_.find(&m);
    if (it == paths_.end())
      fail("trace_calls: a ", m.type_name(), " module was called that is not registered in the model "
           "(register every submodule with register_module so passes can find it)");
    s.path = it->second;
    s.type = m.type_name();
    s.call = call;
    s.input = x;
    s.parent = stack_.empty() ? -1 : stack_.back();
    const int64_t id = int64_t(t_.sites.size());
    if (s.parent >= 0) t_.sites[size_t(s.parent)].children.push_back(id);
    t_.sites.push_back(std::move(s));
    stack_.push_back(id);
  }
  void exit(nn::Module&, const Tensor& y, int64_t) override {
    const int64_t id = stack_.back();
    stack_.pop_back();
    t_.sites[size_t(id)].output = y;
    t_.exit_order.push_back(id);
  }
  // Functional ops: only zero pads matter to the plan (capture records pad with its fill value),
  // and mask_steps, which only writes zeros too (the steps past each length).
  void op(const std::string& kind, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
          const nlohmann::json& attrs) override {
    if (kind == "pad" && inputs.size() == 1 && outputs.size() == 1 && attrs.value("value", 1.0) == 0.0)
      t_.zero_pads.push_back({inputs[0], outputs[0]});
    if (kind == "mask_steps" && inputs.size() == 2 && outputs.size() == 1) t_.zero_pads.push_back({inputs[0], outputs[0]});
  }

 private:
  CallTrace& t_;
  const std::unordered_map<const nn::Module*, std::string>& paths_;
  std::vector<int64_t> stack_;
};

}  // namespace

int64_t CallTrace::producer(const Tensor& t) const {
  // The last leaf to return t; a leaf that returned its own input (Identity, Dropout in eval)
  // passes the question on to whoever produced that input.
  for (auto it = exit_order.rbegin(); it != exit_order.rend(); ++it) {
    const CallSite& s = sites[size_t(*it)];
    if (!s.leaf() || !s.output.is_same(t)) continue;
    if (s.input.is_same(t)) continue;
    return *it;
  }
  return -1;
}

std::vector<int64_t> CallTrace::consumers(const Tensor& t) const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < sites.size(); ++i)
    if (sites[i].leaf() && sites[i].input.is_same(t)) out.push_back(int64_t(i));
  return out;
}

const Tensor* CallTrace::zero_pad_source(const Tensor& t) const {
  // Through a chain (a mask_steps, then the pad of an even kernel's "same" padding) to its start.
  const Tensor* src = nullptr;
  for (bool more = true; more;) {
    more = false;
    for (const ZeroPad& p : zero_pads)
      if (p.output.is_same(src ? *src : t)) {
        src = &p.input;
        more = true;
        break;
      }
  }
  return src;
}

int64_t CallTrace::calls_of(const nn::Module* m) const {
  int64_t n = 0;
  for (const auto& s : sites) n += s.module == m;
  return n;
}

CallTrace trace_calls(nn::Module& model, const Tensor& example) {
  std::unordered_map<const nn::Module*, std::string> paths;
  for (auto& [path, m] : model.named_modules()) paths.emplace(m, path);
  CallTrace t;
  const bool was_training = model.is_training();
  model.eval();
  try {
    Recorder r(t, paths);
    nn::TraceCalls guard(&r);
    autograd::CaptureOps ops(&r);
    NoGradGuard ng;
    model.forward(example);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return t;
}

}  // namespace finch::compile
