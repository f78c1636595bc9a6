// Op capture: lets a listener see every primitive op a forward executes (kind, input and output
// tensors, attributes), so the compiler (compile/capture.h) can record a model's graph by running it
// once. Each functional op opens a CaptureScope on entry and calls record() with its result; only
// the outermost op is reported (linear's internal matmul, flatten's reshape stay hidden), so the
// graph holds the ops a user wrote. Costs one thread-local read per op when nothing listens.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/tensor.h"

namespace finch::autograd {

class OpListener {
 public:
  virtual ~OpListener() = default;
  // `kind` names the op as in runtime/ops.md ("conv2d", "add", "fake_quant", ...).
  virtual void op(const std::string& kind, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                  const nlohmann::json& attrs) = 0;
};

// Installs `l` as this thread's listener for the guard's lifetime (captures do not nest).
class CaptureOps {
 public:
  explicit CaptureOps(OpListener* l);
  ~CaptureOps();
  CaptureOps(const CaptureOps&) = delete;
  CaptureOps& operator=(const CaptureOps&) = delete;

 private:
  OpListener* previous_;
};

// True when a listener is installed and no op is being captured at this moment: a caller that
// wants to report a composite computation as one op (quant/'s conv units) opens its own scope.
bool capturing();

// Opened at the top of a functional op. When a listener is installed and no enclosing op is
// being captured, record() reports the op; otherwise it does nothing.
class CaptureScope {
 public:
  CaptureScope();
  ~CaptureScope();
  CaptureScope(const CaptureScope&) = delete;
  CaptureScope& operator=(const CaptureScope&) = delete;
  // True when this op will be reported (so attributes are only built when needed).
  bool active() const { return outermost_; }
  void record(const std::string& kind, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
              const nlohmann::json& attrs = nlohmann::json::object()) const;

 private:
  bool counted_ = false, outermost_ = false;
};

}  // namespace finch::autograd
