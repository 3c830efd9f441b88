/**
 * Adam and SGD in TensorFlow.js ops with PyTorch's exact formulas (as libtorch's C++ optimizers
 * write them), so the tfjs and libtorch engines take the same steps:
 *
 *   Adam: g += wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
 *         p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   SGD:  g += wd*p; buf = momentum*buf + g (first step: buf = g, the same as buf = 0 before);
 *         p -= lr * (nesterov ? g + momentum*buf : buf)
 *
 * State lives in tf variables beside the weights and reads/writes as `OptimizerState`.
 */
import type { Tensor, Variable } from '@tensorflow/tfjs';
import { InvalidWeightsError, UsageError } from '../../errors.ts';
import { shapeToString, sizeOf } from '../../ir/shapes.ts';
import type { Weights } from '../../ir/types.ts';
import type { OptimizerConfig, OptimizerState } from '../engine.ts';
import * as tf from '@tensorflow/tfjs';
import * as wasmKernels from './wasm/kernels.ts';

export interface TrainableParam { name: string; variable: Variable }

type Resolved =
  | { kind: 'adam'; lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number }
  | { kind: 'sgd'; lr: number; momentum: number; nesterov: boolean; weightDecay: number };

function check(ok: boolean, field: string, v: unknown, want: string): void {
  if (!ok) throw new UsageError(`optimizer: ${field} must be ${want}, got ${JSON.stringify(v)}`);
}

export function checkLearningRate(lr: number): void {
  check(Number.isFinite(lr) && lr >= 0, 'lr', lr, 'a finite number >= 0');
}

function resolve(c: OptimizerConfig): Resolved {
  checkLearningRate(c.lr);
  const weightDecay = c.weightDecay ?? 0;
  check(Number.isFinite(weightDecay) && weightDecay >= 0, 'weightDecay', c.weightDecay, 'a finite number >= 0');
  if (c.kind === 'adam') {
    const r = { kind: 'adam' as const, lr: c.lr, beta1: c.beta1 ?? 0.9, beta2: c.beta2 ?? 0.999, epsilon: c.epsilon ?? 1e-8, weightDecay };
    check(r.beta1 >= 0 && r.beta1 < 1, 'beta1', c.beta1, 'in [0, 1)');
    check(r.beta2 >= 0 && r.beta2 < 1, 'beta2', c.beta2, 'in [0, 1)');
    check(r.epsilon > 0, 'epsilon', c.epsilon, '> 0');
    return r;
  }
  if (c.kind === 'sgd') {
    const r = { kind: 'sgd' as const, lr: c.lr, momentum: c.momentum ?? 0, nesterov: c.nesterov ?? false, weightDecay };
    check(Number.isFinite(r.momentum) && r.momentum >= 0, 'momentum', c.momentum, 'a finite number >= 0');
    check(!r.nesterov || r.momentum > 0, 'nesterov', c.nesterov, 'false unless momentum > 0 (as in PyTorch)');
    return r;
  }
  throw new UsageError(`optimizer: unknown kind ${JSON.stringify((c as { kind: unknown }).kind)}; use 'adam' or 'sgd'`);
}

function slotNames(c: Resolved): string[] {
  if (c.kind === 'adam') return ['m', 'v'];
  return c.momentum > 0 ? ['momentum'] : [];
}

/**
 * The optimizer works on all trainable weights at once, concatenated into one flat vector (slots
 * are flat too): a dozen large ops per step instead of a dozen small ones per weight, which on
 * wasm is dominated by per-op overhead (Adam ~4x faster on ResNetCifar-18). On wasm with r2r's
 * kernels, Adam is one pass over the weights on tfjs's heap (wasm/kernels.ts, the same float32
 * operations in the same order, so the same bits), without the concatenation and split: 2.9 ms instead of
 * 19-26 ms per step for the 818,241 weights of the 4/4/128 GPT (busy machine).
 */
export class TfjsOptimizer {
  private config: Resolved;
  private step: number;
  private readonly sizes: number[];
  private readonly offsets: number[];
  private readonly total: number;
  /** slot -> flat variable over all trainable weights, in `params` order. */
  private slots = new Map<string, Variable>();

  constructor(config: OptimizerConfig, private readonly params: TrainableParam[], state?: OptimizerState) {
    this.config = resolve(config);
    this.sizes = params.map((p) => p.variable.size);
    this.offsets = [];
    let off = 0;
    for (const n of this.sizes) { this.offsets.push(off); off += n; }
    this.total = off;
    this.step = 0;
    if (state) this.checkState(state);
    for (const slot of slotNames(this.config)) {
      const flat = new Float32Array(this.total);
      const given = state?.slots[slot];
      if (given) params.forEach((p, i) => flat.set(given[p.name].data, this.offsets[i]));
      this.slots.set(slot, tf.tidy(() => tf.variable(tf.tensor1d(flat), false)));
    }
    if (state) this.step = state.step;
  }

