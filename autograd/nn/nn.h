// Everything in finch::nn in one include: Module, containers, layers, init.
#pragma once

#include "autograd/nn/activation.h"
#include "autograd/nn/container.h"
#include "autograd/nn/conv.h"
#include "autograd/nn/embedding.h"
#include "autograd/nn/init.h"
#include "autograd/nn/linear.h"
#include "autograd/nn/module.h"
#include "autograd/nn/norm.h"
#include "autograd/nn/pool.h"
#include "autograd/nn/pool1d.h"
#include "autograd/nn/rnn.h"
#include "autograd/nn/state_dict.h"
