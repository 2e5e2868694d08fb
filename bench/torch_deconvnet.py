#!/usr/bin/python3
"""PyTorch 1.13 autograd deconvnet on torchvision AlexNet (random weights), target relu5, 2 threads:
the baseline of bench/projection.ts. Prints a JSON line {batch: median ms} at the end.
The ReLU backward is overridden as Captum's Deconvolution does (relu of the incoming gradient)."""
import json
import statistics
import sys
import time

import torch
import torchvision

torch.set_num_threads(2)
torch.manual_seed(0)
REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
WARMUP = int(sys.argv[2]) if len(sys.argv) > 2 else 5


class DeconvRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0)


class Relu(torch.nn.Module):
    def forward(self, x):
        return DeconvRelu.apply(x)


model = torchvision.models.alexnet().eval()
for p in model.parameters():  # only the input gradient is wanted: no weight gradients
    p.requires_grad_(False)
features = model.features[:12]  # up to relu5
for i, m in enumerate(features):
    if isinstance(m, torch.nn.ReLU):
        features[i] = Relu()


def project(x):
    x = x.clone().requires_grad_(True)
    a = features(x)
    n, c = a.shape[:2]
    flat = a.reshape(n, c, -1)
    channels = torch.arange(n) * 37 % c
    chosen = flat[torch.arange(n), channels]
    idx = chosen.argmax(dim=1)
    seed = torch.zeros_like(flat)
    seed[torch.arange(n), channels, idx] = chosen[torch.arange(n), idx]
    a.backward(seed.reshape_as(a))
    return x.grad


result = {}
for batch in (1, 8, 32):
    x = torch.rand(batch, 3, 224, 224) - 0.5
    for _ in range(WARMUP):
        project(x)
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        project(x)
        times.append((time.perf_counter() - t) * 1000)
    result[str(batch)] = round(statistics.median(times), 1)
print(json.dumps(result))
