// Whether operations record the autograd tape (thread-local, like torch.is_grad_enabled()).
#pragma once

namespace finch {

struct GradMode {
  static bool enabled();
  static void set_enabled(bool on);
};

// Turns recording off for a scope: evaluation loops, optimizer updates, forward kernels.
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Turns recording back on inside a NoGradGuard (used by gradcheck's double evaluation).
class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(GradMode::enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace finch
