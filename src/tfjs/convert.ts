/**
 * A TensorFlow.js layers model (`<name>/model.json` + weight shards) as an ONNX model, so that
 * the registry serves it like an .onnx file. The graph is the Keras graph layer by layer
 * (Sequential or functional), channels-first; the node that outputs a Keras layer's output is
 * named after the layer, the steps inside a layer `<layer>/<Op>` (`conv1/Conv` then `conv1`, its
 * ReLU). The image input stays the model's input, as [N, C, H, W] like any ONNX CNN's.
 */
import { DataType, ModelProto, ValueInfoProto } from '../onnx/proto';
import { LayersModelFiles, readLayersModelFiles } from './files';
import { Config, LAYERS, LayerScope, MERGES } from './layers';
import { OnnxWriter, Tensor } from './writer';

interface LayerSpec {
  name: string;
  className: string;
  config: Config;
  /** The layers whose outputs it reads. */
  inputs: string[];
}

interface Topology {
  input: { name: string; config: Config };
  layers: LayerSpec[];
  outputs: string[];
}

const MODELS = new Set(['Sequential', 'Model', 'Functional']);

export interface ConvertedModel {
  proto: ModelProto;
  sha256: string;
  bytes: number;
}

/** Reads and converts the layers model in `dir`; `inputSize` [H, W] stands in for an input without a fixed size. */
export function loadLayersModel(dir: string, maxBytes: number, inputSize?: number[]): ConvertedModel {
  const files = readLayersModelFiles(dir, maxBytes);
  return { proto: convertLayersModel(files, inputSize), sha256: files.sha256, bytes: files.bytes };
}

export function convertLayersModel(files: LayersModelFiles, inputSize?: number[]): ModelProto {
  const { input, layers, outputs } = topologyOf(files.topology);
  const writer = new OnnxWriter([input.name, ...layers.map((l) => l.name)]);
  const tensors = new Map<string, Tensor>([[input.name, { name: input.name, shape: inputShape(input, inputSize) }]]);
  for (const layer of layers) {
    const s = new LayerScope(writer, layer.name, layer.className, files.weights);
    if (MODELS.has(layer.className))
      s.fail('is a nested model; convscope converts models of plain layers (save the outer model with the inner one flattened into it)');
    const convert = LAYERS[layer.className];
    if (!convert) s.fail(`cannot be converted: convscope converts ${Object.keys(LAYERS).sort().join(', ')}`);
    const inputs = layer.inputs.map((name) => tensors.get(name) ?? s.fail(`reads "${name}", which no layer before it makes`));
    if (MERGES.has(layer.className) ? inputs.length < 2 : inputs.length !== 1) s.fail(`has ${inputs.length} inputs`);
    let out = convert(s, layer.config, inputs);
    // A layer that changes nothing (a linear Activation) still gets a node of its own.
    if (inputs.some((t) => t.name === out.name)) out = s.op('Identity', [out.name], out.shape);
    tensors.set(layer.name, { name: writer.rename(out.name, layer.name), shape: out.shape });
  }
  const valueInfo = (t: Tensor): ValueInfoProto => {
    const dims = t.shape.length === 3 ? [t.shape[2], t.shape[0], t.shape[1]] : t.shape;
    return { name: t.name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, ...dims.map((d) => ({ dimValue: d }))] } } } };
  };
  const outputTensors = outputs.map((name) => {
    const t = tensors.get(name);
    if (!t || name === input.name) throw new Error(`the model's output "${name}" is not the output of a layer`);
    return t;
  });
  return {
    irVersion: 8,
    producerName: 'convscope (TensorFlow.js layers model)',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: String(files.topology.class_name),
      node: writer.nodes,
      initializer: writer.initializers,
      input: [valueInfo(tensors.get(input.name)!)],
      output: outputTensors.map(valueInfo),
    },
  };
}

