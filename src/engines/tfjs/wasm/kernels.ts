/**
 * r2r's own WebAssembly SIMD kernels (kernels.c) for the transformer layers on tfjs's wasm
 * backend: fused causal attention, exact GELU and layer norm, each with its gradient. They exist
 * because tfjs-backend-wasm 4.22 runs batched matmuls (all of attention's) in a scalar loop at
 * ~1.2 GMAC/s and builds the other three layers from many small per-element ops.
 *
 * The module is embedded as base64 (kernels_wasm.ts), instantiated once by `loadWasmKernels()`
 * (the backend's init) and registered as tfjs kernels of the wasm backend that copy their inputs
 * from tfjs's heap into this module's memory and the results back. The ops below are
 * `tf.customGrad` functions over those kernels; where the module did not load (no WebAssembly
 * SIMD) or another backend is active, ops.ts uses plain tfjs ops instead.
 */
import type { GradSaveFunc, Tensor, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { KERNELS_WASM_BASE64 } from './kernels_wasm.ts';

interface KernelExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  gelu_forward(n: number, x: number, y: number): void;
  gelu_backward(n: number, x: number, dy: number, dx: number): void;
  attention_forward(n: number, t: number, h: number, k: number, causal: number, scale: number, qkv: number, out: number, probs: number, scratch: number): void;
  attention_backward(n: number, t: number, h: number, k: number, causal: number, scale: number, qkv: number, probs: number, dout: number, dqkv: number, scratch: number): void;
  layernorm_forward(rows: number, d: number, eps: number, x: number, gamma: number, beta: number, y: number, stats: number): void;
  layernorm_backward(rows: number, d: number, x: number, gamma: number, stats: number, dy: number, dx: number, dgamma: number, dbeta: number): void;
  column_sum(rows: number, cols: number, x: number, out: number): void;
  transpose_2d(r: number, c: number, src: number, dst: number): void;
}

/** What the kernel functions need of tfjs-backend-wasm's backend (public methods of BackendWasm). */
interface WasmBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

let mod: KernelExports | undefined;
let loading: Promise<boolean> | undefined;
let enabled = true;
/** Why the module did not load, when it did not. */
export let wasmKernelsError: string | undefined;

