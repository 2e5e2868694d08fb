/**
 * The models a server offers: every `<name>.onnx` in MODELS_DIR (and training snapshots in
 * `<name>.snapshots/`) and every TensorFlow.js layers model `<name>/model.json` (converted to
 * ONNX by src/tfjs/), with its optional sidecar `<name>.json`. A model that fails to load is
 * recorded in `errors` and skipped; the others are served.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { compileShapeProbe } from '../compiler/forward';
import { isUnitShape, seedShape } from '../compiler/units';
import type { Runtime } from '../engine/runtime';
import { log } from '../log';
import type { ColorProfile, Layer, Model, ModelError, Preprocessing, ResizeMode, Sidecar } from '../model';
import { attrInts, OnnxGraph } from '../onnx/graph';
import { decodeModel } from '../onnx/proto';
import { checkModel } from '../onnx/validate';
import { layerKind, receptiveFields } from '../onnx/ops';
import { loadLayersModel } from '../tfjs/convert';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;

/** What a model file may be (config MAX_MODEL_MB, MAX_MODEL_INPUT_ELEMENTS); a file over them goes to `errors`. */
export interface ModelLimits {
  maxModelBytes: number;
  maxModelInputElements: number;
}

export interface ModelOptions extends ModelLimits {
  /** Compiled graphs refer to each model's weights in one shared file (OnnxGraph.shareWeights; Engine.sharesWeights says where they may). */
  shareWeights?: boolean;
  /** Where each model's large weights are written once and read from when a graph is compiled, instead of staying in memory (OnnxGraph.storeWeights); none: in memory. */
  weightsDir?: string;
  /** How long the weights file of a model replaced or removed is kept, for work still running on it (RETIRED_WEIGHTS_S); none: for ever. */
  retiredWeightsSeconds?: number;
}

const NO_LIMITS: ModelOptions = { maxModelBytes: 2 ** 31 - 1, maxModelInputElements: 4 * 1024 * 1024 };

export class ModelRegistry {
  readonly models = new Map<string, Model>();
  readonly errors: ModelError[] = [];
  /** Per model name, the signature (file sizes and times) of what was loaded, or failed to. */
  private readonly loaded = new Map<string, string>();
  /** Per model name, a signature seen once: loaded when the next scan sees it unchanged (a file still being copied changes). */
  private readonly settling = new Map<string, string>();
  private scanning: Promise<boolean> | undefined;
  /** Weights files of models replaced or removed, and when: removed at a scan once retiredWeightsSeconds have passed, unless a served model uses them again. */
  private readonly retired = new Map<string, number>();

  private constructor(
    private readonly dir: string,
    private readonly runtime: Runtime,
    private readonly options: ModelOptions,
  ) {}

  static async load(dir: string, runtime: Runtime, options: ModelOptions = NO_LIMITS): Promise<ModelRegistry> {
    const registry = new ModelRegistry(dir, runtime, options);
    await registry.scan(true);
    if (registry.models.size === 0) log.warn({ dir }, 'no models loaded');
    return registry;
  }

  names(): string[] {
    return [...this.models.keys()];
  }

