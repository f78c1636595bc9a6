"""The torch peer models rebuilt in Keras (NHWC) with the same weights, and their TFLite conversions.

The torch models (bench/torch_int8_peer.py, finch's module names) are walked module by module: each
Conv2d + BatchNorm2d (+ ReLU/ReLU6) becomes one Keras conv with the BatchNorm folded into its kernel
and bias in float64 (what TFLite's converter would fold anyway), so the Keras graph holds exactly the
ops a TFLite model of this network has. Weights are transposed OIHW -> HWIO, depthwise OIHW (C, 1, kh,
kw) -> (kh, kw, C, 1). PyTorch pads symmetrically; TF's "same" pads (total // 2, rest) and so differs
for even inputs at stride 2: there an explicit ZeroPadding2D + "valid" conv keeps PyTorch's result,
and "same" is used only where it is the identical padding (it lets XNNPACK see no separate PAD op).
"""
import numpy as np


def _fold(conv, bn):
    """(HWIO-or-depthwise kernel, bias) of conv followed by bn, BN folded in float64."""
    w = conv.weight.detach().double().numpy()
    b = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(w.shape[0])
    if bn is not None:
        scale = bn.weight.detach().double().numpy() / np.sqrt(bn.running_var.detach().double().numpy() + bn.eps)
        w = w * scale[:, None, None, None]
        b = (b - bn.running_mean.detach().double().numpy()) * scale + bn.bias.detach().double().numpy()
    if conv.groups == 1:
        k = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif conv.groups == conv.in_channels == conv.out_channels:
        k = w[:, 0].transpose(1, 2, 0)[..., None]  # (C,1,kh,kw) -> (kh,kw,C,1)
    else:
        raise SystemExit(f"keras_net: grouped conv with {conv.groups} groups of {conv.in_channels} channels is "
                         "not supported; expected groups 1 or depthwise")
    return k.astype(np.float32), b.astype(np.float32)


class Builder:
    """Builds a functional Keras graph, tracking H×W for the padding choice; set_weights after build."""

    def __init__(self, keras):
        self.k = keras
        self.assign = []  # (layer, [arrays]) set once the model exists

    def conv(self, x, hw, conv, bn=None, act=None):
        L = self.k.layers
        kh, kw = conv.kernel_size
        (sh, sw), (ph, pw) = conv.stride, conv.padding
        h, w = hw
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

        def tf_same_ok(n, k, s, p, o):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            used_after = (o - 1) * s + k - n - p  # the part of PyTorch's trailing pad the last window reads
            return out == o and total // 2 == p and total - total // 2 == used_after

        if ph == 0 and pw == 0:
            padding = "valid"
        elif tf_same_ok(h, kh, sh, ph, oh) and tf_same_ok(w, kw, sw, pw, ow):
            padding = "same"
        else:
            x = L.ZeroPadding2D(((ph, ph), (pw, pw)))(x)
            padding = "valid"
        k, b = _fold(conv, bn)
        if conv.groups == 1:
            layer = L.Conv2D(conv.out_channels, (kh, kw), strides=(sh, sw), padding=padding)
        else:
            layer = L.DepthwiseConv2D((kh, kw), strides=(sh, sw), padding=padding)
        x = layer(x)
        self.assign.append((layer, [k, b]))
        return self.act(x, act), (oh, ow)

    def act(self, x, act):
        if act is None:
            return x
        name = type(act).__name__
        if name == "ReLU":
            return self.k.layers.ReLU()(x)
        if name == "ReLU6":
            return self.k.layers.ReLU(max_value=6.0)(x)
        raise SystemExit(f"keras_net: activation {name} is not supported; expected ReLU or ReLU6")

    def dense(self, x, fc):
        layer = self.k.layers.Dense(fc.out_features)
        x = layer(x)
        self.assign.append((layer, [fc.weight.detach().numpy().T.copy(), fc.bias.detach().numpy().copy()]))
        return x

    def chain(self, x, hw, mods):
        """A flat run of leaf modules: Conv2d [BatchNorm2d] [ReLU|ReLU6], repeated."""
        i = 0
        while i < len(mods):
            conv = mods[i]
            if type(conv).__name__ != "Conv2d":
                raise SystemExit(f"keras_net: expected Conv2d in a conv chain, found {type(conv).__name__}")
            bn = mods[i + 1] if i + 1 < len(mods) and type(mods[i + 1]).__name__ == "BatchNorm2d" else None
            j = i + 1 + (bn is not None)
            act = mods[j] if j < len(mods) and type(mods[j]).__name__ in ("ReLU", "ReLU6") else None
            x, hw = self.conv(x, hw, conv, bn, act)
            i = j + (act is not None)
        return x, hw


def _leaves(m):
    return [c for c in m.modules() if len(list(c.children())) == 0 and type(c).__name__ != "Dropout"]


def keras_model(name, tm, chw):
    """Keras (NHWC, batch None) twin of torch model tm (eval mode) of zoo model `name` at input chw."""
    import keras
    c, h, w = chw
    B = Builder(keras)
    inp = keras.Input((h, w, c))
    hw = (h, w)
    if name == "resnet20":
        x, hw = B.conv(inp, hw, tm.conv1, tm.bn1, tm.relu)
        for stage in (tm.layer1, tm.layer2, tm.layer3):
            for blk in stage:
                y, hw2 = B.conv(x, hw, blk.conv1, blk.bn1, blk.relu)
                y, hw2 = B.conv(y, hw2, blk.conv2, blk.bn2)
                sc = B.conv(x, hw, blk.downsample[0], blk.downsample[1])[0] if blk.downsample is not None else x
                x, hw = keras.layers.ReLU()(keras.layers.Add()([y, sc])), hw2
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = B.dense(x, tm.fc)
    elif name == "mobilenetv2":
        x = inp
        for f in tm.features:
            if type(f).__name__ == "InvertedResidual":
                y, hw2 = B.chain(x, hw, _leaves(f.conv))
                x, hw = (keras.layers.Add()([x, y]) if f.use_res_connect else y), hw2
            else:
                x, hw = B.chain(x, hw, _leaves(f))
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = B.dense(x, tm.classifier[-1])
    elif name == "mobilenet_v1":
        x = inp
        for f in tm.features:
            x, hw = B.chain(x, hw, _leaves(f))
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = B.dense(x, tm.classifier)
    else:
        raise SystemExit(f"keras_net: no Keras builder for {name}; expected resnet20, mobilenetv2 or mobilenet_v1")
    model = keras.Model(inp, out)
    for layer, ws in B.assign:
        layer.set_weights(ws)
    return model


def to_tflite(model, path, calib_nhwc=None):
    """Write model as fp32 TFLite, or full-integer int8 (float input/output) calibrated on calib_nhwc."""
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if calib_nhwc is not None:
        def rep():
            for i in range(calib_nhwc.shape[0]):
                yield [calib_nhwc[i:i + 1]]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        # Every op int8 (a float fallback would be an error, not a silent slow path); the input and
        # output stay float32 as finch's int8 programs take and give floats: QUANTIZE/DEQUANTIZE
        # are part of the timed graph on both sides.
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    blob = conv.convert()
    with open(path + ".tmp", "wb") as fh:
        fh.write(blob)
    import os
    os.replace(path + ".tmp", path)
