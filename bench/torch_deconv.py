"""The PyTorch 1.13 autograd deconvnet that bench/torch_deconvnet.py and bench/torch_modern.py time:
ReLU modules' backward overridden as Captum's Deconvolution does (relu of the incoming gradient),
every other op its own gradient, weights frozen; each item of a batch seeds its channel (37·n mod C)
at its first maximum, with the activation itself."""
import statistics
import time

import torch


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
    """The model with every nn.ReLU swapped for the deconvnet's, and no weight gradients."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(module, name, Relu())
    for p in model.parameters():  # only the input gradient is wanted
        p.requires_grad_(False)
    return model.eval()


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


def median_ms(trunk, batch, repeats, warmup, size=224):
    x = torch.rand(batch, 3, size, size) - 0.5
    for _ in range(warmup):
        project(trunk, x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        project(trunk, x)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)
