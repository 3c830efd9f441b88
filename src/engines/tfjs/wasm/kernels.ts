/**
 * r2r's own WebAssembly SIMD kernels (kernels.c) for tfjs's wasm backend: fused causal attention,
 * exact GELU and layer norm, each with its gradient; a dense layer's bias gradient and 2-D
 * transposes; Adam in one pass. They exist because tfjs-backend-wasm 4.22 runs batched matmuls
 * (all of attention's) in a scalar loop at ~1.2 GMAC/s and builds the rest from many small
 * per-element ops, and tfjs's Sum over axis 0 and Transpose are slow there.
 *
 * The module is embedded as base64 (kernels_wasm.ts), instantiated once by `loadWasmKernels()`
 * (the backend's init) and registered as tfjs kernels of the wasm backend. They work on tensors
 * where they lie, in tfjs's own heap, or copy through the module's memory where that heap is not
 * reachable. The ops below are `tf.customGrad` functions over those kernels; where the module did
 * not load (no WebAssembly SIMD) or another backend is active, ops.ts and optimizers.ts use plain
 * tfjs ops instead. Also here: Identity and Cast without copies (`installSharingIdentity`).
 */
import type { GradSaveFunc, Tensor, TensorInfo } from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { R2RError } from '../../../errors.ts';
import { KERNELS_WASM_BASE64 } from './kernels_wasm.ts';

interface KernelExports {
  __heap_base: WebAssembly.Global;
  gelu_forward(n: number, x: number, y: number): void;
  gelu_backward(n: number, x: number, dy: number, dx: number): void;
  attention_forward(n: number, t: number, h: number, k: number, causal: number, scale: number, qkv: number, out: number, probs: number, scratch: number): void;
  attention_backward(n: number, t: number, h: number, k: number, causal: number, scale: number, qkv: number, probs: number, dout: number, dqkv: number, scratch: number): void;
  layernorm_forward(rows: number, d: number, eps: number, x: number, gamma: number, beta: number, y: number, stats: number): void;
  layernorm_backward(rows: number, d: number, x: number, gamma: number, stats: number, dy: number, dx: number, dgamma: number, dbeta: number): void;
  column_sum(rows: number, cols: number, x: number, out: number): void;
  transpose_2d(r: number, c: number, src: number, dst: number): void;
  adam_step(count: number, table: number, m: number, v: number, mOut: number, vOut: number, wd: number, b1: number, omb1: number,
    b2: number, omb2: number, sqrtBc2: number, eps: number, stepSize: number): void;
}

/** What the kernels need of tfjs-backend-wasm's backend (public members of BackendWasm; `wasm.asm.memory` is Emscripten's heap). */
interface WasmBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  wasm: { asm?: { memory?: unknown }; _malloc(bytes: number): number; _free(address: number): void };
}

/** The module instantiated on its own memory (copies in and out), and on tfjs's heap when that works. */
let own: { exports: KernelExports; memory: WebAssembly.Memory } | undefined;
let shared: { exports: KernelExports; backend: WasmBackend; memory: WebAssembly.Memory } | undefined;
let loading: Promise<boolean> | undefined;
let enabled = true, copying = false;
/** Why the module did not load, when it did not. */
export let wasmKernelsError: string | undefined;

/**
 * Instantiates the module and registers its kernels, once, after the wasm backend has started;
 * false where WebAssembly SIMD is missing. Where tfjs's heap is a plain WebAssembly.Memory (its
 * single-threaded builds, as in Node) a second instance imports that memory and works on tensors in
 * place; otherwise (the multi-threaded build's shared memory) kernels copy through their own.
 */
