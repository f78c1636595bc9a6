// Fine-tuning of a train_series/train_text classifier after a compression step, on its own labels
// or distilled from a teacher's logits (train/distill.h's loss), for finch prune --distill on these
// models and the distill step of finch compress. train/distill.h's Distiller listens at the
// student's Module::forward, which a padded batch bypasses (it goes through
// LengthAware::forward_with_lengths); here the student runs inside a module that is length-aware
// itself and runs the teacher on the same batch, padding and lengths included.
#pragma once

#include <cstdint>
#include <string>

#include "apps/lib/series_data.h"
#include "apps/lib/series_options.h"
#include "apps/lib/train_options.h"
#include "autograd/nn/module.h"
#include "train/evaluate.h"

namespace finch::apps {

// Distillation settings: off, or T and α of train::distillation_loss.
struct SequenceTeacher {
  nn::Module* model = nullptr;  // nullptr: fine-tune on the labels alone
  double temperature = 4, alpha = 0.9;
};

// Fine-tunes `model` on d.train for `epochs` as finch prune does on these models: Adam at `lr`,
// cosine to 0, a fresh optimizer, batches of t.batch_size shuffled with t.seed, the test set
// evaluated each epoch. With a teacher: α·T²·KL(teacher ‖ student at T) + (1 − α)·CE on every
// batch (a classifier only: a forecaster is one sentence; a binary model's one logit z counts as
// the two logits [0, z], so its CE is its BCE). Returns the test result after.
train::EvalResult fine_tune_sequence(nn::ModulePtr model, const SequenceData& d, const TrainOptions& t, double lr,
                                     int64_t epochs, const std::string& name, const SequenceTeacher& teacher);

// The model in `path` (a train_series/train_text checkpoint, or a pruned one) rebuilt for the data
// `d` of the student; one sentence when its classes or input differ from the student's.
nn::ModulePtr load_sequence_teacher(const std::string& path, const SeriesOptions& s, const SequenceData& d,
                                    int64_t student_classes);

struct SequenceDistillOptions {
  TrainOptions train;    // checkpoint (the student), out_dir, seed, batch size, threads, workers, lr
  bool lr_given = false;  // else Adam's 1e-3, as finch prune's fine-tuning on these models
  std::string teacher;   // a checkpoint; empty: train.checkpoint
  double temperature = 4, alpha = 0.9;
  int64_t epochs = 1;
};

// finch compress's distill step on a series/text classifier: the student (shapes and edits kept)
// fine-tuned against the teacher for o.epochs; writes OUT/model.safetensors (the student's
// metadata, compress_edits included) and OUT/summary.json. Returns the exit code (0).
int run_sequence_distill(const SequenceDistillOptions& o, SeriesOptions s, const std::string& command_line);

}  // namespace finch::apps
