#!/usr/bin/python3
"""Export torchvision 0.14's classification models (random weights) to ONNX, as a user would:

    /usr/bin/python3 scripts/export_zoo.py OUT_DIR [name ...]

Each model is written as OUT_DIR/<name>.onnx with the README's ImageNet sidecar OUT_DIR/<name>.json
(opset 17, input [N, 3, 224, 224] with a dynamic batch). Used by bench/zoo.ts to check that every
layer of every architecture serves and projects; nothing here is committed but this script.
"""
import json
import sys
import warnings
from pathlib import Path

import torch
import torchvision

warnings.filterwarnings('ignore')
torch.set_num_threads(2)

ZOO = ['alexnet', 'vgg11_bn', 'resnet50', 'resnext50_32x4d', 'wide_resnet50_2', 'densenet121', 'googlenet',
       'inception_v3', 'squeezenet1_1', 'mobilenet_v2', 'regnet_x_400mf', 'efficientnet_b0', 'efficientnet_v2_s',
       'mobilenet_v3_small', 'regnet_y_400mf', 'convnext_tiny', 'shufflenet_v2_x1_0', 'mnasnet0_5', 'vit_b_16']
SIDECAR = {'input': {'size': [224, 224], 'channels': 'RGB', 'scale': 1 / 255,
                     'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225]}}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[2:] or ZOO:
        torch.manual_seed(0)
        kwargs = {'aux_logits': False, 'init_weights': True} if name in ('googlenet', 'inception_v3') else {}
        model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
        size = 299 if name == 'inception_v3' else 224
        path = out / (name + '.onnx')
        torch.onnx.export(model, torch.zeros(1, 3, size, size), str(path), opset_version=17,
                          input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})
        sidecar = json.loads(json.dumps(SIDECAR))
        sidecar['input']['size'] = [size, size]
        sidecar['description'] = 'torchvision %s %s, random weights' % (torchvision.__version__, name)
        (out / (name + '.json')).write_text(json.dumps(sidecar, indent=2) + '\n')
        print(name, path.stat().st_size // 2 ** 20, 'MB', flush=True)


if __name__ == '__main__':
    main()
