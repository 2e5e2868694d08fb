#!/usr/bin/python3
"""Exports torchvision's AlexNet (random weights, seeded) to ONNX for the benchmarks: bench/alexnet.py OUT.onnx"""
import inspect
import sys
import torch
import torchvision

torch.manual_seed(0)
model = torchvision.models.alexnet(num_classes=1000).eval()
# Newer torch exports through dynamo by default, which names the nodes differently.
legacy = {'dynamo': False} if 'dynamo' in inspect.signature(torch.onnx.export).parameters else {}
torch.onnx.export(model, torch.randn(1, 3, 224, 224), sys.argv[1], opset_version=17,
                  input_names=['input'], output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, **legacy)
