#!/usr/bin/python3
"""Regenerate convscope's fixtures of modern torchvision architectures and their PyTorch reference projections.

    /usr/bin/python3 scripts/make_modern_fixtures.py

Needs Debian's python3-torch (1.13), python3-torchvision (0.14) and python3-onnx (1.12); no network.
Deterministic: every model, input and case comes from fixed seeds.

Each model is built with torchvision's own classes (narrow, few blocks, 10 classes, random seeded weights), except
`ops`, this script's OpsNet, which puts on backward paths the ops the torchvision models lack; all are exported
like scripts/make_fixtures.py does (opset 17, dynamic batch, TrainingMode.EVAL: BatchNorm folded into the
convolution before it). Writes (relative to the repository root):
  test/fixtures/modern/models/<name>.onnx + <name>.json
  test/fixtures/modern/reference/manifest.json                  same schema as test/fixtures/reference, + family
  test/fixtures/modern/reference/{inputs,outputs,cases}/*.npy   float32, C order (numpy.save)

Reference semantics (Captum's Deconvolution / GuidedBackprop convention, test/fixtures/modern/README.md): forward
to the target node's output; seed = zeros except the chosen activation(s) of channel c of batch item 0, which keep
their own value; backward to the input with autograd, except at ReLU modules, which get the method's rule. Every
other op (Sigmoid, SiLU, Hardswish, Hardsigmoid, GELU, LayerNorm, Softmax, MaxPool, ...) passes its true gradient.
A token layer [N, T, D] is seeded as D channels over T positions (make_fixtures.capture).
"""
import hashlib
import json
import sys
import time
from collections import OrderedDict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as base  # noqa: E402  (also makes torch deterministic and sets its threads)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnx.checker  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from torchvision.models import convnext, efficientnet, mnasnet, mobilenetv3, regnet, shufflenetv2  # noqa: E402
from torchvision.models import vision_transformer  # noqa: E402

OUT = base.FIX / 'modern'
MODELS = OUT / 'models'
REF = OUT / 'reference'
MAX_BYTES = 6 * 1024 * 1024
MAX_MODEL_BYTES = 300 * 1024


# ---------------------------------------------------------------------------------------------------------
# The models: torchvision 0.14's own classes, narrow
# ---------------------------------------------------------------------------------------------------------

def efficientnet_b0():
    MB = efficientnet.MBConvConfig  # (expand_ratio, kernel, stride, in, out, layers)
    return efficientnet.EfficientNet([MB(1, 3, 1, 16, 8, 1), MB(6, 3, 2, 8, 16, 2), MB(6, 5, 2, 16, 24, 1)],
                                     dropout=0.2, last_channel=64, num_classes=10)


def efficientnet_v2():
    Fused, MB = efficientnet.FusedMBConvConfig, efficientnet.MBConvConfig
    bn = lambda c: nn.BatchNorm2d(c, eps=1e-3)  # as torchvision's efficientnet_v2_*
    return efficientnet.EfficientNet([Fused(1, 3, 1, 16, 16, 1), Fused(4, 3, 2, 16, 24, 1),
                                      MB(4, 3, 2, 24, 32, 1), MB(6, 3, 1, 32, 32, 1)],
                                     dropout=0.2, last_channel=64, num_classes=10, norm_layer=bn)


def mobilenet_v3_small():
    IR = mobilenetv3.InvertedResidualConfig  # (in, kernel, expanded, out, SE, activation, stride, dilation, width)
    return mobilenetv3.MobileNetV3([IR(16, 3, 16, 16, True, 'RE', 2, 1, 1), IR(16, 3, 32, 24, False, 'RE', 2, 1, 1),
                                    IR(24, 5, 48, 24, True, 'HS', 1, 1, 1), IR(24, 5, 64, 32, True, 'HS', 2, 1, 1)],
                                   last_channel=64, num_classes=10)


