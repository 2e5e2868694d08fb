#!/usr/bin/python3
"""PyTorch 1.13 autograd deconvnet from the last stage of torchvision's ResNet-50 and EfficientNet-B0
(random weights, frozen), 2 threads: the baseline of bench/modern.ts. The ReLU modules' backward is
overridden as Captum's Deconvolution does; every other op (SiLU, squeeze-excitation) keeps its
gradient. Usage: torch_modern.py BATCH REPEATS WARMUP. Prints a JSON line {model: median ms}."""
import json
import statistics
import sys
import time

import torch
import torchvision

torch.set_num_threads(2)
torch.manual_seed(0)
BATCH, REPEATS, WARMUP = (int(a) for a in sys.argv[1:4])


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


def deconvnet(model):
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(module, name, Relu())
    for p in model.parameters():  # only the input gradient is wanted
        p.requires_grad_(False)
    return model.eval()


resnet = deconvnet(torchvision.models.resnet50())
effnet = deconvnet(torchvision.models.efficientnet_b0())
TRUNKS = {
    'resnet50': torch.nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4),
    'efficientnet_b0': effnet.features,
}


def project(trunk, x):
    x = x.clone().requires_grad_(True)
    a = trunk(x)
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
for name, trunk in TRUNKS.items():
    x = torch.rand(BATCH, 3, 224, 224) - 0.5
    for _ in range(WARMUP):
        project(trunk, x)
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        project(trunk, x)
        times.append((time.perf_counter() - t) * 1000)
    result[name] = statistics.median(times)
print(json.dumps(result))