  /**
   * Rescans the folder: loads models whose files are new or changed (once a scan finds them as
   * the one before it did) or whose weights file is gone, and forgets those whose files are gone.
   * True if what is served changed.
   */
  rescan(): Promise<boolean> {
    this.scanning ??= this.scan(false).finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  /** Rescans every `intervalMs` (MODELS_RESCAN_S), calling `changed` after a scan that changed what is served, until the returned function is called. */
  watch(intervalMs: number, changed: () => Promise<void> = async () => undefined): () => void {
    const scan = () =>
      this.rescan()
        .then((served) => (served ? changed() : undefined))
        .catch((e: Error) => log.error({ err: e.message }, 'models rescan failed'));
    const timer = setInterval(() => void scan(), intervalMs).unref();
    return () => clearInterval(timer);
  }

  private async scan(initial: boolean): Promise<boolean> {
    this.removeRetiredWeights();
    const sources = listModelSources(this.dir);
    let changed = false;
    const present = new Set(sources.map((f) => f.name));
    for (const name of [...this.loaded.keys()]) {
      if (present.has(name)) continue;
      changed = this.forget(name) || changed;
      this.loaded.delete(name);
      log.info({ model: name }, 'model removed');
    }
    for (const source of sources) {
      const { name, file } = source;
      const signature = signatureOf(source);
      // A served model whose weights file was removed (CACHE_DIR cleaned while running) is
      // loaded again at once, which writes the file again: its graphs compile from that file.
      const weightsFile = this.models.get(name)?.graph.weightsFile;
      const weightsGone = weightsFile !== undefined && !fs.existsSync(weightsFile);
      if (weightsGone) log.warn({ model: name, file: weightsFile }, "the model's weights file is gone: loading the model again");
      else if (this.loaded.get(name) === signature) continue;
      if (!initial && !weightsGone && this.settling.get(name) !== signature) {
        this.settling.set(name, signature);
        continue;
      }
      this.settling.delete(name);
      this.loaded.set(name, signature);
      changed = this.forget(name) || changed;
      const started = Date.now();
      try {
        const model = await loadModel(source, this.runtime, this.options);
        this.models.set(name, model);
        changed = true;
        log.info({ model: name, layers: model.layers.length, ms: Date.now() - started }, 'model loaded');
      } catch (e) {
        const message = (e as Error).message;
        this.errors.push({ file: path.relative(this.dir, file), model: name, message });
        changed = true;
        log.error({ file, err: message }, 'model failed to load');
      }
    }
    return changed;
  }

  /** Stops serving a model and drops its load error; true if there was either. */
  private forget(name: string): boolean {
    const file = this.models.get(name)?.graph.weightsFile;
    if (file) this.retired.set(file, Date.now());
    const had = this.models.delete(name);
    const before = this.errors.length;
    const kept = this.errors.filter((e) => e.model !== name);
    this.errors.splice(0, this.errors.length, ...kept);
    return had || kept.length !== before;
  }

  /**
   * Removes the weights files retired long enough ago, unless a served model uses them (the same
   * bytes loaded again): a model being replaced again and again would otherwise fill the disk.
   */
  private removeRetiredWeights(): void {
    const keep = this.options.retiredWeightsSeconds;
    if (keep === undefined) return;
    const served = new Set([...this.models.values()].map((m) => m.graph.weightsFile));
    for (const [file, since] of this.retired) {
      if (served.has(file)) this.retired.delete(file);
      else if (Date.now() - since >= keep * 1000) {
        fs.rmSync(file, { force: true });
        this.retired.delete(file);
        log.info({ file }, "a replaced or removed model's weights file removed");
      }
    }
  }
}

/** A model in the folder: its name, the file it is read from, and where its sidecar would be. */
interface ModelSource {
  name: string;
  /** An .onnx file, or a TF.js layers model's model.json. */
  file: string;
  sidecar: string;
  tfjs: boolean;
}

/** What changes when a model's files or its sidecar are written, replaced or removed (a TF.js model: every file of its folder). */
function signatureOf({ file, sidecar, tfjs }: ModelSource): string {
  const part = (p: string) => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    return st ? `${st.size}/${st.mtimeMs}/${st.ino}` : '-';
  };
  const folder = path.dirname(file);
  const files = tfjs
    ? fs
        .readdirSync(folder)
        .sort()
        .map((f) => path.join(folder, f))
    : [file];
  return [...files, sidecar].map(part).join('|');
}

