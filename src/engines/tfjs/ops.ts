/**
 * The graph's layers as TensorFlow.js ops, with the IR's conventions: explicit window pads from
 * `resolveWindow`, max pooling padded with -inf, average pooling that counts only real cells,
 * batch norm with a per-channel custom gradient, exact (erf) gelu, stable cross-entropy. Also the
 * gradients that replace tfjs's own where those are missing, slow or wrong (Conv2D, MaxPool).
 */
import type { Tensor, Tensor4D } from '@tensorflow/tfjs';
import { UnsupportedLayerError } from '../../errors.ts';
import type { Window2d } from '../../ir/shapes.ts';
import type { ActivationFn } from '../../ir/types.ts';
import * as tf from '@tensorflow/tfjs';
import * as wasmKernels from './wasm/kernels.ts';

type Pads4 = [[number, number], [number, number], [number, number], [number, number]];

function explicitPads(win: Window2d): Pads4 {
  return [[0, 0], [win.top, win.bottom], [win.left, win.right], [0, 0]];
}
function noPads(win: Window2d): boolean {
  return win.top === 0 && win.bottom === 0 && win.left === 0 && win.right === 0;
}

/** 2-D convolution, NHWC, kernel `[kh, kw, cin, cout]`, with the window's explicit pads. */
export function conv2d(x: Tensor4D, kernel: Tensor4D, strides: [number, number], win: Window2d): Tensor4D {
  return tf.conv2d(x, kernel, strides, noPads(win) ? 'valid' : explicitPads(win));
}

let conv2dGradInstalled = false;
/** The gradient tfjs ships (conv2DBackpropInput / conv2DBackpropFilter kernels), kept for tests. */
export let stockConv2dGradient: ReturnType<typeof tf.getGradient> | undefined;

/**
 * Replaces the Conv2D gradient on every backend: wasm has no Conv2DBackpropFilter kernel (stock
 * training of conv nets fails there) and its Conv2DBackpropInput is a slow scalar loop, while its
 * Conv2D is XNNPACK; the cpu backend's Conv2DBackpropFilter indexes through TensorBuffer.get and
 * is ~10x slower than its Conv2D. Both gradients become forward convolutions. Dilated or NCHW
 * convs (not in the IR) keep the stock gradient. Gradients stay lazy per input, so the first
 * layer never computes dL/d(image).
 */
export function installConv2dGradient(): void {
  if (conv2dGradInstalled) return;
  const stock = tf.getGradient('Conv2D');
  stockConv2dGradient = stock;
  tf.registerGradient({
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [Tensor4D, Tensor4D];
      const a = attrs as unknown as { strides: number | [number, number]; pad: Parameters<typeof tf.conv2d>[3]; dilations?: number | [number, number]; dataFormat?: string; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
      const dil = a.dilations ?? 1;
      const plain = (typeof dil === 'number' ? dil === 1 : dil.every((d) => d === 1)) && (a.dataFormat ?? 'NHWC') === 'NHWC';
      if (!plain) return stock.gradFunc(dy, saved, attrs);
      const info = tf.backend_util.computeConv2DInfo(x.shape, filter.shape, a.strides, 1, a.pad, a.dimRoundingMode);
      const strides: [number, number] = [info.strideHeight, info.strideWidth];
      const p = info.padInfo;
      const win: Window2d = { outH: info.outHeight, outW: info.outWidth, top: p.top, bottom: p.bottom, left: p.left, right: p.right };
      const dy4 = dy as Tensor4D;
      return {
        x: () => conv2dInputGrad(dy4, filter, x.shape, strides, win),
        filter: () => conv2dFilterGrad(x, dy4, filter.shape, strides, win),
      };
    },
  });
  conv2dGradInstalled = true;
}

/**
 * dL/dx as a forward convolution (wasm's Conv2DBackpropInput is a slow scalar loop; its Conv2D
 * is XNNPACK): dx[i] = sum_j dyd[i + top - (kh-1) + j] * K[kh-1-j], where dyd is dy with
 * (stride - 1) zeros between entries. So: dilate dy, pad it by kh-1-top before and whatever
 * fills the input size after (crop where negative), and run a stride-1 'valid' conv with the
 * kernel flipped spatially and its in/out channels swapped.
 */
