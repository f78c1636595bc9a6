// The model zoo in one include: LeNet-5, ResNets, MobileNet v1/v2, the series and text models and
// the create() / create_series() factories.
#pragma once

#include "models/common.h"
#include "models/factory.h"
#include "models/lenet.h"
#include "models/mobilenet_v1.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"
#include "models/series_conv.h"
#include "models/series_rnn.h"
#include "models/series_spec.h"
