"""
References for test/preprocessing.test.ts, from PIL and torchvision themselves (Debian:
apt-get install python3-torchvision python3-pil; run with /usr/bin/python3 from the repository root):

- geometry.json: torchvision's Resize(shorterSide) then CenterCrop((H, W)), for images of many
  sizes: the size Resize gives, and where the crop window lies in the resized image (negative:
  CenterCrop padded it). Read off a tensor holding each pixel's own coordinates, so it is what
  torchvision's code does, not a formula.
- p3.pil.png: the pixels PIL decodes from p3.jpg (a JPEG carrying a Display P3 ICC profile),
  the way torchvision's ImageFolder reads it (Image.open(f).convert("RGB")), saved without a profile.

p3.jpg was made once with sharp 0.35: a 96×64 picture of saturated colours,
sharp(raw).withIccProfile('p3').jpeg({ quality: 95 }).
"""
import json
import os

import torch
from PIL import Image
from torchvision.transforms import CenterCrop, Resize

HERE = os.path.join("test", "fixtures", "preprocessing")

SIZES = [(500, 375), (375, 500), (256, 192), (584, 512), (341, 256), (256, 341), (257, 256), (256, 257), (1000, 333), (333, 1000),
         (224, 224), (640, 480), (300, 301), (97, 64), (64, 97), (1920, 1080)]
CROPS = [(256, 224, 224), (224, 224, 224), (232, 224, 224), (342, 299, 299), (256, 224, 288), (160, 224, 224), (64, 28, 28)]


def geometry(width, height, shorter, crop_h, crop_w):
    resized_h, resized_w = Resize(shorter, antialias=False)(torch.zeros(1, height, width)).shape[1:]
    # A coordinate image of the resized size (channel 0: row + 1, channel 1: column + 1; 0 is
    # CenterCrop's padding fill), cropped: at each input row/column, which resized one is there.
    ys = torch.arange(1, resized_h + 1, dtype=torch.float64)[:, None].expand(resized_h, resized_w)
    xs = torch.arange(1, resized_w + 1, dtype=torch.float64)[None, :].expand(resized_h, resized_w)
    cropped = CenterCrop((crop_h, crop_w))(torch.stack([ys, xs]))
    assert tuple(cropped.shape[1:]) == (crop_h, crop_w)

    def origin(at):
        # The input position of the resized image's row/column 0: negative where it was cut off.
        first = int((at > 0).nonzero()[0])
        return first - (int(at[first]) - 1)

    return {"image": [width, height], "shorterSide": shorter, "size": [crop_h, crop_w],
            "resized": [int(resized_w), int(resized_h)], "left": origin(cropped[1].amax(0)), "top": origin(cropped[0].amax(1))}


def main():
    cases = [geometry(w, h, s, ch, cw) for (w, h) in SIZES for (s, ch, cw) in CROPS]
    with open(os.path.join(HERE, "geometry.json"), "w") as f:
        version = json.dumps(__import__("torchvision").__version__)
        f.write('{"torchvision": %s, "cases": [\n%s\n]}\n' % (version, ",\n".join(json.dumps(c) for c in cases)))
    image = Image.open(os.path.join(HERE, "p3.jpg"))
    assert image.info.get("icc_profile"), "p3.jpg carries an ICC profile"
    rgb = image.convert("RGB")
    Image.frombytes("RGB", rgb.size, rgb.tobytes()).save(os.path.join(HERE, "p3.pil.png"))  # the values alone, no profile


if __name__ == "__main__":
    main()
