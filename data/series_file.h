// One entry point for labelled series files, choosing the reader by the file's extension: `.ts`
// (data/ts_file.h) or UCR text `.txt`/`.tsv` (data/ucr_text.h). CSV files are forecasting data
// with their own options (data/csv_series.h) and are refused here with a pointer there.
#pragma once

#include <string>

#include "data/series_dataset.h"
#include "data/series_text.h"

namespace finch::data {

SeriesSet read_series_file(const std::string& path, const SeriesReadOptions& options = {});

// A test set read beside a training set must share its classes (same names, same order) and its
// channel count; throws naming both files otherwise.
void check_same_problem(const SeriesSet& train, const SeriesSet& test);

}  // namespace finch::data
