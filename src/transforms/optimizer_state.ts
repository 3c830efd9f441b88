/**
 * Carrying optimizer state (Adam's moments, SGD momentum) through a transform, generically over
 * the result's tensor maps:
 * - `same`: the slot is copied;
 * - `new`: the slot starts at zero;
 * - `gather`: gathered along the mapped axes, new entries (-1) zero. An entry whose gradient
 *   scales by g (the map's `gradScale`; maps without one use the weight's `scale`, e.g. Net2Net's
 *   1/n_c) scales first moments and momentum by g and Adam's second moment `v` by g², since v
 *   averages squared gradients; Adam's next step m/sqrt(v) is then the source's step.
 * The step count is kept, so Adam's bias correction continues where it was.
 */
import { TransformError } from '../errors.ts';
import type { OptimizerState } from '../engines/engine.ts';
import { paramSpecs } from '../ir/graph.ts';
import { shapeToString, sizeOf } from '../ir/shapes.ts';
import type { Tensor, Weights } from '../ir/types.ts';
import type { AxisMap, TensorMap, TransformResult } from './types.ts';

/** Power of the weight scale each known slot scales with. */
const SLOT_POWER: Record<string, number> = { m: 1, momentum: 1, v: 2 };

export function mapOptimizerState(state: OptimizerState, result: TransformResult): OptimizerState {
  const specs = paramSpecs(result.graph);
  const slots: Record<string, Weights> = {};
  for (const [slot, old] of Object.entries(state.slots)) {
    const power = SLOT_POWER[slot];
    if (power === undefined) throw new TransformError(`optimizer state: unknown slot '${slot}' (known: ${Object.keys(SLOT_POWER).join(', ')}); cannot tell how it scales with the weights`);
    const out: Weights = {};
    for (const [key, spec] of specs) {
      if (!spec.trainable) continue;
      const map: TensorMap | undefined = result.tensorMaps[key];
      if (!map) throw new TransformError(`optimizer state: the transform gives no tensor map for '${key}'`);
      out[key] = mapSlot(key, spec.shape, map, old, power, slot);
    }
    slots[slot] = out;
  }
  return { kind: state.kind, step: state.step, slots };
}

function mapSlot(key: string, shape: number[], map: TensorMap, old: Weights, power: number, slot: string): Tensor {
  if (map.kind === 'new') return { shape: [...shape], data: new Float32Array(sizeOf(shape)) };
  const src = old[map.from];
  if (!src) throw new TransformError(`optimizer state: slot '${slot}' has no entry for '${map.from}', which '${key}' comes from; was the state saved for this network?`);
  if (map.kind === 'same') {
    if (shapeToString(src.shape) !== shapeToString(shape)) throw new TransformError(`optimizer state: slot '${slot}/${map.from}' has shape ${shapeToString(src.shape)}, '${key}' needs ${shapeToString(shape)}`);
    return { shape: [...shape], data: new Float32Array(src.data) };
  }
  return { shape: [...shape], data: gather(src, shape, map.axes, power) };
}

/** out[i] = src[source(i)] * prod(scale)^power over the mapped axes; 0 where any axis is new. */
export function gather(src: Tensor, shape: number[], axes: AxisMap[], power = 1): Float32Array {
  const rank = shape.length;
  if (src.shape.length !== rank) throw new TransformError(`optimizer state: rank ${src.shape.length} vs ${rank} in a gather`);
  const srcIdx: Int32Array[] = [], scales: Float64Array[] = [];
  for (let a = 0; a < rank; a++) {
    const m = axes.find((x) => x.axis === a);
    if (m && m.source.length !== shape[a]) throw new TransformError(`optimizer state: axis map ${a} has ${m.source.length} entries, the tensor has ${shape[a]}`);
    if (!m && shape[a] !== src.shape[a]) throw new TransformError(`optimizer state: axis ${a} grows from ${src.shape[a]} to ${shape[a]} without an axis map`);
    srcIdx.push(m ? m.source : Int32Array.from({ length: shape[a] }, (_, i) => i));
    const g = m?.gradScale ?? m?.scale;
    scales.push(Float64Array.from({ length: shape[a] }, (_, i) => (g ? g[i] ** power : 1)));
  }
  const strides = new Array<number>(rank).fill(1);
  for (let a = rank - 2; a >= 0; a--) strides[a] = strides[a + 1] * src.shape[a + 1];
  const out = new Float32Array(sizeOf(shape));
  let o = 0;
  const walk = (a: number, offset: number, s: number): void => {
    if (a === rank) { out[o++] = offset < 0 ? 0 : src.data[offset] * s; return; }
    for (let i = 0; i < shape[a]; i++) {
      const j = srcIdx[a][i];
      walk(a + 1, offset < 0 || j < 0 ? -1 : offset + j * strides[a], s * scales[a][i]);
    }
  };
  walk(0, 0, 1);
  return out;
}
