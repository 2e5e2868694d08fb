/**
 * One pass of a model over a range of a dataset's images, as index jobs make it (jobs.ts): each
 * image decoded to 8-bit pixels (by Inference.pixels: in the decoding pool's worker threads where
 * DECODE_THREADS gives one) and run through one graph (compileChannelMaxima: per layer and
 * channel, the spatial maximum and its position), its candidates offered to per-layer top-k
 * trackers (topk.ts). An image that cannot be read or decoded is left out and reported; it
 * fails nothing else.
 */
import { createHash } from 'node:crypto';
import { modelCacheId } from '../cache/keys';
import { compileChannelMaxima } from '../compiler/forward';
import { Engine, PixelImage } from '../engine/engine';
import { Inference } from '../inference';
import type { Layer, Model } from '../model';
import { Dataset, DatasetRegistry } from '../registry/datasets';
import { FailedImage, PackedTop } from './store';
import { LayerTopK } from './topk';

/** One batch's results: per image from `from` on, each layer's maxima and argmaxima (null: the image failed). */
export interface ScannedBatch {
  from: number;
  results: (Float32Array[] | null)[];
  failed: FailedImage[];
}

interface Pending {
  from: number;
  failed: FailedImage[];
  results: Promise<(Float32Array[] | null)[]>;
}

const ignore = () => undefined;

export class IndexScan {
  readonly layers: Layer[];
  /** The graph holds the model's normalisation table: two sidecars over one .onnx differ. */
  private readonly graph: string;

  constructor(
    private readonly engine: Engine,
    private readonly inference: Inference,
    private readonly datasets: DatasetRegistry,
    readonly model: Model,
    readonly dataset: Dataset,
    layerNames: string[],
    /** Images per ORT run. */
    private readonly batch: number,
  ) {
    this.layers = layerNames.map((name) => {
      const layer = model.layerByName.get(name);
      if (!layer) throw new Error(`model "${model.name}" has no layer "${name}"`);
      return layer;
    });
    this.graph = `maxima-of-pixels/${modelCacheId(model)}/${this.layers.map((l) => l.tensor).join('|')}`;
  }

  /** Empty top-k trackers, one per layer. */
  trackers(k: number): LayerTopK[] {
    return this.layers.map((l) => new LayerTopK(l.units[0], k));
  }

  /**
   * The results of images [from, to), batch by batch. Three batches are in flight: one decoding,
   * one running in the runtime's thread, and the one before, yielded to the caller (who offers it
   * to the top-k and checkpoints meanwhile), so that the runtime never waits for this thread.
   * Leaving the loop early leaves the batches in flight, their failures unheard.
   */
  async *batches(from: number, to: number): AsyncGenerator<ScannedBatch> {
    let cursor = from;
    let decoding = cursor < to ? this.decode(cursor, to) : null;
    let running: Pending | null = null;
    try {
      while (decoding || running) {
        let launched: Pending | null = null;
        if (decoding) {
          const { images, failed } = await decoding;
          const compile = () =>
            compileChannelMaxima(
              this.model.graph,
              this.model.shapes,
              this.layers.map((l) => l.tensor),
              this.model.preprocessing,
            );
          launched = {
            from: cursor,
            failed,
            results: Promise.all(images.map((img) => img && this.engine.forwardPixels(this.model, this.graph, compile, img))),
          };
          launched.results.catch(ignore); // awaited below; meanwhile not unhandled
          cursor += images.length;
          decoding = cursor < to ? this.decode(cursor, to) : null;
        }
        const done: Pending | null = running;
        running = launched;
        if (done) yield { from: done.from, failed: done.failed, results: await done.results };
      }
    } finally {
      running?.results.catch(ignore);
      decoding?.catch(ignore);
    }
  }

  /** Offers a batch's candidates to the trackers. */
  offer(trackers: LayerTopK[], { from, results }: ScannedBatch): void {
    results.forEach((outputs, i) => {
      if (!outputs) return;
      const image = from + i;
      this.layers.forEach((layer, li) => {
        const [max, argmax] = [outputs[2 * li], outputs[2 * li + 1]];
        const W = layer.units[2];
        const tracked = trackers[li];
        for (let c = 0; c < max.length; c++) tracked.offer(c, max[c], image, Math.floor(argmax[c] / W), argmax[c] % W);
      });
    });
  }

  /** The channels whose top-k changed since the last call, packed. */
  changed(trackers: LayerTopK[]): PackedTop[] {
    return this.layers.flatMap((layer, li) => trackers[li].takeChanged().map(({ channel, entries }) => ({ layer: layer.name, channel, entries })));
  }

  /** The next batch from `from` (before `to`) as pixels, and those of its images that failed. */
  private async decode(from: number, to: number): Promise<{ images: (PixelImage | null)[]; failed: FailedImage[] }> {
    const failed: FailedImage[] = [];
    const images = await Promise.all(
      this.dataset.images.slice(from, Math.min(to, from + this.batch)).map(async ({ name }, i) => {
        try {
          const bytes = this.datasets.read(this.dataset, name);
          const sha256 = createHash('sha256').update(bytes).digest('hex');
          return await this.inference.pixels(this.model, { sha256, bytes });
        } catch (e) {
          failed.push({ image: from + i, name, error: (e as Error).message });
          return null;
        }
      }),
    );
    return { images, failed: failed.sort((a, b) => a.image - b.image) };
  }
}
