#!/usr/bin/python3
"""Regenerate convscope's ONNX test fixtures and their independent PyTorch reference outputs.

    /usr/bin/python3 scripts/make_fixtures.py

Needs Debian's python3-torch (1.13), python3-torchvision and python3-onnx (1.12); no network.
Deterministic: every model, input and case comes from fixed seeds.

Writes (relative to the repository root):
  test/fixtures/models/<name>.onnx + <name>.json   small CNNs (random seeded weights, opset 17, dynamic batch)
  test/fixtures/bad/corrupt.onnx, not-onnx.onnx    files that must be rejected
  test/fixtures/reference/manifest.json            what the .npy files below mean (see test/fixtures/README.md)
  test/fixtures/reference/{inputs,outputs,cases}/*.npy   float32, C order (numpy.save)

Reference semantics (docs/architecture.md, the deconvnet's conventions): forward to the target node's output; seed = zeros except the chosen
activation(s) of channel c of batch item 0, which keep their own value; backward to the input with autograd,
except ReLU / Clip(0,6) (rules per method below), LRN (identity or true gradient) and MaxPool (gradient summed
at the switches; the one "overwrite" variant does last-write-wins like ONNX MaxUnpool).
"""
import copy
import hashlib
import io
import json
import shutil
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import onnx.checker
import onnx.shape_inference
import torch
import torch.nn as nn
import torch.nn.functional as F

warnings.filterwarnings('ignore')
torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / 'test' / 'fixtures'
MODELS = FIX / 'models'
BAD = FIX / 'bad'
REF = FIX / 'reference'
OPSET = 17
IMAGENET = {'channels': 'RGB', 'scale': 1 / 255, 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}
# Caffe-style: BGR, 0..255 minus the mean pixel, no division (ZF/AlexNet Caffe models)
CAFFE = {'channels': 'BGR', 'scale': 1.0, 'mean': [103.939, 116.779, 123.68], 'std': [1.0, 1.0, 1.0]}
LABELS10 = ['class%d' % i for i in range(10)]


# ---------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------

class LRNExportFn(torch.autograd.Function):
    """Exports as ONE native ONNX LRN node (torch 1.13 would otherwise decompose it into ~65 nodes)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op('LRN', x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRNIdentityFn(torch.autograd.Function):
    """LRN forward, identity backward (lrn mode IDENTITY)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def backward(ctx, g):
        return g, None, None, None, None


class LRN(nn.Module):
    """mode: 'export' (single ONNX LRN node), 'identity' (identity backward), 'gradient' (plain autograd)."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, mode='export'):
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.mode = size, alpha, beta, k, mode

    def forward(self, x):
        if self.mode == 'export':
            return LRNExportFn.apply(x, self.size, self.alpha, self.beta, self.k)
        if self.mode == 'identity':
            return LRNIdentityFn.apply(x, self.size, self.alpha, self.beta, self.k)
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)


class DropoutNodeFn(torch.autograd.Function):
    """Inference-mode dropout that still exports a Dropout node (torch drops nn.Dropout from eval exports)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g

    @staticmethod
    def symbolic(g, x):
        return g.op('Dropout', x)


class DropoutNode(nn.Module):
    def forward(self, x):
        return DropoutNodeFn.apply(x)


class Affine(nn.Module):
    """x @ W + b, exported as MatMul + Add (not Gemm)."""

    def __init__(self, fin, fout):
        super().__init__()
        self.W = nn.Parameter(torch.empty(fin, fout))
        self.b = nn.Parameter(torch.empty(fout))

    def forward(self, x):
        return x @ self.W + self.b


class RuleReLUFn(torch.autograd.Function):
    """ReLU (hi=None) or Clip(0, hi) with the backward rule of a projection method."""

    @staticmethod
    def forward(ctx, x, method, hi):
        ctx.save_for_backward(x)
        ctx.method, ctx.hi = method, hi
        return x.clamp(min=0) if hi is None else x.clamp(0, hi)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        live = (x > 0) if ctx.hi is None else ((x > 0) & (x < ctx.hi))
        if ctx.method == 'DECONVNET':
            r = g.clamp(min=0)
        elif ctx.method == 'GUIDED_BACKPROP':
            r = g.clamp(min=0) * live
        elif ctx.method == 'SALIENCY':
            r = g * live
        else:
            raise ValueError(ctx.method)
        return r, None, None


class RuleReLU(nn.Module):
    def __init__(self, method, hi=None):
        super().__init__()
        self.method, self.hi = method, hi

    def forward(self, x):
        return RuleReLUFn.apply(x, self.method, self.hi)