function listModelSources(dir: string): ModelSource[] {
  if (!fs.existsSync(dir)) return [];
  const found: ModelSource[] = [];
  const onnx = (name: string, file: string) => found.push({ name, file, sidecar: file.replace(/\.onnx$/, '.json'), tfjs: false });
  // statSync follows symlinks: a model may be linked into the folder.
  const stat = (p: string) => fs.statSync(p, { throwIfNoEntry: false });
  for (const entry of fs.readdirSync(dir).sort()) {
    const full = path.join(dir, entry);
    if (entry.endsWith('.onnx') && stat(full)?.isFile()) {
      onnx(entry.slice(0, -5), full);
    } else if (entry.endsWith('.snapshots') && stat(full)?.isDirectory()) {
      const parent = entry.slice(0, -'.snapshots'.length);
      const sub = full;
      for (const f of fs.readdirSync(sub).sort()) {
        if (f.endsWith('.onnx')) onnx(`${parent}@${f.slice(0, -5)}`, path.join(sub, f));
      }
    } else if (stat(full)?.isDirectory() && stat(path.join(full, 'model.json'))) {
      // A TensorFlow.js layers model: the folder is the model, its sidecar beside it.
      found.push({ name: entry, file: path.join(full, 'model.json'), sidecar: `${full}.json`, tfjs: true });
    }
  }
  return found;
}

async function loadModel({ name, file, sidecar: sidecarFile, tfjs }: ModelSource, runtime: Runtime, options: ModelOptions): Promise<Model> {
  if (!NAME.test(name)) throw new Error(`"${name}" is not a usable model name (letters, digits, . _ @ - only)`);
  const sidecar = readSidecar(sidecarFile);
  const { proto, bytes, sha256 } = tfjs ? loadLayersModel(path.dirname(file), options.maxModelBytes, sidecar.input?.size) : readOnnxFile(file, options);
  let graph: OnnxGraph;
  try {
    graph = new OnnxGraph(proto);
  } catch (e) {
    throw new Error(`not a readable ONNX model: ${(e as Error).message}`);
  }
  const external = [...graph.initializers.values()].find((t) => t.dataLocation === 1 || t.externalData?.length);
  if (external) {
    throw new Error(
      `weight "${external.name}" is stored in an external data file; re-export with the weights inside the .onnx (onnx.save(model, path, save_as_external_data=False))`,
    );
  }
  const [, c, h, w] = graph.inputDims;
  const size = sidecar.input?.size;
  const inputShape = [c ?? (sidecar.input?.channels === 'GRAY' ? 1 : 3), h ?? size?.[0], w ?? size?.[1]];
  if (inputShape.some((d) => !d || d <= 0 || d > 8192)) {
    throw new Error(
      `input "${graph.inputName}" has no fixed size [C, H, W] (got [${graph.inputDims.slice(1)}]); give one in the sidecar: {"input": {"size": [H, W]}}`,
    );
  }
  const elements = (inputShape as number[]).reduce((a, b) => a * b, 1);
  if (elements > options.maxModelInputElements) {
    throw new Error(
      `input "${graph.inputName}" of [${inputShape}] has ${elements} values, over the limit of ${options.maxModelInputElements} (MAX_MODEL_INPUT_ELEMENTS)`,
    );
  }
  const preprocessing = resolvePreprocessing(sidecar, inputShape as number[]);
  const { shapes, maxBatch, forwardPerItem, batchFirst } = await probeShapes(graph, inputShape as number[], runtime);
  const rf = receptiveFields(graph, shapes);
  if (options.weightsDir) await graph.storeWeights(path.join(options.weightsDir, `${sha256}.weights`));
  if (options.shareWeights) graph.shareWeights(`${sha256}.weights`);
  // A layer's units are a grid per image (units.ts): tensors with the batch axis elsewhere
  // (inside attention) or of other ranks (ShuffleNet's [groups, C, H, W] shuffle) are not layers.
  const isLayer = (t: string) => (maxBatch === 1 || batchFirst.has(t)) && isUnitShape(shapes.get(t) ?? []);
  const layerNodes = graph.dataNodes().filter((node) => isLayer(node.proto.output[0]));
  const layers: Layer[] = layerNodes.map((node) => ({
    name: node.name,
    index: node.index,
    op: node.op,
    kind: layerKind(node.op),
    tensor: node.proto.output[0],
    outputShape: shapes.get(node.proto.output[0]) ?? [],
    units: seedShape(shapes.get(node.proto.output[0]) ?? []),
    receptiveField: rf.get(node.proto.output[0])!,
    node,
  }));
  const classes = [...shapes.entries()].find(([t]) => graph.outputNames.includes(t))?.[1]?.[0];
  const labels = sidecar.labels ?? (classes ? Array.from({ length: classes }, (_, i) => `class ${i}`) : []);
  return {
    name,
    file,
    sha256,
    bytes,
    graph,
    sidecar,
    preprocessing,
    labels,
    inputName: graph.inputName,
    inputShape: inputShape as number[],
    maxBatch,
    forwardPerItem,
    layers,
    layerByName: new Map(layers.map((l) => [l.name, l])),
    shapes,
    snapshotOf: sidecar.snapshotOf,
    epoch: sidecar.epoch,
  };
}

