/**
 * What every transform returns, and the tensor maps that let any per-parameter state (Adam's
 * moments, SGD momentum) follow the weights through the transform.
 */
import type { Graph, Weights } from '../ir/types.ts';

/**
 * How one axis of a new tensor reads the old tensor's axis: new index i comes from old index
 * `source[i]`, times `scale[i]` (default 1); `source[i] = -1` marks a new entry (no old value).
 */
export interface AxisMap {
  axis: number;
  source: Int32Array;
  scale?: Float32Array;
  /**
   * How the gradient of entry i compares with its source's gradient in the teacher, at the point
   * the transform makes (default: `scale`, the weight's own factor, for maps that do not say).
   * Optimizer state follows it so that every entry takes the step its source would take: Adam's
   * step m/sqrt(v) does not change when m scales by g and v by g^2 (see optimizer_state.ts).
   * E.g. duplicating a channel halves the gradient of each copy's producer columns (g = 1/2)
   * while a consumer row halved to W/2 keeps its full gradient (g = 1, scale = 1/2).
   */
  gradScale?: Float32Array;
}

/**
 * Provenance of one tensor of the student.
 * - `same`: unchanged copy of the teacher's tensor `from`.
 * - `new`: no counterpart (a new layer's parameter): state starts at zero.
 * - `gather`: built from the teacher's tensor `from` along `axes` (other axes unchanged; sizes may
 *   grow where `source` has -1 entries, which start at zero in carried-over state).
 */
export type TensorMap =
  | { kind: 'same'; from: string }
  | { kind: 'new' }
  | { kind: 'gather'; from: string; axes: AxisMap[] };

export interface TransformChange {
  /** Node affected. */
  node: string;
  /** What happened, e.g. 'out channels 16 -> 24', 'inserted', 'kernel 3x3 -> 5x5'. */
  what: string;
}

export interface TransformReport {
  transform: 'widen' | 'deepen' | 'kernel' | 'mlp' | 'heads' | 'width';
  method: string;
  /**
   * Whether the method is function-preserving in inference / training mode (SPEC). Training mode
   * means batch statistics with dropout off: dropout masks are random per channel, so with dropout
   * active no widening that adds paired or copied channels is exact per batch (the notes say where).
   */
  exact: { inference: boolean; training: boolean };
  changes: TransformChange[];
  /** Tensors (`<node>/<param>`) whose shape or values changed, or that are new. */
  tensorsChanged: string[];
  paramsBefore: number;
  paramsAfter: number;
  /** Free-form notes, e.g. which groups were widened. */
  notes: string[];
}

export interface TransformResult {
  graph: Graph;
  weights: Weights;
  report: TransformReport;
  /** Provenance of every tensor of the student, keyed `<node>/<param>`. */
  tensorMaps: Record<string, TensorMap>;
}
