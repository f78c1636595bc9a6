// The finch version (CMake's PROJECT_VERSION) for result files.
#pragma once
#include <string>

namespace finch::apps {
std::string finch_version();
}
