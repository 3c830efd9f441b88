/**
 * The reference executor: a small, plain TypeScript interpreter of the graph IR, with no engine.
 * Tests use it to check transforms; `r2r verify` uses it to check engines. Clarity over speed.
 *
 * Conventions every engine must match:
 * - NHWC; conv kernel `[kh, kw, cin, cout]`, dense kernel `[in, out]`; window pads from
 *   `resolveWindow` (TensorFlow's 'same' puts the odd pad at the bottom/right).
 * - Activations are held in float64 and sums accumulate in float64; only the logits are
 *   rounded to float32. The reference is therefore a little *more* accurate than an engine.
 * - gelu is the exact form `0.5 x (1 + erf(x / sqrt(2)))`, not the tanh approximation.
 * - leakyRelu's slope is `alpha` (default 0.01); elu uses alpha 1.
 * - batchNorm, inference: moving statistics. Training: biased batch statistics over N, H, W
 *   (the moving statistics are NOT updated: the reference is a pure function).
 * - maxPool pads with -inf; avgPool divides by the number of real (unpadded) cells only, for
 *   'same' and explicit padding alike.
 * - dropout is the identity in both modes (training-mode dropout is random; the reference
 *   stays deterministic, so compare engines in training mode only on graphs without dropout
 *   or with rate 0).
 * - Token models: the input is token ids (`Int32Array`, or integral floats), `[n, T]`; logits
 *   are `[n, T, V]`. dense acts on the last axis; layerNorm normalises over the last axis with
 *   the biased variance, `(x - mean) / sqrt(var + eps) * gamma + beta`; attention computes per
 *   head `softmax(q k^T / sqrt(keyDim) + mask) v` with the causal mask setting scores of keys
 *   after the query to -inf (docs/design/transformer-ir.md).
 */
import { InvalidWeightsError, ShapeMismatchError, UnsupportedLayerError } from '../errors.ts';
import { analyzeGraph, type GraphInfo } from '../ir/graph.ts';
import { resolveWindow, shapeToString, sizeOf } from '../ir/shapes.ts';
import type { ActivationFn, Graph, Node, NodeOf, Tensor, Weights } from '../ir/types.ts';

export interface ReferenceOptions { training: boolean }

/** One volume: `n` examples of `shape` (no batch axis), row-major, float64. */
interface Volume { shape: number[]; data: Float64Array }

/**
 * Logits `[n, K]` of `graph` on the batch `x` (`[n, ...inputShape]`, NHWC), or `[n, T, V]` for a
 * token model whose `x` holds the ids `[n, T]`.
 */
export function forwardReference(graph: Graph, weights: Weights, x: Float32Array | Int32Array, n: number, opts: ReferenceOptions): Float32Array {
  const outs = runReference(graph, weights, x, n, opts);
  return Float32Array.from(outs.get(graph.output)!);
}

/**
 * Every node's output (float64, `[n, ...outputShape]`), keyed by node name. Handy to find where
 * two networks start to differ.
 */
export function runReference(graph: Graph, weights: Weights, x: Float32Array | Int32Array, n: number, opts: ReferenceOptions, info: GraphInfo = analyzeGraph(graph)): Map<string, Float64Array> {
  if (!Number.isInteger(n) || n < 1) throw new ShapeMismatchError(`forwardReference: batch size must be a positive integer, got ${n}`);
  if (x.length !== n * sizeOf(info.inputShape)) {
    throw new ShapeMismatchError(`forwardReference: input has ${x.length} values, but ${n} examples of ${shapeToString(info.inputShape)} need ${n * sizeOf(info.inputShape)}`);
  }
  if (info.tokens) {
    const { vocab } = info.tokens;
    for (let i = 0; i < x.length; i++) {
      if (!Number.isInteger(x[i]) || x[i] < 0 || x[i] >= vocab) {
        throw new ShapeMismatchError(`forwardReference: token ${i} is ${x[i]}, not an id in [0, ${vocab}) of tokenInput '${info.inputName}'`);
      }
    }
  }
  const vols = new Map<string, Volume>();
  const result = new Map<string, Float64Array>();
  for (const node of graph.nodes) {
    const ni = info.nodes.get(node.name)!;
    const ins = node.inputs.map((i) => vols.get(i)!);
    const data = node.kind === 'input' || node.kind === 'tokenInput' ? Float64Array.from(x) : evalNode(node, ins, ni.outputShape, weights, n, opts);
    const v = { shape: ni.outputShape, data };
    vols.set(node.name, v);
    result.set(node.name, data);
  }
  return result;
}

