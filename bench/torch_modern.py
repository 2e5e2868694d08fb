#!/usr/bin/python3
"""PyTorch 1.13 autograd deconvnet from the last stage of torchvision's ResNet-50 and EfficientNet-B0
(random weights, frozen), 2 threads: the baseline of bench/modern.ts. The ReLU modules' backward is
overridden as Captum's Deconvolution does; every other op (SiLU, squeeze-excitation) keeps its
gradient (bench/torch_deconv.py). Usage: torch_modern.py BATCH REPEATS WARMUP. Prints a JSON line
{model: median ms}."""
import json
import sys

import torch
import torchvision

from torch_deconv import deconvnet, median_ms

torch.set_num_threads(2)
torch.manual_seed(0)
BATCH, REPEATS, WARMUP = (int(a) for a in sys.argv[1:4])

resnet = deconvnet(torchvision.models.resnet50())
effnet = deconvnet(torchvision.models.efficientnet_b0())
TRUNKS = {
    'resnet50': torch.nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4),
    'efficientnet_b0': effnet.features,
}
print(json.dumps({name: median_ms(trunk, BATCH, REPEATS, WARMUP) for name, trunk in TRUNKS.items()}))
