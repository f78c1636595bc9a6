// UCR archive text files (ECG5000_TRAIN.txt, *.tsv): one univariate series per line, the class
// label first, fields separated by commas or by spaces/tabs (decided per line: a comma means
// comma-separated).
//
// Labels: when every label is a number, classes are the distinct values sorted numerically
// (-1, 1 → 0, 1; 1.0000000e+00 is named "1"); otherwise the distinct strings sorted. Values:
// "NaN", "?" or an empty field is a missing value; trailing missing values are the UCR 2018
// archive's padding of a variable-length series, so they are cut off (per-series T); the others
// are filled by options.missing (data/series_text.h). Series are F32 [1, T_i].
#pragma once

#include <string>

#include "data/series_dataset.h"
#include "data/series_text.h"

namespace finch::data {

SeriesSet read_ucr_text(const std::string& path, const SeriesReadOptions& options = {});

}  // namespace finch::data