class RefMaxPoolFn(torch.autograd.Function):
    """MaxPool whose backward is written out: 'sum' = scatter-add at the switches (== torch's own gradient),
    'overwrite' = scatter without accumulation, the later window in raster order wins (ONNX MaxUnpool).
    Also counts windows on the backward path (non-zero signal) whose max is tied (first element in raster
    order within the window is the switch, as in torch and ONNX Runtime)."""

    @staticmethod
    def forward(ctx, x, k, s, p, d, ceil, mode, stats):
        y, idx = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)
        N, C, H, W = x.shape
        Ho, Wo = y.shape[2:]
        eh = max(0, (Ho - 1) * s[0] + d[0] * (k[0] - 1) + 1 - (H + 2 * p[0]))
        ew = max(0, (Wo - 1) * s[1] + d[1] * (k[1] - 1) + 1 - (W + 2 * p[1]))
        xp = F.pad(x, (p[1], p[1] + ew, p[0], p[0] + eh), value=float('-inf'))
        cols = F.unfold(xp, k, dilation=d, stride=s).view(N, C, k[0] * k[1], -1)[..., :Ho * Wo]
        assert cols.shape[-1] == Ho * Wo
        ties = (cols == y.reshape(N, C, 1, Ho * Wo)).sum(2).view(N, C, Ho, Wo)
        ctx.save_for_backward(idx, ties)
        ctx.xshape, ctx.mode, ctx.stats = x.shape, mode, stats
        return y

    @staticmethod
    def backward(ctx, g):
        idx, ties = ctx.saved_tensors
        N, C, H, W = ctx.xshape
        ctx.stats['tiedWindows'] += int(((g != 0) & (ties > 1)).sum())
        gi = g.reshape(N, C, -1)
        ii = idx.reshape(N, C, -1)
        if ctx.mode == 'sum':
            out = torch.zeros(N, C, H * W, dtype=g.dtype).scatter_add_(2, ii, gi)
        else:
            out = np.zeros((N, C, H * W), dtype=np.float32)
            gn, inn = gi.numpy(), ii.numpy()
            for n in range(N):
                for c in range(C):
                    rev = inn[n, c][::-1]
                    uniq, first_in_rev = np.unique(rev, return_index=True)
                    last = len(rev) - 1 - first_in_rev  # last occurrence in raster order of windows
                    out[n, c, uniq] = gn[n, c][last]
            out = torch.from_numpy(out)
        return out.view(N, C, H, W), None, None, None, None, None, None, None


class RefMaxPool(nn.Module):
    def __init__(self, pool, mode, stats):
        super().__init__()
        two = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
        self.k, self.s = two(pool.kernel_size), two(pool.stride)
        self.p, self.d = two(pool.padding), two(pool.dilation)
        self.ceil, self.mode, self.stats = pool.ceil_mode, mode, stats

    def forward(self, x):
        return RefMaxPoolFn.apply(x, self.k, self.s, self.p, self.d, self.ceil, self.mode, self.stats)


def reference_copy(model, method, lrn, pool_mode='sum', stats=None, strict=True):
    """A copy of model with every ReLU/ReLU6/Hardtanh(0,6)/LRN/MaxPool swapped for its reference-backward version.
    Module names are unchanged, so hooks by qualified name still work. strict: raise on an activation without a
    rule (Tanh, Sigmoid, ...); otherwise it keeps its true gradient (Captum's Deconvolution/GuidedBackprop)."""
    m = copy.deepcopy(model)
    stats = stats if stats is not None else {'tiedWindows': 0}
    for _, mod in list(m.named_modules()):
        for cname, child in list(mod.named_children()):
            new = None
            if isinstance(child, nn.ReLU):
                new = RuleReLU(method)
            elif isinstance(child, nn.Hardtanh) and (child.min_val, child.max_val) == (0.0, 6.0):  # ReLU6 too
                new = RuleReLU(method, 6.0)
            elif strict and isinstance(child, (nn.Hardtanh, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)):
                raise ValueError('no reference rule for %s' % type(child).__name__)
            elif isinstance(child, (LRN, nn.LocalResponseNorm)):
                new = LRN(child.size, child.alpha, child.beta, child.k,
                          'identity' if lrn == 'IDENTITY' else 'gradient')
            elif isinstance(child, nn.MaxPool2d):
                new = RefMaxPool(child, pool_mode, stats)
            if new is not None:
                setattr(mod, cname, new)
    return m.eval()


# ---------------------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------------------