export function loadWasmKernels(): Promise<boolean> {
  loading ??= (async () => {
    try {
      const bin = atob(KERNELS_WASM_BASE64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const module = await WebAssembly.compile(bytes);
      const instantiate = async (memory: WebAssembly.Memory) => (await WebAssembly.instantiate(module, { env: { memory } })).exports as unknown as KernelExports;
      const memory = new WebAssembly.Memory({ initial: 16 }); // >= the 2 pages wasm-ld declares (an unused stack)
      own = { exports: await instantiate(memory), memory };
      const backend = tf.findBackend('wasm') as unknown as WasmBackend | undefined;
      const heap = backend?.wasm?.asm?.memory;
      if (backend && heap instanceof WebAssembly.Memory) {
        try { shared = { exports: await instantiate(heap), backend, memory: heap }; } catch { /* shared or otherwise incompatible memory: copy */ }
      }
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
  return enabled && own !== undefined && tf.getBackend() === 'wasm';
}

/** Turns the module's use off or on (tests compare both paths; benchmarks measure the gain). */
export function setWasmKernelsEnabled(on: boolean): void { enabled = on; }

/** Forces the copying mode even where tfjs's heap is shared (tests run both). */
export function setWasmKernelsCopying(on: boolean): void { copying = on; }

/** 'in place' (on tfjs's heap), 'copying', or undefined before loading / where it failed. */
export function wasmKernelsMode(): 'in place' | 'copying' | undefined {
  return own ? (shared && !copying ? 'in place' : 'copying') : undefined;
}

const size = (t: { shape: number[] }) => t.shape.reduce((a, b) => a * b, 1);

/** One kernel call's buffers: float addresses in the memory its instance `m` works on. */
interface Call {
  m: KernelExports;
  input(t: TensorInfo): number;
  output(shape: number[]): number;
  /** One scratch buffer per call. */
  scratch(floats: number): number;
  /** A table of int32s (addresses, sizes) in the scratch buffer. */
  table(values: number[]): number;
  /** The outputs, in the order `output` made them. */
  finish(): TensorInfo[];
}

let scratchAt = 0, scratchFloats = 0;
/** Tensors in place on tfjs's heap; scratch is one block malloc'ed there and kept (tens of KB). */
function inPlace(b: WasmBackend, m: KernelExports, heap: WebAssembly.Memory): Call {
  const outs: TensorInfo[] = [];
  const address = (t: TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const scratch = (floats: number) => {
    if (floats > scratchFloats) {
      if (scratchFloats > 0) b.wasm._free(scratchAt);
      scratchAt = b.wasm._malloc(floats * 4);
      scratchFloats = floats;
    }
    return scratchAt;
  };
  return {
    m,
    input: address,
    output: (shape) => { const o = b.makeOutput(shape, 'float32'); outs.push(o); return address(o); },
    scratch,
    table: (values) => { const a = scratch(values.length); new Int32Array(heap.buffer, a, values.length).set(values); return a; },
    finish: () => outs,
  };
}

/** Inputs copied into the module's own memory (a bump layout per call, grown as needed), outputs copied back. */
function copyingCall(b: WasmBackend, m: KernelExports, memory: WebAssembly.Memory): Call {
  let at = ((m.__heap_base.value as number) + 15) & ~15;
  const alloc = (floats: number) => {
    const o = at;
    at += (floats * 4 + 15) & ~15;
    const have = memory.buffer.byteLength;
    if (at > have) memory.grow(Math.ceil((at - have) / 65536));
    return o;
  };
  const view = (o: number, n: number) => new Float32Array(memory.buffer, o, n);
  const outs: { shape: number[]; at: number }[] = [];
  return {
    m,
    input: (t) => { const o = alloc(size(t)); view(o, size(t)).set(b.typedArrayFromHeap(t)); return o; },
    output: (shape) => { const o = alloc(size({ shape })); outs.push({ shape, at: o }); return o; },
    scratch: alloc,
    table: (values) => { const a = alloc(values.length); new Int32Array(memory.buffer, a, values.length).set(values); return a; },
    // All outputs are made before any is written: making one may grow tfjs's heap.
    finish: () => {
      const infos = outs.map((o) => b.makeOutput(o.shape, 'float32'));
      infos.forEach((info, i) => b.typedArrayFromHeap(info).set(view(outs[i].at, size(info))));
      return infos;
    },
  };
}

interface AttentionAttrs { heads: number; keyDim: number; causal: boolean }
interface AdamAttrs { count: number; wd: number; b1: number; omb1: number; b2: number; omb2: number; sqrtBc2: number; eps: number; stepSize: number }

function registerKernels(): void {
  const reg = (kernelName: string, kernelFunc: (inputs: Record<string, TensorInfo>, call: Call, attrs: Record<string, unknown>) => void) => {
    tf.registerKernel({
      kernelName, backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as unknown as WasmBackend;
        const call = shared && !copying && shared.backend === b ? inPlace(b, shared.exports, shared.memory) : copyingCall(b, own!.exports, own!.memory);
        kernelFunc(inputs as Record<string, TensorInfo>, call, attrs as Record<string, unknown>);
        const outs = call.finish();
        return outs.length === 1 ? outs[0] : outs;
      },
    });
  };
  // Kernels index raw memory: shapes and dtypes are checked first, so a wrong caller gets an error
  // instead of reads and writes past a tensor's buffer.
  const check = (kernel: string, inputs: Record<string, TensorInfo>, ok: boolean) => {
    const bad = Object.entries(inputs).find(([, t]) => t.dtype !== 'float32');
    if (bad || !ok) throw new R2RError('R2R_ENGINE', `${kernel}: unsupported inputs ${Object.entries(inputs).map(([n, t]) => `${n} ${t.dtype}[${t.shape}]`).join(', ')}`);
  };
  const same = (a: TensorInfo, b: TensorInfo) => a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
  const last = (t: TensorInfo) => t.shape[t.shape.length - 1];
  const attention = (inputs: Record<string, TensorInfo>, attrs: Record<string, unknown>) => {
    const { heads: h, keyDim: k } = attrs as unknown as AttentionAttrs;
    const { qkv, probs, dy } = inputs;
    const [n, t] = qkv.shape;
    check('R2rAttention', inputs, qkv.shape.length === 3 && last(qkv) === 3 * h * k && Number.isInteger(h) && Number.isInteger(k) && h > 0 && k > 0 &&
      (!probs || same(probs, { ...probs, shape: [n, h, t, t] })) && (!dy || same(dy, { ...dy, shape: [n, t, h * k] })));
  };
  reg('R2rGelu', ({ x }, c) => {
    check('R2rGelu', { x }, true);
    c.m.gelu_forward(size(x), c.input(x), c.output(x.shape));
  });
  reg('R2rGeluGrad', ({ x, dy }, c) => {
    check('R2rGeluGrad', { x, dy }, same(x, dy));
    c.m.gelu_backward(size(x), c.input(x), c.input(dy), c.output(x.shape));
  });
  reg('R2rAttention', ({ qkv }, c, attrs) => {
    attention({ qkv }, attrs);
    const { heads: h, keyDim: k, causal } = attrs as unknown as AttentionAttrs;
    const [n, t] = qkv.shape;
    c.m.attention_forward(n, t, h, k, causal ? 1 : 0, 1 / Math.sqrt(k), c.input(qkv), c.output([n, t, h * k]), c.output([n, h, t, t]), c.scratch(k * t));
  });
  reg('R2rAttentionGrad', ({ qkv, probs, dy }, c, attrs) => {
    attention({ qkv, probs, dy }, attrs);
    const { heads: h, keyDim: k, causal } = attrs as unknown as AttentionAttrs;
    const [n, t] = qkv.shape;
    c.m.attention_backward(n, t, h, k, causal ? 1 : 0, 1 / Math.sqrt(k), c.input(qkv), c.input(probs), c.input(dy), c.output(qkv.shape), c.scratch(2 * t * t + k * t));
  });
  reg('R2rLayerNorm', ({ x, gamma, beta }, c, attrs) => {
    const d = x.shape[x.shape.length - 1], rows = size(x) / d;
    check('R2rLayerNorm', { x, gamma, beta }, x.shape.length > 0 && size(gamma) === d && size(beta) === d);
    c.m.layernorm_forward(rows, d, attrs.epsilon as number, c.input(x), c.input(gamma), c.input(beta), c.output(x.shape), c.output([rows, 2]));
  });
  reg('R2rLayerNormGrad', ({ x, gamma, stats, dy }, c) => {
    const d = x.shape[x.shape.length - 1], rows = size(x) / d;
    check('R2rLayerNormGrad', { x, gamma, stats, dy }, x.shape.length > 0 && size(gamma) === d && size(stats) === 2 * rows && same(x, dy));
    c.m.layernorm_backward(rows, d, c.input(x), c.input(gamma), c.input(stats), c.input(dy), c.output(x.shape), c.output([d]), c.output([d]));
  });
  reg('R2rColumnSum', ({ x }, c) => {
    check('R2rColumnSum', { x }, x.shape.length > 0);
    const cols = x.shape[x.shape.length - 1];
    c.m.column_sum(size(x) / cols, cols, c.input(x), c.output([cols]));
  });
  reg('R2rTranspose2d', ({ x }, c) => {
    check('R2rTranspose2d', { x }, x.shape.length === 2);
    const [r, cols] = x.shape;
    c.m.transpose_2d(r, cols, c.input(x), c.output([cols, r]));
  });
  reg('R2rAdam', (inputs, c, attrs) => {
    const a = attrs as unknown as AdamAttrs;
    const { m, v } = inputs;
    const ps = Array.from({ length: a.count }, (_, i) => inputs[`p${i}`]), gs = ps.map((_, i) => inputs[`g${i}`]);
    check('R2rAdam', inputs, ps.every((p, i) => p && gs[i] && same(p, gs[i])) && same(m, v) && size(m) === ps.reduce((n, p) => n + size(p), 0));
    const mi = c.input(m), vi = c.input(v), mo = c.output(m.shape), vo = c.output(v.shape);
    const table = c.table(ps.flatMap((p, i) => [size(p), c.input(p), c.input(gs[i]), c.output(p.shape)]));
    c.m.adam_step(a.count, table, mi, vi, mo, vo, a.wd, a.b1, a.omb1, a.b2, a.omb2, a.sqrtBc2, a.eps, a.stepSize);
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

/** Adam's hyper-parameters and the step's bias corrections `1 - beta^t`. */
export interface AdamStep { lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; bc1: number; bc2: number }

/**
 * One Adam step over all `params` (flat moments `m`, `v` in the same order) in one pass, with the
 * float32 operations of TfjsOptimizer's tfjs ops in the same order, so the same results: that
 * update is ~12 ops over every weight plus a concatenation and a split.
 */
export function adamStep(params: Tensor[], grads: Tensor[], m: Tensor, v: Tensor, c: AdamStep): { params: Tensor[]; m: Tensor; v: Tensor } {
  const inputs: Record<string, Tensor> = { m, v };
  params.forEach((p, i) => { inputs[`p${i}`] = p; inputs[`g${i}`] = grads[i]; });
  const attrs: AdamAttrs = {
    count: params.length, wd: c.weightDecay, b1: c.beta1, omb1: 1 - c.beta1, b2: c.beta2, omb2: 1 - c.beta2,
    sqrtBc2: Math.sqrt(c.bc2), eps: c.epsilon, stepSize: c.lr / c.bc1,
  };
  const outs = [run('R2rAdam', inputs, attrs as unknown as Record<string, unknown>)].flat();
  return { m: outs[0], v: outs[1], params: outs.slice(2) };
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