function param(weights: Weights, node: Node, name: string, size: number): Float32Array {
  const t: Tensor | undefined = weights[`${node.name}/${name}`];
  if (!t) throw new InvalidWeightsError(`forwardReference: missing tensor '${node.name}/${name}' for node '${node.name}' (${node.kind})`);
  if (t.data.length !== size) throw new InvalidWeightsError(`forwardReference: tensor '${node.name}/${name}' holds ${t.data.length} values, node '${node.name}' needs ${size}`);
  return t.data;
}

function evalNode(node: Node, ins: Volume[], outShape: number[], weights: Weights, n: number, opts: ReferenceOptions): Float64Array {
  switch (node.kind) {
    case 'conv2d': return conv2d(node, ins[0], outShape, weights, n);
    case 'dense': return dense(node, ins[0], weights, n);
    case 'batchNorm': return batchNorm(node, ins[0], weights, opts.training);
    case 'activation': return ins[0].data.map(activationFn(node.fn, node.alpha));
    case 'maxPool': case 'avgPool': return pool(node, ins[0], outShape, n);
    case 'globalAvgPool': return globalAvgPool(ins[0], n);
    case 'flatten': case 'dropout': return ins[0].data.slice();
    case 'add': {
      const out = ins[0].data.slice();
      for (let k = 1; k < ins.length; k++) { const d = ins[k].data; for (let i = 0; i < out.length; i++) out[i] += d[i]; }
      return out;
    }
    case 'concat': return concat(ins, outShape, n);
    case 'embedding': return embedding(node, ins[0], weights);
    case 'positionEmbedding': return positionEmbedding(node, ins[0], weights);
    case 'layerNorm': return layerNorm(node, ins[0], weights);
    case 'attention': return attention(node, ins[0], weights, n);
    case 'input': case 'tokenInput': throw new UnsupportedLayerError(`forwardReference: node '${node.name}' is a second input`);
    default: throw new UnsupportedLayerError(`forwardReference: node '${(node as Node).name}' has unknown kind ${JSON.stringify((node as Node).kind)}`);
  }
}

function conv2d(node: NodeOf<'conv2d'>, x: Volume, outShape: number[], weights: Weights, n: number): Float64Array {
  const [h, w, cin] = x.shape;
  const [kh, kw] = node.kernelSize;
  const [sh, sw] = node.strides;
  const cout = node.filters;
  const win = resolveWindow(h, w, node.kernelSize, node.strides, node.padding);
  const k = param(weights, node, 'kernel', kh * kw * cin * cout);
  const b = node.useBias ? param(weights, node, 'bias', cout) : undefined;
  const [oh, ow] = outShape;
  const out = new Float64Array(n * oh * ow * cout);
  const acc = new Float64Array(cout);
  for (let e = 0; e < n; e++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        if (b) for (let co = 0; co < cout; co++) acc[co] = b[co]; else acc.fill(0);
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh + ky - win.top;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw + kx - win.left;
            if (ix < 0 || ix >= w) continue;
            const xBase = ((e * h + iy) * w + ix) * cin;
            const kBase = (ky * kw + kx) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const xv = x.data[xBase + ci];
              if (xv === 0) continue;
              const kRow = kBase + ci * cout;
              for (let co = 0; co < cout; co++) acc[co] += xv * k[kRow + co];
            }
          }
        }
        out.set(acc, ((e * oh + oy) * ow + ox) * cout);
      }
    }
  }
  return out;
}

/** On the last axis: every leading position (example, token) is one row. */
function dense(node: NodeOf<'dense'>, x: Volume, weights: Weights, n: number): Float64Array {
  const f = x.shape[x.shape.length - 1];
  const rows = (n * sizeOf(x.shape)) / f;
  const u = node.units;
  const k = param(weights, node, 'kernel', f * u);
  const b = node.useBias ? param(weights, node, 'bias', u) : undefined;
  const out = new Float64Array(rows * u);
  for (let e = 0; e < rows; e++) {
    const row = out.subarray(e * u, (e + 1) * u);
    if (b) for (let j = 0; j < u; j++) row[j] = b[j];
    for (let i = 0; i < f; i++) {
      const xv = x.data[e * f + i];
      if (xv === 0) continue;
      for (let j = 0; j < u; j++) row[j] += xv * k[i * u + j];
    }
  }
  return out;
}