def regnet_y():
    params = regnet.BlockParams(depths=[1, 1, 2], widths=[16, 32, 48], group_widths=[8, 8, 8],
                                bottleneck_multipliers=[1.0, 1.0, 1.0], strides=[2, 2, 2], se_ratio=0.25)
    return regnet.RegNet(params, num_classes=10, stem_width=16)


def convnext_tiny():
    CN = convnext.CNBlockConfig  # (in, out of the downsampling after the stage, layers)
    return convnext.ConvNeXt([CN(16, 32, 1), CN(32, 48, 1), CN(48, None, 1)], num_classes=10)


def shufflenet_v2():
    return shufflenetv2.ShuffleNetV2([2, 1, 1], [8, 16, 32, 48, 64], num_classes=10)


def mnasnet_small():
    """MNASNet 0.1 with its fixed 1280-wide head conv narrowed to 64 and the 4-block stack cut to 2 (size)."""
    m = mnasnet.MNASNet(0.1, num_classes=10)
    m.layers[12] = m.layers[12][:2]
    m.layers[14] = nn.Conv2d(m.layers[14].in_channels, 64, 1, bias=False)
    m.layers[15] = nn.BatchNorm2d(64)
    m.classifier[1] = nn.Linear(64, 10)
    return m


def vit():
    return vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                hidden_dim=32, mlp_dim=64, num_classes=10)


class ChannelNorm(nn.Module):
    """LayerNorm over channels written out with torch ops (ReduceMean, Sub, Pow, Add, Sqrt, Div of two
    activations, Mul, Add), as hand-rolled LayerNorm2d's are; not a LayerNormalization node."""

    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(c, 1, 1).uniform_(0.5, 1.5))
        self.bias = nn.Parameter(torch.empty(c, 1, 1).normal_(0.0, 0.2))

    def forward(self, x):
        xc = x - x.mean(1, keepdim=True)
        var = xc.pow(2).mean(1, keepdim=True)
        return xc / torch.sqrt(var + self.eps) * self.weight + self.bias


class Mix(nn.Module):
    """torch.split on channels (Split), x.repeat (Tile), torch.where with a constant boolean mask (Where)."""

    def __init__(self, c, hw):
        super().__init__()
        self.conv = nn.Conv2d(c // 2, c, 1)
        self.register_buffer('mask', torch.rand(1, c, hw, hw) < 0.5)

    def forward(self, x):
        a, b = torch.split(x, x.shape[1] // 2, dim=1)
        return torch.where(self.mask, a.repeat(1, 2, 1, 1), self.conv(b))


class Gate(nn.Module):
    """Softmax over channels, LogSoftmax, and the map times its own [N, C, 1, 1] mean expanded to the map
    (Expand, Mul of two activations). The map's size is given, not read from x.shape: that exports as int64
    arithmetic (Gather, Unsqueeze, Concat, Reshape, Equal, Where) that ONNX Runtime keeps on the CPU with a GPU
    provider (test/webgpu.test.ts's NEEDS_CPU)."""

    def __init__(self, c, hw):
        super().__init__()
        self.hw = hw
        self.soft = nn.Conv2d(c, c, 1)
        self.logsoft = nn.Conv2d(c, c, 1)

    def forward(self, x):
        m = x.mean((2, 3), keepdim=True).expand(-1, -1, self.hw, self.hw)
        return x * m + 4 * torch.softmax(self.soft(x), dim=1) + 0.25 * torch.log_softmax(self.logsoft(x), dim=1)


class Pick(nn.Module):
    """Gather of constant channel indices, a Slice of the border, and Abs, Neg, Exp, Reciprocal, Softplus."""
    CHANNELS = [0, 2, 5, 7, 8, 11, 13, 14, 17, 19, 20, 23]

    def forward(self, x):
        g = x[:, self.CHANNELS][:, :, 1:-1, 1:-1]
        return F.softplus(g) * torch.reciprocal(1 + torch.exp(-torch.abs(g)))


class OpsNet(nn.Module):
    """Not a torchvision architecture: a small net that puts on backward paths the ops the torchvision models
    lack (Tanh, LeakyRelu, PRelu, Elu, tanh-GELU, hand-written LayerNorm, Split, Tile, Where, Softmax over
    channels, LogSoftmax, Gather, Expand, Slice, Abs/Neg/Exp/Reciprocal/Softplus), with two ReLUs so that the
    methods differ."""

    def __init__(self, num_classes=10):
        super().__init__()
        prelu = nn.PReLU(16)
        with torch.no_grad():
            prelu.weight.uniform_(0.05, 0.4)  # per-channel slopes, not the constant 0.25
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Tanh())
        self.acts = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.LeakyReLU(0.1),
                                  nn.Conv2d(16, 16, 3, padding=1), prelu, nn.ELU(),
                                  nn.Conv2d(16, 16, 1), nn.GELU(approximate='tanh'))
        self.norm = ChannelNorm(16)
        self.mix = Mix(16, 32)
        self.down = nn.Sequential(nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.ReLU())
        self.gate = Gate(24, 16)
        self.pick = Pick()
        self.head = nn.Sequential(nn.Conv2d(12, 32, 3), nn.ReLU())
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.mix(self.norm(self.acts(self.stem(x))))
        x = self.head(self.pick(self.gate(self.down(x))))
        return self.fc(x.mean((2, 3)))


