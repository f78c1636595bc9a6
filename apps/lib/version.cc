// finch_version(): FINCH_VERSION comes from CMake (target_compile_definitions on finch_apps).
#include "apps/lib/version.h"

#ifndef FINCH_VERSION
#define FINCH_VERSION "unknown"
#endif

namespace finch::apps {
std::string finch_version() { return FINCH_VERSION; }
}  // namespace finch::apps