/** The image input's Keras shape [H, W, C]. */
function inputShape(input: Topology['input'], inputSize?: number[]): number[] {
  const shape = (input.config.batch_input_shape ?? input.config.batch_shape) as (number | null)[] | undefined;
  const what = `the input "${input.name}"`;
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw new Error(`${what} has shape ${JSON.stringify(shape)}: convscope serves image models, whose input is [batch, height, width, channels]`);
  }
  if (input.config.dtype !== undefined && input.config.dtype !== 'float32')
    throw new Error(`${what} has dtype ${input.config.dtype}; convscope needs float32 images`);
  const [, h, w, c] = shape;
  if (!c) throw new Error(`${what} has no fixed number of channels`);
  if (h && w) return [h, w, c];
  if (inputSize?.length === 2) return [inputSize[0], inputSize[1], c];
  throw new Error(`${what} has no fixed size [H, W] (got [${shape.slice(1, 3)}]); give one in the sidecar: {"input": {"size": [H, W]}}`);
}

/** The layers in order with what each reads, from a Sequential or functional model's config. */
function topologyOf(topology: LayersModelFiles['topology']): Topology {
  const className = String(topology.class_name);
  const config = topology.config as Config | Config[] | undefined;
  if (className === 'Sequential') {
    // Keras 2.2 saved a Sequential's layers as the config itself.
    const list = (Array.isArray(config) ? config : config?.layers) as { class_name: string; config: Config }[] | undefined;
    if (!Array.isArray(list) || list.length === 0) throw new Error('the Sequential model has no layers');
    const specs = list.map((l) => ({ name: String(l.config?.name), className: l.class_name, config: l.config ?? {}, inputs: [] as string[] }));
    // The input: an InputLayer first, or the first layer's batch_input_shape (TF.js names it <layer>_input).
    const input = specs[0].className === 'InputLayer' ? specs.shift()! : { name: `${specs[0].name}_input`, config: specs[0].config };
    specs.forEach((spec, i) => (spec.inputs = [i === 0 ? input.name : specs[i - 1].name]));
    return { input, layers: specs, outputs: [specs[specs.length - 1].name] };
  }
  if (!MODELS.has(className) || !config || Array.isArray(config))
    throw new Error(`model.json's topology is a ${className}; expected Sequential or a functional Model`);
  const list = (config.layers ?? []) as { name: string; class_name: string; config: Config; inbound_nodes: unknown[] }[];
  const refs = (value: unknown, what: string): string[] => {
    if (!Array.isArray(value)) throw new Error(`the model's ${what} are not a list of [layer, node, tensor]`);
    return value.map((ref) => {
      if (!Array.isArray(ref) || typeof ref[0] !== 'string')
        throw new Error(`the model's ${what} are not a list of [layer, node, tensor] (Keras 3 saves another format, which TF.js does not read either)`);
      if (ref[1] !== 0 || ref[2] !== 0)
        throw new Error(`the model uses output ${ref[2]} of call ${ref[1]} of layer "${ref[0]}": convscope converts layers called once, with one output`);
      return ref[0];
    });
  };
  const inputs = refs(config.input_layers, 'inputs');
  if (inputs.length !== 1) throw new Error(`the model has ${inputs.length} inputs; convscope serves models of one image input`);
  const layers: LayerSpec[] = [];
  let input: Topology['input'] | undefined;
  for (const l of list) {
    const calls = l.inbound_nodes ?? [];
    if (calls.length > 1) throw new Error(`layer "${l.name}" (${l.class_name}) is called ${calls.length} times: convscope converts layers called once`);
    if (l.name === inputs[0]) input = { name: l.name, config: l.config ?? {} };
    else
      layers.push({ name: l.name, className: l.class_name, config: l.config ?? {}, inputs: calls.length ? refs(calls[0], `inputs of layer "${l.name}"`) : [] });
  }
  if (!input) throw new Error(`the model's input layer "${inputs[0]}" is not among its layers`);
  return { input, layers: ordered(layers, input.name), outputs: refs(config.output_layers, 'outputs') };
}

/** Layers after the layers they read (Keras lists them so; a hand-edited file may not). */
function ordered(layers: LayerSpec[], input: string): LayerSpec[] {
  const done = new Set([input]);
  const out: LayerSpec[] = [];
  let pending = layers;
  while (pending.length) {
    const ready = pending.filter((l) => l.inputs.every((i) => done.has(i)));
    if (ready.length === 0) {
      const l = pending[0];
      throw new Error(`layer "${l.name}" (${l.className}) reads ${l.inputs.filter((i) => !done.has(i)).join(', ')}, which no layer makes from the input`);
    }
    for (const l of ready) done.add(l.name);
    out.push(...ready);
    pending = pending.filter((l) => !ready.includes(l));
  }
  return out;
}
