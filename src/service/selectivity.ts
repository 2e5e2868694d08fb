/**
 * What a unit responds to, read from a built index: the class selectivity of its top-k dataset
 * images (their labels' most frequent one, its share, and the labels' entropy), and a layer's
 * units ordered by it.
 */
import { badInput } from '../errors';
import type { Layer, Model, Unit } from '../model';
import type { Dataset } from '../registry/datasets';
import type { UnitOrder } from '../vocabulary';
import { layerUnits } from './lookup';
import type { Services } from './services';
import { topRows } from './top-activations';

export interface Selectivity {
  /** Top images read from the index (its k, or fewer for a dataset of fewer images). */
  images: number;
  /** Of those, the ones with a label (labels.json): the shares and the entropy are over these. */
  labelled: number;
  /** The most frequent label; on equal counts the one of the stronger image. Null when none is labelled. */
  label: string | null;
  count: number;
  /** count / labelled (0 when none is labelled). */
  share: number;
  /** Shannon entropy of the labels, in bits (log base 2): 0 when all agree, log2(n) when n labels are equally frequent. */
  entropy: number;
  /** Every label with its count, most frequent first (ties: the stronger image's first). */
  labels: { label: string; count: number }[];
}

/** The selectivity of a unit whose top images, strongest first, have these labels. */
export function selectivityOf(labels: (string | undefined)[]): Selectivity {
  const counts = new Map<string, number>(); // insertion order: by the first (strongest) image with the label
  for (const label of labels) if (label !== undefined) counts.set(label, (counts.get(label) ?? 0) + 1);
  const sorted = [...counts].map(([label, count]) => ({ label, count })).sort((a, b) => b.count - a.count); // stable
  const labelled = sorted.reduce((n, l) => n + l.count, 0);
  let entropy = 0;
  for (const { count } of sorted) entropy -= (count / labelled) * Math.log2(count / labelled);
  const top = sorted[0];
  return {
    images: labels.length,
    labelled,
    label: top?.label ?? null,
    count: top?.count ?? 0,
    share: top ? top.count / labelled : 0,
    entropy: entropy === 0 ? 0 : entropy, // no -0
    labels: sorted,
  };
}

/** A unit's class selectivity over `dataset`, from the finished index covering its layer (INDEX_NOT_BUILT otherwise, as topActivations). */
export async function unitSelectivity(services: Services, unit: Unit, dataset: Dataset): Promise<Selectivity> {
  const rows = await topRows(services, unit, dataset);
  return selectivityOf(rows.map((r) => dataset.images[r.image]?.label));
}

/** More selective first: a larger share, then a lower entropy; units with no labelled top image last. */
function moreSelective(a: Selectivity, b: Selectivity): number {
  if ((a.labelled === 0) !== (b.labelled === 0)) return a.labelled === 0 ? 1 : -1;
  return b.share - a.share || a.entropy - b.entropy;
}

/** A layer's units in the order asked: by index, or by selectivity over `dataset` (needed then; equal ones by index). */
export async function orderedUnits(services: Services, model: Model, layer: Layer, order: UnitOrder, dataset: Dataset | undefined): Promise<Unit[]> {
  const units = layerUnits(model, layer);
  if (order === 'INDEX') return units;
  if (!dataset) throw badInput("orderBy: SELECTIVITY needs a `dataset` (its index gives each unit's top images)", { argument: 'dataset' });
  const selectivity = await Promise.all(units.map((u) => unitSelectivity(services, u, dataset)));
  return units
    .map((u, i) => ({ u, s: selectivity[i] }))
    .sort((a, b) => moreSelective(a.s, b.s) || a.u.index - b.u.index)
    .map(({ u }) => u);
}
