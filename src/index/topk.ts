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

/** Whether a candidate of this value and image ranks above `b`. */
const beats = (value: number, image: number, b: Candidate) => value > b.value || (value === b.value && image < b.image);

export const better = (a: Candidate, b: Candidate) => beats(a.value, a.image, b);

export class TopK {
  readonly entries: Candidate[] = [];
  /** Set when an offer changed the entries; cleared by whoever saves them. */
  dirty = false;

  constructor(readonly k: number) {}

  /** Whether a candidate of this value and image would enter (lets callers skip building it). */
  accepts(value: number, image: number): boolean {
    const e = this.entries;
    return e.length < this.k || beats(value, image, e[e.length - 1]);
  }

  offer(c: Candidate): void {
    const e = this.entries;
    if (e.length === this.k && !better(c, e[e.length - 1])) return;
    let i = e.length;
    while (i > 0 && better(c, e[i - 1])) i--;
    e.splice(i, 0, c);
    if (e.length > this.k) e.pop();
    this.dirty = true;
  }
}
