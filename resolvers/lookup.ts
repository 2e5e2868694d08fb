/** Finding what a query names, with errors that say what exists. */
import { Context } from '../src/context';
import { badInput, listSome, notFound } from '../src/errors';
import type { Layer, Model } from '../src/model';

export function findModel(ctx: Context, name: string): Model {
  const { registry } = ctx.services;
  const model = registry.models.get(name);
  if (!model) {
    const failed = registry.errors.find((e) => e.file.replace(/\.onnx$/, '') === name);
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

export function checkFilterIndex(model: Model, layer: Layer, index: number): number {
  const count = layer.outputShape[0] ?? 0;
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw badInput(`filter index ${index} is out of range: layer "${layer.name}" of "${model.name}" has filters 0 to ${count - 1}`, { argument: 'index' });
  }
  return index;
}