# name -> (constructor, seed, input [C,H,W], family, class (torchvision's, or this script's OpsNet), description)
SPECS = OrderedDict([
    ('efficientnet_b0', (efficientnet_b0, 11, (3, 64, 64), 'EfficientNet-B0', efficientnet.EfficientNet,
                         'EfficientNet-B0 style: MBConv blocks (expand 1/6, kernels 3/5, SiLU = Sigmoid*Mul, '
                         'squeeze-excitation), widths 16-8-16-24, head 64, random weights')),
    ('efficientnet_v2', (efficientnet_v2, 12, (3, 64, 64), 'EfficientNetV2', efficientnet.EfficientNet,
                         'EfficientNetV2 style: FusedMBConv (expand 1 and 4) then MBConv with SE, BatchNorm eps '
                         '1e-3, widths 16-16-24-32-32, head 64, random weights')),
    ('mobilenet_v3_small', (mobilenet_v3_small, 13, (3, 64, 64), 'MobileNetV3-Small', mobilenetv3.MobileNetV3,
                            'MobileNetV3-Small style: inverted residuals with ReLU or Hardswish, SE with ReLU and '
                            'Hardsigmoid, widths 16-16-24-24-32, head 192-64, random weights')),
    ('regnet_y', (regnet_y, 14, (3, 64, 64), 'RegNetY', regnet.RegNet,
                  'RegNetY style: bottleneck blocks with grouped 3x3 convs (group width 8) and SE (ratio 0.25), '
                  'stem 16, widths 16-32-48, depths 1-1-2, random weights')),
    ('convnext', (convnext_tiny, 15, (3, 64, 64), 'ConvNeXt', convnext.ConvNeXt,
                  'ConvNeXt style: 4x4 patchify stem, CNBlocks (depthwise 7x7, permute + LayerNorm, Linear, GELU, '
                  'Linear, layer scale ~0.5), LayerNorm2d downsampling, widths 16-32-48, random weights')),
    ('shufflenet_v2', (shufflenet_v2, 16, (3, 64, 64), 'ShuffleNetV2', shufflenetv2.ShuffleNetV2,
                       'ShuffleNetV2 style: channel split (Slice), branches, Concat, channel shuffle (Reshape, '
                       'Transpose, Reshape), MaxPool, mean pool; widths 8-16-32-48-64, repeats 2-1-1, random weights')),
    ('mnasnet', (mnasnet_small, 17, (3, 64, 64), 'MNASNet', mnasnet.MNASNet,
                 'MNASNet 0.1 (B1 inverted residual stacks), head conv narrowed from 1280 to 64, 4-block stack '
                 'cut to 2, mean pool (ReduceMean), random weights')),
    ('vit', (vit, 18, (3, 32, 32), 'ViT', vision_transformer.VisionTransformer,
             'VisionTransformer: 32x32 input, 8x8 patches (16 tokens + class token), 2 encoder layers, 2 heads, '
             'hidden 32, MLP 64, random weights')),
    ('ops', (OpsNet, 19, (3, 32, 32), 'custom', OpsNet,
             'Not a torchvision model: conv + Tanh, LeakyReLU, PReLU, ELU, tanh-GELU, a hand-written LayerNorm over '
             'channels, split/repeat/where, Softmax over channels, LogSoftmax, mean-expand gate, channel gather, '
             'border slice, softplus/abs/neg/exp/reciprocal, two ReLUs, random weights')),
])


