/**
 * Datasets: one folder per dataset under DATASETS_DIR with images (JPEG, PNG, WebP) and an
 * optional labels.json mapping file name → label. Images are in name order, which is the
 * order index jobs visit them and the tie-break of the top-k.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../log';

const IMAGE = /\.(jpe?g|png|webp)$/i;

export interface DatasetImage {
  /** Position in name order. */
  index: number;
  name: string;
  label?: string;
  bytes: number;
}

export interface Dataset {
  name: string;
  dir: string;
  images: DatasetImage[];
  byName: Map<string, DatasetImage>;
  /**
   * Fingerprint of the content: names, sizes and modification times of every image plus
   * labels.json. Cheap to compute for large sets; any edit changes it and so the index key.
   */
  fingerprint: string;
}

export class DatasetRegistry {
  readonly datasets = new Map<string, Dataset>();

  static load(dir: string): DatasetRegistry {
    const registry = new DatasetRegistry();
    if (!fs.existsSync(dir)) return registry;
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (!fs.statSync(full).isDirectory() || name.startsWith('.')) continue;
      try {
        registry.datasets.set(name, loadDataset(name, full));
      } catch (e) {
        log.error({ dataset: name, err: (e as Error).message }, 'dataset failed to load');
      }
    }
    return registry;
  }

  names(): string[] {
    return [...this.datasets.keys()];
  }

  /** The bytes of one image; the name must be one the dataset lists (no path tricks). */
  read(dataset: Dataset, name: string): Buffer {
    const image = dataset.byName.get(name);
    if (!image) throw new Error(`dataset "${dataset.name}" has no image "${name}"`);
    return fs.readFileSync(path.join(dataset.dir, image.name));
  }
}

function loadDataset(name: string, dir: string): Dataset {
  const hash = createHash('sha256');
  const files = fs
    .readdirSync(dir)
    .filter((f) => IMAGE.test(f))
    .sort();
  let labels: Record<string, string> = {};
  const labelsFile = path.join(dir, 'labels.json');
  if (fs.existsSync(labelsFile)) {
    const text = fs.readFileSync(labelsFile, 'utf8');
    labels = JSON.parse(text);
    hash.update(text);
  }
  const images = files.map((file, index) => {
    const stat = fs.statSync(path.join(dir, file));
    hash.update(`${file}\0${stat.size}\0${Math.floor(stat.mtimeMs)}\n`);
    const label = labels[file];
    return { index, name: file, bytes: stat.size, label: label === undefined ? undefined : String(label) };
  });
  return { name, dir, images, byName: new Map(images.map((i) => [i.name, i])), fingerprint: hash.digest('hex') };
}
