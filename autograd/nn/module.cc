// nn::Module: registration, recursive traversal with PyTorch names, state_dict load/save,
// train/eval, zero_grad and in-place dtype conversion.
#include "autograd/nn/module.h"
#include "autograd/nn/sequence.h"

#include <sstream>
#include <unordered_set>

#include "framework/grad_mode.h"

namespace finch::nn {

Tensor Module::forward_impl(const Tensor&) {
  fail(type_name(), ": this module has no single-input forward(); call its own forward method");
}

namespace {
// Per thread: how deep in module calls we are, which outermost forward this is (so call
// counters restart with each top-level call) and the installed tracer.
thread_local int64_t t_depth = 0;
thread_local uint64_t t_pass = 0;
thread_local CallTracer* t_tracer = nullptr;

struct Depth {
  Depth() {
    if (t_depth++ == 0) ++t_pass;
  }
  ~Depth() { --t_depth; }
};
}  // namespace

ForwardPass::ForwardPass() {
  if (t_depth++ == 0) ++t_pass;
}
ForwardPass::~ForwardPass() { --t_depth; }

TraceCalls::TraceCalls(CallTracer* t) : previous_(t_tracer) { t_tracer = t; }
TraceCalls::~TraceCalls() { t_tracer = previous_; }

Tensor Module::forward(const Tensor& x) {
  if (replaced_by_) return replaced_by_->forward(x);
  Depth depth;
  if (call_pass_ != t_pass) {
    call_pass_ = t_pass;
    calls_ = 0;
  }
  const int64_t call = calls_++;
  if (!interceptor_ && !t_tracer) return forward_impl(x);
  if (t_tracer) t_tracer->enter(*this, x, call);
  Tensor y = interceptor_ ? interceptor_->run(*this, x, call) : forward_impl(x);
  if (t_tracer) t_tracer->exit(*this, y, call);
  return y;
}

void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty()) fail(type_name(), ": cannot register a ", what, " with an empty name");
  if (name.find('.') != std::string::npos)
    fail(type_name(), ": ", what, " name '", name, "' must not contain '.'");
  bool taken = false;
  for (const auto& [n, t] : params_) taken |= n == name;
  for (const auto& b : buffers_) taken |= b.name == name;
  for (const auto& [n, m] : children_) taken |= n == name;
  if (taken) fail(type_name(), ": cannot register ", what, " '", name, "': the name is already taken");
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name, "parameter");
  if (t.defined()) {
    if (!is_floating(t.dtype()))
      fail(type_name(), ": parameter '", name, "' must be floating point, got ", dtype_name(t.dtype()));
    if (!t.is_leaf())
      fail(type_name(), ": parameter '", name, "' must be a leaf tensor; pass t.detach()");
    t.set_requires_grad(requires_grad);
  }
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t, bool persistent) {
  check_new_name(name, "buffer");
  buffers_.push_back({name, t, persistent});
  return t;
}

void Module::add_child(const std::string& name, ModulePtr m) {
  check_new_name(name, "module");
  if (!m) fail(type_name(), ": cannot register a null module as '", name, "'");
  children_.emplace_back(name, std::move(m));
}

ModulePtr Module::replace_child(const std::string& name, ModulePtr m) {
  if (!m) fail(type_name(), ": cannot replace child '", name, "' with a null module");
  for (auto& [n, child] : children_) {
    if (n != name) continue;
    if (child == m) return child;
    ModulePtr old = child;
    old->replaced_by_ = m;
    child = std::move(m);
    return old;
  }
  fail(type_name(), ": cannot replace child '", name, "': no child has that name");
}

static std::string join(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  return name.empty() ? prefix : prefix + "." + name;
}

void Module::collect_parameters(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [n, t] : params_)
    if (t.defined()) out.emplace_back(join(prefix, n), t);
  for (const auto& [n, m] : children_) m->collect_parameters(join(prefix, n), out);
}

void Module::collect_buffers(const std::string& prefix, NamedTensors& out,
                             bool persistent_only) const {
  for (const auto& b : buffers_)
    if (b.tensor.defined() && (b.persistent || !persistent_only))
      out.emplace_back(join(prefix, b.name), b.tensor);
  for (const auto& [n, m] : children_) m->collect_buffers(join(prefix, n), out, persistent_only);
}

