/**
 * Where an image lands in the model's input (the sidecar's `input.resize`): the whole image is
 * scaled to width × height and its top-left corner put at (left, top) of the input. Negative
 * offsets cut the overhang off (center-crop); positive ones leave bars of `pad` (letterbox).
 * Boxes in input pixels map back to the original image through the same placement.
 */
import type { Preprocessing } from '../model';
import type { Box } from './maps';

export interface Size {
  width: number;
  height: number;
}

export interface Placement extends Size {
  left: number;
  top: number;
}

/** The placement of an image of `image` pixels (EXIF orientation applied) in the input of `p`. */
export function placement(image: Size, p: Preprocessing): Placement {
  const { width: W, height: H } = p;
  if (p.resize === 'center-crop') {
    // torchvision's Resize(shorterSide): the longer side truncated, as its int(); then CenterCrop.
    const S = p.shorterSide!;
    const landscape = image.width > image.height;
    const longer = Math.floor((S * Math.max(image.width, image.height)) / Math.min(image.width, image.height));
    const width = landscape ? longer : S;
    const height = landscape ? S : longer;
    return { width, height, left: centred(width, W), top: centred(height, H) };
  }
  if (p.resize === 'letterbox') {
    // The side that limits the scale fills the input; the other is rounded to the nearest pixel.
    const byWidth = W * image.height <= H * image.width;
    const width = byWidth ? W : clamp(Math.round((image.width * H) / image.height), 1, W);
    const height = byWidth ? clamp(Math.round((image.height * W) / image.width), 1, H) : H;
    return { width, height, left: Math.floor((W - width) / 2), top: Math.floor((H - height) / 2) };
  }
  return { width: W, height: H, left: 0, top: 0 };
}

/**
 * The offset of a scaled side `length` centred in `target`, as torchvision's CenterCrop: a
 * longer side is cut at round((length − target) / 2), Python's round (half to even); a shorter
 * one is padded with (target − length) // 2 before it.
 */
function centred(length: number, target: number): number {
  if (length <= target) return Math.floor((target - length) / 2);
  const half = (length - target) / 2;
  const cut = Number.isInteger(half) ? half : 2 * Math.round(half / 2); // x.5: the even neighbour
  return -cut;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** The part of the scaled image that lands inside the input, in the scaled image's pixels. */
export function visiblePart(at: Placement, p: Preprocessing): Box {
  const x = Math.max(0, -at.left);
  const y = Math.max(0, -at.top);
  return { x, y, width: Math.min(at.width, p.width - at.left) - x, height: Math.min(at.height, p.height - at.top) - y };
}

/**
 * The input [p.height, p.width, C] (interleaved) made of the scaled image's pixels `held` (the
 * part of it they are: all of it, or at least its visiblePart) and `p.pad` where it does not reach.
 */
export function place(
  pixels: Buffer,
  channels: number,
  at: Placement,
  p: Preprocessing,
  held: Box = { x: 0, y: 0, width: at.width, height: at.height },
): Buffer {
  const { width: W, height: H } = p;
  if (at.left === 0 && at.top === 0 && at.width === W && at.height === H) return pixels;
  const out = Buffer.alloc(W * H * channels, p.pad ?? 0);
  const part = visiblePart(at, p);
  for (let y = part.y; y < part.y + part.height; y++) {
    const from = ((y - held.y) * held.width + part.x - held.x) * channels;
    pixels.copy(out, ((y + at.top) * W + part.x + at.left) * channels, from, from + part.width * channels);
  }
  return out;
}

/**
 * A box in input pixels as a box of the original image (of `image` pixels, EXIF orientation
 * applied): through the placement, widened to whole pixels, clipped to the image, and at least
 * one pixel (a box wholly on letterbox bars becomes the nearest pixel of the image).
 */
export function toOriginal(box: Box, image: Size, p: Preprocessing): Box {
  const at = placement(image, p);
  // (v − offset) · original / scaled, multiplied before dividing: exact where the result is whole.
  const axis = (start: number, length: number, offset: number, scaled: number, original: number) => {
    const from = clamp(Math.floor(((start - offset) * original) / scaled), 0, original - 1);
    const to = clamp(Math.ceil(((start + length - offset) * original) / scaled), from + 1, original);
    return [from, to - from];
  };
  const [x, width] = axis(box.x, box.width, at.left, at.width, image.width);
  const [y, height] = axis(box.y, box.height, at.top, at.height, image.height);
  return { x, y, width, height };
}
