"""Load a lenet-omp checkpoint in PyTorch and count its test errors.

Usage: /usr/bin/python3 pytorch_eval.py [--threads N] CHECKPOINT [TEST_IMAGES TEST_LABELS]

A lenet-omp checkpoint is a safetensors file whose metadata holds the run's config, so the
network can be rebuilt from the file alone. Tensors are named "<layer>.weight"/"<layer>.bias"
with PyTorch's layouts (conv [out, in, k, k], dense [out, in], batchnorm [channels]), and a
batchnorm layer's running statistics "<layer>.running_mean"/"<layer>.running_var", so they load
as they are. A layer kind this script does not know stops it with a message: it never drops a
layer silently.
"""
import argparse
import gzip
import json
import re
import struct
import sys

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    """Returns ({name: float32 array}, {metadata key: string})."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n :]
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32"
        begin, end = t["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(t["shape"])
    return tensors, meta


# docs/config.md's defaults of the data keys this script reads
DATA_DEFAULTS = {"test_images": "data/mnist/t10k-images-idx3-ubyte",
                 "test_labels": "data/mnist/t10k-labels-idx1-ubyte",
                 "padding": "2", "normalize": "standardize"}
SCALAR = r"(\"[^\"]*\"|[-+\w.]+)"


def config_value(config, key):
    """A data.* scalar of the stored config text (its documented default when absent)."""
    m = re.search(r"\b%s\s*=\s*%s" % (key, SCALAR), config)
    return m.group(1).strip('"') if m else DATA_DEFAULTS[key]


def config_layers(config):
    """The stored config's layer groups, as dicts of strings, each with its name (the default
    "<type><index>" when the config gives none)."""
    start = re.search(r"\blayers\s*=", config).end()
    body = config[config.index("(", start) : config.index(")", start)]
    layers = [dict((k, v.strip('"')) for k, v in re.findall(r"(\w+)\s*=\s*" + SCALAR, group))
              for group in re.findall(r"\{(.*?)\}", body, re.S)]
    for i, l in enumerate(layers, 1):
        l.setdefault("name", "%s%d" % (l["type"], i))
    return layers


class Loader:
    """Hands out the checkpoint's tensors by name; at the end every tensor must have been
    used (so a tensor of a layer this script mistook cannot go unnoticed)."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.used = set()

    def __call__(self, name):
        if name not in self.tensors:
            sys.exit("pytorch_eval: the checkpoint has no tensor '%s'" % name)
        self.used.add(name)
        return torch.from_numpy(self.tensors[name].copy())

    def check_all_used(self):
        left = sorted(k for k in self.tensors if k not in self.used and
                      not k.startswith("__optimizer__."))
        if left:
            sys.exit("pytorch_eval: tensors %s belong to no layer this script built" % left)


