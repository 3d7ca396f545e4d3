#!/usr/bin/python3
"""pytorch_lenet.py - the same network, data and loop as lenet-bench, in PyTorch (float32, eager,
CPU), for a side-by-side comparison.

The network, the data files and the normalisation come from the spec that lenet-bench writes
(`lenet-bench --spec-only --json SPEC CONFIG`), so both sides run exactly the same layers on the
same MNIST bytes with the same scale and offset. Timed, per thread count (torch.set_num_threads):
  train  SGD steps at each batch size of --batches (8 and 64): fill the batch from the bytes (pad + normalise), forward,
         loss (mean cross-entropy) and arg-max errors, backward, SGD step;
  eval   the whole test set in batches of EVAL_BATCH: forward, loss, arg-max errors (no_grad).
Like lenet-bench: fixed seeds, one warm-up pass, then REPEATS timed passes; median, min, max.

Usage: /usr/bin/python3 bench/pytorch_lenet.py --spec SPEC [--threads 1,2] [--repeats 5]
           [--images 8192] [--batches 8,64] [--json OUT]
(Debian's python3-torch lives in /usr/bin/python3, not in a pyenv python3.)
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(path, magic):
    """An IDX file (uncompressed, as scripts/fetch-mnist leaves them) as a numpy uint8 array."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        import gzip
        data = gzip.decompress(data)
    if int.from_bytes(data[:4], "big") != magic:
        sys.exit(f"pytorch_lenet: {path}: not an IDX file with magic {magic:#x}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Dataset:
    """Byte images padded once; each batch is converted to float and normalised when it is
    filled, as dataset_fill does (padding pixels are byte 0, so they become `offset`)."""

    def __init__(self, images, labels, pad, scale, offset):
        img = read_idx(images, 0x803)
        img = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
        self.x = torch.from_numpy(np.ascontiguousarray(img)).unsqueeze(1)  # N x 1 x H x W u8
        self.y = torch.from_numpy(read_idx(labels, 0x801).astype(np.int64))
        self.scale, self.offset = scale, offset
        self.count = self.x.shape[0]

    def fill(self, idx):
        return self.x[idx].float().mul_(self.scale).add_(self.offset), self.y[idx]

    def fill_range(self, first, n):
        return (self.x[first:first + n].float().mul_(self.scale).add_(self.offset),
                self.y[first:first + n])


def build_model(spec):
    """nn.Sequential from lenet-bench's layer list; the final softmax_xent becomes the loss.
    A kind without a PyTorch equivalent here stops the script (never dropped silently)."""
    mods, flat = [], False
    for l in spec["layers"]:
        kind, cin, cout = l["kind"], l["in"][0], l["out"][0]
        if kind in ("conv", "maxpool", "avgpool") and flat:  # lenet-omp's units x 1 x 1
            mods.append(nn.Unflatten(1, tuple(l["in"])))
            flat = False
        if kind == "conv":
            mods.append(nn.Conv2d(cin, cout, l["kernel"], l["stride"], l["pad"]))
        elif kind == "maxpool":
            mods.append(nn.MaxPool2d(l["size"], l["stride"]))
        elif kind == "avgpool":
            mods.append(nn.AvgPool2d(l["size"], l["stride"]))
        elif kind == "dense":
            if not flat:  # NCHW -> N x (C*H*W), the layout lenet-omp's dense reads
                mods.append(nn.Flatten())
                flat = True
            mods.append(nn.Linear(cin * l["in"][1] * l["in"][2], cout))
        elif kind == "relu":
            mods.append(nn.ReLU())
        elif kind == "tanh":
            mods.append(nn.Tanh())
        elif kind == "sigmoid":
            mods.append(nn.Sigmoid())
        elif kind == "leaky_relu":
            mods.append(nn.LeakyReLU(l["slope"]))
        elif kind == "batchnorm":  # per unit after dense (1d), per channel otherwise (2d)
            bn = nn.BatchNorm1d if flat else nn.BatchNorm2d
            mods.append(bn(cin, eps=l["eps"], momentum=l["momentum"]))
        elif kind == "dropout":
            mods.append(nn.Dropout(l["rate"]))
        elif kind == "softmax_xent":
            if not flat:
                mods.append(nn.Flatten())
                flat = True
        else:
            sys.exit(f"pytorch_lenet: layer kind '{kind}' has no PyTorch equivalent here: "
                     "teach build_model() its module")
    model = nn.Sequential(*mods)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, spec["init_std"])
                m.bias.fill_(spec["init_bias"])
    return model


