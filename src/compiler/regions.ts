/**
 * A top-down pass seeded at one position (seeds MAX and POSITION) is non-zero only over the
 * seed's receptive field, which grows layer by layer from one unit: in AlexNet, relu5's signal
 * covers 3×3 of relu4's 13×13 map and 19×19 of relu2's 27×27. Such signals are carried as that
 * region of each item's map, [N, C, h, w], so the transposed convs and unpoolings work on the
 * region only. The region's size is static; its origin differs per item, as seed·scale + shift
 * per axis (the seed's position per item, scale and shift static), so a batch stays one tensor.
 *
 * Invariant: a region signal is zero at positions outside its map (masked after each transposed
 * conv, the only op that spreads a signal past a map's border). That makes it safe to read
 * forward values with indices clamped to the map.
 */
import { reach, Window } from '../onnx/ops';
import { GraphBuilder } from './builder';

export interface Region {
  size: [number, number];
  scale: [number, number];
  shift: [number, number];
}

export interface RegionSignal {
  tensor: string;
  region: Region;
}

/** A signal over an item's whole map, or over a region of it. */
export type Signal = string | RegionSignal;

export const isRegion = (s: Signal): s is RegionSignal => typeof s !== 'string';

const AXES = [0, 1] as const;

export class Regions {
  private readonly memo = new Map<string, string>();

  /**
   * `seed`: per item, the seed's row and column in the target's map, int64 [N, 1, 1, 1] each;
   * `itemImage`: per item, its image in the batch, int64 [N].
   */
  constructor(
    private readonly b: GraphBuilder,
    private readonly seed: [string, string],
    private readonly itemImage: string,
  ) {}

  /** The region a window op's transpose spreads `r` over: rows (h−1)·s + d·(k−1) + 1 from origin·s − pad. */
  static spread(r: Region, win: Window): Region {
    const [y, x] = AXES.map((a) => ({
      size: reach(r.size[a], win.kernel[a], win.strides[a], win.dilations[a]),
      scale: r.scale[a] * win.strides[a],
      shift: r.shift[a] * win.strides[a] - win.padsBegin[a],
    }));
    return { size: [y.size, x.size], scale: [y.scale, x.scale], shift: [y.shift, x.shift] };
  }

  /** Per item, the region's first row (axis 0) or column (axis 1) in its map: int64 [N, 1, 1, 1]. */
  origin(r: Region, axis: 0 | 1): string {
    return this.cached(`origin/${axis}/${r.scale[axis]}/${r.shift[axis]}`, () =>
      this.b.op('Add', [this.b.op('Mul', [this.seed[axis], this.int(r.scale[axis])]), this.int(r.shift[axis])]),
    );
  }

  /** Where the region lies on an [H, W] map: bool [N, 1, h, w]. */
  onMap(r: Region, H: number, W: number): string {
    return this.cached(`onMap/${key(r)}/${H}/${W}`, () => {
      const { b } = this;
      const [rows, cols] = AXES.map((a) => {
        const c = this.coords(r, a);
        return b.op('And', [b.op('Not', [b.op('Less', [c, this.int(0)])]), b.op('Less', [c, this.int([H, W][a])])]);
      });
      return b.op('And', [rows, cols]);
    });
  }

  /** onMap() as 1 and 0: float [N, 1, h, w]. */
  onMapAsFloat(r: Region, H: number, W: number): string {
    return this.cached(`onMapAsFloat/${key(r)}/${H}/${W}`, () => this.b.op('Cast', [this.onMap(r, H, W)], { to: 1 }));
  }

  /**
   * Each item's region of a forward tensor of the batch's images [B, C, H, W], read straight
   * from the batch (no per-item copy of the whole tensor): [N, C, h, w].
   */
  gather(tensor: string, shape: number[], r: Region): string {
    return this.cached(`gather/${tensor}/${key(r)}`, () => {
      const { b } = this;
      const [C, H, W] = shape;
      const image = b.reshape(b.op('Mul', [this.itemImage, this.int(C * H * W)]), [-1, 1, 1]);
      const at = b.op('Add', [b.op('Add', [this.flatIndex(r, H, W), image]), this.channelStarts(C, H * W)]);
      const picked = b.op('GatherElements', [b.reshape(tensor, [1, -1]), b.reshape(at, [1, -1])], { axis: 1 });
      return b.reshape(picked, [-1, C, ...r.size]);
    });
  }