function readOnnxFile(file: string, limits: ModelLimits) {
  const stat = fs.statSync(file);
  // A FIFO or device named *.onnx would block the read forever.
  if (!stat.isFile()) throw new Error('not a regular file');
  if (stat.size > limits.maxModelBytes) {
    throw new Error(`the file is ${(stat.size / 2 ** 20).toFixed(0)} MB, over the limit of ${(limits.maxModelBytes / 2 ** 20).toFixed(0)} MB (MAX_MODEL_MB)`);
  }
  const bytes = fs.readFileSync(file);
  let proto;
  try {
    proto = decodeModel(bytes);
  } catch (e) {
    throw new Error(`not a readable ONNX model: ${(e as Error).message}`);
  }
  // Hostile or broken content (external data paths, absurd shapes, unbounded loops …): refused
  // before the graph analysis or onnxruntime sees it.
  try {
    checkModel(proto);
  } catch (e) {
    throw new Error(`not a usable ONNX model: ${(e as Error).message}`);
  }
  return { proto, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
}

function readSidecar(file: string): Sidecar {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat) return {};
  if (!stat.isFile() || stat.size > 16 * 2 ** 20) throw new Error(`sidecar ${path.basename(file)} is not a regular file of at most 16 MB`);
  let json: Sidecar;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`sidecar ${path.basename(file)} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`sidecar ${path.basename(file)} must be a JSON object`);
  if (json.labels !== undefined && (!Array.isArray(json.labels) || json.labels.some((l) => typeof l !== 'string'))) {
    throw new Error(`sidecar ${path.basename(file)}: "labels" must be an array of strings`);
  }
  return json;
}

function resolvePreprocessing(sidecar: Sidecar, [c, h, w]: number[]): Preprocessing {
  const input = sidecar.input ?? {};
  const channels = input.channels ?? (c === 1 ? 'GRAY' : 'RGB');
  if (!['RGB', 'BGR', 'GRAY'].includes(channels)) throw new Error(`sidecar: input.channels must be RGB, BGR or GRAY, got ${channels}`);
  if ((channels === 'GRAY') !== (c === 1)) throw new Error(`sidecar: input.channels ${channels} does not fit the model's ${c} input channels`);
  const perChannel = (v: number[] | undefined, fallback: number, what: string) => {
    const values = v ?? [fallback];
    if (!Array.isArray(values) || values.some((x) => typeof x !== 'number')) throw new Error(`sidecar: input.${what} must be an array of numbers`);
    if (values.length === 1) return Array(c).fill(values[0]);
    if (values.length !== c) throw new Error(`sidecar: input.${what} has ${values.length} values, the model has ${c} channels`);
    return values;
  };
  const std = perChannel(input.std, 1, 'std');
  if (std.some((s) => s === 0)) throw new Error('sidecar: input.std must not contain 0');
  const normalise = { height: h, width: w, channels, scale: input.scale ?? 1 / 255, mean: perChannel(input.mean, 0, 'mean'), std };
  return { ...normalise, ...resizing(input, h, w), colorProfile: oneOf(input.colorProfile ?? 'ignore', COLOR_PROFILES, 'colorProfile') };
}

const RESIZE_MODES: readonly ResizeMode[] = ['stretch', 'center-crop', 'letterbox'];
const COLOR_PROFILES: readonly ColorProfile[] = ['ignore', 'convert-to-srgb'];

function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (!allowed.includes(value as T)) throw new Error(`sidecar: input.${what} must be ${allowed.map((a) => `"${a}"`).join(', ')}; got ${JSON.stringify(value)}`);
  return value as T;
}