def cpu_capability():
    """The vector ISA PyTorch's own kernels dispatch to (its build config says it)."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def mark_cpu():
    """(wall, this process's CPU seconds, the machine's busy CPU seconds or None)."""
    t = os.times()
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait
    except (OSError, ValueError, IndexError):
        busy = None
    return time.perf_counter(), t.user + t.system, busy


def others_busy(a, b):
    """Share of the cores other processes used between two marks (as lenet-bench)."""
    if a[2] is None or b[2] is None or b[0] <= a[0]:
        return -1.0
    return max(0.0, ((b[2] - a[2]) - (b[1] - a[1])) / ((b[0] - a[0]) * os.cpu_count()))


def summarize(v):
    return {"median": statistics.median(v), "min": min(v), "max": max(v)}


def bench_train(spec, data, order, B, images, repeats):
    torch.manual_seed(int(spec["seed"]))
    model = build_model(spec)
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"],
                          weight_decay=spec["weight_decay"])
    # batch mean, as lenet-omp's softmax_xent (with its label smoothing)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=spec["layers"][-1].get("label_smoothing", 0.0))
    steps = (images + B - 1) // B
    pos = 0
    cost, wrong = 0.0, 0

    def run():
        nonlocal pos, cost, wrong
        for _ in range(steps):
            if pos + B > data.count:
                pos = 0
            x, y = data.fill(order[pos:pos + B])
            out = model(x)
            loss = loss_fn(out, y)
            cost += loss.item() * B
            wrong += int((out.argmax(1) != y).sum())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            pos += B

    run()  # warm-up
    v = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        v.append(steps * B / (time.perf_counter() - t0))
    return summarize(v)


def bench_eval(spec, data, repeats):
    torch.manual_seed(int(spec["seed"]))
    model = build_model(spec)
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    step = spec["eval_batch"]

    def run():
        cost, wrong = 0.0, 0
        with torch.no_grad():
            for first in range(0, data.count, step):
                x, y = data.fill_range(first, step)
                out = model(x)
                cost += float(loss_fn(out, y))
                wrong += int((out.argmax(1) != y).sum())
        return wrong

    run()
    v = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        v.append(data.count / (time.perf_counter() - t0))
    return summarize(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True, help="JSON from lenet-bench --spec-only --json")
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--images", type=int, default=8192)
    ap.add_argument("--batches", default="8,64", help="training batch sizes")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    spec = spec.get("spec", spec)
    threads = sorted({int(t) for t in args.threads.split(",")})

    train = Dataset(spec["train_images"], spec["train_labels"], spec["padding"],
                    spec["train_scale"], spec["train_offset"])
    test = Dataset(spec["test_images"], spec["test_labels"], spec["padding"],
                   spec["test_scale"], spec["test_offset"])
    order = torch.from_numpy(np.random.default_rng(int(spec["seed"])).permutation(train.count))
    torch.set_num_interop_threads(1)

    print(f"pytorch {torch.__version__}, {cpu_capability()}, "
          f"default threads {torch.get_num_threads()}, medians of {args.repeats} repeats")
    lines = []
    for t in threads:
        torch.set_num_threads(t)
        print(f"== {t} thread{'s' if t > 1 else ''} ==")
        batches = [int(b) for b in args.batches.split(",")]
        for section, B in [("train", b) for b in batches] + [("eval", spec["eval_batch"])]:
            m0 = mark_cpu()
            if section == "train":
                s = bench_train(spec, train, order, B, args.images, args.repeats)
            else:
                s = bench_eval(spec, test, args.repeats)
            s["others_busy"] = others_busy(m0, mark_cpu())
            print(f"  {section:<5} batch {B:<3d} {s['median']:9.0f} images/s  "
                  f"[{s['min']:.0f}..{s['max']:.0f}]  others {100 * s['others_busy']:.0f}%")
            lines.append(dict(section=section, threads=t, batch=B, unit="images/s", **s))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS of the PyTorch process: {rss / 1024:.1f} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tool": "pytorch", "version": torch.__version__,
                       "cpu_capability": cpu_capability(),
                       "peak_rss_kib": rss, "lines": lines}, f, indent=1)


if __name__ == "__main__":
    main()
