// The sktime/aeon `.ts` time-series format (UCR/UEA archive): header tags, then one series per
// line, channels separated by ':' and the class label (or regression target) last.
//
//   # comment
//   @problemName BasicMotions
//   @timeStamps false          (true — "(t,v)" pairs — is not supported: a clear error)
//   @missing false             ('?' or NaN values are allowed only with @missing true or absent)
//   @univariate false
//   @dimensions 6
//   @equalLength true
//   @seriesLength 100
//   @classLabel true Standing Running Walking Badminton   (labels in header order → 0, 1, 2, …)
//   @targetLabel true          (regression: the last field is an F32 target, shape [1])
//   @data
//   v,v,v:v,v,v:Standing
//
// Tags are case-insensitive. Every header claim is checked against the data: a series whose
// dimension count differs from @dimensions (or from the first series), a length that differs
// from @seriesLength under @equalLength true, a label not in @classLabel, a value that is not a
// number — each fails with one sentence naming the file, the line and what is wrong. Channels of
// one series must have the same length; series may differ (variable length, per-series T).
#pragma once

#include <string>
#include <vector>

#include "data/series_dataset.h"
#include "data/series_text.h"

namespace finch::data {

// The header as the file states it (what the data was checked against).
struct TsHeader {
  std::string problem_name;
  bool univariate = true;
  int64_t dimensions = 0;        // 0: not stated (1 when univariate, else from the first series)
  bool equal_length = false;     // as stated (false when absent)
  int64_t series_length = 0;     // 0: not stated
  bool has_class_label = false;
  std::vector<std::string> class_labels;  // header order = class index
  bool target_label = false;     // regression
  bool missing = false;          // @missing true
};

// Reads a .ts file into F32 [C, T_i] series with class indices (or F32 [1] targets). Missing
// values are filled by options.missing (default: linear interpolation, data/series_text.h).
SeriesSet read_ts(const std::string& path, const SeriesReadOptions& options = {}, TsHeader* header = nullptr);

}  // namespace finch::data
