/**
 * The images a request names: inline bytes (kept as uploads, so they get an ID too), uploads by
 * hash, and images of a dataset; and what each is (format, size, where it comes from).
 */
import { createHash } from 'node:crypto';
import { badInput, notFound } from '../errors';
import { inspectImage } from '../images/preprocess';
import { StoredImage } from '../images/store';
import { SourceImage } from '../inference';
import { findDataset } from './lookup';
import type { Services } from './services';

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function decodeBase64(text: string, limit: number): Buffer {
  const body = text.replace(/^data:[^;,]*;base64,/, '').replace(/\s+/g, '');
  if (body.length === 0 || !BASE64.test(body)) throw badInput('`base64` is not valid base64');
  if ((body.length * 3) / 4 > limit + 3) throw badInput(`image over the limit of ${limit} bytes (MAX_IMAGE_MB)`);
  return Buffer.from(body, body.includes('-') || body.includes('_') ? 'base64url' : 'base64');
}

/** Base64 of an image file, checked (format, size) and kept as an upload. */
export function uploadImage({ images, config }: Services, base64: string): Promise<StoredImage> {
  return images.put(decodeBase64(base64, config.maxImageBytes));
}

export function uploadedImage({ images }: Services, sha256: string): SourceImage {
  const bytes = images.get(sha256);
  if (!bytes) throw notFound(`no uploaded image ${sha256.slice(0, 12)}…: upload it again with uploadImage`);
  return { sha256, bytes };
}

/** An image of a dataset by name; only names the dataset lists are read. */
export function datasetImage(services: Services, datasetName: string, name: string): SourceImage {
  const dataset = findDataset(services, datasetName);
  if (!dataset.byName.has(name)) throw notFound(`dataset "${datasetName}" has no image "${name}"`);
  const bytes = services.datasets.read(dataset, name);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), bytes, dataset: datasetName, name };
}

export interface ImageDescription {
  sha256: string;
  format: string;
  width: number;
  height: number;
  /** For images of a dataset: its label (labels.json) and the URL of the file. */
  label?: string;
  url?: string;
}

export async function describeImage(services: Services, image: SourceImage): Promise<ImageDescription> {
  const info = await inspectImage(image.bytes, services.config);
  if (!image.dataset || !image.name) return { sha256: image.sha256, ...info };
  const entry = services.datasets.datasets.get(image.dataset)?.byName.get(image.name);
  return {
    sha256: image.sha256,
    ...info,
    label: entry?.label,
    url: `${services.config.publicUrl}/datasets/${encodeURIComponent(image.dataset)}/${encodeURIComponent(image.name)}`,
  };
}
