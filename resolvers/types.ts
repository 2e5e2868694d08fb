/**
 * The GraphQL object types. Each wraps a domain object of src/ and exposes its plain fields;
 * fields that take arguments or do work live in the resolvers beside this file.
 */
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { LayerKind, ReceptiveField } from '../src/onnx/ops';
import type { Layer, Model, ModelError, Preprocessing, Unit } from '../src/model';
import { filterCount } from '../src/service/lookup';
import { CacheFor, InheritMaxAge } from './cache-control';
import { Connection } from './connection';
import { NodeInterface, toGlobalId } from './node';

registerEnumType(LayerKind, { name: 'LayerKind', description: 'What a layer does, grouped over ONNX op types.' });

@InheritMaxAge()
@ObjectType('Preprocessing', {
  description:
    'How an image becomes the input tensor (the sidecar\'s "input"): x = ((pixel · scale) − mean) / std per channel, after bringing it to height × width as `resize` says.',
})
export class PreprocessingType {
  constructor(p: Preprocessing) {
    Object.assign(this, p);
  }
  @Field(() => Int) height!: number;
  @Field(() => Int) width!: number;
  @Field({ description: 'RGB, BGR or GRAY.' }) channels!: string;
  @Field(() => Float) scale!: number;
  @Field(() => [Float]) mean!: number[];
  @Field(() => [Float]) std!: number[];
  @Field({
    description:
      'stretch (to height × width), center-crop (the shorter side scaled to shorterSide, then the centre cut out) or letterbox (fitted inside, on bars of pad).',
  })
  resize!: string;
  @Field(() => Int, { nullable: true, description: 'center-crop: the length the shorter side is scaled to (torchvision: Resize(256) before CenterCrop(224)).' })
  shorterSide?: number;
  @Field(() => Int, { nullable: true, description: 'center-crop and letterbox: the 8-bit value of the input pixels the image does not cover.' })
  pad?: number;
  @Field({ description: 'ignore (an embedded ICC profile is not applied: the stored values, as PIL and TensorFlow read them) or convert-to-srgb.' })
  colorProfile!: string;
}

@InheritMaxAge()
@ObjectType('ReceptiveField', { description: 'The input pixels a unit of a layer sees (along the path from the input, without clipping).' })
export class ReceptiveFieldType {
  constructor(private readonly rf: ReceptiveField) {}
  @Field(() => Int, { description: 'Side of the square window, in input pixels (the larger side if not square).' })
  get size(): number {
    return Math.max(...this.rf.size);
  }
  @Field(() => Int, { description: 'Input pixels between neighbouring units.' })
  get stride(): number {
    return Math.max(...this.rf.stride);
  }
  @Field(() => Int, { description: 'Input coordinate of the first pixel seen by unit (0, 0); negative inside the padding.' })
  get offset(): number {
    return Math.min(...this.rf.offset);
  }
  @Field(() => [Int], { description: '[height, width] of the window.' })
  get sizeYX(): number[] {
    return this.rf.size;
  }
  @Field(() => [Int], { description: '[y, x] stride.' })
  get strideYX(): number[] {
    return this.rf.stride;
  }
  @Field(() => [Int], { description: '[y, x] offset.' })
  get offsetYX(): number[] {
    return this.rf.offset;
  }
  @Field({ description: 'True when every unit sees the whole image (dense layers, global pooling).' })
  get global(): boolean {
    return this.rf.global;
  }
}

@ObjectType('ModelError', { description: 'A file in the models folder that could not be loaded.' })
export class ModelErrorType {
  constructor(e: ModelError) {
    Object.assign(this, e);
  }
  @Field({ description: 'Path relative to the models folder.' }) file!: string;
  @Field() message!: string;
}