function batchNorm(node: NodeOf<'batchNorm'>, x: Volume, weights: Weights, training: boolean): Float64Array {
  const c = x.shape[x.shape.length - 1];
  const gamma = param(weights, node, 'gamma', c), beta = param(weights, node, 'beta', c);
  const rows = x.data.length / c; // n * H * W
  let mean: ArrayLike<number>, variance: ArrayLike<number>;
  if (training) {
    const m = new Float64Array(c), v = new Float64Array(c);
    for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) m[j] += x.data[r * c + j];
    for (let j = 0; j < c; j++) m[j] /= rows;
    for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) v[j] += (x.data[r * c + j] - m[j]) ** 2;
    for (let j = 0; j < c; j++) v[j] /= rows; // biased, as every framework normalises
    mean = m; variance = v;
  } else {
    mean = param(weights, node, 'movingMean', c);
    variance = param(weights, node, 'movingVariance', c);
  }
  const scale = new Float64Array(c), shift = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    scale[j] = gamma[j] / Math.sqrt(variance[j] + node.epsilon);
    shift[j] = beta[j] - mean[j] * scale[j];
  }
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) out[r * c + j] = x.data[r * c + j] * scale[j] + shift[j];
  return out;
}

/** The scalar function of an activation node. */
export function activationFn(fn: ActivationFn, alpha = 0.01): (v: number) => number {
  switch (fn) {
    case 'relu': return (v) => (v > 0 ? v : 0);
    case 'relu6': return (v) => Math.min(Math.max(v, 0), 6);
    case 'leakyRelu': return (v) => (v > 0 ? v : alpha * v);
    case 'elu': return (v) => (v > 0 ? v : Math.expm1(v));
    case 'tanh': return Math.tanh;
    case 'sigmoid': return (v) => 1 / (1 + Math.exp(-v));
    case 'gelu': return (v) => 0.5 * v * (1 + erf(v / Math.SQRT2));
    default: throw new UnsupportedLayerError(`forwardReference: unknown activation fn ${JSON.stringify(fn)}`);
  }
}

/**
 * The error function to about double precision: erf(x) = 2/sqrt(pi) e^{-x^2} sum_k x^{2k+1} 2^k /
 * (1*3*...*(2k+1)), a series of positive terms (no cancellation); |x| >= 6 gives +-1 exactly
 * in double precision.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  const x2 = ax * ax;
  let term = ax, sum = ax;
  for (let k = 1; k < 500; k++) {
    term *= (2 * x2) / (2 * k + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  const r = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  return x < 0 ? -r : r;
}

function pool(node: NodeOf<'maxPool' | 'avgPool'>, x: Volume, outShape: number[], n: number): Float64Array {
  const [h, w, c] = x.shape;
  const [ph, pw] = node.poolSize;
  const [sh, sw] = node.strides;
  const win = resolveWindow(h, w, node.poolSize, node.strides, node.padding);
  const [oh, ow] = outShape;
  const isMax = node.kind === 'maxPool';
  const out = new Float64Array(n * oh * ow * c);
  const acc = new Float64Array(c);
  for (let e = 0; e < n; e++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        acc.fill(isMax ? -Infinity : 0);
        let count = 0;
        for (let py = 0; py < ph; py++) {
          const iy = oy * sh + py - win.top;
          if (iy < 0 || iy >= h) continue;
          for (let px = 0; px < pw; px++) {
            const ix = ox * sw + px - win.left;
            if (ix < 0 || ix >= w) continue;
            count++;
            const base = ((e * h + iy) * w + ix) * c;
            if (isMax) for (let j = 0; j < c; j++) { const v = x.data[base + j]; if (v > acc[j]) acc[j] = v; }
            else for (let j = 0; j < c; j++) acc[j] += x.data[base + j];
          }
        }
        if (!isMax) for (let j = 0; j < c; j++) acc[j] /= count;
        out.set(acc, ((e * oh + oy) * ow + ox) * c);
      }
    }
  }
  return out;
}

function globalAvgPool(x: Volume, n: number): Float64Array {
  const [h, w, c] = x.shape;
  const out = new Float64Array(n * c);
  for (let e = 0; e < n; e++) {
    for (let p = 0; p < h * w; p++) for (let j = 0; j < c; j++) out[e * c + j] += x.data[(e * h * w + p) * c + j];
    for (let j = 0; j < c; j++) out[e * c + j] /= h * w;
  }
  return out;
}

function concat(ins: Volume[], outShape: number[], n: number): Float64Array {
  const cOut = outShape[outShape.length - 1];
  const rows = (n * sizeOf(outShape)) / cOut;
  const out = new Float64Array(n * sizeOf(outShape));
  let offset = 0;
  for (const v of ins) {
    const c = v.shape[v.shape.length - 1];
    for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) out[r * cOut + offset + j] = v.data[r * c + j];
    offset += c;
  }
  return out;
}

function embedding(node: NodeOf<'embedding'>, ids: Volume, weights: Weights): Float64Array {
  const d = node.dim;
  const table = param(weights, node, 'embeddings', node.vocab * d);
  const out = new Float64Array(ids.data.length * d);
  for (let i = 0; i < ids.data.length; i++) {
    const id = ids.data[i];
    for (let j = 0; j < d; j++) out[i * d + j] = table[id * d + j];
  }
  return out;
}

function positionEmbedding(node: NodeOf<'positionEmbedding'>, x: Volume, weights: Weights): Float64Array {
  const [t, d] = x.shape;
  const table = param(weights, node, 'embeddings', node.maxLength * d);
  const out = x.data.slice();
  for (let r = 0; r < out.length / d; r++) {
    const pos = r % t;
    for (let j = 0; j < d; j++) out[r * d + j] += table[pos * d + j];
  }
  return out;
}

function layerNorm(node: NodeOf<'layerNorm'>, x: Volume, weights: Weights): Float64Array {
  const d = x.shape[x.shape.length - 1];
  const gamma = param(weights, node, 'gamma', d), beta = param(weights, node, 'beta', d);
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / d; r++) {
    const row = x.data.subarray(r * d, (r + 1) * d);
    let mean = 0;
    for (let j = 0; j < d; j++) mean += row[j];
    mean /= d;
    let variance = 0;
    for (let j = 0; j < d; j++) variance += (row[j] - mean) ** 2;
    variance /= d; // biased, as PyTorch and Keras
    const inv = 1 / Math.sqrt(variance + node.epsilon);
    for (let j = 0; j < d; j++) out[r * d + j] = (row[j] - mean) * inv * gamma[j] + beta[j];
  }
  return out;
}

/**
 * Per example and head h: q = x Wq[:, h, :] + bq[h] (likewise k, v), p = softmax(q k^T / sqrt(K))
 * with keys after the query masked when causal, o_h = p v; output sum_h o_h Wo[h] + bo.
 */