// Dedup by tensor identity: a weight shared by two layers (tied embeddings) is one parameter,
// and an optimizer must not step it twice.
static NamedTensors dedup(NamedTensors in) {
  std::unordered_set<const TensorImpl*> seen;
  NamedTensors out;
  for (auto& [n, t] : in)
    if (seen.insert(t.impl()).second) out.emplace_back(std::move(n), std::move(t));
  return out;
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  if (!recurse) {
    for (const auto& [n, t] : params_)
      if (t.defined()) out.emplace_back(n, t);
    return out;
  }
  collect_parameters("", out);
  return dedup(std::move(out));
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  if (!recurse) {
    for (const auto& b : buffers_)
      if (b.tensor.defined()) out.emplace_back(b.name, b.tensor);
    return out;
  }
  collect_buffers("", out, /*persistent_only=*/false);
  return dedup(std::move(out));
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (const auto& [n, m] : children_)
    for (auto& [sub, ptr] : m->named_modules()) out.emplace_back(join(n, sub), ptr);
  return out;
}

// torch's Module._save_to_state_dict: this module's parameters, then its persistent buffers,
// then each child under its prefix.
void Module::collect_state(const std::string& prefix, StateDict& out) const {
  for (const auto& [n, t] : params_)
    if (t.defined()) out.insert(join(prefix, n), t.detach());
  for (const auto& b : buffers_)
    if (b.tensor.defined() && b.persistent) out.insert(join(prefix, b.name), b.tensor.detach());
  for (const auto& [n, m] : children_) m->collect_state(join(prefix, n), out);
}

StateDict Module::state_dict() const {
  StateDict out;
  collect_state("", out);
  return out;
}

static std::string quoted_list(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", \"" : "\"") + names[i] + "\"";
  return s;
}

LoadResult Module::load_state_dict(const StateDict& dict, bool strict) {
  const StateDict own = state_dict();
  LoadResult r;
  std::vector<std::string> mismatches;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source), applied only if all is well
  for (const auto& [name, dst] : own) {
    const Tensor* src = dict.find(name);
    if (!src) {
      r.missing_keys.push_back(name);
      continue;
    }
    if (!src->defined()) {
      mismatches.push_back(detail::cat("entry ", name, " is an undefined tensor"));
    } else if (src->shape() != dst.shape()) {
      mismatches.push_back(detail::cat("size mismatch for ", name, ": copying a param with shape ",
                                       shape_str(src->shape()), " from checkpoint, the shape in "
                                       "current model is ", shape_str(dst.shape())));
    } else if (is_floating(src->dtype()) != is_floating(dst.dtype())) {
      // Floating dtypes convert like torch's copy_; mixing floats and integers is a wrong file.
      mismatches.push_back(detail::cat("dtype mismatch for ", name, ": copying a ",
                                       dtype_name(src->dtype()), " tensor from checkpoint, the "
                                       "dtype in current model is ", dtype_name(dst.dtype())));
    } else {
      copies.emplace_back(dst, *src);
    }
  }
  for (const auto& [name, t] : dict)
    if (!own.contains(name)) r.unexpected_keys.push_back(name);

  const bool key_errors = strict && (!r.missing_keys.empty() || !r.unexpected_keys.empty());
  if (key_errors || !mismatches.empty()) {
    std::ostringstream msg;
    // torch's order: missing, unexpected, then size mismatches.
    msg << "Error(s) in loading state_dict for " << type_name() << ":";
    if (strict && !r.missing_keys.empty())
      msg << "\n\tMissing key(s) in state_dict: " << quoted_list(r.missing_keys) << ".";
    if (strict && !r.unexpected_keys.empty())
      msg << "\n\tUnexpected key(s) in state_dict: " << quoted_list(r.unexpected_keys) << ".";
    for (const auto& m : mismatches) msg << "\n\t" << m << ".";
    throw Error(msg.str());
  }
  NoGradGuard ng;  // in-place copies into leaves that require grad
  for (auto& [dst, src] : copies) dst.copy_(src);
  return r;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters())
    if (t.grad().defined()) t.set_grad(Tensor());
}

// Rewrites the TensorImpl in place so every handle to the tensor sees the new dtype.
static void convert_in_place(const Tensor& t, DType dtype) {
  if (!t.defined() || !is_floating(t.dtype()) || t.dtype() == dtype) return;
  Tensor c = t.detach().to(dtype).contiguous();
  TensorImpl* impl = t.impl();
  impl->storage = c.storage();
  impl->dtype = dtype;
  impl->shape = c.shape();
  impl->strides = c.strides();
  impl->offset = c.offset();
  if (t.grad().defined()) t.set_grad(t.grad().to(dtype));
}

void Module::to(DType dtype) {
  if (!is_floating(dtype)) fail(type_name(), ".to: expected a floating dtype, got ", dtype_name(dtype));
  for (auto& t : parameters()) convert_in_place(t, dtype);
  for (auto& t : buffers()) convert_in_place(t, dtype);
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& t : parameters()) n += t.numel();
  return n;
}

}  // namespace finch::nn
