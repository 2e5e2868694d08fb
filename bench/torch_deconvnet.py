#!/usr/bin/python3
"""PyTorch 1.13 autograd deconvnet on torchvision AlexNet (random weights), target relu5, 2 threads:
the baseline of bench/projection.ts. Prints a JSON line {batch: median ms} at the end.
The ReLU backward is overridden as Captum's Deconvolution does (relu of the incoming gradient)."""
import json
import sys

import torch
import torchvision

from torch_deconv import deconvnet, median_ms

torch.set_num_threads(2)
torch.manual_seed(0)
REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
WARMUP = int(sys.argv[2]) if len(sys.argv) > 2 else 5

features = deconvnet(torchvision.models.alexnet()).features[:12]  # up to relu5
print(json.dumps({str(batch): round(median_ms(features, batch, REPEATS, WARMUP), 1) for batch in (1, 8, 32)}))
