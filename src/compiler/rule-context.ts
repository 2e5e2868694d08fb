/**
 * What every top-down rule (rules.ts) is given and returns: the graph being built, the method,
 * and per-item views of the forward tensors.
 */
import { GraphNode } from '../onnx/graph';
import type { LrnMode, Method } from '../vocabulary';
import { GraphBuilder } from './builder';

export type { LrnMode, Method };
/**
 * How max-pools unpool: through the forward MaxPool's Indices with one scatter-add (opset ≥ 16)
 * or with scatters in groups of disjoint windows (opset ≥ 11), else by recomputed switches.
 */
export type Unpool = 'SCATTER_ADD' | 'SCATTER_GROUPS' | 'TAPS';

export interface RuleContext {
  b: GraphBuilder;
  method: Method;
  lrn: LrnMode;
  unpool: Unpool;
  /**
   * Whether the forward pass runs once per item (on each item's image) rather than once per
   * image of the batch: needed where a model moves the batch axis (ViT's attention works on
   * [tokens, batch, dim]). Then perItem() is the tensor itself and signals have the forward
   * tensors' layout, batch axis wherever the model put it.
   */
  forwardPerItem: boolean;
  /** Per-image shape of an activation (the probe's dims without the first). */
  shape(tensor: string): number[];
  /**
   * A forward tensor, gathered so that row n belongs to item n of the batch; `like`: for a tensor
   * computed from forward values, a forward tensor of its shape.
   */
  perItem(tensor: string, like?: string): string;
  /** Flat indices into the images of the batch (MaxPool's Indices), gathered per item and made relative to the item's image of `size` elements. */
  perItemIndices(indices: string, size: number): string;
  /** True for activations (tensors computed from the image). */
  isData(tensor: string): boolean;
  /** True when `tensor` is computed from `source` alone (no other path to the image). */
  dependsOnlyOn(tensor: string, source: string): boolean;
  /** True when `tensor` is computed from `source` through a node of type `op`. */
  reachesThrough(tensor: string, source: string, op: string): boolean;
  /** The value of a tensor that does not depend on the image (weights, shapes folded at load), or undefined. */
  value(tensor: string): number[] | undefined;
}

/** [input tensor, its signal] pairs. */
export type Signals = [string, string][];
/** `g`: the signal at the node's first output; `outputs`: the signals at each output (Split has several). */
export type Rule = (ctx: RuleContext, node: GraphNode, g: string, outputs?: (string | undefined)[]) => Signals;

export class UnsupportedOpError extends Error {
  constructor(
    readonly node: GraphNode,
    reason: string,
  ) {
    super(`${node.op} node "${node.name}" ${reason}`);
  }
}

/** A node's data input (its first). */
export const dataInput = (node: GraphNode): string => node.proto.input[0];

export const identity: Rule = (ctx, node, g) => [[dataInput(node), g]];

/** Slice's "to the end". */
export const LAST = 2 ** 31 - 1;

/** The signal's per-item shape as a shape for Reshape: static, or the forward tensor's own at run time. */
export function shapeOf(ctx: RuleContext, tensor: string): string {
  return ctx.forwardPerItem ? ctx.b.op('Shape', [tensor]) : ctx.b.ints([-1, ...ctx.shape(tensor)]);
}

/** An axis attribute made non-negative for a tensor of `rank` (batch included). */
export function normalAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