def build(name):
    ctor, seed = SPECS[name][:2]
    torch.manual_seed(seed)  # whatever the constructor draws is seeded too
    model = base.init_weights(ctor(), seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):  # torchvision's LayerNorm2d too
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
            elif isinstance(m, convnext.CNBlock):
                m.layer_scale.uniform_(0.3, 0.7)  # not 1e-6: the branches must matter
            elif isinstance(m, nn.MultiheadAttention):
                nn.init.xavier_uniform_(m.in_proj_weight)
                m.in_proj_bias.normal_(0.0, 0.1)
            elif isinstance(m, vision_transformer.VisionTransformer):
                m.class_token.normal_(0.0, 0.5)
                m.encoder.pos_embedding.normal_(0.0, 0.5)
            elif isinstance(m, OpsNet):
                # the stem's Tanh short of saturation: at y ≈ 1 its derivative 1 − y² cancels, and a one-ulp
                # difference in a runtime's tanh becomes a large relative one in the projection
                m.stem[0].weight.mul_(0.3)
            if isinstance(getattr(m, 'inplace', None), bool):
                # an in-place activation would overwrite a captured module output (and the seeded tensor)
                m.inplace = False
    for pname, t in list(model.named_parameters()) + list(model.named_buffers()):
        assert t.numel() == 1 or t.float().std() > 0, ('constant parameter or buffer', name, pname)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------
# Projection targets: model -> list of (torch module, 'output'|'input', ONNX module, cases)
# The ONNX node is make_fixtures.module_node(ONNX module) (None: the torch module itself), or for 'input' the
# producer of that node's input. A BatchNorm's ONNX node is its convolution's (the export folds it in).
# Each case: (method, seed). Together they cover all 9 method x seed combinations in every model.
# ---------------------------------------------------------------------------------------------------------

