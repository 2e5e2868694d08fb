#!/usr/bin/python3
"""Train convscope's default model: a small ZFNet/AlexNet-style CNN on Fashion-MNIST.

Writes (paths relative to the repository root):
  models/fashion-zfnet.onnx, models/fashion-zfnet.json        the trained model and its sidecar
  models/fashion-zfnet.snapshots/epoch-NN.{onnx,json}          snapshots after epochs 1, 2, 5 and the last
  models/fashion-zfnet.md                                      the model card
  datasets/fashion-mnist-demo/test-00000.png ... labels.json   the first 1000 test images
  docs/fashion-zfnet-conv1-filters.png                         the trained conv1 kernels

Needs Debian's PyTorch (not a pyenv python):
  apt-get install python3-torch python3-torchvision python3-onnx python3-pil dataset-fashion-mnist
  /usr/bin/python3 scripts/train_default_model.py

Seeded and reproducible: model init, dropout, data order and augmentation all come from --seed.
"""
import argparse
import copy
import gzip
import json
import os
import platform
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
NAME = "fashion-zfnet"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SCALE = 1.0 / 255.0  # 0.00392156862745098
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0
DEMO_COUNT = 1000
DEMO_NAME = "fashion-mnist-demo"


def log(*args):
    print(*args, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Data

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(data_dir):
    d = Path(data_dir)
    return (read_idx(d / "train-images-idx3-ubyte.gz"), read_idx(d / "train-labels-idx1-ubyte.gz"),
            read_idx(d / "t10k-images-idx3-ubyte.gz"), read_idx(d / "t10k-labels-idx1-ubyte.gz"))


def write_png_gray(path, img):
    """8-bit grayscale PNG; PIL when available, else by hand (zlib + struct)."""
    try:
        from PIL import Image
        Image.fromarray(np.ascontiguousarray(img), mode="L").save(path, optimize=True)
        return
    except ImportError:
        pass
    import zlib
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    Path(path).write_bytes(png)


def read_png_gray(path):
    from PIL import Image
    with Image.open(path) as im:
        assert im.mode == "L", (path, im.mode)
        return np.array(im, dtype=np.uint8)


def write_demo_dataset(demo_dir, test_x, test_y):
    demo_dir.mkdir(parents=True, exist_ok=True)
    labels = {}
    for i in range(DEMO_COUNT):
        name = f"test-{i:05d}.png"
        write_png_gray(demo_dir / name, test_x[i])
        labels[name] = LABELS[int(test_y[i])]
    (demo_dir / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    log(f"wrote {DEMO_COUNT} PNGs + labels.json to {demo_dir}")


def load_demo_dataset(demo_dir):
    labels = json.loads((demo_dir / "labels.json").read_text())
    names = sorted(labels)
    x = np.stack([read_png_gray(demo_dir / n) for n in names])
    y = np.array([LABELS.index(labels[n]) for n in names])
    return x, y


# ---------------------------------------------------------------------------------------------------------------
# Model

class LRNFunction(torch.autograd.Function):
    """Exports as ONE native ONNX LRN node (torch 1.13 decomposes nn.LocalResponseNorm into ~65 nodes)."""

    @staticmethod
    def forward(ctx, x):
        return F.local_response_norm(x, LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)

    @staticmethod
    def symbolic(g, x):
        return g.op("LRN", x, size_i=LRN_SIZE, alpha_f=LRN_ALPHA, beta_f=LRN_BETA, bias_f=LRN_K)


def lrn_fast(x):
    """Same as F.local_response_norm(x, 5, 1e-4, 0.75, 2) (to ~5e-7), ~3x faster to train through on CPU: torch's
    version squares, pads and runs avg_pool3d over a 5-D view, and its pow dominates the step time."""
    c = x.shape[1]
    s = F.pad(x * x, (0, 0, 0, 0, LRN_SIZE // 2, (LRN_SIZE - 1) // 2))
    s = sum(s[:, i:i + c] for i in range(LRN_SIZE))
    return x * (LRN_K + (LRN_ALPHA / LRN_SIZE) * s).pow(-LRN_BETA)


class LRN(nn.Module):
    """Cross-channel local response normalisation (AlexNet §3.3): b = a / (k + alpha/n * sum a^2)^beta."""

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return LRNFunction.apply(x)
        if self.training:
            return lrn_fast(x)
        return F.local_response_norm(x, LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)

    def extra_repr(self):
        return f"size={LRN_SIZE}, alpha={LRN_ALPHA}, beta={LRN_BETA}, k={LRN_K}"


def make_model(dropout):
    from collections import OrderedDict
    model = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 32, 7, padding=3)),              # 32x28x28 (7x7 as in ZFNet)
        ("relu1", nn.ReLU()),
        ("norm1", LRN()),
        ("pool1", nn.MaxPool2d(3, 2)),                           # 32x13x13
        ("conv2", nn.Conv2d(32, 64, 5, padding=2, groups=2)),    # 64x13x13
        ("relu2", nn.ReLU()),
        ("norm2", LRN()),
        ("pool2", nn.MaxPool2d(3, 2)),                           # 64x6x6
        ("conv3", nn.Conv2d(64, 96, 3, padding=1)),              # 96x6x6
        ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(96, 96, 3, padding=1, groups=2)),    # 96x6x6
        ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(96, 64, 3, padding=1, groups=2)),    # 64x6x6
        ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(3, 2)),                           # 64x2x2
        ("flatten", nn.Flatten()),                               # 256
        ("drop6", nn.Dropout(dropout)),
        ("fc6", nn.Linear(256, 256)),
        ("relu6", nn.ReLU()),
        ("drop7", nn.Dropout(dropout)),
        ("fc7", nn.Linear(256, 10)),                             # logits
    ]))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    # conv1 starts small (N(0, 0.01) as in AlexNet/ZFNet) so that the learned filters, not the random
    # initialisation, dominate the picture of the first layer (with Kaiming init they stayed ~90% init noise).
    nn.init.normal_(model.conv1.weight, std=0.01)
    return model