@CacheFor()
@ObjectType('Model', { implements: NodeInterface, description: 'A CNN loaded from an ONNX file or a TensorFlow.js layers model.' })
export class ModelType implements NodeInterface {
  static graphqlName = 'Model';
  constructor(readonly model: Model) {}
  @Field(() => ID) get id(): string {
    return toGlobalId('Model', this.model.name);
  }
  @Field({ description: 'File name without .onnx (a TensorFlow.js model: its folder name); snapshots are named <model>@<snapshot>.' }) get name(): string {
    return this.model.name;
  }
  @Field({ description: 'sha256 of the ONNX file (a TensorFlow.js model: of model.json and its weight files): results are keyed by it.' })
  get sha256(): string {
    return this.model.sha256;
  }
  @Field(() => String, { nullable: true }) get description(): string | undefined {
    return this.model.sidecar.description;
  }
  @Field(() => Int, { description: 'Size of the ONNX file (a TensorFlow.js model: of all its files) in bytes.' }) get fileBytes(): number {
    return this.model.bytes;
  }
  @Field(() => Int) get opset(): number {
    return this.model.graph.opset;
  }
  @Field(() => [Int], { description: '[C, H, W] of one input image.' }) get inputShape(): number[] {
    return this.model.inputShape;
  }
  @Field(() => PreprocessingType) get preprocessing(): PreprocessingType {
    return new PreprocessingType(this.model.preprocessing);
  }
  @Field(() => [String], { description: 'Class names, from the sidecar (or "class i").' }) get labels(): string[] {
    return this.model.labels;
  }
  @Field(() => Int, { nullable: true, description: 'Training epoch of a snapshot.' }) get epoch(): number | undefined {
    return this.model.epoch;
  }
}

@CacheFor()
@ObjectType('Layer', { implements: NodeInterface, description: 'One ONNX node on the path from the image: its output is an activation.' })
export class LayerType implements NodeInterface {
  static graphqlName = 'Layer';
  constructor(
    readonly model: Model,
    readonly layer: Layer,
  ) {}
  @Field(() => ID) get id(): string {
    return toGlobalId('Layer', this.model.name, this.layer.name);
  }
  @Field({ description: "The ONNX node's name (`<op>_<index>` when the file has none)." }) get name(): string {
    return this.layer.name;
  }
  @Field(() => Int, { description: 'Position in topological order.' }) get index(): number {
    return this.layer.index;
  }
  @Field({ description: 'ONNX op type.' }) get op(): string {
    return this.layer.op;
  }
  @Field(() => LayerKind) get kind(): LayerKind {
    return this.layer.kind;
  }
  @Field(() => [Int], {
    description:
      'Per image: [C, H, W]; [T, D] for token layers (a ViT: D channels over T token positions, a unit at { y: token, x: 0 }); [F] for dense outputs.',
  })
  get outputShape(): number[] {
    return this.layer.outputShape;
  }
  @Field(() => ReceptiveFieldType) get receptiveField(): ReceptiveFieldType {
    return new ReceptiveFieldType(this.layer.receptiveField);
  }
  @Field(() => Int, { description: 'Channels (or dense units): the number of filters.' }) get filterCount(): number {
    return filterCount(this.layer);
  }
}

@CacheFor()
@ObjectType('Filter', { implements: NodeInterface, description: 'One output channel of a layer (or one unit of a dense layer).' })
export class FilterType implements NodeInterface, Unit {
  static graphqlName = 'Filter';
  readonly model: Model;
  readonly layer: Layer;
  readonly index: number;
  constructor({ model, layer, index }: Unit) {
    this.model = model;
    this.layer = layer;
    this.index = index;
  }
  @Field(() => ID) get id(): string {
    return toGlobalId('Filter', this.model.name, this.layer.name, this.index);
  }
  @Field(() => Int, { name: 'index' }) get channel(): number {
    return this.index;
  }
}

@InheritMaxAge()
@ObjectType('FilterWeights', { description: "A filter's weights: statistics and, for kernels that see the image, a picture." })
export class FilterWeightsType {
  @Field(() => [Int], { description: '[C/groups, kh, kw] for convs, [inputs] for dense units.' }) shape!: number[];
  @Field(() => Float) min!: number;
  @Field(() => Float) max!: number;
  @Field(() => Float) mean!: number;
  @Field(() => Float, { description: 'Euclidean norm.' }) l2!: number;
  @Field(() => String, {
    nullable: true,
    description: 'PNG of the kernel (RGB or grey, 0 at mid-grey, scaled by the layer’s largest |w|), for convs that read the image.',
  })
  imageUrl!: string | null;
}

export const ModelConnection = Connection(ModelType, 'Model');
export const LayerConnection = Connection(LayerType, 'Layer');
export const FilterConnection = Connection(FilterType, 'Filter');