D, G, S = 'DECONVNET', 'GUIDED_BACKPROP', 'SALIENCY'
MX, PO, FM = 'MAX', 'POSITION', 'FULL_MAP'
TARGETS = OrderedDict([
    ('efficientnet_b0', [
        ('features.0.1', 'output', 'features.0.0', [(D, MX), (S, FM)]),       # first Conv (+ folded BN)
        ('features.2.0.block.1.2', 'output', None, [(G, PO)]),                # SiLU (Mul) after a depthwise conv
        ('features.2.1.block.2', 'output', None, [(D, FM), (S, MX)]),         # squeeze-excitation Mul
        ('features.2.1', 'output', None, [(G, MX)]),                          # residual Add
        ('features.4.2', 'output', None, [(G, FM), (S, PO), (D, PO)]),        # last 4-D: head conv SiLU
        ('classifier.1', 'output', None, [(D, MX)]),                          # logits
    ]),
    ('efficientnet_v2', [
        ('features.0.1', 'output', 'features.0.0', [(G, MX), (D, PO)]),       # first Conv
        ('features.1.0', 'output', None, [(S, FM), (D, MX)]),                 # FusedMBConv residual Add
        ('features.2.0.block.0.2', 'output', None, [(G, PO)]),                # FusedMBConv expand conv SiLU
        ('features.4.0.block.2', 'output', None, [(S, MX), (D, FM)]),         # MBConv squeeze-excitation Mul
        ('features.5.2', 'output', None, [(G, FM), (S, PO)]),                 # last 4-D: head conv SiLU
        ('classifier.1', 'output', None, [(D, MX)]),                          # logits
    ]),
    ('mobilenet_v3_small', [
        ('features.0.1', 'output', 'features.0.0', [(D, MX), (G, FM)]),       # first Conv
        ('features.1.block.1', 'output', None, [(S, PO), (G, MX)]),           # SE (ReLU, Hardsigmoid) Mul
        ('features.3.block.0.2', 'output', None, [(D, FM)]),                  # Hardswish after the expand conv
        ('features.3', 'output', None, [(S, MX)]),                            # residual Add
        ('features.5.2', 'output', None, [(G, PO), (D, PO), (S, FM)]),        # last 4-D: head Hardswish
        ('classifier.3', 'output', None, [(D, MX)]),                          # logits
    ]),
    ('regnet_y', [
        ('stem.1', 'output', 'stem.0', [(S, MX), (D, FM)]),                   # first Conv
        ('trunk_output.block1.block1-0.f.b.1', 'output', 'trunk_output.block1.block1-0.f.b.0',
         [(S, PO)]),                                                          # grouped 3x3 Conv
        ('trunk_output.block2.block2-0.f.se', 'output', None, [(G, PO), (D, MX)]),  # squeeze-excitation Mul
        ('trunk_output.block3.block3-1.activation', 'input', None, [(G, FM)]),      # residual Add
        ('trunk_output.block3.block3-1.activation', 'output', None,
         [(G, MX), (D, PO), (S, FM)]),                                        # last 4-D: block output Relu
        ('fc', 'output', None, [(D, MX)]),                                    # logits
    ]),
    ('convnext', [
        ('features.0.0', 'output', None, [(D, MX), (G, PO)]),                 # first Conv (4x4 patchify)
        ('features.0.1', 'output', None, [(S, FM), (D, PO)]),                 # LayerNorm2d (Transpose back)
        ('features.3.0', 'output', None, [(G, MX), (S, PO)]),                 # CNBlock: layer scale Mul + Add
        ('features.5.0', 'output', None, [(D, FM), (G, FM), (S, MX)]),        # last 4-D: last CNBlock Add
        ('classifier.2', 'output', None, [(D, MX)]),                          # logits
    ]),
    ('shufflenet_v2', [
        ('conv1.1', 'output', 'conv1.0', [(D, MX), (S, PO)]),                 # first Conv
        ('maxpool', 'output', None, [(G, FM), (D, PO)]),                      # MaxPool 3/2/1
        ('stage2.1', 'output', None, [(G, MX), (S, FM)]),                     # split block: channel shuffle
        ('stage4.0', 'output', None, [(D, FM)]),                              # downsampling block: shuffle
        ('conv5.2', 'output', None, [(S, MX), (G, PO)]),                      # last 4-D: conv5 Relu
        ('fc', 'output', None, [(D, MX)]),                                    # logits
    ]),
    ('mnasnet', [
        ('layers.1', 'output', 'layers.0', [(G, MX), (S, FM)]),               # first Conv
        ('layers.8.1', 'output', None, [(D, PO), (S, MX)]),                   # inverted residual Add
        ('layers.9.0.layers.5', 'output', None, [(D, FM), (G, PO)]),          # Relu after a 5x5 depthwise conv
        ('layers.16', 'output', None, [(D, MX), (G, FM), (S, PO)]),           # last 4-D: head Relu
        ('classifier.1', 'input', None, [(G, MX)]),                           # ReduceMean (dense)
        ('classifier.1', 'output', None, [(D, MX)]),                          # logits
    ]),
    ('vit', [
        ('conv_proj', 'output', None, [(D, MX), (G, PO), (S, FM)]),           # patch embedding Conv
        ('encoder.layers.encoder_layer_0', 'output', None, [(G, MX), (D, FM), (S, PO)]),  # encoder block Add
        ('encoder.layers.encoder_layer_1.mlp.1', 'output', None, [(D, PO), (S, MX)]),  # GELU (Mul), 64 wide
        ('encoder.ln', 'output', None, [(G, FM), (D, MX), (S, PO)]),          # last LayerNormalization
        ('heads.head', 'input', None, [(G, MX)]),                             # Gather of the class token
        ('heads.head', 'output', None, [(D, MX), (S, MX)]),                   # logits
    ]),
    ('ops', [
        ('stem.1', 'output', None, [(D, MX), (S, FM)]),                       # Tanh
        ('acts.6', 'output', None, [(G, PO), (D, FM)]),                       # tanh-GELU after LeakyRelu, PRelu, Elu
        ('norm', 'output', None, [(S, MX), (G, FM)]),                         # hand-written LayerNorm (Add)
        ('mix', 'output', None, [(D, PO), (G, MX)]),                          # Where of Tile(Split) and Conv(Split)
        ('gate', 'output', None, [(S, PO), (D, MX), (G, FM)]),                # Softmax, LogSoftmax, Expand * map (Add)
        ('pick', 'output', None, [(D, FM), (G, PO), (S, MX)]),                # Gather, Slice, Softplus * Reciprocal
        ('head.1', 'output', None, [(G, MX), (S, FM)]),                       # last 4-D: Relu
        ('fc', 'output', None, [(D, MX), (G, MX)]),                           # logits
    ]),
])
LOGITS = {'classifier.1', 'classifier.3', 'classifier.2', 'fc', 'heads.head'}

