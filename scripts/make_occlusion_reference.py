#!/usr/bin/python3
"""PyTorch reference for occlusion sensitivity (Zeiler & Fergus §4.2, Fig. 7) and predictions.

    /usr/bin/python3 scripts/make_occlusion_reference.py

Needs Debian's python3-torch (1.13). Builds the fixture models exactly as scripts/make_fixtures.py does
(imported from it: same constructors, same seeded weights), checks that they reproduce the saved ONNX
reference logits, and writes test/fixtures/reference/occlusion/{manifest.json, <case>.npy}.

Semantics (docs/architecture.md, and what convscope's Model.occlusion computes):
- The occluder is applied to the PREPROCESSED input tensor x [1, C, H, W]: every channel c inside the square
  [y0, y0+size) × [x0, x0+size) is set to fill[c]. Fills: MEAN = 0 (the dataset mean after mean subtraction),
  ZERO = pixel value 0 = (0·scale − mean[c]) / std[c], VALUE = a given preprocessed value (all channels).
- Grid: y0 = i·stride for i < floor((H − size)/stride) + 1, likewise x0; row-major [gh, gw]. Pixels beyond the
  last position (when the stride does not divide H − size) are never occluded.
- (b) the layer's strongest feature map on the UNOCCLUDED image = the channel with the largest max activation
  (first on ties); per position, the total (sum over the map) of that channel's activation.
- (d) per position, the probability of the target class (default: the unoccluded image's top class; first on
  ties): softmax of the logits, or the model's output if it already ends in a Softmax (misc).
- (e) per position, the most probable class (first on ties).
Each case's .npy is float32 [3, gh, gw] = (b), (d), (e).
"""
import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (sets torch threads/determinism like the fixture run)

OUT = mf.REF / 'occlusion'

# id, model, torch module of the layer, its ONNX node, size, stride, fill, fillValue, targetClass
CASES = [
    ('zfnet-mean', 'zfnet', 'relu5', '/relu5/Relu', 32, 16, 'MEAN', None, None),
    ('zfnet-zero-conv3', 'zfnet', 'conv3', '/conv3/Conv', 32, 16, 'ZERO', None, None),
    ('misc-mean', 'misc', 'relu3', '/relu3/Relu', 8, 4, 'MEAN', None, None),
    ('misc-value-target', 'misc', 'relu2', '/relu2/Relu', 6, 5, 'VALUE', 1.5, 3),
]


def fill_values(name, fill, value):
    pre = mf.CAFFE if name == 'zfnet' else mf.IMAGENET
    C = mf.SPECS[name][2][0]
    if fill == 'MEAN':
        return [0.0] * C
    if fill == 'ZERO':
        return [(0.0 * pre['scale'] - pre['mean'][c]) / pre['std'][c] for c in range(C)]
    return [float(value)] * C


def probabilities(name, out):
    return out if name == 'misc' else torch.softmax(out, dim=1)  # misc ends in a Softmax


def run(model, module, x):
    """(layer activation, class probabilities) for a batch."""
    box = {}
    h = dict(model.named_modules())[module].register_forward_hook(lambda m, i, o: box.setdefault('y', o))
    try:
        out = model(x)
    finally:
        h.remove()
    return box['y'], out


def main():
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.glob('*.npy'):
        f.unlink()
    ref = json.loads((mf.REF / 'manifest.json').read_text())
    models = {}
    for name in sorted({c[1] for c in CASES}):
        ctor, seed, shape, _, _ = mf.SPECS[name]
        model = mf.init_weights(ctor(), seed)
        x = torch.from_numpy(np.load(mf.REF / ref['models'][name]['input']))
        saved = np.load(mf.REF / ref['models'][name]['logits'])
        with torch.no_grad():
            logits = model(x).numpy()
        err = np.abs(logits - saved).max() / np.abs(saved).max()
        assert err < 1e-5, '%s: torch model does not reproduce the ONNX reference logits (%.2e)' % (name, err)
        print('%s: reproduces the saved logits (relative error %.1e)' % (name, err))
        models[name] = (model, x)

    manifest = OrderedDict([('generator', 'scripts/make_occlusion_reference.py'), ('torch', torch.__version__),
                            ('semantics', 'see the docstring of the generator'), ('cases', [])])
    for cid, name, module, layer, size, stride, fill, value, target in CASES:
        model, x = models[name]
        _, C, H, W = x.shape
        gh, gw = (H - size) // stride + 1, (W - size) // stride + 1
        fills = torch.tensor(fill_values(name, fill, value), dtype=torch.float32).view(C, 1, 1)
        with torch.no_grad():
            act0, out0 = run(model, module, x)
            probs0 = probabilities(name, out0)[0]
            maxes = act0[0].flatten(1).max(1).values
            channel = int(torch.argmax(maxes))  # first maximum
            top0 = int(torch.argmax(probs0))
            tclass = top0 if target is None else target
            batch = x.repeat(gh * gw, 1, 1, 1)
            for i in range(gh):
                for j in range(gw):
                    y0, x0 = i * stride, j * stride
                    batch[i * gw + j, :, y0:y0 + size, x0:x0 + size] = fills
            act, out = run(model, module, batch)
            probs = probabilities(name, out)
        total = act[:, channel].flatten(1).sum(1).view(gh, gw)
        top = torch.argmax(probs, dim=1)
        grids = torch.stack([total, probs[:, tclass].view(gh, gw), top.view(gh, gw).float()]).numpy()
        sorted_probs = torch.sort(probs, dim=1, descending=True).values
        margin = float((sorted_probs[:, 0] - sorted_probs[:, 1]).min())
        mf.save_npy(OUT / (cid + '.npy'), grids)
        manifest['cases'].append(OrderedDict([
            ('id', cid), ('model', name), ('layer', layer), ('torchModule', module), ('size', size),
            ('stride', stride), ('fill', fill), ('fillValue', value), ('fillValues', fills.flatten().tolist()),
            ('targetClassArg', target), ('targetClass', tclass), ('grid', [gh, gw]),
            ('strongestChannel', channel), ('strongestMax', float(maxes[channel])),
            ('unoccludedTotal', float(act0[0, channel].sum())), ('unoccludedTopClass', top0),
            ('unoccludedProbabilities', probs0.tolist()), ('minTop2Margin', margin),
            ('expected', 'occlusion/%s.npy' % cid),
        ]))
        print('%-18s grid %dx%d channel %d target %d  top classes %s  min top-2 margin %.1e'
              % (cid, gh, gw, channel, tclass, sorted(set(top.tolist())), margin))
    (OUT / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')


if __name__ == '__main__':
    main()
