// Thread-local grad mode: each thread records the tape unless a NoGradGuard says otherwise.
#include "framework/grad_mode.h"

namespace finch {

namespace {
thread_local bool g_grad_enabled = true;
}

bool GradMode::enabled() { return g_grad_enabled; }
void GradMode::set_enabled(bool on) { g_grad_enabled = on; }

}  // namespace finch