def layer_table(model):
    """(name, module repr, output shape [C,H,W] or [F]) for each layer, from a forward pass in eval mode."""
    rows, x = [], torch.zeros(1, 1, 28, 28)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for name, m in model.named_children():
            x = m(x)
            rows.append((name, m, list(x.shape[1:])))
    model.train(was_training)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Training helpers

def augment(batch01, gen, pad=2):
    """Random crops with zero (black) padding `pad` and horizontal flips; batch in 0..1 pixel units, N x 28 x 28."""
    n, h, w = batch01.shape
    padded = F.pad(batch01, (pad, pad, pad, pad))
    offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(batch01)
    for i in range(n):
        dy, dx = int(offs[i, 0]), int(offs[i, 1])
        crop = padded[i, dy:dy + h, dx:dx + w]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


def normalize(x01, mean, std):
    return ((x01 - mean) / std).unsqueeze(1)


def evaluate(model, x_u8, y, mean, std, batch=100):
    """Accuracy of `model` on uint8 images N x 28 x 28, preprocessed exactly as the sidecar says."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x_u8), batch):
            xb = torch.from_numpy(x_u8[i:i + batch].astype(np.float32))
            xb = normalize(xb * np.float32(SCALE), mean, std)
            pred = model(xb).argmax(1).numpy()
            correct += int((pred == y[i:i + batch]).sum())
    model.train(was_training)
    return correct / len(x_u8)


# ---------------------------------------------------------------------------------------------------------------
# Export

def export_onnx(model, path, description):
    import onnx
    m = copy.deepcopy(model).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(m, torch.zeros(1, 1, 28, 28), str(path), opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      do_constant_folding=True)
    proto = onnx.load(str(path))
    proto.graph.name = NAME
    proto.doc_string = description
    onnx.checker.check_model(proto)
    ops = [n.op_type for n in proto.graph.node]
    n_lrn = sum(1 for m_ in model.modules() if isinstance(m_, LRN))
    assert ops.count("LRN") == n_lrn, f"expected {n_lrn} LRN nodes, got {ops}"
    bad = {"Pow", "Pad", "ReduceSum", "AveragePool", "Div", "Mul", "Add", "Unsqueeze", "Squeeze", "Dropout"} & set(ops)
    assert not bad, f"unexpected ops (LRN decomposition or dropout?) {bad}: {ops}"
    onnx.save(proto, str(path))
    return [(n.name, n.op_type) for n in proto.graph.node]


def sidecar(description, mean, std, test_acc, demo_acc, **extra):
    d = {
        "description": description,
        "input": {"size": [28, 28], "channels": "GRAY", "scale": SCALE, "mean": [mean], "std": [std]},
        "labels": LABELS,
        "accuracy": {"test": round(test_acc, 4), "demo": round(demo_acc, 4)},
    }
    d.update(extra)
    return d


def save_filter_grid(weight, path, cols=8, zoom=8, gap=1):
    """conv1 kernels as a grid: 0 -> mid-grey, scaled by max |w| over the layer, x`zoom` nearest neighbour."""
    from PIL import Image
    w = weight.detach().cpu().numpy()[:, 0]  # M x kh x kw
    m, kh, kw = w.shape
    rows = (m + cols - 1) // cols
    scale = np.abs(w).max()
    cell_h, cell_w = kh * zoom, kw * zoom
    canvas = np.full((rows * cell_h + (rows + 1) * gap, cols * cell_w + (cols + 1) * gap), 255, np.uint8)
    for i in range(m):
        r, c = divmod(i, cols)
        img = np.clip(np.round(127.5 + 127.5 * w[i] / scale), 0, 255).astype(np.uint8)
        img = np.kron(img, np.ones((zoom, zoom), np.uint8))
        y0, x0 = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
        canvas[y0:y0 + cell_h, x0:x0 + cell_w] = img
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas, mode="L").save(path, optimize=True)


# ---------------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05, help="peak SGD learning rate (cosine decay to 0)")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--warmup-steps", type=int, default=300)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--snapshots", default="1,2,5", help="epochs to snapshot besides the last")
    ap.add_argument("--limit-steps", type=int, default=0, help="debug: stop each epoch after this many steps")
    ap.add_argument("--out", default=str(ROOT), help="root to write models/, datasets/, docs/ under")
    args = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # tiny squared activations in LRN otherwise hit slow denormal arithmetic
    xt = torch.randn(4, 32, 7, 7) * 10
    assert torch.allclose(lrn_fast(xt), F.local_response_norm(xt, LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K), atol=1e-5)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = Path(args.out)
    models_dir, snap_dir = out / "models", out / "models" / f"{NAME}.snapshots"
    demo_dir = out / "datasets" / DEMO_NAME

    train_x, train_y, test_x, test_y = load_fashion_mnist(args.data_dir)
    log(f"Fashion-MNIST: train {train_x.shape}, test {test_x.shape}")
    # Mean/std of the training pixels in 0..1 units, rounded to 4 digits; the rounded values are used everywhere.
    mean = round(float(train_x.astype(np.float64).mean() / 255.0), 4)
    std = round(float((train_x.astype(np.float64) / 255.0).std()), 4)
    log(f"train pixel mean {mean}, std {std}")

    write_demo_dataset(demo_dir, test_x, test_y)
    demo_x, demo_y = load_demo_dataset(demo_dir)  # decoded back from the PNGs on disk
    assert np.array_equal(demo_x, test_x[:DEMO_COUNT]) and np.array_equal(demo_y, test_y[:DEMO_COUNT])

    model = make_model(args.dropout)
    log(model)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{n_params} parameters")

    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=args.momentum, nesterov=True)
    steps_per_epoch = (len(train_x) + args.batch_size - 1) // args.batch_size
    if args.limit_steps:
        steps_per_epoch = min(steps_per_epoch, args.limit_steps)
    total_steps = steps_per_epoch * args.epochs

    def lr_at(step):
        if step < args.warmup_steps:
            return args.lr * (step + 1) / args.warmup_steps
        t = (step - args.warmup_steps) / max(1, total_steps - args.warmup_steps)
        return args.lr * 0.5 * (1 + np.cos(np.pi * t))

    gen = torch.Generator().manual_seed(args.seed)
    train01 = torch.from_numpy(train_x.astype(np.float32)) * np.float32(SCALE)
    train_yt = torch.from_numpy(train_y.astype(np.int64))
    snap_epochs = sorted({int(e) for e in args.snapshots.split(",") if e} | {args.epochs})
    snap_epochs = [e for e in snap_epochs if 1 <= e <= args.epochs]
    recipe = (f"SGD (Nesterov momentum {args.momentum}, weight decay {args.weight_decay} on weights), "
              f"batch {args.batch_size}, peak lr {args.lr} with {args.warmup_steps}-step linear warm-up and cosine "
              f"decay, {args.epochs} epochs, dropout {args.dropout}, random 28x28 crops of the 2-px zero-padded image "
              f"and horizontal flips, seed {args.seed}")
    history, step, train_time = [], 0, 0.0
    snapshots = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        perm = torch.randperm(len(train01), generator=gen)
        run_loss, run_correct, run_n = 0.0, 0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            xb = normalize(augment(train01[idx], gen), mean, std)
            yb = train_yt[idx]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            run_loss += float(loss) * len(idx)
            run_correct += int((logits.argmax(1) == yb).sum())
            run_n += len(idx)
            if (b + 1) % 100 == 0:
                log(f"  epoch {epoch} step {b + 1}/{steps_per_epoch} loss {run_loss / run_n:.4f} "
                    f"train acc {run_correct / run_n:.4f} lr {lr_at(step):.4f} ({time.time() - t0:.0f}s)")
        epoch_time = time.time() - t0
        train_time += epoch_time
        test_acc = evaluate(model, test_x, test_y, mean, std)
        demo_acc = evaluate(model, demo_x, demo_y, mean, std)
        history.append({"epoch": epoch, "trainLoss": run_loss / run_n, "trainAcc": run_correct / run_n,
                        "test": test_acc, "demo": demo_acc, "seconds": epoch_time})
        log(f"epoch {epoch}/{args.epochs}: train loss {run_loss / run_n:.4f} train acc {run_correct / run_n:.4f} "
            f"test acc {test_acc:.4f} demo acc {demo_acc:.4f} ({epoch_time:.0f}s, total {time.time() - t_start:.0f}s)")
        if epoch in snap_epochs:
            desc = (f"{NAME} after epoch {epoch} of {args.epochs}: a training snapshot of the default model "
                    f"(watch the features evolve, Zeiler & Fergus Fig. 4).")
            onnx_path = snap_dir / f"epoch-{epoch:02d}.onnx"
            export_onnx(model, onnx_path, desc)
            (snap_dir / f"epoch-{epoch:02d}.json").write_text(json.dumps(
                sidecar(desc, mean, std, test_acc, demo_acc, snapshotOf=NAME, epoch=epoch), indent=2) + "\n")
            snapshots.append((epoch, test_acc, demo_acc))
            log(f"  snapshot {onnx_path.relative_to(out)} ({onnx_path.stat().st_size} bytes)")

    # Final model.
    desc = ("A small ZFNet/AlexNet-style CNN (5 conv layers with ReLU, LRN, overlapping 3x3/2 max pooling, "
            "grouped convs, 2 dense layers) trained on Fashion-MNIST (28x28 grayscale, 10 classes). "
            "convscope's default model; see fashion-zfnet.md.")
    final_onnx = models_dir / f"{NAME}.onnx"
    nodes = export_onnx(model, final_onnx, desc)
    test_acc, demo_acc = history[-1]["test"], history[-1]["demo"]
    (models_dir / f"{NAME}.json").write_text(json.dumps(
        sidecar(desc, mean, std, test_acc, demo_acc, epochs=args.epochs, autoIndex=[DEMO_NAME]), indent=2) + "\n")
    save_filter_grid(model.conv1.weight, out / "docs" / f"{NAME}-conv1-filters.png")
    wall = time.time() - t_start
    cpu_time = time.process_time()
    log("final ONNX nodes: " + ", ".join(f"{n} ({o})" for n, o in nodes))
    log(f"final: test acc {test_acc:.4f}, demo acc {demo_acc:.4f}; training {train_time:.0f}s, wall {wall:.0f}s, "
        f"CPU time {cpu_time:.0f}s")

    write_model_card(models_dir / f"{NAME}.md", model, args, recipe, mean, std, history, snapshots,
                     nodes, n_params, train_time, wall, cpu_time)
    log(f"wrote {(models_dir / f'{NAME}.md').relative_to(out)}")


FILTERS_NOTE = """After 10 epochs (seed 0) most are oriented edge and bar detectors
(vertical, horizontal and diagonal light/dark bars and step edges, often filling only part of the 7×7 window) or dark /
light centre blobs; a few are weak and low-contrast. They are smooth structure, not pixel noise (the mean correlation of
neighbouring weights is 0.42, random weights give 0), though grainier than ImageNet Gabors: 28×28 grayscale clothing
gives a small net little reason to learn a clean Gabor bank. A first attempt with a 5×5, Kaiming-initialised conv1 did
look like noise (its weights were still 91% correlated with their random initialisation after 2 epochs); the small
N(0, 0.01) initialisation of AlexNet/ZFNet and ZFNet's 7×7 kernel fixed that."""


