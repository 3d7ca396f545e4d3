#!/usr/bin/python3
"""torch_fixtures.py - reference values from PyTorch (an independent implementation) for the
toolkit's kinds and optimisers, written as tests/torch_fixtures.h:

  batchnorm  BatchNorm2d and BatchNorm1d in training mode (momentum 0.1, eps 1e-5): output,
             input/weight/bias gradients of sum(y * r), running statistics after the batch,
             then the evaluation output from them;
  xent       CrossEntropyLoss(label_smoothing=0.1): batch-mean loss and its logit gradient;
  optim      SGD(momentum, nesterov=True), Adam and AdamW with weight decay: the parameters
             after each of three steps with fixed gradients.

Run with Debian's PyTorch: /usr/bin/python3 tests/reference/torch_fixtures.py > tests/torch_fixtures.h
"""
import math

import torch

torch.set_num_threads(1)


def values(n, a, b):
    """n deterministic float32 values, not a grid (no ties)."""
    return torch.tensor([a * math.sin(b * (i + 1) + 0.3 * i * i) for i in range(n)],
                        dtype=torch.float32)


def emit(name, t):
    flat = t.detach().reshape(-1).tolist()
    body = ", ".join("%.9gf" % v for v in flat)
    print("static const float %s[%d] = {%s};" % (name, len(flat), body))


def batchnorm(prefix, shape, module):
    n = 1
    for s in shape:
        n *= s
    c = shape[1]
    x = values(n, 1.5, 0.7).reshape(shape).requires_grad_(True)
    r = values(n, 1.0, 1.3).reshape(shape)
    bn = module(c, momentum=0.1, eps=1e-5)
    with torch.no_grad():
        bn.weight.copy_(values(c, 0.8, 2.1) + 1.0)
        bn.bias.copy_(values(c, 0.3, 0.9))
    emit(prefix + "_x", x)
    emit(prefix + "_r", r)
    emit(prefix + "_weight", bn.weight)
    emit(prefix + "_bias", bn.bias)
    bn.train()
    y = bn(x)
    (y * r).sum().backward()
    emit(prefix + "_y", y)
    emit(prefix + "_dx", x.grad)
    emit(prefix + "_dweight", bn.weight.grad)
    emit(prefix + "_dbias", bn.bias.grad)
    emit(prefix + "_running_mean", bn.running_mean)
    emit(prefix + "_running_var", bn.running_var)
    bn.eval()
    with torch.no_grad():
        emit(prefix + "_y_eval", bn(x))


def xent():
    logits = values(2 * 5, 2.0, 0.45).reshape(2, 5).requires_grad_(True)
    labels = torch.tensor([3, 0])
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(logits, labels)
    loss.backward()
    emit("xent_logits", logits)
    print("static const int xent_labels[2] = {3, 0};")
    emit("xent_loss", loss.reshape(1))
    emit("xent_dlogits", logits.grad)


def optim(name, make):
    p = torch.nn.Parameter(values(5, 1.0, 0.8))
    opt = make([p])
    grads = [values(5, 0.5, 1.7 + k) for k in range(3)]
    emit("optim_%s_p0" % name, p)
    out = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().clone())
    emit("optim_%s_grads" % name, torch.stack(grads))
    emit("optim_%s_after" % name, torch.stack(out))


print("/* torch_fixtures.h - written by tests/reference/torch_fixtures.py with PyTorch %s; do not"
      % torch.__version__)
print(" * edit. Reference values for test_layers.c and test_optim.c. */")
print("#ifndef TORCH_FIXTURES_H\n#define TORCH_FIXTURES_H\n")
batchnorm("bn2d", (3, 2, 2, 3), torch.nn.BatchNorm2d)
batchnorm("bn1d", (4, 3), torch.nn.BatchNorm1d)
xent()
optim("nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                            weight_decay=0.01))
optim("adam", lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                                         weight_decay=0.01))
optim("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6,
                                           weight_decay=0.1))
print("\n#endif")
