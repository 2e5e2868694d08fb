/** Finding what a request names (models, layers, filters, datasets), with errors that say what exists. */
import { badInput, listSome, notFound } from '../errors';
import type { Layer, Model, Unit } from '../model';
import type { Dataset } from '../registry/datasets';
import type { Services } from './services';

export function findModel({ registry }: Services, name: string): Model {
  const model = registry.models.get(name);
  if (!model) {
    const failed = registry.errors.find((e) => e.model === name);
    const why = failed ? ` (its file failed to load: ${failed.message})` : '';
    throw notFound(`no model "${name}"${why}; models: ${listSome(registry.names())}`, { model: name });
  }
  return model;
}

export function findLayer(model: Model, name: string): Layer {
  const layer = model.layerByName.get(name);
  if (!layer) {
    throw notFound(`model "${model.name}" has no layer "${name}"; layers: ${listSome(model.layers.map((l) => l.name))}`, { layer: name });
  }
  return layer;
}

/** A model's training snapshots (models named `<model>@<snapshot>`), oldest first. */
export function snapshots({ registry }: Services, model: Model): Model[] {
  return [...registry.models.values()].filter((m) => m.snapshotOf === model.name).sort((a, b) => (a.epoch ?? 0) - (b.epoch ?? 0));
}

/** The model a snapshot is of, if it is served. */
export const snapshotOf = ({ registry }: Services, model: Model): Model | undefined => (model.snapshotOf ? registry.models.get(model.snapshotOf) : undefined);

/** The number of filters of a layer: its channels (or dense units). */
export const filterCount = (layer: Layer): number => layer.units[0];

export function findUnit(model: Model, layer: Layer, index: number): Unit {
  const count = filterCount(layer);
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw badInput(`filter index ${index} is out of range: layer "${layer.name}" of "${model.name}" has filters 0 to ${count - 1}`, { argument: 'index' });
  }
  return { model, layer, index };
}

/** The filters of a layer, in order. */
export const layerUnits = (model: Model, layer: Layer): Unit[] => Array.from({ length: filterCount(layer) }, (_, index) => ({ model, layer, index }));

export function findDataset({ datasets }: Services, name: string): Dataset {
  const dataset = datasets.datasets.get(name);
  if (!dataset) throw notFound(`no dataset "${name}"; datasets: ${listSome(datasets.names())}`, { dataset: name });
  return dataset;
}
