"""Load a lenet-omp checkpoint in PyTorch and count its test errors.

Usage: python3 pytorch_eval.py CHECKPOINT [TEST_IMAGES TEST_LABELS]

A lenet-omp checkpoint is a safetensors file whose metadata holds the run's config, so the
network can be rebuilt from the file alone. Tensors are named "<layer>.weight"/"<layer>.bias"
with PyTorch's layouts (conv [out, in, k, k], dense [out, in]), so they load as they are.
"""
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


def config_value(config, key):
    """A top-level or data.* scalar of the stored config text."""
    m = re.search(r"\b%s\s*=\s*(\"[^\"]*\"|[-\w.]+)" % key, config)
    return m.group(1).strip('"')


def config_layers(config):
    """The stored config's layer groups, as dicts of strings."""
    start = config.index("layers")
    body = config[config.index("(", start) : config.index(")", start)]
    return [dict((k, v.strip('"')) for k, v in
                 re.findall(r"(\w+)\s*=\s*(\"[^\"]*\"|[-\w.]+)", group))
            for group in re.findall(r"\{(.*?)\}", body, re.S)]


def build(layers, tensors, in_channels):
    """An nn.Sequential equal to the lenet-omp network (the loss layer becomes softmax)."""
    modules, channels = [], in_channels
    for l in layers:
        kind = l["type"]
        if kind == "conv":
            conv = nn.Conv2d(channels, int(l["filters"]), int(l["kernel"]),
                             stride=int(l.get("stride", 1)), padding=int(l.get("pad", 0)))
            conv.weight.data = torch.from_numpy(tensors[l["name"] + ".weight"].copy())
            conv.bias.data = torch.from_numpy(tensors[l["name"] + ".bias"].copy())
            modules.append(conv)
            channels = int(l["filters"])
        elif kind in ("maxpool", "avgpool"):
            pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            modules.append(pool(int(l["size"]), int(l.get("stride", l["size"]))))
        elif kind == "dense":
            w = tensors[l["name"] + ".weight"]
            dense = nn.Linear(w.shape[1], w.shape[0])
            dense.weight.data = torch.from_numpy(w.copy())
            dense.bias.data = torch.from_numpy(tensors[l["name"] + ".bias"].copy())
            modules += [nn.Flatten(), dense]
        elif kind in ("relu", "tanh", "sigmoid"):
            modules.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[kind]())
        elif kind == "softmax_xent":
            modules.append(nn.Softmax(dim=1))
    return nn.Sequential(*modules)


def read_idx(path):
    with open(path, "rb") as f:
        blob = f.read()
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
    tensors, meta = read_safetensors(sys.argv[1])
    config = meta["config"]
    images = read_idx(sys.argv[2] if len(sys.argv) > 2 else config_value(config, "test_images"))
    labels = read_idx(sys.argv[3] if len(sys.argv) > 3 else config_value(config, "test_labels"))
    x = normalise(images, int(config_value(config, "padding")), config_value(config, "normalize"))
    net = build(config_layers(config), tensors, in_channels=1).eval()
    with torch.no_grad():
        predicted = net(torch.from_numpy(x).unsqueeze(1)).argmax(dim=1).numpy()
    errors = int((predicted != labels).sum())
    print("checkpoint: %s (epoch %s)" % (sys.argv[1], meta["epoch"]))
    print("PyTorch %s: %d / %d test errors, error rate %.4f" %
          (torch.__version__, errors, len(labels), errors / len(labels)))
    print("lenet-omp recorded: %s / %s" % (meta["test_errors"], meta["test_count"]))


if __name__ == "__main__":
    main()