/** Instantiates the module and registers its kernels (once); false where WebAssembly SIMD is missing. */
export function loadWasmKernels(): Promise<boolean> {
  loading ??= (async () => {
    try {
      const bin = atob(KERNELS_WASM_BASE64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const { instance } = await WebAssembly.instantiate(bytes);
      mod = instance.exports as unknown as KernelExports;
      registerKernels();
      return true;
    } catch (e) {
      wasmKernelsError = (e as Error).message;
      return false;
    }
  })();
  return loading;
}

/** Whether the ops below run on this module now: it loaded, is enabled, and wasm is the backend. */
export function wasmKernelsActive(): boolean {
  return enabled && mod !== undefined && tf.getBackend() === 'wasm';
}

/** Turns the module's use off or on (tests compare both paths; benchmarks measure the gain). */
export function setWasmKernelsEnabled(on: boolean): void { enabled = on; }

// ---- this module's memory: one bump layout per call, grown as needed --------------------------

/** Byte offsets, 16-aligned, of consecutive float buffers of the given lengths (grows memory). */
function layout(...lengths: number[]): number[] {
  const m = mod!;
  let at = ((m.__heap_base.value as number) + 15) & ~15;
  const offsets = lengths.map((n) => { const o = at; at += (n * 4 + 15) & ~15; return o; });
  const have = m.memory.buffer.byteLength;
  if (at > have) m.memory.grow(Math.ceil((at - have) / 65536));
  return offsets;
}
const view = (offset: number, n: number) => new Float32Array(mod!.memory.buffer, offset, n);
const size = (t: TensorInfo) => t.shape.reduce((a, b) => a * b, 1);

/** Copies tfjs tensors into fresh buffers of this module; returns their offsets and those of `extra` more buffers. */
function stage(backend: WasmBackend, inputs: TensorInfo[], extra: number[]): number[] {
  const offsets = layout(...inputs.map(size), ...extra);
  inputs.forEach((t, i) => view(offsets[i], size(t)).set(backend.typedArrayFromHeap(t)));
  return offsets;
}

/** New tfjs outputs holding this module's buffers at `offsets`. Outputs are made first: making one may grow tfjs's heap. */
function outputs(backend: WasmBackend, shapes: number[][], offsets: number[]): TensorInfo[] {
  const outs = shapes.map((s) => backend.makeOutput(s, 'float32'));
  outs.forEach((o, i) => backend.typedArrayFromHeap(o).set(view(offsets[i], size(o))));
  return outs;
}

interface AttentionAttrs { heads: number; keyDim: number; causal: boolean }

function registerKernels(): void {
  const reg = (kernelName: string, kernelFunc: (inputs: Record<string, TensorInfo>, backend: WasmBackend, attrs: Record<string, unknown>) => TensorInfo | TensorInfo[]) => {
    tf.registerKernel({
      kernelName, backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => kernelFunc(inputs as Record<string, TensorInfo>, backend as unknown as WasmBackend, attrs as Record<string, unknown>),
    });
  };
  const m = mod!;
  reg('R2rGelu', ({ x }, backend) => {
    const n = size(x);
    const [xo, yo] = stage(backend, [x], [n]);
    m.gelu_forward(n, xo, yo);
    return outputs(backend, [x.shape], [yo])[0];
  });
  reg('R2rGeluGrad', ({ x, dy }, backend) => {
    const n = size(x);
    const [xo, dyo, dxo] = stage(backend, [x, dy], [n]);
    m.gelu_backward(n, xo, dyo, dxo);
    return outputs(backend, [x.shape], [dxo])[0];
  });
  reg('R2rAttention', ({ qkv }, backend, attrs) => {
    const { heads: h, keyDim: k, causal } = attrs as unknown as AttentionAttrs;
    const [n, t] = qkv.shape;
    const [qo, oo, po, so] = stage(backend, [qkv], [n * t * h * k, n * h * t * t, k * t]);
    m.attention_forward(n, t, h, k, causal ? 1 : 0, 1 / Math.sqrt(k), qo, oo, po, so);
    return outputs(backend, [[n, t, h * k], [n, h, t, t]], [oo, po]);
  });
  reg('R2rAttentionGrad', ({ qkv, probs, dy }, backend, attrs) => {
    const { heads: h, keyDim: k, causal } = attrs as unknown as AttentionAttrs;
    const [n, t] = qkv.shape;
    const [qo, po, dyo, dqo, so] = stage(backend, [qkv, probs, dy], [size(qkv), 2 * t * t + k * t]);
    m.attention_backward(n, t, h, k, causal ? 1 : 0, 1 / Math.sqrt(k), qo, po, dyo, dqo, so);
    return outputs(backend, [qkv.shape], [dqo])[0];
  });
  reg('R2rLayerNorm', ({ x, gamma, beta }, backend, attrs) => {
    const d = x.shape[x.shape.length - 1], rows = size(x) / d;
    const [xo, go, bo, yo, so] = stage(backend, [x, gamma, beta], [rows * d, 2 * rows]);
    m.layernorm_forward(rows, d, attrs.epsilon as number, xo, go, bo, yo, so);
    return outputs(backend, [x.shape, [rows, 2]], [yo, so]);
  });
  reg('R2rLayerNormGrad', ({ x, gamma, stats, dy }, backend) => {
    const d = x.shape[x.shape.length - 1], rows = size(x) / d;
    const [xo, go, so, dyo, dxo, dgo, dbo] = stage(backend, [x, gamma, stats, dy], [rows * d, d, d]);
    m.layernorm_backward(rows, d, xo, go, so, dyo, dxo, dgo, dbo);
    return outputs(backend, [x.shape, [d], [d]], [dxo, dgo, dbo]);
  });
  reg('R2rColumnSum', ({ x }, backend) => {
    const cols = x.shape[x.shape.length - 1], rows = size(x) / cols;
    const [xo, oo] = stage(backend, [x], [cols]);
    m.column_sum(rows, cols, xo, oo);
    return outputs(backend, [[cols]], [oo])[0];
  });
  reg('R2rTranspose2d', ({ x }, backend) => {
    const [r, c] = x.shape;
    const [xo, oo] = stage(backend, [x], [r * c]);
    m.transpose_2d(r, c, xo, oo);
    return outputs(backend, [[c, r]], [oo])[0];
  });
  tf.registerGradient({ kernelName: 'R2rTranspose2d', gradFunc: (dy) => ({ x: () => transpose2d(dy as Tensor) }) });
}

// ---- ops ------------------------------------------------------------------------------------

const run = (name: string, inputs: Record<string, Tensor>, attrs: Record<string, unknown> = {}) =>
  tf.engine().runKernel(name, inputs, attrs as never) as Tensor | Tensor[];

/** Exact GELU `x Phi(x)` and its gradient `dy (Phi(x) + x phi(x))`, one pass each. */
export function gelu(x: Tensor): Tensor {
  return tf.customGrad((xi, save) => {
    (save as GradSaveFunc)([xi as Tensor]);
    return { value: run('R2rGelu', { x: xi as Tensor }) as Tensor, gradFunc: (dy: Tensor, [xs]: Tensor[]) => run('R2rGeluGrad', { x: xs, dy }) as Tensor };
  })(x);
}

/** Layer norm over the last axis (biased variance) with gradients for x, gamma and beta. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, epsilon: number): Tensor {
  return tf.customGrad((xi, gi, bi, save) => {
    const [xt, gt, bt] = [xi, gi, bi] as Tensor[];
    const [y, stats] = run('R2rLayerNorm', { x: xt, gamma: gt, beta: bt }, { epsilon }) as Tensor[];
    (save as GradSaveFunc)([xt, gt, stats]);
    return {
      value: y,
      gradFunc: (dy: Tensor, [xs, gs, st]: Tensor[]) => run('R2rLayerNormGrad', { x: xs, gamma: gs, stats: st, dy }) as Tensor[],
    };
  })(x, gamma, beta);
}

/**
 * `x + bias` (bias on the last axis) whose bias gradient is one column-sum pass: tfjs's own, a Sum
 * over the leading axes, transposes the whole gradient first.
 */
export function biasAdd(x: Tensor, bias: Tensor): Tensor {
  return tf.customGrad((xi, bi) => {
    const [xt, bt] = [xi, bi] as Tensor[];
    return {
      value: tf.add(xt, bt),
      gradFunc: (dy: Tensor) => [tf.reshape(dy, xt.shape), tf.reshape(run('R2rColumnSum', { x: dy }) as Tensor, bt.shape)],
    };
  })(x, bias);
}

/** The transpose of a 2-D tensor (tfjs-backend-wasm's Transpose is ~4x slower on [768, 128]). */
export function transpose2d(x: Tensor): Tensor {
  return run('R2rTranspose2d', { x }) as Tensor;
}

/**
 * Self-attention core from a fused projection `qkv [N, T, 3*H*K]` (per token: queries, keys,
 * values, each `[H, K]`) to `[N, T, H*K]`: per head softmax(q k^T / sqrt(K) + causal mask) v.
 * The softmax probabilities `[N, H, T, T]` are kept for the gradient.
 */
export function attentionCore(qkv: Tensor, heads: number, keyDim: number, causal: boolean): Tensor {
  const attrs = { heads, keyDim, causal };
  return tf.customGrad((xi, save) => {
    const [out, probs] = run('R2rAttention', { qkv: xi as Tensor }, attrs) as Tensor[];
    (save as GradSaveFunc)([xi as Tensor, probs]);
    return { value: out, gradFunc: (dy: Tensor, [xs, ps]: Tensor[]) => run('R2rAttentionGrad', { qkv: xs, probs: ps, dy }, attrs) as Tensor };
  })(qkv);
}

// ---- Identity and Cast without copies -------------------------------------------------------

let sharingInstalled = false;
/**
 * tfjs-backend-wasm's Identity (every `tf.clone`, and so every tensor autodiff saves for the
 * backward pass) and same-dtype Cast copy their input; its Reshape already shares the data
 * (reference counted), as the cpu backend's Identity does. These replacements share it too:
 * tfjs tensors are immutable, so a share is indistinguishable from a copy. Measured on the
 * 4/4/128 GPT training step (tf.profile, busy machine): Identity + Cast ~69 ms of ~690 ms.
 */
export function installSharingIdentity(): void {
  if (sharingInstalled) return;
  for (const name of ['Identity', 'Cast']) {
    const stock = tf.getKernel(name, 'wasm');
    if (!stock) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      ...stock,
      kernelFunc: (args) => {
        const x = args.inputs.x as TensorInfo;
        const dtype = name === 'Cast' ? (args.attrs as { dtype: string }).dtype : x.dtype;
        if (dtype !== x.dtype || x.dtype === 'string') return stock.kernelFunc(args);
        (args.backend as unknown as { incRef(id: object): void }).incRef(x.dataId);
        return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
      },
    });
  }
  sharingInstalled = true;
}