/** The sidecar's resize mode with only the settings it uses, so that keys (cache/keys.ts) hold nothing that changes no pixel. */
function resizing(input: NonNullable<Sidecar['input']>, h: number, w: number): Pick<Preprocessing, 'resize' | 'shorterSide' | 'pad'> {
  const resize = oneOf(input.resize ?? 'stretch', RESIZE_MODES, 'resize');
  const integer = (v: unknown, min: number, max: number, what: string) => {
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
      throw new Error(`sidecar: input.${what} must be an integer from ${min} to ${max}; got ${JSON.stringify(v)}`);
    return v as number;
  };
  if (input.shorterSide !== undefined && resize !== 'center-crop') throw new Error('sidecar: input.shorterSide is only used with "resize": "center-crop"');
  if (input.pad !== undefined && resize === 'stretch') throw new Error('sidecar: input.pad is only used with "resize": "center-crop" or "letterbox"');
  if (resize === 'stretch') return { resize };
  const pad = integer(input.pad ?? 0, 0, 255, 'pad');
  if (resize === 'letterbox') return { resize, pad };
  return { resize, shorterSide: integer(input.shorterSide ?? Math.min(h, w), 1, 8192, 'shorterSide'), pad };
}

/**
 * Runs the model once on zeros with every activation as an output: the runtime itself says
 * each tensor's shape. Batch 2 proves the graph runs batched; models with a hard-wired batch
 * of 1 (e.g. a Reshape to [1, -1]) are run one image at a time. The same run folds the values
 * the backward rules need as constants (Slice bounds, Gather indices … computed by shape
 * subgraphs for the model's fixed input size) and gives the shapes of the other tensors the
 * activations are combined with (a ViT's class token).
 */
async function probeShapes(graph: OnnxGraph, inputShape: number[], runtime: Runtime) {
  const activations = [...graph.dataPath].filter((t) => t !== graph.inputName);
  const parameters = [...new Set(graph.dataNodes().flatMap((n) => n.proto.input))].filter(
    (t) => t && !graph.dataPath.has(t) && !graph.isConstant(t) && graph.producer.has(t),
  );
  const tensors = [...activations, ...parameters];
  // A session of its own, outside the engine's (it is used once, and not for serving).
  const probe = compileShapeProbe(graph, tensors, parameters);
  // Not optimised: constant folding would turn the zeros back into weights held in memory.
  const session = await runtime.createSession(probe.model, { moveModel: true, optimize: false });
  const size = inputShape.reduce((a, b) => a * b, 1);
  let batch = 2;
  let out;
  try {
    try {
      out = await session.run({ [graph.inputName]: new runtime.Tensor('float32', new Float32Array(size * 2), [2, ...inputShape]) });
      if (graph.outputNames.some((o) => out![o] && out![o].dims[0] !== 2)) throw new Error('batch not preserved');
    } catch {
      batch = 1;
      out = await session.run({ [graph.inputName]: new runtime.Tensor('float32', new Float32Array(size), [1, ...inputShape]) });
    }
  } finally {
    await session.release();
  }
  const shapes = new Map<string, number[]>([[graph.inputName, inputShape]]);
  tensors.forEach((t, i) => shapes.set(t, out[probe.outputs[i]].dims.slice(1).map(Number)));
  for (const [i, t] of parameters.entries()) {
    const value = out[probe.outputs[activations.length + i]];
    if (value.type !== 'float32' && value.data.length <= 4096) graph.fold(t, Array.from(value.data as ArrayLike<number | bigint>, Number));
  }
  // Tensors whose first axis is not the batch (ViT's attention works on [tokens, batch, dim]).
  const batchFirst = new Set(activations.filter((t, i) => batch === 2 && out[probe.outputs[i]].dims[0] === 2));
  const movesBatch = activations.some((t) => !batchFirst.has(t)) || graph.dataNodes().some((n) => n.op === 'Transpose' && attrInts(n.proto, 'perm')?.[0] !== 0);
  return { shapes, maxBatch: batch === 1 ? 1 : Number.MAX_SAFE_INTEGER, forwardPerItem: batch === 2 && movesBatch, batchFirst };
}