# op types each export must contain (at least once), and must not
EXPECT_OPS = {
    'efficientnet_b0': {'Sigmoid', 'Mul', 'GlobalAveragePool', 'Add', 'Gemm'},
    'efficientnet_v2': {'Sigmoid', 'Mul', 'GlobalAveragePool', 'Add', 'Gemm'},
    'mobilenet_v3_small': {'HardSwish', 'HardSigmoid', 'Relu', 'Mul', 'Add', 'GlobalAveragePool', 'Gemm'},
    'regnet_y': {'Relu', 'Sigmoid', 'Mul', 'Add', 'GlobalAveragePool', 'Gemm'},
    'convnext': {'Transpose', 'LayerNormalization', 'MatMul', 'Erf', 'Mul', 'Add', 'GlobalAveragePool', 'Gemm'},
    'shufflenet_v2': {'Relu', 'MaxPool', 'Slice', 'Concat', 'Reshape', 'Transpose', 'ReduceMean', 'Gemm'},
    'mnasnet': {'Relu', 'Add', 'ReduceMean', 'Gemm'},
    'vit': {'Expand', 'Concat', 'Add', 'LayerNormalization', 'MatMul', 'Softmax', 'Erf', 'Gather', 'Gemm'},
    'ops': {'Tanh', 'LeakyRelu', 'PRelu', 'Elu', 'Pow', 'ReduceMean', 'Sub', 'Div', 'Sqrt', 'Split', 'Tile', 'Where',
            'Softmax', 'LogSoftmax', 'Gather', 'Expand', 'Mul', 'Add', 'Exp', 'Abs', 'Reciprocal', 'Neg', 'Softplus',
            'Slice', 'Relu', 'Gemm'},
}
# ... and, where listed, must have on the input's path (a node with an activation input, so a projection goes
# through it): all of EXPECT_OPS, and Mul/Div of two activations
ON_PATH = {'ops': (EXPECT_OPS['ops'], {'Mul', 'Div'})}
NO_OPS = {'Identity', 'BatchNormalization', 'Clip', 'Dropout'}


def make_input(name):
    C, H, W = SPECS[name][2]
    g = torch.Generator().manual_seed(2000 + list(SPECS).index(name))
    return torch.randn(1, C, H, W, generator=g)


def relu_calls(model, x):
    """How many times nn.ReLU modules run in a forward pass (each must be one ONNX Relu: no functional relu)."""
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return len(calls)