class AlexNet(nn.Module):
    """torchvision AlexNet layout (same module indices), reduced widths."""

    def __init__(self, c=(16, 32, 48, 32, 32), fc=(64, 64), classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(c[4] * 36, fc[0]), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(fc[0], fc[1]), nn.ReLU(), nn.Linear(fc[1], classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class VGG(nn.Module):
    """VGG11 (cfg A) ÷ 8, flatten after the last pool (no adaptive pool)."""
    CFG = [8, 'M', 16, 'M', 32, 32, 'M', 64, 64, 'M', 64, 64, 'M']

    def __init__(self, size=64, classes=10):
        super().__init__()
        layers, cin = [], 3
        for v in self.CFG:
            if v == 'M':
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers)
        s = size // 32
        self.classifier = nn.Sequential(
            nn.Linear(cin * s * s, 64), nn.ReLU(), nn.Dropout(),
            nn.Linear(64, 64), nn.ReLU(), nn.Dropout(), nn.Linear(64, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    """torchvision BasicBlock, but with two ReLU modules (relu1, relu2) instead of one shared one."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + identity)


class ResNet(nn.Module):
    """ResNet-18 layout, widths (8, 16, 32, 64)."""

    def __init__(self, widths=(8, 16, 32, 64), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, 'layer%d' % (i + 1), nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Fire(nn.Module):
    def __init__(self, cin, sq, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, sq, 1)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = nn.Conv2d(sq, e1, 1)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = nn.Conv2d(sq, e3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU()

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1 layout (torchvision module indices), widths ÷ 4."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16, 4, 16, 16), Fire(32, 4, 16, 16), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(32, 8, 32, 32), Fire(64, 8, 32, 32), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(64, 12, 48, 48), Fire(96, 12, 48, 48), Fire(96, 16, 64, 64), Fire(128, 16, 64, 64))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(128, classes, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class ZFNet(nn.Module):
    """ZFNet-style, 112×112 input, grouped convs, two single-node LRNs."""

    def __init__(self, c=(16, 32, 48, 48, 32), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c[0], 7, 2, 1)
        self.relu1 = nn.ReLU()
        self.lrn1 = LRN(5, 1e-4, 0.75, 2.0)
        self.pool1 = nn.MaxPool2d(3, 2)
        self.conv2 = nn.Conv2d(c[0], c[1], 5, 2, 0, groups=2)
        self.relu2 = nn.ReLU()
        self.lrn2 = LRN(5, 1e-4, 0.75, 2.0)
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3 = nn.Conv2d(c[1], c[2], 3, 1, 1)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(c[2], c[3], 3, 1, 1, groups=2)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv2d(c[3], c[4], 3, 1, 1, groups=2)
        self.relu5 = nn.ReLU()
        self.pool5 = nn.MaxPool2d(3, 2)
        self.fc6 = nn.Linear(c[4] * 2 * 2, 64)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(64, classes)

    def forward(self, x):
        x = self.pool1(self.lrn1(self.relu1(self.conv1(x))))
        x = self.pool2(self.lrn2(self.relu2(self.conv2(x))))
        x = self.relu4(self.conv4(self.relu3(self.conv3(x))))
        x = self.pool5(self.relu5(self.conv5(x)))
        return self.fc7(self.drop6(self.relu6(self.fc6(torch.flatten(x, 1)))))


class LRNDecomposed(nn.Module):
    """nn.LocalResponseNorm exported the default torch 1.13 way (many small nodes)."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.relu1 = nn.ReLU()
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.relu2 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.pool(self.lrn(self.relu1(self.conv1(x))))
        x = self.gap(self.relu2(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


class Misc(nn.Module):
    """The remaining ops: Clip(0,6), AveragePool, BatchNormalization (eps 1e-3), MaxPool ceil_mode on an odd
    size, dilated conv, GlobalAveragePool, Flatten, MatMul+Add, Dropout node, Gemm, Softmax output."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.relu6 = nn.ReLU6()
        self.avgpool = nn.AvgPool2d(2, 2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16, eps=1e-3)
        self.relu2 = nn.ReLU()
        self.maxpool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(16, 24, 3, padding=2, dilation=2)
        self.relu3 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.affine = Affine(24, 32)
        self.relu4 = nn.ReLU()
        self.drop = DropoutNode()
        self.fc = nn.Linear(32, classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.avgpool(self.relu6(self.conv1(x)))
        x = self.maxpool(self.relu2(self.bn(self.conv2(x))))
        x = self.flatten(self.gap(self.relu3(self.conv3(x))))
        x = self.drop(self.relu4(self.affine(x)))
        return self.softmax(self.fc(x))


class Quantize(nn.Module):
    """Rounds down to quarters (a fake-quantised activation): Floor, which has no gradient to run backwards."""

    def forward(self, x):
        return torch.floor(x * 4) / 4


class Unsupported(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.act = Quantize()
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8 * 12 * 12, classes)

    def forward(self, x):
        x = self.relu(self.conv2(self.act(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


def init_weights(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='relu')
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, Affine):
                nn.init.kaiming_normal_(m.W.T, mode='fan_in', nonlinearity='relu')
                m.b.normal_(0.0, 0.1)
    return model.eval()


# name -> (constructor, seed, input [C,H,W], export training mode, description)
SPECS = OrderedDict([
    ('alexnet', (AlexNet, 1, (3, 224, 224), 'EVAL',
                 'torchvision AlexNet layout (conv 11/4/2, 5/1/2, 3/1/1 x3; overlapping 3/2 max pools; '
                 'adaptive 6x6 avg pool; 3 dense layers), widths 16-32-48-32-32, fc 64-64-10, random weights')),
    ('vgg', (VGG, 2, (3, 64, 64), 'EVAL',
             'VGG11 (cfg A) layout, widths / 8, 64x64 input, flatten after the last pool, random weights')),
    ('resnet', (ResNet, 3, (3, 64, 64), 'PRESERVE',
                'ResNet-18 layout (BasicBlocks with 1x1 downsample), widths 8-16-32-64, real '
                'BatchNormalization nodes (not fused), random weights')),
    ('squeezenet', (SqueezeNet, 4, (3, 64, 64), 'EVAL',
                    'SqueezeNet 1.1 layout (Fire modules with Concat, ceil_mode max pools), widths / 4, '
                    'random weights')),
    ('zfnet', (ZFNet, 5, (3, 112, 112), 'EVAL',
               'ZFNet-style: conv 7/2/1, single-node LRN (size 5, alpha 1e-4, beta 0.75, k 2), grouped convs, '
               '112x112 input, Caffe-style preprocessing (BGR, 0..255 minus mean pixel), random weights')),
    ('lrn_decomposed', (LRNDecomposed, 6, (3, 32, 32), 'EVAL',
                        'tiny net with nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0) exported the default torch 1.13 '
                        'way (decomposed into many small nodes, including an If), random weights')),
    ('misc', (Misc, 7, (3, 37, 37), 'PRESERVE',
              'Clip(0,6), AveragePool, BatchNormalization, ceil_mode MaxPool on an odd size, dilated conv, '
              'GlobalAveragePool, Flatten, MatMul+Add, Dropout node, Gemm; the output is a Softmax, random '
              'weights')),
    ('unsupported', (Unsupported, 8, (3, 16, 16), 'EVAL',
                     'conv -> Floor (quantise) -> conv -> relu -> dense: Floor has no projection rule, random weights')),
])


# ---------------------------------------------------------------------------------------------------------
# Export and ONNX inspection
# ---------------------------------------------------------------------------------------------------------

def export(model, shape, mode):
    f = io.BytesIO()
    training = {'EVAL': torch.onnx.TrainingMode.EVAL, 'PRESERVE': torch.onnx.TrainingMode.PRESERVE}[mode]
    torch.onnx.export(model, torch.zeros(1, *shape), f, opset_version=OPSET, input_names=['input'],
                      output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}},
                      training=training, do_constant_folding=True)
    return f.getvalue()


def dims_of(vi):
    t = vi.type.tensor_type
    if not t.HasField('shape'):
        return None
    return [d.dim_value if d.HasField('dim_value') else (d.dim_param or None) for d in t.shape.dim]


def inferred_shapes(mp):
    inf = onnx.shape_inference.infer_shapes(mp, strict_mode=True, data_prop=True)
    shapes = {}
    for vi in list(inf.graph.value_info) + list(inf.graph.output) + list(inf.graph.input):
        shapes[vi.name] = dims_of(vi)
    return shapes


def strip_batch(dims):
    """(shape without the batch dim, batched?) — batched when the leading dim is the symbolic 'N'."""
    if dims is None:
        return None, None
    if dims and dims[0] == 'N':
        return dims[1:], True
    return dims, False


def scope_of(qualname):
    comps = []
    for p in qualname.split('.'):
        comps.append(comps[-1] + '.' + p if p.isdigit() else p)
    return '/' + '/'.join(comps)


def layer_table(mp, shapes):
    """The manifest's 'layers': every node in graph order with the inferred shape of its first output."""
    layers = []
    for n in mp.graph.node:
        osh, batched = strip_batch(shapes.get(n.output[0]))
        layers.append(OrderedDict([('name', n.name), ('op', n.op_type), ('inputs', list(n.input)),
                                   ('outputs', list(n.output)), ('outputShape', osh), ('batched', batched)]))
    return layers


def module_node(mp, qualname):
    """The ONNX node that produces a module's output: the last non-Constant node directly in its scope."""
    scope = scope_of(qualname)
    cands = [n for n in mp.graph.node if n.name.rsplit('/', 1)[0] == scope and n.op_type != 'Constant']
    assert cands, 'no ONNX node for module %s (scope %s)' % (qualname, scope)
    return cands[-1]


def producer(mp, tensor):
    for n in mp.graph.node:
        if tensor in n.output:
            return n
    raise KeyError(tensor)


# ---------------------------------------------------------------------------------------------------------
# Projections
# ---------------------------------------------------------------------------------------------------------

def module_tensor(model, x, qualname, at):
    """A module's output (or its first input) in a forward pass of x."""
    mod = dict(model.named_modules())[qualname]
    box = {}
    if at == 'output':
        h = mod.register_forward_hook(lambda m, i, o: box.setdefault('y', o))
    else:
        h = mod.register_forward_pre_hook(lambda m, i: box.setdefault('y', i[0]))
    try:
        model(x)
    finally:
        h.remove()
    return box['y']


def capture(model, x, qualname, at):
    """module_tensor as convscope serves it: a token layer's [N, T, D] (tokens x hidden) as its [N, D, T, 1] view,
    D channels over T positions."""
    y = module_tensor(model, x, qualname, at)
    return y.transpose(1, 2).unsqueeze(3) if y.dim() == 3 else y


def seed_of(y, channel, seed, position):
    """Seed tensor (same shape as y) and its description."""
    yd = y.detach()
    grad = torch.zeros_like(yd)
    if yd.dim() == 2:
        v = float(yd[0, channel])
        grad[0, channel] = yd[0, channel]
        return grad, v, None, 1
    m = yd[0, channel]
    flat = m.flatten().numpy()
    am = int(np.argmax(flat))  # first maximum in raster order
    H, W = m.shape
    ties = int((flat == flat[am]).sum())
    if seed == 'MAX':
        grad[0, channel].view(-1)[am] = float(flat[am])
        return grad, float(flat[am]), {'y': am // W, 'x': am % W}, ties
    if seed == 'POSITION':
        py, px = position['y'], position['x']
        grad[0, channel, py, px] = m[py, px]
        return grad, float(m[py, px]), {'y': py, 'x': px}, 1
    if seed == 'FULL_MAP':
        grad[0, channel] = m
        return grad, float(flat[am]), {'y': am // W, 'x': am % W}, ties
    raise ValueError(seed)


def project(model, x, qualname, at, channel, method, seed, position, lrn, pool_mode='sum', strict=True):
    stats = {'tiedWindows': 0}
    ref = reference_copy(model, method, lrn, pool_mode, stats, strict)
    xin = x.clone().requires_grad_(True)
    y = capture(ref, xin, qualname, at)
    grad, value, pos, ties = seed_of(y, channel, seed, position)
    g, = torch.autograd.grad(y, xin, grad)
    return g[0].detach().numpy().astype(np.float32), value, pos, ties, stats['tiedWindows']


def plain_gradient(model, x, qualname, at, channel, seed, position, lrn):
    """torch's own autograd (no swapped modules) — must equal SALIENCY (with lrn GRADIENT)."""
    m = copy.deepcopy(model)
    for _, mod in list(m.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, (LRN, nn.LocalResponseNorm)):
                setattr(mod, cname, LRN(child.size, child.alpha, child.beta, child.k,
                                        'identity' if lrn == 'IDENTITY' else 'gradient'))
    xin = x.clone().requires_grad_(True)
    y = capture(m, xin, qualname, at)
    grad, _, _, _ = seed_of(y, channel, seed, position)
    g, = torch.autograd.grad(y, xin, grad)
    return g[0].numpy()


def pick_channel(y, rng, avoid=()):
    """A channel/unit with a positive maximum whose max is not a near-tie with a different value."""
    yd = y.detach()[0]
    ok = []
    for c in range(yd.shape[0]):
        if c in avoid:
            continue
        flat = yd[c].flatten().numpy() if yd.dim() > 1 else yd[c:c + 1].numpy()
        mx = flat.max()
        if mx <= 0:
            continue
        below = flat[flat < mx]
        if below.size and mx - below.max() < 1e-3 * abs(mx):
            continue
        ok.append(c)
    assert ok, 'no usable channel'
    return int(ok[rng.randint(len(ok))])


def pick_position(y, channel):
    """A position with a non-zero activation that is not the channel's argmax (about a third into the map)."""
    m = y.detach()[0, channel]
    flat = m.flatten().numpy()
    am = int(np.argmax(flat))
    nz = [i for i in np.nonzero(flat)[0] if i != am and abs(flat[i]) > 1e-3 * abs(flat[am])]
    i = int(nz[len(nz) // 3]) if nz else am
    return {'y': i // m.shape[1], 'x': i % m.shape[1]}


# Projection targets: model -> list of (torch module, 'output'|'input', cases)
# each case: (method, seed, lrn[, channel]) — channel picked deterministically when absent.
D, G, S = 'DECONVNET', 'GUIDED_BACKPROP', 'SALIENCY'
I_, GR = 'IDENTITY', 'GRADIENT'
TARGETS = OrderedDict([
    ('alexnet', [
        # 600 kB per case: few here, the other models cover the rest
        ('features.4', 'output', [(D, 'MAX', I_)]),                      # relu2 (after pool1): overlap case
        ('features.11', 'output', [(G, 'MAX', I_)]),                     # relu5
        ('classifier.6', 'output', [(D, 'MAX', I_)]),                    # logits
    ]),
    ('vgg', [
        ('features.0', 'output', [(D, 'MAX', I_), (S, 'FULL_MAP', I_)]),
        ('features.4', 'output', [(G, 'POSITION', I_)]),                 # conv3 (pre-relu)
        ('features.5', 'output', [(D, 'MAX', I_), (G, 'MAX', I_)]),      # relu
        ('features.10', 'output', [(D, 'FULL_MAP', I_)]),                # pool4
        ('features.14', 'output', [(D, 'MAX', I_), (S, 'MAX', I_), (G, 'POSITION', I_)]),  # relu8
        ('features.15', 'output', [(G, 'MAX', I_)]),                     # pool5
        ('classifier.1', 'output', [(D, 'MAX', I_)]),                    # dense relu
        ('classifier.6', 'output', [(S, 'MAX', I_)]),                    # logits
    ]),
    ('resnet', [
        ('conv1', 'output', [(S, 'MAX', I_)]),
        ('bn1', 'output', [(D, 'POSITION', I_)]),
        ('maxpool', 'output', [(D, 'MAX', I_), (G, 'FULL_MAP', I_)]),
        ('layer1.0.relu2', 'input', [(D, 'MAX', I_), (G, 'MAX', I_)]),   # the Add
        ('layer1.1.relu2', 'output', [(S, 'FULL_MAP', I_)]),
        ('layer2.0.downsample.1', 'output', [(D, 'MAX', I_)]),           # downsample BatchNormalization
        ('layer2.0.relu2', 'input', [(S, 'POSITION', I_)]),              # Add with downsample branch
        ('layer3.1.bn2', 'output', [(G, 'MAX', I_)]),
        ('layer4.1.relu2', 'output', [(D, 'MAX', I_), (G, 'POSITION', I_)]),
        ('fc', 'output', [(D, 'MAX', I_), (S, 'MAX', I_)]),              # logits
    ]),
    ('squeezenet', [
        ('features.0', 'output', [(D, 'MAX', I_)]),
        ('features.2', 'output', [(G, 'FULL_MAP', I_)]),                 # ceil-mode pool
        ('features.3.expand3x3', 'output', [(S, 'POSITION', I_)]),
        ('features.3', 'output', [(D, 'MAX', I_), (G, 'MAX', I_)]),      # Concat
        ('features.4', 'output', [(S, 'MAX', I_)]),                      # Concat
        ('features.7.squeeze_activation', 'output', [(D, 'POSITION', I_)]),
        ('features.8', 'output', [(D, 'FULL_MAP', I_)]),                 # pool after Fire
        ('features.12', 'output', [(D, 'MAX', I_), (G, 'MAX', I_)]),     # last Concat
        ('classifier.2', 'output', [(D, 'MAX', I_)]),                    # relu after final conv
        ('classifier.3', 'output', [(S, 'MAX', I_)]),                    # GlobalAveragePool
    ]),
    ('zfnet', [
        ('lrn1', 'output', [(D, 'MAX', I_)]),                            # LRN output
        # a pair on lrn2: from lrn1's own output GRADIENT would be a pure scale (relu kills the cross terms)
        ('lrn2', 'output', [(D, 'MAX', I_), (D, 'MAX', GR, 'same')]),
        ('pool1', 'output', [(G, 'POSITION', I_)]),
        ('conv2', 'output', [(D, 'FULL_MAP', GR)]),                      # grouped conv
        ('relu3', 'output', [(G, 'MAX', I_), (G, 'MAX', GR, 'same')]),
        ('relu5', 'output', [(D, 'MAX', I_), (S, 'MAX', GR)]),
        ('fc7', 'output', [(D, 'MAX', I_)]),                             # logits
    ]),
    ('lrn_decomposed', [
        ('conv1', 'output', [(D, 'MAX', I_)]),
        ('relu1', 'output', [(G, 'POSITION', I_)]),
        ('lrn', 'output', [(D, 'MAX', I_)]),                             # the decomposed LRN's last node (Div)
        ('pool', 'output', [(D, 'FULL_MAP', I_)]),
        ('relu2', 'output', [(D, 'MAX', I_), (G, 'MAX', I_), (G, 'POSITION', I_)]),
        ('fc', 'output', [(D, 'MAX', I_)]),
    ]),
    ('misc', [
        ('conv1', 'output', [(D, 'MAX', I_)]),
        ('relu6', 'output', [(D, 'MAX', I_), (G, 'MAX', I_), (S, 'MAX', I_)]),   # Clip(0,6)
        ('avgpool', 'output', [(G, 'POSITION', I_)]),
        ('bn', 'output', [(D, 'FULL_MAP', I_)]),                         # BatchNormalization
        ('maxpool', 'output', [(D, 'MAX', I_), (G, 'FULL_MAP', I_)]),    # ceil_mode
        ('relu3', 'output', [(D, 'MAX', I_), (S, 'POSITION', I_)]),      # after dilated conv
        ('affine', 'output', [(D, 'MAX', I_)]),                          # MatMul + Add
        ('drop', 'output', [(G, 'MAX', I_)]),                            # Dropout node
        ('fc', 'output', [(D, 'MAX', I_), (S, 'MAX', I_)]),              # logits (input of Softmax)
    ]),
])
OVERLAP_CASE = ('alexnet', 'features.4')
logits_module = {'alexnet': 'classifier.6', 'vgg': 'classifier.6', 'resnet': 'fc', 'squeezenet': None,
                 'zfnet': 'fc7', 'lrn_decomposed': 'fc', 'misc': 'fc'}


def make_input(name, shape):
    g = torch.Generator().manual_seed(1000 + list(SPECS).index(name))
    C, H, W = shape
    if name == 'alexnet':
        # a smooth random "image": low-resolution noise upsampled, plus a little fine noise
        low = torch.randn(1, C, H // 16, W // 16, generator=g)
        x = F.interpolate(low, size=(H, W), mode='bilinear', align_corners=False) * 1.2
        x = x + 0.1 * torch.randn(1, C, H, W, generator=g)
        return x.contiguous()
    if name == 'zfnet':
        # Caffe-style pixel scale (mean-subtracted 0..255, see its sidecar): activations are large enough
        # for LRN's alpha term to matter, so GRADIENT differs from IDENTITY by more than a constant factor
        return torch.randn(1, C, H, W, generator=g) * 50.0
    return torch.randn(1, C, H, W, generator=g)


def recreate(*dirs):
    for d in dirs:
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)


def save_npy(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(arr, dtype=np.float32))


def main():
    t0 = time.time()
    recreate(MODELS, BAD, REF)

    manifest = OrderedDict([
        ('version', 1),
        ('generator', 'scripts/make_fixtures.py'),
        ('torch', torch.__version__), ('onnx', onnx.__version__), ('opset', OPSET),
        ('paths', 'relative to this manifest'),
        ('semantics', 'see test/fixtures/README.md; docs/architecture.md'),
        ('models', OrderedDict()),
        ('cases', []),
    ])
    summary = []
    overlap_diff = None
    pairs = []
    built = {}

    for name, (ctor, seed, shape, mode, desc) in SPECS.items():
        model = init_weights(ctor(), seed)
        built[name] = model
        data = export(model, shape, mode)
        path = MODELS / (name + '.onnx')
        path.write_bytes(data)
        C, H, W = shape
        pre = CAFFE if name == 'zfnet' else IMAGENET
        sidecar = OrderedDict([('description', desc),
                               ('input', OrderedDict([('size', [H, W])] + list(pre.items()))),
                               ('labels', LABELS10)])
        (MODELS / (name + '.json')).write_text(json.dumps(sidecar, indent=2) + '\n')

        mp = onnx.load(str(path))
        onnx.checker.check_model(mp, full_check=True)
        ops = [n.op_type for n in mp.graph.node]
        count = lambda op: ops.count(op)
        assert [i.name for i in mp.graph.input] == ['input'], [i.name for i in mp.graph.input]
        assert [o.name for o in mp.graph.output] == ['logits']
        assert dims_of(mp.graph.input[0]) == ['N', C, H, W], dims_of(mp.graph.input[0])
        assert 'Identity' not in ops or name == 'lrn_decomposed', 'deduplicated initializers became Identity nodes'
        if name == 'zfnet':
            assert count('LRN') == 2 and count('Pow') == 0, ops
        if name == 'lrn_decomposed':
            assert count('LRN') == 0 and len(ops) > 30 and count('Div') == 1, ops
        if name in ('resnet', 'misc'):
            assert count('BatchNormalization') == (20 if name == 'resnet' else 1), count('BatchNormalization')
        if name == 'resnet':
            assert count('Add') == 8 and count('GlobalAveragePool') == 1, ops
        if name == 'misc':
            assert count('MatMul') == 1 and count('Add') == 1 and count('Gemm') == 1 and count('Clip') == 1, ops
            assert count('Dropout') == 1 and ops[-1] == 'Softmax' and count('AveragePool') == 1, ops
            mpool = [n for n in mp.graph.node if n.op_type == 'MaxPool'][0]
            assert {a.name: onnx.helper.get_attribute_value(a) for a in mpool.attribute}['ceil_mode'] == 1
        if name == 'squeezenet':
            assert count('Concat') == 8 and count('MaxPool') == 3, ops
        if name == 'unsupported':
            assert count('Floor') == 1, ops
        if name == 'alexnet':
            assert count('Conv') == 5 and count('MaxPool') == 3 and count('Gemm') == 3 and count('Relu') == 7, ops

        x = make_input(name, shape)
        with torch.no_grad():
            logits = model(x).numpy()
        summary.append((name, path.stat().st_size, len(mp.graph.node)))
        if name == 'unsupported':
            continue

        shapes = inferred_shapes(mp)
        layers = layer_table(mp, shapes)
        save_npy(REF / 'inputs' / (name + '.npy'), x.numpy())
        save_npy(REF / 'outputs' / (name + '-logits.npy'), logits)
        manifest['models'][name] = OrderedDict([
            ('onnx', '../models/%s.onnx' % name),
            ('sha256', hashlib.sha256(data).hexdigest()),
            ('input', 'inputs/%s.npy' % name),
            ('logits', 'outputs/%s-logits.npy' % name),
            ('inputShape', list(shape)),
            ('logitsShape', list(logits.shape[1:])),
            ('exportTraining', mode),
            ('layers', layers),
        ])

        rng = np.random.RandomState(seed)
        k = 0
        for qual, at, cases in TARGETS[name]:
            if at == 'output':
                node = module_node(mp, qual)
            else:
                consumer = module_node(mp, qual)
                node = producer(mp, consumer.input[0])
            with torch.no_grad():
                y = capture(model, x, qual, at)
            osh, batched = strip_batch(shapes.get(node.output[0]))
            assert batched and osh == list(y.shape[1:]), (name, qual, node.name, osh, list(y.shape))
            used = []
            for case in cases:
                method, seedmode, lrn = case[:3]
                if len(case) > 3 and case[3] == 'same':
                    channel = used[-1]  # same seed as the previous case (e.g. an IDENTITY/GRADIENT pair)
                else:
                    channel = pick_channel(y, rng, avoid=used)
                    used.append(channel)
                if y.dim() == 2 and len(used) == 1 and qual == logits_module[name] and len(case) == 3:
                    channel = int(np.argmax(y[0].numpy()))  # first case on the logits: the predicted class
                    used[-1] = channel
                position = pick_position(y, channel) if seedmode == 'POSITION' else None
                exp, value, spos, ties, tied = project(model, x, qual, at, channel, method, seedmode, position, lrn)
                assert np.abs(exp).max() > 0, 'all-zero projection'
                if method == 'SALIENCY':
                    ref = plain_gradient(model, x, qual, at, channel, seedmode, position, lrn)
                    err = np.abs(ref - exp).max() / np.abs(ref).max()
                    assert err < 1e-5, ('saliency != torch autograd', name, qual, err)
                cid = '%s-%02d-%s-%s-%s-c%d%s' % (
                    name, k, node.op_type.lower(), method.split('_')[0].lower(), seedmode.lower().replace('_', ''),
                    channel, '-lrngrad' if lrn == GR else '')
                k += 1
                save_npy(REF / 'cases' / (cid + '.npy'), exp)
                entry = OrderedDict([
                    ('id', cid), ('model', name), ('target', node.name), ('targetOutput', node.output[0]),
                    ('targetOp', node.op_type), ('targetShape', osh), ('torchModule', qual),
                    ('torchTensor', at), ('channel', channel), ('method', method), ('seed', seedmode),
                    ('position', position), ('lrn', lrn), ('expected', 'cases/%s.npy' % cid),
                    ('seedValue', value), ('seedPosition', spos), ('seedTies', ties),
                    ('poolTiedWindows', tied), ('maxAbs', float(np.abs(exp).max())),
                ])
                if (name, qual) == OVERLAP_CASE and method == D and seedmode == 'MAX':
                    ow, v2, _, _, _ = project(model, x, qual, at, channel, method, seedmode, position, lrn,
                                              pool_mode='overwrite')
                    assert v2 == value
                    save_npy(REF / 'cases' / (cid + '-overwrite.npy'), ow)
                    entry['expectedOverwrite'] = 'cases/%s-overwrite.npy' % cid
                    overlap_diff = (cid, float(np.linalg.norm(ow - exp) / np.linalg.norm(exp)),
                                    float(np.abs(ow - exp).max() / np.abs(exp).max()))
                    assert overlap_diff[1] > 0.05, overlap_diff
                if len(case) > 3 and case[3] == 'same':
                    prev = manifest['cases'][-1]
                    other = np.load(REF / prev['expected'])
                    a = float((other * exp).sum() / (other * other).sum())  # best scalar fit exp ~ a * other
                    pairs.append((prev['id'], cid, float(np.linalg.norm(other - exp) / np.linalg.norm(exp)),
                                  float(np.linalg.norm(a * other - exp) / np.linalg.norm(exp))))
                manifest['cases'].append(entry)

    # re-run: a freshly built model gives the saved logits (determinism)
    for name, (ctor, seed, shape, mode, desc) in SPECS.items():
        if name == 'unsupported':
            continue
        again = init_weights(ctor(), seed)
        with torch.no_grad():
            out = again(make_input(name, shape)).numpy()
        saved = np.load(REF / 'outputs' / (name + '-logits.npy'))
        assert np.array_equal(out, saved), name
        assert np.array_equal(np.load(REF / 'inputs' / (name + '.npy')), make_input(name, shape).numpy())

    # files that must be rejected
    (BAD / 'corrupt.onnx').write_bytes((MODELS / 'alexnet.onnx').read_bytes()[:300])
    (BAD / 'not-onnx.onnx').write_text('this is not an ONNX model, just text\n')
    for bad in ('corrupt.onnx', 'not-onnx.onnx'):
        try:
            onnx.load(str(BAD / bad))
        except Exception:
            pass
        else:
            raise AssertionError('%s parsed as ONNX' % bad)

    (REF / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')

    # summary
    total = sum(f.stat().st_size for d in (MODELS, BAD, REF) for f in d.rglob('*') if f.is_file())  # modern/ is make_modern_fixtures.py's
    ref_total = sum(f.stat().st_size for f in REF.rglob('*') if f.is_file())
    print('%-16s %10s %6s %6s' % ('model', 'bytes', 'nodes', 'cases'))
    for name, size, nodes in summary:
        nc = sum(1 for c in manifest['cases'] if c['model'] == name)
        print('%-16s %10d %6d %6d' % (name, size, nodes, nc))
    print('cases: %d  (tied pool windows on a backward path: %d cases)' % (
        len(manifest['cases']), sum(1 for c in manifest['cases'] if c['poolTiedWindows'])))
    print('overlap case %s: overwrite vs sum, relative L2 %.3f, relative max %.3f' % overlap_diff)
    for a, b, d, r in pairs:
        print('same seed, %s vs %s: relative L2 difference %.3f (%.3f after the best scalar fit)' % (a, b, d, r))
    print('reference/: %.2f MB; all of test/fixtures: %.2f MB' % (ref_total / 1e6, total / 1e6))
    assert total <= 10 * 1024 * 1024, total
    print('done in %.1f s' % (time.time() - t0))


if __name__ == '__main__':
    main()