  private checkState(s: OptimizerState): void {
    if (s.kind !== this.config.kind) throw new UsageError(`optimizer: state is for '${s.kind}' but the optimizer is '${this.config.kind}'; start without state or use the same kind`);
    if (!Number.isInteger(s.step) || s.step < 0) throw new InvalidWeightsError(`optimizer state: step must be an integer >= 0, got ${JSON.stringify(s.step)}`);
    for (const slot of slotNames(this.config)) {
      const w = s.slots?.[slot];
      // SGD state written with momentum 0 has no buffer; a zero buffer is what PyTorch starts from.
      if (!w && s.step === 0) continue;
      if (!w) throw new InvalidWeightsError(`optimizer state: slot '${slot}' is missing (step ${s.step})`);
      for (const p of this.params) {
        const t = w[p.name];
        if (!t) throw new InvalidWeightsError(`optimizer state: slot '${slot}' has no tensor for weight '${p.name}'`);
        if (shapeToString(t.shape) !== shapeToString(p.variable.shape) || t.data.length !== sizeOf(p.variable.shape)) {
          throw new InvalidWeightsError(`optimizer state: slot '${slot}' tensor '${p.name}' has shape ${shapeToString(t.shape)} (${t.data.length} values), weight needs ${shapeToString(p.variable.shape)}`);
        }
      }
      for (const k of Object.keys(w)) {
        if (!this.params.some((p) => p.name === k)) throw new InvalidWeightsError(`optimizer state: slot '${slot}' tensor '${k}' belongs to no trainable weight`);
      }
    }
  }

  setLearningRate(lr: number): void {
    checkLearningRate(lr);
    this.config.lr = lr;
  }

  /** One update from `grads` (weight name -> gradient). */
  apply(grads: Map<string, Tensor>): void {
    if (this.params.length === 0) return;
    this.step += 1;
    const c = this.config;
    if (c.kind === 'adam' && wasmKernels.wasmKernelsActive()) {
      // On wasm: the same float32 operations in one pass over every weight, no concat or split.
      const bc1 = 1 - Math.pow(c.beta1, this.step), bc2 = 1 - Math.pow(c.beta2, this.step);
      const mv = this.slots.get('m')!, vv = this.slots.get('v')!;
      tf.tidy(() => {
        const r = wasmKernels.adamStep(this.params.map((q) => q.variable), this.params.map((q) => grads.get(q.name)!), mv, vv, { ...c, bc1, bc2 });
        mv.assign(r.m);
        vv.assign(r.v);
        this.params.forEach((q, i) => q.variable.assign(r.params[i]));
      });
      return;
    }
    tf.tidy(() => {
      const p = tf.concat(this.params.map((q) => tf.reshape(q.variable, [-1])));
      let g = tf.concat(this.params.map((q) => tf.reshape(grads.get(q.name)!, [-1])));
      if (c.weightDecay !== 0) g = tf.add(g, tf.mul(p, c.weightDecay));
      let next: Tensor;
      if (c.kind === 'adam') {
        const bc1 = 1 - Math.pow(c.beta1, this.step), bc2 = 1 - Math.pow(c.beta2, this.step);
        const mv = this.slots.get('m')!, vv = this.slots.get('v')!;
        const m = tf.add(tf.mul(mv, c.beta1), tf.mul(g, 1 - c.beta1));
        const v = tf.add(tf.mul(vv, c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), c.epsilon);
        next = tf.sub(p, tf.mul(tf.div(m, denom), c.lr / bc1));
        mv.assign(m);
        vv.assign(v);
      } else {
        let update = g;
        const bv = this.slots.get('momentum');
        if (bv) {
          const buf = tf.add(tf.mul(bv, c.momentum), g);
          bv.assign(buf);
          update = c.nesterov ? tf.add(g, tf.mul(buf, c.momentum)) : buf;
        }
        next = tf.sub(p, tf.mul(update, c.lr));
      }
      // Split on the JS side: wasm's Slice/SplitV took ~400 ms for the 818k weights of the
      // issue-9 GPT (busy machine), a read back and fresh tensors ~2 ms; same values.
      const flat = next.dataSync() as Float32Array;
      this.params.forEach((q, i) => q.variable.assign(tf.tensor(flat.subarray(this.offsets[i], this.offsets[i] + this.sizes[i]), q.variable.shape)));
    });
  }

  getState(): OptimizerState {
    const slots: Record<string, Weights> = {};
    for (const [slot, v] of this.slots) {
      const flat = v.dataSync() as Float32Array;
      const w: Weights = {};
      this.params.forEach((q, i) => {
        w[q.name] = { shape: [...q.variable.shape], data: flat.slice(this.offsets[i], this.offsets[i] + this.sizes[i]) };
      });
      slots[slot] = w;
    }
    return { kind: this.config.kind, step: this.step, slots };
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}
