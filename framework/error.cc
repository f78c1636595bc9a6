// The out-of-line half of FINCH_CHECK (kept out of headers so the check stays one branch).
#include "framework/error.h"

namespace finch::detail {

void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  throw Error(cat("check failed at ", file, ":", line, ": ", cond, msg.empty() ? "" : ": ", msg));
}

}  // namespace finch::detail