def build(layers, tensors, input_shape):
    """An nn.Sequential equal to the lenet-omp network in evaluation (the loss layer becomes
    softmax). input_shape: (C, H, W) of one sample. Unknown kinds stop the script."""
    take = Loader(tensors)
    modules, (c, h, w), flat = [], input_shape, False
    for i, l in enumerate(layers, 1):
        kind, name = l["type"], l["name"]
        if kind in ("conv", "maxpool", "avgpool") and flat:  # lenet-omp's units x 1 x 1
            modules.append(nn.Unflatten(1, (c, h, w)))
            flat = False
        if kind == "conv":
            k, s, p = int(l["kernel"]), int(l.get("stride", 1)), int(l.get("pad", 0))
            conv = nn.Conv2d(c, int(l["filters"]), k, stride=s, padding=p)
            conv.weight.data = take(name + ".weight")
            conv.bias.data = take(name + ".bias")
            modules.append(conv)
            c, h, w = int(l["filters"]), (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif kind in ("maxpool", "avgpool"):
            size = int(l["size"])
            stride = int(l.get("stride", size))
            pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            modules.append(pool(size, stride))
            h, w = (h - size) // stride + 1, (w - size) // stride + 1
        elif kind == "dense":
            weight = take(name + ".weight")
            dense = nn.Linear(weight.shape[1], weight.shape[0])
            dense.weight.data = weight
            dense.bias.data = take(name + ".bias")
            if not flat:  # lenet-omp's dense reads its input in C, H, W order
                modules.append(nn.Flatten())
                flat = True
            modules.append(dense)
            c, h, w = weight.shape[0], 1, 1
        elif kind == "batchnorm":  # per unit after dense (1d), per channel otherwise (2d)
            bn = (nn.BatchNorm1d if flat else nn.BatchNorm2d)(
                c, eps=float(l.get("eps", 1e-5)), momentum=float(l.get("momentum", 0.1)))
            bn.weight.data = take(name + ".weight")
            bn.bias.data = take(name + ".bias")
            bn.running_mean.data = take(name + ".running_mean")
            bn.running_var.data = take(name + ".running_var")
            modules.append(bn)
        elif kind == "dropout":
            modules.append(nn.Dropout(float(l.get("rate", 0.5))))
        elif kind == "leaky_relu":
            modules.append(nn.LeakyReLU(float(l.get("slope", 0.01))))
        elif kind in ("relu", "tanh", "sigmoid"):
            modules.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[kind]())
        elif kind == "softmax_xent":  # label_smoothing changes the loss, not the prediction
            if i != len(layers):
                sys.exit("pytorch_eval: layer %d 'softmax_xent' is not the last" % i)
            if not flat:
                modules.append(nn.Flatten())
                flat = True
            modules.append(nn.Softmax(dim=1))
        else:
            sys.exit("pytorch_eval: layer %d '%s' is of kind '%s', which this script does not "
                     "know: teach build() its PyTorch equivalent (nothing is dropped silently)"
                     % (i, name, kind))
    take.check_all_used()
    return nn.Sequential(*modules)


def read_idx(path):
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:2] == b"\x1f\x8b":  # gzip, e.g. Debian's Fashion-MNIST
        blob = gzip.decompress(blob)
    magic, count = struct.unpack(">II", blob[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", blob[8:16])
        return np.frombuffer(blob[16:], np.uint8).reshape(count, rows, cols)
    return np.frombuffer(blob[8:], np.uint8)


def normalise(images, padding, mode):
    """lenet-omp's input: zero padding, then scale01 or the seed's standardisation (min-max to
    [0, 1] and the mean/std of the whole padded set)."""
    x = np.pad(images.astype(np.float64), ((0, 0), (padding, padding), (padding, padding)))
    if mode == "scale01":
        return (x / 255.0).astype(np.float32)
    x = (x - x.min()) / (x.max() - x.min())
    return ((x - x.mean()) / x.std()).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="PyTorch's threads (default 1)")
    ap.add_argument("checkpoint")
    ap.add_argument("files", nargs="*", metavar="TEST_IMAGES TEST_LABELS")
    args = ap.parse_args()
    if len(args.files) not in (0, 2):
        ap.error("give both TEST_IMAGES and TEST_LABELS, or neither")
    torch.set_num_threads(args.threads)
    tensors, meta = read_safetensors(args.checkpoint)
    config = meta["config"]
    images = read_idx(args.files[0] if args.files else config_value(config, "test_images"))
    labels = read_idx(args.files[1] if args.files else config_value(config, "test_labels"))
    x = normalise(images, int(config_value(config, "padding")), config_value(config, "normalize"))
    shape = tuple(int(v) for v in meta["input_shape"].split(","))
    net = build(config_layers(config), tensors, shape).eval()
    with torch.no_grad():
        predicted = net(torch.from_numpy(x).unsqueeze(1)).argmax(dim=1).numpy()
    errors = int((predicted != labels).sum())
    print("checkpoint: %s (epoch %s)" % (args.checkpoint, meta["epoch"]))
    print("PyTorch %s: %d / %d test errors, error rate %.4f" %
          (torch.__version__, errors, len(labels), errors / len(labels)))
    print("lenet-omp recorded: %s / %s" % (meta.get("test_errors", "-"), meta.get("test_count", "-")))


if __name__ == "__main__":
    main()