export function conv2dInputGrad(dy: Tensor4D, kernel: Tensor4D, xShape: [number, number, number, number], strides: [number, number], win: Window2d): Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, cin] = xShape;
    const [kh, kw] = kernel.shape;
    const [, oh, ow, cout] = dy.shape;
    const [sh, sw] = strides;
    let d: Tensor4D = dy;
    const before = [kh - 1 - win.top, kw - 1 - win.left];
    if (sh > 1 || sw > 1) {
      // Interleave zeros: [N, OH, 1, OW, 1, C] padded to [N, OH, sh, OW, sw, C]. The s-1 zeros
      // go before each entry where the leading pad can absorb them (no crop needed), else after.
      const zb = [before[0] >= sh - 1 ? sh - 1 : 0, before[1] >= sw - 1 ? sw - 1 : 0];
      const z = tf.pad(tf.reshape(dy, [n, oh, 1, ow, 1, cout]), [[0, 0], [0, 0], [zb[0], sh - 1 - zb[0]], [0, 0], [zb[1], sw - 1 - zb[1]], [0, 0]]);
      d = tf.reshape(z, [n, oh * sh, ow * sw, cout]);
      before[0] -= zb[0];
      before[1] -= zb[1];
    }
    const after = [h + kh - 1 - before[0] - d.shape[1], w + kw - 1 - before[1] - d.shape[2]];
    d = padOrCrop(d, before, after) as Tensor4D;
    const kt = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2]) as Tensor4D;
    const dx = tf.conv2d(d, kt, [1, 1], 'valid');
    if (dx.shape[3] !== cin) throw new Error(`conv2dInputGrad: got ${dx.shape} for input ${xShape}`);
    return dx;
  });
}

/** Pads (positive) or crops (negative) the two spatial axes of an NHWC tensor. */
function padOrCrop(x: Tensor4D, before: number[], after: number[]): Tensor4D {
  const pads: Pads4 = [[0, 0], [Math.max(before[0], 0), Math.max(after[0], 0)], [Math.max(before[1], 0), Math.max(after[1], 0)], [0, 0]];
  let y = pads.some(([a, b]) => a > 0 || b > 0) ? tf.pad(x, pads) : x;
  const crop = [Math.max(-before[0], 0), Math.max(-after[0], 0), Math.max(-before[1], 0), Math.max(-after[1], 0)];
  if (crop.some((c) => c > 0)) {
    const [, hh, ww, c] = y.shape;
    y = tf.slice(y, [0, crop[0], crop[2], 0], [y.shape[0], hh - crop[0] - crop[1], ww - crop[2] - crop[3], c]);
  }
  return y;
}

/**
 * dL/dK[a, b, i, o] = sum_{n, y, x} xpad[n, y*s + a, x*t + b, i] * dy[n, y, x, o]: a convolution
 * of the input with channels and batch swapped ([cin, Hp, Wp, N]) by the output gradient as a
 * filter ([OH, OW, N, cout]) dilated by the stride. Rows the forward window never reached
 * (when (Hp - kh) is not a multiple of the stride) come out past kh and are cut off.
 */
export function conv2dFilterGrad(x: Tensor4D, dy: Tensor4D, kernelShape: [number, number, number, number], strides: [number, number], win: Window2d): Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = kernelShape;
    const xp = noPads(win) ? x : tf.pad(x, explicitPads(win));
    const xt = tf.transpose(xp, [3, 1, 2, 0]);
    const f = tf.transpose(dy, [1, 2, 0, 3]);
    let g = tf.conv2d(xt, f, [1, 1], 'valid', 'NHWC', strides);
    if (g.shape[1] !== kh || g.shape[2] !== kw) g = tf.slice(g, [0, 0, 0, 0], [cin, kh, kw, cout]);
    return tf.transpose(g, [1, 2, 0, 3]);
  });
}

/** Max pooling; pads count as -inf (the kernels skip them). */
export function maxPool(x: Tensor4D, size: [number, number], strides: [number, number], win: Window2d): Tensor4D {
  return tf.maxPool(x, size, strides, noPads(win) ? 'valid' : explicitPads(win));
}

let maxPoolGradInstalled = false;

/**
 * Replaces the MaxPool gradient on wasm, whose MaxPoolGrad kernel (tfjs 4.22) routes gradients
 * to wrong cells for some shapes (e.g. 2x2/2 pooling of [1, 6, 6, 2], 3x3/2 pad 1 of
 * [4, 16, 16, 8], ResNet's first pool). `maxPoolBackprop` below is the plain loop; other backends
 * keep the stock gradient.
 */
export function installMaxPoolGradient(): void {
  if (maxPoolGradInstalled) return;
  const stock = tf.getGradient('MaxPool');
  tf.registerGradient({
    kernelName: 'MaxPool',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== 'wasm') return stock.gradFunc(dy, saved, attrs);
      const x = saved[0] as Tensor4D;
      const a = attrs as unknown as { filterSize: number | [number, number]; strides: number | [number, number]; pad: Parameters<typeof tf.maxPool>[3]; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
      const info = tf.backend_util.computePool2DInfo(x.shape, a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
      return { x: () => maxPoolBackprop(x, dy as Tensor4D, info) };
    },
  });
  maxPoolGradInstalled = true;
}