function attention(node: NodeOf<'attention'>, x: Volume, weights: Weights, n: number): Float64Array {
  const [t, d] = x.shape;
  const { heads: H, keyDim: K } = node;
  const kernel = (p: string) => param(weights, node, `${p}Kernel`, d * H * K);
  const bias = (p: string) => (node.useBias ? param(weights, node, `${p}Bias`, H * K) : undefined);
  const wq = kernel('query'), wk = kernel('key'), wv = kernel('value');
  const bq = bias('query'), bk = bias('key'), bv = bias('value');
  const wo = param(weights, node, 'outputKernel', H * K * d);
  const bo = node.useBias ? param(weights, node, 'outputBias', d) : undefined;
  const scale = 1 / Math.sqrt(K);
  const out = new Float64Array(n * t * d);
  // project(w, b)[s * K + kk] = sum_i x[s, i] w[i, h, kk] + b[h, kk], for one example and head.
  const project = (xe: Float64Array, w: Float32Array, b: Float32Array | undefined, h: number): Float64Array => {
    const r = new Float64Array(t * K);
    for (let s = 0; s < t; s++) {
      for (let kk = 0; kk < K; kk++) {
        let acc = b ? b[h * K + kk] : 0;
        for (let i = 0; i < d; i++) acc += xe[s * d + i] * w[(i * H + h) * K + kk];
        r[s * K + kk] = acc;
      }
    }
    return r;
  };
  const p = new Float64Array(t);
  for (let e = 0; e < n; e++) {
    const xe = x.data.subarray(e * t * d, (e + 1) * t * d);
    const oe = out.subarray(e * t * d, (e + 1) * t * d);
    if (bo) for (let s = 0; s < t; s++) for (let j = 0; j < d; j++) oe[s * d + j] = bo[j];
    for (let h = 0; h < H; h++) {
      const q = project(xe, wq, bq, h), k = project(xe, wk, bk, h), v = project(xe, wv, bv, h);
      for (let s = 0; s < t; s++) {
        const last = node.causal ? s : t - 1;
        let max = -Infinity;
        for (let u = 0; u <= last; u++) {
          let dot = 0;
          for (let kk = 0; kk < K; kk++) dot += q[s * K + kk] * k[u * K + kk];
          p[u] = dot * scale;
          if (p[u] > max) max = p[u];
        }
        let sum = 0;
        for (let u = 0; u <= last; u++) { p[u] = Math.exp(p[u] - max); sum += p[u]; }
        for (let kk = 0; kk < K; kk++) {
          let o = 0;
          for (let u = 0; u <= last; u++) o += p[u] * v[u * K + kk];
          o /= sum;
          const row = (h * K + kk) * d;
          for (let j = 0; j < d; j++) oe[s * d + j] += o * wo[row + j];
        }
      }
    }
  }
  return out;
}
