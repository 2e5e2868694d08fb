/**
 * The top-k of ZF Fig. 2 (the Deep Visualization Toolbox's max_tracker): per image and channel
 * one candidate, the spatial maximum (first in raster order); per channel the k best by value,
 * so the k are distinct images; on equal values the earlier image wins.
 */
export interface Candidate {
  value: number;
  /** Image index in the dataset's name order. */
  image: number;
  y: number;
  x: number;
}

/**
 * The top-k of every channel of one layer, kept in typed arrays: a job offers hundreds of
 * thousands of candidates (each new best of each channel), and an object per offer would cost
 * more in allocation and garbage collection than the ranking itself.
 */
export class LayerTopK {
  private readonly values: Float64Array;
  private readonly images: Int32Array;
  private readonly ys: Int32Array;
  private readonly xs: Int32Array;
  private readonly counts: Int32Array;
  /** Channels whose entries changed since the last takeChanged(). */
  private readonly changed: Uint8Array;

  constructor(
    readonly channels: number,
    readonly k: number,
  ) {
    this.values = new Float64Array(channels * k);
    this.images = new Int32Array(channels * k);
    this.ys = new Int32Array(channels * k);
    this.xs = new Int32Array(channels * k);
    this.counts = new Int32Array(channels);
    this.changed = new Uint8Array(channels);
  }

  /** Offers channel c's candidate; it enters if it ranks above the channel's k-th. */
  offer(c: number, value: number, image: number, y: number, x: number): void {
    const base = c * this.k;
    let n = this.counts[c];
    if (n === this.k) {
      if (!this.beats(value, image, base + n - 1)) return;
      n--;
    } else {
      this.counts[c] = n + 1;
    }
    // Shift the entries it beats down one place.
    let i = base + n;
    for (; i > base && this.beats(value, image, i - 1); i--) {
      this.values[i] = this.values[i - 1];
      this.images[i] = this.images[i - 1];
      this.ys[i] = this.ys[i - 1];
      this.xs[i] = this.xs[i - 1];
    }
    this.values[i] = value;
    this.images[i] = image;
    this.ys[i] = y;
    this.xs[i] = x;
    this.changed[c] = 1;
  }

  /** The channels changed since the last call, each with its entries packed (packCandidates), and clears the marks. */
  takeChanged(): { channel: number; entries: Buffer }[] {
    const channels: number[] = [];
    let size = 0;
    for (let c = 0; c < this.channels; c++) {
      if (!this.changed[c]) continue;
      this.changed[c] = 0;
      channels.push(c);
      size += 4 * this.counts[c];
    }
    // Straight from the columns into one array for all: a checkpoint packs thousands of
    // channels, and an object per entry made it cost as much as the ORT runs between two
    // checkpoints.
    const packed = new Float64Array(size);
    let at = 0;
    return channels.map((c) => {
      const from = at;
      for (let i = c * this.k; i < c * this.k + this.counts[c]; i++, at += 4) pack(packed, at, this.values[i], this.images[i], this.ys[i], this.xs[i]);
      return { channel: c, entries: Buffer.from(packed.buffer, from * 8, (at - from) * 8) };
    });
  }

  /** Clears the marks of changed channels (after restoring saved entries). */
  clearChanged(): void {
    this.changed.fill(0);
  }

  /** Whether (value, image) ranks above the entry at slot i: higher value, or equal and earlier. */
  private beats(value: number, image: number, i: number): boolean {
    return value > this.values[i] || (value === this.values[i] && image < this.images[i]);
  }
}

/**
 * The top-k of one channel over two disjoint sets of images, from the packed top-k of each: what
 * offering every candidate of both would keep. Exact, since ranking is a total order on (value,
 * image) and a candidate outside either top-k cannot enter the union's.
 */
export function mergePacked(a: Buffer, b: Buffer, k: number): Buffer {
  const merged = new LayerTopK(1, k);
  for (const packed of [a, b]) {
    const v = new Float64Array(packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength));
    for (let at = 0; at < v.length; at += 4) merged.offer(0, v[at], v[at + 1], v[at + 2], v[at + 3]);
  }
  return merged.takeChanged()[0]?.entries ?? Buffer.alloc(0);
}

/** Entries as the store keeps them: float64 [value, image, y, x] each, best first. */
export function packCandidates(entries: Candidate[]): Buffer {
  const packed = new Float64Array(4 * entries.length);
  entries.forEach((e, r) => pack(packed, 4 * r, e.value, e.image, e.y, e.x));
  return Buffer.from(packed.buffer);
}

/** One entry in the stored layout (packCandidates). */
function pack(packed: Float64Array, at: number, value: number, image: number, y: number, x: number): void {
  packed[at] = value;
  packed[at + 1] = image;
  packed[at + 2] = y;
  packed[at + 3] = x;
}