def write_model_card(path, model, args, recipe, mean, std, history, snapshots, nodes, n_params, train_time, wall,
                     cpu_time):
    rows = layer_table(model)
    table = ["| # | layer | ONNX node(s) | what | output shape |", "|---|---|---|---|---|"]
    onnx_by_layer = {}
    for n, o in nodes:
        key = n.strip("/").split("/")[0] if n.startswith("/") else n
        onnx_by_layer.setdefault(key, []).append(f"`{n}` {o}")
    for i, (name, m, shape) in enumerate(rows):
        what = repr(m).replace("|", "\\|")
        onnx_nodes = ", ".join(onnx_by_layer.get(name, [])) or "(removed in eval export)"
        table.append(f"| {i} | {name} | {onnx_nodes} | `{what}` | {shape} |")
    hist = ["| epoch | train loss | train acc (augmented, dropout on) | test acc (10k) | demo acc (1000) | seconds |",
            "|---|---|---|---|---|---|"]
    for h in history:
        hist.append(f"| {h['epoch']} | {h['trainLoss']:.4f} | {h['trainAcc']:.4f} | {h['test']:.4f} | "
                    f"{h['demo']:.4f} | {h['seconds']:.0f} |")
    snaps = ["| file | epoch | test acc | demo acc |", "|---|---|---|---|"]
    for e, t, d in snapshots:
        snaps.append(f"| `fashion-zfnet.snapshots/epoch-{e:02d}.onnx` | {e} | {t:.4f} | {d:.4f} |")
    final = history[-1]
    cpu = platform.processor() or platform.machine()
    card = f"""# fashion-zfnet — convscope's default model

A small ZFNet/AlexNet-style convolutional network trained on Fashion-MNIST, so that a fresh clone of convscope has a
model with real, interpretable features to look at. It deliberately uses every AlexNet building block the deconvnet
has to invert: ReLU, cross-channel local response normalisation (LRN), overlapping max pooling (3×3, stride 2),
grouped convolutions (groups = 2), dropout (training only) and data augmentation.

Files: `fashion-zfnet.onnx` (ONNX opset 17, input `input` [N,1,28,28] with a dynamic batch, output `logits` [N,10]),
`fashion-zfnet.json` (sidecar: preprocessing, labels, accuracy), `fashion-zfnet.snapshots/` (training snapshots).
Generated by `scripts/train_default_model.py`; this card is written by that script.

## Data

[Fashion-MNIST](https://github.com/zalandoresearch/fashion-mnist) (Xiao, Rasul & Vollgraf 2017, MIT licence), from
Debian's `dataset-fashion-mnist` package: 60 000 training and 10 000 test images, 28×28 grayscale, 10 classes:
{", ".join(LABELS)}.

Preprocessing (the sidecar's `input`): `x = ((pixel * {SCALE}) - {mean}) / {std}` with `pixel` in 0..255,
one gray channel; {mean} and {std} are the mean and standard deviation of the training pixels in 0..1 units.

The demo dataset `datasets/fashion-mnist-demo/` holds the first {DEMO_COUNT} images of the **test** set as 28×28
grayscale PNGs (`test-00000.png` …) with `labels.json` (file name → label name). Nothing in it was trained on.

## Architecture

{n_params:,} parameters. LRN: size {LRN_SIZE}, alpha {LRN_ALPHA}, beta {LRN_BETA}, k {LRN_K}, exported as one native ONNX
`LRN` node per layer (not torch 1.13's ~65-node decomposition). Dropout layers vanish from the export (eval mode).

{chr(10).join(table)}

## Training

{recipe}. Weights: Kaiming-normal except conv1, N(0, 0.01) as in AlexNet/ZFNet; biases zero. Augmentation is applied to the raw image before normalisation (the
padding is black, i.e. pixel 0). The data order and the augmentation come from a seeded `torch.Generator`, so a rerun on
the same software reproduces the numbers (floating-point results can differ slightly across CPUs / thread counts).

{chr(10).join(hist)}

## Accuracy

- Test set (all 10 000 images): **{final['test']:.4f}**
- Demo set (`datasets/fashion-mnist-demo`, decoded from the PNGs and preprocessed as the sidecar says): **{final['demo']:.4f}**

## Snapshots

Exported after epochs {", ".join(str(e) for e, _, _ in snapshots)} so the evolution of the features can be watched
(Zeiler & Fergus 2014, Fig. 4). Each has a sidecar with the same fields plus `snapshotOf` and `epoch`.

{chr(10).join(snaps)}

## First-layer filters

![conv1 filters](../docs/fashion-zfnet-conv1-filters.png)

`docs/fashion-zfnet-conv1-filters.png`: the {model.conv1.out_channels} conv1 kernels ({model.conv1.kernel_size[0]}×{model.conv1.kernel_size[1]}), ×8 nearest neighbour, 0 = mid-grey,
scaled by the largest |w| in the layer. {FILTERS_NOTE}

## How to retrain

```sh
apt-get install python3-torch python3-torchvision python3-onnx python3-pil dataset-fashion-mnist
/usr/bin/python3 scripts/train_default_model.py        # --help for the options
```

On this machine ({os.cpu_count()} vCPU, `{cpu}`, torch {torch.__version__}, {args.threads} threads) training took
{train_time / 60:.1f} min ({train_time:.0f} s); the whole script, including evaluation and export, {wall / 60:.1f} min
wall time and {cpu_time / 60:.1f} min of CPU time.
"""
    path.write_text(card)


if __name__ == "__main__":
    main()