/** `x y` with either operand transposed (last two axes) by an explicit transpose first. */
export function matMulPlain(x: Tensor, y: Tensor, transposeX = false, transposeY = false): Tensor {
  const t = (v: Tensor) => (v.rank === 2 ? (v.dtype === 'float32' && wasmKernels.wasmKernelsActive() ? wasmKernels.transpose2d(v) : tf.transpose(v)) : tf.transpose(v, [...v.shape.keys()].map((i) => (i < v.rank - 2 ? i : 2 * v.rank - 3 - i))));
  return tf.matMul(transposeX ? t(x) : x, transposeY ? t(y) : y);
}

let matMulGradInstalled = false;
/**
 * Replaces the BatchMatMul gradient on wasm: the stock one multiplies with transposeA/transposeB,
 * which wasm runs in a scalar loop, while an untransposed matmul goes to XNNPACK. Measured on a
 * [768,128]x[128,512] product (busy machine): 105 ms transposed vs 14-18 ms as an explicit
 * transpose plus a plain matmul. Same products, same shapes; operands whose batch axes broadcast
 * keep the stock gradient.
 */
export function installMatMulGradient(): void {
  if (matMulGradInstalled) return;
  const stock = tf.getGradient('BatchMatMul');
  tf.registerGradient({
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      const sameBatch = a.rank === b.rank && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
      if (tf.getBackend() !== 'wasm' || !sameBatch) return stock.gradFunc(dy, saved, attrs);
      const g = dy as Tensor;
      if (!transposeA && !transposeB) return { a: () => matMulPlain(g, b, false, true), b: () => matMulPlain(a, g, true, false) };
      if (!transposeA && transposeB) return { a: () => matMulPlain(g, b), b: () => matMulPlain(g, a, true, false) };
      if (transposeA && !transposeB) return { a: () => matMulPlain(b, g, false, true), b: () => matMulPlain(a, g) };
      return { a: () => matMulPlain(b, g, true, true), b: () => matMulPlain(g, a, true, true) };
    },
  });
  matMulGradInstalled = true;
}

/**
 * dL/dx of max pooling: each output's gradient goes to the first maximum of its window in
 * row-major order (the cell PyTorch and TensorFlow pick on ties, common after a ReLU).
 */
export function maxPoolBackprop(x: Tensor4D, dy: Tensor4D, info: ReturnType<typeof tf.backend_util.computePool2DInfo>): Tensor4D {
  const xv = x.dataSync() as Float32Array, dv = dy.dataSync() as Float32Array;
  const [n, h, w, c] = x.shape;
  const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const dx = new Float32Array(xv.length);
  const best = new Float32Array(c), arg = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        best.fill(-Infinity);
        arg.fill(-1);
        for (let py = 0; py < fh; py++) {
          const iy = oy * sh + py - top;
          if (iy < 0 || iy >= h) continue;
          for (let px = 0; px < fw; px++) {
            const ix = ox * sw + px - left;
            if (ix < 0 || ix >= w) continue;
            const base = ((b * h + iy) * w + ix) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = xv[base + ch];
              if (v > best[ch] || arg[ch] < 0) { best[ch] = v; arg[ch] = base + ch; }
            }
          }
        }
        const o = ((b * oh + oy) * ow + ox) * c;
        for (let ch = 0; ch < c; ch++) if (arg[ch] >= 0) dx[arg[ch]] += dv[o + ch];
      }
    }
  }
  return tf.tensor4d(dx, x.shape);
}

/**
 * Average pooling over real cells only: with pads, the zero-padded window mean divided by the
 * fraction of the window that is real (a constant map), which equals sum / count.
 */
export function avgPool(x: Tensor4D, size: [number, number], strides: [number, number], win: Window2d): Tensor4D {
  if (noPads(win)) return tf.avgPool(x, size, strides, 'valid');
  const pads = explicitPads(win);
  const [, h, w] = x.shape;
  const sum = tf.avgPool(tf.pad(x, pads), size, strides, 'valid');
  const frac = tf.avgPool(tf.pad(tf.ones([1, h, w, 1]), pads) as Tensor4D, size, strides, 'valid');
  return tf.div(sum, frac);
}

export interface BatchNormParams { gamma: Tensor; beta: Tensor; movingMean: Tensor; movingVariance: Tensor }