def check_export(name, mp, model, x):
    C, H, W = SPECS[name][2]
    onnx.checker.check_model(mp, full_check=True)
    ops = [n.op_type for n in mp.graph.node]
    assert [i.name for i in mp.graph.input] == ['input'] and [o.name for o in mp.graph.output] == ['logits']
    assert base.dims_of(mp.graph.input[0]) == ['N', C, H, W], base.dims_of(mp.graph.input[0])
    assert base.dims_of(mp.graph.output[0]) == ['N', 10], base.dims_of(mp.graph.output[0])
    assert EXPECT_OPS[name] <= set(ops), (name, EXPECT_OPS[name] - set(ops))
    assert not NO_OPS & set(ops), (name, NO_OPS & set(ops))
    assert all(n.name for n in mp.graph.node), 'a node without a name'
    assert ops.count('Relu') == relu_calls(model, x), (name, 'a ReLU that is not an nn.ReLU module')
    if name in ON_PATH:
        on_path, two = ON_PATH[name]
        data = {'input'}  # tensors computed from the input's values (not from its shape)
        seen, both = set(), set()
        for n in mp.graph.node:
            fed = [i for i in n.input if i in data]
            if fed and n.op_type != 'Shape':
                data.update(n.output)
                seen.add(n.op_type)
                if len(set(fed)) == 2:
                    both.add(n.op_type)
        assert on_path <= seen, (name, 'not on the path', on_path - seen)
        assert two <= both, (name, 'not of two activations', two - both)
    return ops


