// Op capture: the thread-local listener and the outermost-op scope (see capture.h).
#include "autograd/capture.h"

namespace finch::autograd {

namespace {
thread_local OpListener* t_listener = nullptr;
thread_local int t_depth = 0;  // open CaptureScopes while a listener is installed
}  // namespace

CaptureOps::CaptureOps(OpListener* l) : previous_(t_listener) {
  t_listener = l;
  t_depth = 0;
}
CaptureOps::~CaptureOps() {
  t_listener = previous_;
  t_depth = 0;
}

bool capturing() { return t_listener != nullptr && t_depth == 0; }

CaptureScope::CaptureScope() {
  if (!t_listener) return;
  counted_ = true;
  outermost_ = t_depth++ == 0;
}
CaptureScope::~CaptureScope() {
  if (counted_ && t_depth > 0) --t_depth;
}

void CaptureScope::record(const std::string& kind, const std::vector<Tensor>& inputs,
                          const std::vector<Tensor>& outputs, const nlohmann::json& attrs) const {
  if (!outermost_ || !t_listener) return;
  t_listener->op(kind, inputs, outputs, attrs);
}

}  // namespace finch::autograd