/**
 * Batch norm over the last axis. The value is one FusedBatchNorm kernel; the training-mode
 * gradient is written out per channel (xhat = (x - mean) * inv, inv = 1 / sqrt(var + eps)):
 *   dbeta = sum dy, dgamma = sum dy * xhat, dx = gamma * inv * (dy - mean(dy) - xhat * mean(dy * xhat)),
 * with the broadcasts done by FusedBatchNorm too. On wasm, broadcasting binary ops are ~10x slower
 * than same-shape ones; measured on ResNetCifar-18(1/8), batch 128, this cut a training step's
 * gradient time from ~260 to ~185 ms against autodiff through broadcast arithmetic (itself faster
 * than `tf.batchNorm`'s stock gradient). Training mode also returns the batch mean and
 * the UNBIASED batch variance for the moving-statistics update; normalisation uses the biased one.
 */
export function batchNorm(x: Tensor, p: BatchNormParams, epsilon: number, training: boolean, keepStats = false): { y: Tensor; mean?: Tensor; unbiasedVar?: Tensor } {
  if (!training) return { y: tf.batchNorm(x, p.movingMean, p.movingVariance, p.beta, p.gamma, epsilon) };
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const count = x.size / x.shape[x.shape.length - 1];
  const stats: { mean?: Tensor; unbiasedVar?: Tensor } = {};
  // The statistics are computed inside the op: under autodiff its forward runs in a scope of its
  // own, and only saved tensors outlive it. The custom gradient accounts for their dependence on x.
  const op = tf.customGrad((xi, gi, bi, save) => {
    const [xt, gamma, beta] = [xi, gi, bi] as Tensor[];
    const mean = tf.mean(xt, axes);
    const variance = tf.mean(tf.square(tf.sub(xt, mean)), axes);
    (save as (ts: Tensor[]) => void)([xt, gamma, mean, variance]);
    if (keepStats) {
      stats.mean = tf.keep(tf.clone(mean));
      stats.unbiasedVar = tf.keep(tf.mul(variance, count / Math.max(count - 1, 1)));
    }
    return {
      value: tf.batchNorm(xt, mean, variance, beta, gamma, epsilon),
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [xs, g, m, v] = saved;
        const xhat = tf.batchNorm(xs, m, v, undefined, undefined, epsilon);
        const dbeta = tf.sum(dy, axes);
        const dgamma = tf.sum(tf.mul(dy, xhat), axes);
        const centred = tf.batchNorm(dy, tf.div(dbeta, count), v, undefined, g, epsilon);
        const k = tf.mul(tf.mul(g, tf.rsqrt(tf.add(v, epsilon))), tf.div(dgamma, count));
        return [tf.sub(centred, tf.mul(xhat, k)), dgamma, dbeta];
      },
    };
  });
  return { y: op(x, p.gamma, p.beta), ...stats };
}

export function activation(x: Tensor, fn: ActivationFn, alpha = 0.01): Tensor {
  switch (fn) {
    case 'relu': return tf.relu(x);
    case 'relu6': return tf.relu6(x);
    case 'leakyRelu': return tf.leakyRelu(x, alpha);
    case 'elu': return tf.elu(x);
    case 'tanh': return tf.tanh(x);
    case 'sigmoid': return tf.sigmoid(x);
    // Exact gelu, as the reference executor and PyTorch's default: one SIMD pass each way on wasm.
    case 'gelu': return wasmKernels.wasmKernelsActive() ? wasmKernels.gelu(x) : tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    default: throw new UnsupportedLayerError(`tfjs engine: unknown activation fn ${JSON.stringify(fn)}`);
  }
}

/** Mean softmax cross-entropy of logits [N, K] against one-hot labels [N, K]. */
export function crossEntropy(logits: Tensor, oneHot: Tensor): Tensor {
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1)));
}

/** Examples whose argmax logit equals the label (a scalar int tensor). */
export function correctCount(logits: Tensor, labels: Tensor): Tensor {
  return tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32'));
}

// ---- transformer layers (docs/design/transformer-ir.md) ------------------------------------

/** `y [rows, U] + bias [U]`; on wasm with a one-pass bias gradient (wasm/kernels.ts). */
function addBias(y: Tensor, bias: Tensor): Tensor {
  return wasmKernels.wasmKernelsActive() ? wasmKernels.biasAdd(y, bias) : tf.add(y, bias);
}

/** Dense on the last axis of any rank: `[..., F] x [F, U] -> [..., U]`. */
export function dense(x: Tensor, kernel: Tensor, bias?: Tensor): Tensor {
  const f = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  let y = tf.matMul(x.rank === 2 ? x : tf.reshape(x, [-1, f]), kernel);
  if (bias) y = addBias(y, bias);
  return x.rank === 2 ? y : tf.reshape(y, [...lead, kernel.shape[1] as number]);
}