def main():
    t0 = time.time()
    base.recreate(MODELS, REF)  # README.md stays

    manifest = OrderedDict([
        ('version', 1),
        ('generator', 'scripts/make_modern_fixtures.py'),
        ('torch', torch.__version__), ('torchvision', torchvision.__version__), ('onnx', onnx.__version__),
        ('opset', base.OPSET),
        ('paths', 'relative to this manifest'),
        ('semantics', 'see test/fixtures/modern/README.md'),
        ('models', OrderedDict()),
        ('cases', []),
    ])
    summary = []

    for name, (ctor, seed, shape, family, cls, desc) in SPECS.items():
        model = build(name)
        assert type(model) is cls, type(model)
        data = base.export(model, shape, 'EVAL')
        assert len(data) < MAX_MODEL_BYTES, (name, len(data))
        path = MODELS / (name + '.onnx')
        path.write_bytes(data)
        C, H, W = shape
        sidecar = OrderedDict([('description', desc),
                               ('input', OrderedDict([('size', [H, W])] + list(base.IMAGENET.items()))),
                               ('labels', base.LABELS10)])
        (MODELS / (name + '.json')).write_text(json.dumps(sidecar, indent=2) + '\n')

        x = make_input(name)
        mp = onnx.load(str(path))
        ops = check_export(name, mp, model, x)
        # no torch.no_grad() anywhere: with grad enabled nn.MultiheadAttention takes its slow path, the one the
        # export traced (its fused fast path is a different computation)
        logits = model(x).detach().numpy()
        shapes = base.inferred_shapes(mp)
        base.save_npy(REF / 'inputs' / (name + '.npy'), x.numpy())
        base.save_npy(REF / 'outputs' / (name + '-logits.npy'), logits)
        manifest['models'][name] = OrderedDict([
            ('family', family),
            ('torchvision', '%s.%s' % (cls.__module__, cls.__name__) if cls.__module__.startswith('torchvision.')
             else None),
            ('onnx', '../models/%s.onnx' % name),
            ('sha256', hashlib.sha256(data).hexdigest()),
            ('input', 'inputs/%s.npy' % name),
            ('logits', 'outputs/%s-logits.npy' % name),
            ('inputShape', list(shape)),
            ('logitsShape', list(logits.shape[1:])),
            ('exportTraining', 'EVAL'),
            ('layers', base.layer_table(mp, shapes)),
        ])
        summary.append((name, len(data), len(ops), sorted(set(ops), key=ops.index)))

        combos = set()
        rng = np.random.RandomState(seed)
        k = 0
        for qual, at, onnx_module, cases in TARGETS[name]:
            node = base.module_node(mp, onnx_module or qual)
            if at == 'input':
                node = base.producer(mp, node.input[0])
            y = base.capture(model, x, qual, at).detach()  # a token layer [1, T, D] as its [1, D, T, 1] view
            tshape = list(base.module_tensor(model, x, qual, at).shape[1:])
            # ONNX shape inference can't follow the shape arithmetic of shufflenet's channel shuffle or ViT's
            # attention (null there), nor the batch through ops' repeat (Expand + Tile: N·1 becomes a new 'unk__'
            # symbol); where it can, it must agree
            osh, batched = base.strip_batch(shapes.get(node.output[0]))
            lost_batch = not batched and bool(osh) and str(osh[0]).startswith('unk__')
            assert osh is None or (batched and osh == tshape) or (lost_batch and osh[1:] == tshape), (
                name, qual, node.name, osh, tshape)
            used = []
            for method, seedmode in cases:
                combos.add((method, seedmode))
                assert y.dim() == 4 or seedmode == MX, 'dense targets are seeded at MAX only'
                if qual in LOGITS and at == 'output' and not used:
                    channel = int(np.argmax(y[0].numpy()))  # first case on the logits: the predicted class
                else:
                    channel = base.pick_channel(y, rng, avoid=used)
                used.append(channel)
                position = base.pick_position(y, channel) if seedmode == PO else None
                exp, value, spos, ties, tied = base.project(model, x, qual, at, channel, method, seedmode, position,
                                                            'IDENTITY', strict=False)
                assert np.abs(exp).max() > 0, 'all-zero projection'
                if method == S:
                    ref = base.plain_gradient(model, x, qual, at, channel, seedmode, position, 'GRADIENT')
                    err = np.abs(ref - exp).max() / np.abs(ref).max()
                    assert err < 1e-5, ('saliency != torch autograd', name, qual, err)
                cid = '%s-%02d-%s-%s-%s-c%d' % (name, k, node.op_type.lower(), method.split('_')[0].lower(),
                                                seedmode.lower().replace('_', ''), channel)
                k += 1
                base.save_npy(REF / 'cases' / (cid + '.npy'), exp)
                manifest['cases'].append(OrderedDict([
                    ('id', cid), ('model', name), ('target', node.name), ('targetOutput', node.output[0]),
                    ('targetOp', node.op_type), ('targetShape', tshape), ('torchModule', qual),
                    ('torchTensor', at), ('channel', channel), ('method', method), ('seed', seedmode),
                    ('position', position), ('lrn', 'IDENTITY'), ('expected', 'cases/%s.npy' % cid),
                    ('seedValue', value), ('seedPosition', spos), ('seedTies', ties),
                    ('poolTiedWindows', tied), ('maxAbs', float(np.abs(exp).max())),
                ]))
        assert len(combos) == 9, (name, 'not every method x seed', combos)

    # re-run: a freshly built model gives the saved logits and the same input (determinism)
    for name in SPECS:
        out = build(name)(make_input(name)).detach().numpy()
        assert np.array_equal(out, np.load(REF / 'outputs' / (name + '-logits.npy'))), name
        assert np.array_equal(np.load(REF / 'inputs' / (name + '.npy')), make_input(name).numpy()), name

    (REF / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')

    total = sum(f.stat().st_size for f in OUT.rglob('*') if f.is_file())
    print('%-20s %8s %6s %6s  ops' % ('model', 'bytes', 'nodes', 'cases'))
    for name, size, nodes, ops in summary:
        nc = sum(1 for c in manifest['cases'] if c['model'] == name)
        print('%-20s %8d %6d %6d  %s' % (name, size, nodes, nc, ' '.join(ops)))
    print('cases: %d (tied pool windows on a backward path: %d cases)' % (
        len(manifest['cases']), sum(1 for c in manifest['cases'] if c['poolTiedWindows'])))
    print('test/fixtures/modern: %.2f MB' % (total / 1e6))
    assert total <= MAX_BYTES, total
    print('done in %.1f s' % (time.time() - t0))


if __name__ == '__main__':
    main()
