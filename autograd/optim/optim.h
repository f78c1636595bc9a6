// Everything in finch::optim in one include: SGD, Adam, AdamW, LR schedules, gradient clipping.
#pragma once

#include "autograd/optim/adam.h"
#include "autograd/optim/clip_grad.h"
#include "autograd/optim/lr_schedule.h"
#include "autograd/optim/optimizer.h"
#include "autograd/optim/sgd.h"