/**
 * Rows of `table [V, D]` for int ids `[N, T]`, as one-hot `[N*T, V]` times the table: a plain
 * matmul whose gradient every backend has (a gather's gradient needs UnsortedSegmentSum).
 */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  const [n, t] = ids.shape;
  const [v, d] = table.shape;
  return tf.reshape(tf.matMul(tf.oneHot(tf.reshape(ids, [-1]), v), table), [n, t, d]);
}

/** `x [N, T, D]` plus rows `0..T-1` of `table [maxLength, D]`. */
export function positionEmbedding(x: Tensor, table: Tensor): Tensor {
  const [, t, d] = x.shape;
  return tf.add(x, t === table.shape[0] ? table : tf.slice(table, [0, 0], [t, d]));
}

/** Layer norm over the last axis, biased variance: `(x - mean) / sqrt(var + eps) * gamma + beta`. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, epsilon: number): Tensor {
  if (wasmKernels.wasmKernelsActive()) return wasmKernels.layerNorm(x, gamma, beta, epsilon);
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
}

export interface AttentionParams {
  queryKernel: Tensor; keyKernel: Tensor; valueKernel: Tensor; outputKernel: Tensor;
  queryBias?: Tensor; keyBias?: Tensor; valueBias?: Tensor; outputBias?: Tensor;
}

const causalMasks = new Map<number, Float32Array>();
/** `[T, T]`: 0 where key <= query, -1e9 after (exp underflows to exactly 0; no inf arithmetic). */
function causalMask(t: number): Float32Array {
  let m = causalMasks.get(t);
  if (!m) {
    m = new Float32Array(t * t);
    for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = -1e9;
    causalMasks.set(t, m);
  }
  return m;
}

/**
 * Multi-head self-attention on `x [N, T, D]` with Keras-layout weights (kernels `[D, H, K]`,
 * output `[H, K, D]`): per head softmax(q k^T / sqrt(K) + mask) v, then the output projection.
 * On wasm the three projections run as one `[D, 3*H*K]` matmul (as the torch engine does) and the
 * per-head products, scale, mask and softmax as one SIMD kernel each way (wasm/kernels.ts), with no
 * head transposes; elsewhere as tfjs ops.
 */
export function attention(x: Tensor, p: AttentionParams, heads: number, keyDim: number, causal: boolean): Tensor {
  const [n, t, d] = x.shape;
  const hk = heads * keyDim;
  const x2 = tf.reshape(x, [n * t, d]);
  let merged: Tensor;
  if (wasmKernels.wasmKernelsActive()) {
    const w = tf.concat([p.queryKernel, p.keyKernel, p.valueKernel].map((k) => tf.reshape(k, [d, hk])), 1);
    let qkv = tf.matMul(x2, w);
    if (p.queryBias && p.keyBias && p.valueBias) qkv = addBias(qkv, tf.concat([p.queryBias, p.keyBias, p.valueBias].map((b) => tf.reshape(b, [hk]))));
    merged = tf.reshape(wasmKernels.attentionCore(tf.reshape(qkv, [n, t, 3 * hk]), heads, keyDim, causal), [n * t, hk]);
  } else {
    // [N*T, H*K] -> [N, T, H, K] -> [N, H, T, K] -> [N*H, T, K]
    const project = (w: Tensor, b?: Tensor): Tensor => {
      let y = tf.matMul(x2, tf.reshape(w, [d, hk]));
      if (b) y = tf.add(y, tf.reshape(b, [hk]));
      return tf.reshape(tf.transpose(tf.reshape(y, [n, t, heads, keyDim]), [0, 2, 1, 3]), [n * heads, t, keyDim]);
    };
    const q = project(p.queryKernel, p.queryBias), k = project(p.keyKernel, p.keyBias), v = project(p.valueKernel, p.valueBias);
    let scores = tf.mul(matMulPlain(q, k, false, true), 1 / Math.sqrt(keyDim));
    if (causal) scores = tf.add(scores, tf.tensor2d(causalMask(t), [t, t]));
    const o = tf.matMul(tf.softmax(scores), v); // [N*H, T, K]
    merged = tf.reshape(tf.transpose(tf.reshape(o, [n, heads, t, keyDim]), [0, 2, 1, 3]), [n * t, hk]);
  }
  let y = tf.matMul(merged, tf.reshape(p.outputKernel, [hk, d]));
  if (p.outputBias) y = addBias(y, p.outputBias);
  return tf.reshape(y, [n, t, d]);
}
