/**
 * The top-down rules of the deconvnet (docs/architecture.md), one entry per ONNX op: given the
 * signal `g` arriving at a node's output, the signals sent to its data inputs. Only the ReLU
 * family differs between methods; everything else is the exact gradient (no biases going down).
 * The rules live by family: element-wise, window ops, normalisations, linear, shapes.
 */
import { attrInt, GraphNode } from '../onnx/graph';
import { ELEMENTWISE_RULES, POINTWISE_OPS } from './elementwise-rules';
import { LINEAR_RULES } from './linear-rules';
import { NORM_RULES } from './norm-rules';
import { Regions, RegionSignal } from './regions';
import { Rule, RuleContext, UnsupportedOpError } from './rule-context';
import { SHAPE_RULES } from './shape-rules';
import { unpoolRegion } from './unpool';
import { convRegion, WINDOW_RULES } from './window-rules';

export { UnsupportedOpError } from './rule-context';
export type { LrnMode, Method, Rule, RuleContext, Signals, Unpool } from './rule-context';

const RULES: Record<string, Rule> = { ...ELEMENTWISE_RULES, ...WINDOW_RULES, ...NORM_RULES, ...LINEAR_RULES, ...SHAPE_RULES };

/** The rule for a region signal (regions.ts) through `node`: rows [input, its region signal]. */
export type RegionRule = (ctx: RuleContext, node: GraphNode, g: RegionSignal, regions: Regions) => [string, RegionSignal][];

/** Ops that pass signals position by position: their rules run unchanged on a region. */
const POINTWISE = new Set([...POINTWISE_OPS, 'BatchNormalization', 'LRN']);

const pointwiseRegion: RegionRule = (ctx, node, g, regions) => {
  const local: RuleContext = { ...ctx, perItem: (t, like) => regions.gather(t, ctx.shape(like ?? t), g.region) };
  return ruleFor(node)(local, node, g.tensor).map(([input, t]) => [input, { tensor: t, region: g.region }]);
};

/** Add and Sum of activations of the same shape (no broadcasting) pass a region as it is. */
function sameShapeSum(ctx: RuleContext, node: GraphNode): boolean {
  const out = ctx.shape(node.proto.output[0]).join();
  return (node.op === 'Add' || node.op === 'Sum') && node.proto.input.every((i) => !ctx.isData(i) || ctx.shape(i).join() === out);
}

/** How `node` passes a region signal down, or undefined where it needs the whole map. */
export function regionRuleFor(ctx: RuleContext, node: GraphNode): RegionRule | undefined {
  if (node.op === 'Conv') return convRegion;
  if (node.op === 'MaxPool') return unpoolRegion;
  const channelConcat = node.op === 'Concat' && [1, -3].includes(attrInt(node.proto, 'axis', 1)) && node.proto.input.every((i) => ctx.isData(i));
  return POINTWISE.has(node.op) || channelConcat || sameShapeSum(ctx, node) ? pointwiseRegion : undefined;
}

export function ruleFor(node: GraphNode): Rule {
  const rule = RULES[node.op];
  if (!rule || (node.proto.domain && node.proto.domain !== 'ai.onnx')) {
    throw new UnsupportedOpError(node, `is on the path to the target, and convscope cannot run ${node.op} backwards`);
  }
  return rule;
}
