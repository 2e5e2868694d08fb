/**
 * What a loaded model is (registry/models.ts loads them): its graph, layers, preprocessing and
 * sidecar. Types only, so that every layer can name them without importing the loader.
 */
import type { GraphNode, OnnxGraph } from './onnx/graph';
import type { LayerKind, ReceptiveField } from './onnx/ops';

export type ChannelOrder = 'RGB' | 'BGR' | 'GRAY';

/**
 * How an image is brought to the input size (images/placement.ts): `stretch` scales it to
 * exactly height × width; `center-crop` scales its shorter side to `shorterSide` and cuts the
 * centre (torchvision's Resize then CenterCrop); `letterbox` fits it inside, keeping its aspect
 * ratio, on bars of `pad`.
 */
export type ResizeMode = 'stretch' | 'center-crop' | 'letterbox';

/** An embedded ICC profile is ignored (the stored values, as PIL and TensorFlow read them) or converts the pixels to sRGB. */
export type ColorProfile = 'ignore' | 'convert-to-srgb';

/** x = ((pixel · scale) − mean) / std per channel, after resizing to [height, width]. */
export interface Preprocessing {
  height: number;
  width: number;
  channels: ChannelOrder;
  scale: number;
  mean: number[];
  std: number[];
  resize: ResizeMode;
  /** center-crop: the length the shorter side is scaled to before the centre height × width is cut. */
  shorterSide?: number;
  /** center-crop and letterbox: the 8-bit value of the input pixels the image does not cover. */
  pad?: number;
  colorProfile: ColorProfile;
}

export interface Sidecar {
  description?: string;
  input?: {
    size?: [number, number];
    channels?: ChannelOrder;
    scale?: number;
    mean?: number[];
    std?: number[];
    resize?: ResizeMode;
    shorterSide?: number;
    pad?: number;
    colorProfile?: ColorProfile;
  };
  labels?: string[];
  snapshotOf?: string;
  epoch?: number;
  accuracy?: Record<string, number>;
  /** Datasets to index at start-up (top-9 of every Conv and Relu). */
  autoIndex?: string[];
}

export interface Layer {
  name: string;
  index: number;
  op: string;
  kind: LayerKind;
  /** The activation tensor this layer outputs. */
  tensor: string;
  /** Per image: [C, H, W], [T, D] for token layers, or [F] for dense outputs. */
  outputShape: number[];
  /** Its units as [channels, height, width] (compiler/units.ts: tokens [T, D] are D channels over T positions, dense [F] is [F, 1, 1]). */
  units: [number, number, number];
  receptiveField: ReceptiveField;
  node: GraphNode;
}

export interface Model {
  name: string;
  file: string;
  sha256: string;
  bytes: number;
  graph: OnnxGraph;
  sidecar: Sidecar;
  preprocessing: Preprocessing;
  labels: string[];
  inputName: string;
  /** [C, H, W] */
  inputShape: number[];
  maxBatch: number;
  /** The forward pass of projections runs per item: the model moves the batch axis (see compiler/rule-context.ts). */
  forwardPerItem: boolean;
  layers: Layer[];
  layerByName: Map<string, Layer>;
  /** Per-image shape of every activation tensor. */
  shapes: Map<string, number[]>;
  snapshotOf?: string;
  epoch?: number;
}

export interface ModelError {
  file: string;
  /** The name it would be served under. */
  model: string;
  message: string;
}

/** One filter of a layer: a channel of its feature maps, a dense unit, or a channel of its tokens. */
export interface Unit {
  model: Model;
  layer: Layer;
  /** The channel. */
  index: number;
}