  /** A region signal as the whole map [N, C, H, W], zero outside the region. */
  whole(s: RegionSignal, shape: number[]): string {
    const { b } = this;
    const [C, H, W] = shape;
    const [h, w] = s.region.size;
    // Map position y is row y − origin of the region: a "region" of the map's size in the
    // region's own coordinates, with scale and shift negated.
    const { scale, shift } = s.region;
    const relative: Region = { size: [H, W], scale: [-scale[0], -scale[1]], shift: [-shift[0], -shift[1]] };
    const at = b.op('Add', [this.flatIndex(relative, h, w), this.channelStarts(C, h * w)]);
    const picked = b.op('GatherElements', [b.reshape(s.tensor, [0, C * h * w]), b.reshape(at, [0, -1])], { axis: 1 });
    return b.op('Mul', [b.reshape(picked, [0, C, H, W]), this.onMapAsFloat(relative, h, w)]);
  }

  /** Where each channel's map starts in a flat [C, size] tensor: int64 [1, C, 1]. */
  private channelStarts(C: number, size: number): string {
    return this.cached(`channels/${C}/${size}`, () =>
      this.b.ints(
        Array.from({ length: C }, (_, c) => c * size),
        [1, C, 1],
      ),
    );
  }

  /**
   * The sum of two signals to one tensor. Regions of the same scale are padded to the region
   * covering both (their offsets differ by a constant); anything else is summed whole.
   */
  sum(a: Signal, c: Signal, shape: number[]): Signal {
    const { b } = this;
    if (isRegion(a) && isRegion(c) && AXES.every((i) => a.region.scale[i] === c.region.scale[i])) {
      const start = AXES.map((i) => Math.min(a.region.shift[i], c.region.shift[i]));
      const end = AXES.map((i) => Math.max(a.region.shift[i] + a.region.size[i], c.region.shift[i] + c.region.size[i]));
      const region: Region = { size: [end[0] - start[0], end[1] - start[1]], scale: a.region.scale, shift: [start[0], start[1]] };
      const padded = [a, c].map(({ tensor, region: r }) =>
        b.pad(tensor, [0, 0, r.shift[0] - start[0], r.shift[1] - start[1], 0, 0, end[0] - r.shift[0] - r.size[0], end[1] - r.shift[1] - r.size[1]]),
      );
      return { tensor: b.op('Add', padded), region };
    }
    const whole = (s: Signal) => (isRegion(s) ? this.whole(s, shape) : s);
    return b.op('Add', [whole(a), whole(c)]);
  }

  /** Per item, the map coordinates of the region's rows [N, 1, h, 1] (axis 0) or columns [N, 1, 1, w]. */
  private coords(r: Region, axis: 0 | 1): string {
    const n = r.size[axis];
    return this.cached(`coords/${axis}/${n}/${r.scale[axis]}/${r.shift[axis]}`, () => {
      const steps = Array.from({ length: n }, (_, i) => i);
      return this.b.op('Add', [this.origin(r, axis), this.b.ints(steps, axis === 0 ? [1, 1, n, 1] : [1, 1, 1, n])]);
    });
  }

  /** The region's positions as flat indices into an [H, W] map, clamped to the map: int64 [N, 1, h·w]. */
  private flatIndex(r: Region, H: number, W: number): string {
    return this.cached(`flat/${key(r)}/${H}/${W}`, () => {
      const { b } = this;
      const [rows, cols] = AXES.map((a) => {
        const c = this.coords(r, a);
        const last = [H, W][a] - 1;
        const below = b.op('Where', [b.op('Less', [c, this.int(0)]), this.int(0), c]);
        return b.op('Where', [b.op('Greater', [below, this.int(last)]), this.int(last), below]);
      });
      return b.reshape(b.op('Add', [b.op('Mul', [rows, this.int(W)]), cols]), [0, 1, -1]);
    });
  }

  private int(value: number): string {
    return this.cached(`int/${value}`, () => this.b.ints([value], []));
  }

  private cached(k: string, make: () => string): string {
    let t = this.memo.get(k);
    if (!t) {
      t = make();
      this.memo.set(k, t);
    }
    return t;
  }
}

function key(r: Region): string {
  return `${r.size}/${r.scale}/${r.shift}`;
}
