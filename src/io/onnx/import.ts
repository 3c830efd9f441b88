/**
 * ONNX graph -> r2r IR. ONNX (as PyTorch exports it) is NCHW; the IR is NHWC, so every ONNX value
 * is tracked as an IR node plus its ONNX rank and, for flat values, the order in which its
 * elements sit (`layout.ts flattenOrder`): PyTorch flattens a [C, H, W] volume in C, H, W order
 * and the IR in H, W, C order, so the dense layer reading a flattened volume gets its kernel rows
 * permuted here (and back on export). Initializers and Constant nodes become weights or
 * attributes; the importer accepts an op only where it maps exactly onto IR nodes. Every node it
 * cannot import is collected, and one UnsupportedLayerError lists them all.
 */
import { ModelFormatError, UnsupportedLayerError } from '../../errors.ts';
import { analyzeGraph } from '../../ir/graph.ts';
import { resolveWindow, shapeToString, sizeOf } from '../../ir/shapes.ts';
import type { ActivationFn, Graph, Node, Padding, Tensor, Weights } from '../../ir/types.ts';
import { validateWeights } from '../../ir/weights.ts';
import { concatOrders, flattenOrder, oihwToHwio, permuteRows, sameOrder, tensorValues, transpose2d } from './layout.ts';
import { AttrType, DataType, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from './onnx_types.ts';

export interface OnnxImportOptions {
  /** Graph name (default: the ONNX graph's name). */
  name?: string;
  /** Names the source (a file) in error messages. */
  where?: string;
}

export interface ImportedModel {
  graph: Graph;
  weights: Weights;
  /** The model ended in a Softmax after the logits (the IR's output); writeOnnx can put it back. */
  outputActivation?: 'softmax';
}

/** ONNX op types the importer maps onto the IR (Constant and Cast only on constants). */
export const ONNX_IMPORT_OPS: readonly string[] = [
  'Conv', 'Gemm', 'MatMul', 'BatchNormalization', 'Relu', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Elu', 'Clip',
  'Gelu', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'ReduceMean', 'Flatten', 'Reshape', 'Add', 'Sum',
  'Concat', 'Dropout', 'Identity', 'Pad', 'Softmax', 'Constant', 'Cast',
];

/** An ONNX value as the IR holds it. `rank` is the ONNX rank (4: NCHW, 2: [N, F]). */
interface Val {
  node: string;
  rank: number;
  /** IR shape without batch: [H, W, C], or [F] (a rank-4 value with shape [C] is [N, C, 1, 1]). */
  shape: number[];
  /** For flat values: ONNX element j is IR element order[j]; null when they agree. */
  order: Int32Array | null;
}

interface Const { dims: number[]; values: Float32Array | Float64Array }

/** Why one node cannot be imported; collected, not thrown to the caller. */
class Skip extends Error {}

const SQRT2 = Math.SQRT2;

export function onnxToIR(model: ModelProto, opts: OnnxImportOptions = {}): ImportedModel {
  const where = opts.where ?? 'ONNX model';
  const g = model.graph;
  if (!g) throw new ModelFormatError(`${where}: no graph`);
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 13;
  const problems: string[] = [];
  const unsupported = new Map<string, string[]>();

  // Constants: initializers, Constant nodes and Casts of constants, decoded on first use.
  const constProtos = new Map<string, TensorProto>();
  const consts = new Map<string, Const>();
  for (const t of g.initializer ?? []) if (t.name) constProtos.set(t.name, t);
  const getConst = (name: string): Const | undefined => {
    let c = consts.get(name);
    if (!c) {
      const t = constProtos.get(name);
      if (!t) return undefined;
      c = tensorValues(t, where);
      consts.set(name, c);
    }
    return c;
  };
  let nodes = (g.node ?? []).filter((n) => {
    if (isDefault(n) && n.opType === 'Constant') {
      const t = constantTensor(n);
      if (t && n.output?.[0]) { constProtos.set(n.output[0], t); return false; }
    }
    if (isDefault(n) && n.opType === 'Cast' && n.input?.[0] && n.output?.[0] && getConst(n.input[0])) {
      const c = getConst(n.input[0])!;
      const to = attrInt(n, 'to', 0);
      consts.set(n.output[0], { dims: c.dims, values: to === DataType.FLOAT ? Float32Array.from(c.values) : Float64Array.from(c.values) });
      return false;
    }
    return true;
  });

  // Uses of every value (node inputs and graph outputs), for fusions and unused-output checks.
  const outputs = (g.output ?? []).map((o) => o.name ?? '');
  const consumers = new Map<string, NodeProto[]>();
  const uses = (v: string): number => (consumers.get(v)?.length ?? 0) + outputs.filter((o) => o === v).length;
  const countConsumers = (): void => {
    consumers.clear();
    for (const n of nodes) for (const i of n.input ?? []) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  };
  countConsumers();
  nodes = fuseGelu(nodes, consumers, uses, getConst);
  countConsumers();

  // The graph input: the one graph input that is not an initializer.
  const realInputs = (g.input ?? []).filter((i) => i.name && !constProtos.has(i.name));
  if (realInputs.length !== 1) {
    throw new UnsupportedLayerError(`${where}: r2r imports models with one input, this one has ${realInputs.length} (${realInputs.map((i) => `'${i.name}'`).join(', ')})`);
  }
  const inp = realInputs[0];
  const tt = inp.type?.tensorType;
  const dims = (tt?.shape?.dim ?? []).map((d) => d.dimValue ?? 0);
  if (tt?.elemType !== DataType.FLOAT) throw new UnsupportedLayerError(`${where}: input '${inp.name}' has element type ${tt?.elemType}; r2r needs a float32 input`);
  if (!(dims.length === 4 || dims.length === 2) || dims.slice(1).some((d) => !(d > 0))) {
    throw new UnsupportedLayerError(`${where}: input '${inp.name}' must be [N, C, H, W] or [N, F] with known sizes past the batch axis, got [${(tt.shape?.dim ?? []).map((d) => d.dimParam || d.dimValue || '?').join(', ')}]`);
  }
  const batchDim = dims[0];

  const irNodes: Node[] = [];
  const weights: Weights = Object.create(null);
  const vals = new Map<string, Val>();
  const poisoned = new Set<string>();
  const used = new Set<string>();
  const uniq = (base: string): string => {
    let name = base;
    for (let k = 2; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };

  const inputName = uniq(sanitize(inp.name!) || 'input');
  const inShape = dims.length === 4 ? [dims[2], dims[3], dims[1]] : [dims[1]];
  irNodes.push({ kind: 'input', name: inputName, inputs: [], shape: inShape });
  vals.set(inp.name!, { node: inputName, rank: dims.length, shape: inShape, order: null });

  const fusedAdds = new Set<NodeProto>();
  let outputActivation: 'softmax' | undefined;

  nodes.forEach((n, index) => {
    const op = isDefault(n) ? n.opType ?? '' : `${n.domain}.${n.opType}`;
    const label = `${op} '${n.name || n.output?.[0] || `#${index}`}'`;
    const outs = (n.output ?? []).filter(Boolean);
    if (fusedAdds.has(n)) return;
    // Unsupported op types are listed even downstream of another problem.
    if (!ONNX_IMPORT_OPS.includes(op) || op === 'Constant' || op === 'Cast') {
      const list = unsupported.get(op) ?? [];
      list.push(`'${n.name || n.output?.[0] || `#${index}`}'`);
      unsupported.set(op, list);
      outs.forEach((o) => poisoned.add(o));
      return;
    }
    if ((n.input ?? []).some((i) => poisoned.has(i))) {
      // Downstream of a problem: what can be checked without the input is still reported.
      try { attributeChecks(n, op); } catch (e) { if (!(e instanceof Skip)) throw e; problems.push(`${label}: ${e.message}`); }
      outs.forEach((o) => poisoned.add(o));
      return;
    }
    try {
      convert(n, op);
    } catch (e) {
      if (!(e instanceof Skip)) throw e;
      problems.push(`${label}: ${e.message}`);
      outs.forEach((o) => poisoned.add(o));
    }
  });

  function convert(n: NodeProto, op: string): void {
    const ins = n.input ?? [];
    const out = n.output?.[0];
    if (!out) throw new Skip('has no output');
    const name = (): string => uniq(sanitize(n.name ?? '') || `${op}_${irNodes.length}`);
    const emit = (node: Node, v: Omit<Val, 'node'>, outName = out): void => {
      irNodes.push(node);
      vals.set(outName, { ...v, node: node.name });
    };
    const alias = (v: Val): void => { vals.set(out, v); };
    attributeChecks(n, op);
    const unusedOutputs = (what: string): void => {
      const extra = (n.output ?? []).slice(1).filter((o) => o && uses(o) > 0);
      if (extra.length) throw new Skip(`its ${what} output${extra.length > 1 ? 's' : ''} ${extra.map((o) => `'${o}'`).join(', ')} ${extra.length > 1 ? 'are' : 'is'} used; r2r imports only the first output`);
    };

    switch (op) {
      case 'Conv': {
        const x = spatialVal(ins[0]);
        const w = constArg(ins[1], 'weight');
        if (w.dims.length !== 4) throw new Skip(`weight must be 4-D [O, I, kh, kw] (2-D convolution), got ${shapeToString(w.dims)}`);
        const [o, i, kh, kw] = w.dims;
        if (i !== x.shape[2]) throw new Skip(`weight reads ${i} input channels, the input has ${x.shape[2]}`);
        const strides = pair(n, 'strides', [1, 1]);
        const padding = windowPadding(n, [kh, kw], strides, x.shape);
        const nm = name();
        weights[`${nm}/kernel`] = t([kh, kw, i, o], oihwToHwio(f32(w), w.dims));
        const bias = ins[2] ? constArg(ins[2], 'bias') : undefined;
        if (bias) weights[`${nm}/bias`] = t([o], vector(bias, o, 'bias'));
        const win = resolveWindow(x.shape[0], x.shape[1], [kh, kw], strides, padding);
        emit({ kind: 'conv2d', name: nm, inputs: [x.node], filters: o, kernelSize: [kh, kw], strides, padding, useBias: !!bias },
          { rank: 4, shape: [win.outH, win.outW, o], order: null });
        return;
      }
      case 'BatchNormalization': {
        const x = need(ins[0]);
        const c = x.shape[x.shape.length - 1];
        unusedOutputs('training-mode statistics');
        const nm = name();
        const params = ['gamma', 'beta', 'movingMean', 'movingVariance'] as const;
        params.forEach((p, k) => {
          const v = vector(constArg(ins[k + 1], p), c, p);
          weights[`${nm}/${p}`] = t([c], permuteRows(v, 1, x.order));
        });
        emit({ kind: 'batchNorm', name: nm, inputs: [x.node], epsilon: attrFloat(n, 'epsilon', 1e-5), momentum: attrFloat(n, 'momentum', 0.9) }, x);
        return;
      }
      case 'Relu': case 'Sigmoid': case 'Tanh': case 'LeakyRelu': case 'Elu': case 'Clip': case 'Gelu': {
        const x = need(ins[0]);
        emit({ kind: 'activation', name: name(), inputs: [x.node], ...activationOf(n, op) }, x);
        return;
      }
      case 'MaxPool': case 'AveragePool': {
        const x = spatialVal(ins[0]);
        const kernel = pair(n, 'kernel_shape', undefined);
        const strides = pair(n, 'strides', [1, 1]);
        const padding = windowPadding(n, kernel, strides, x.shape);
        if (attrInt(n, 'ceil_mode', 0) === 1 && typeof padding !== 'string') {
          // ceil_mode changes nothing when the windows tile the padded input exactly.
          const exact = (size: number, k: number, s: number, lo: number, hi: number): boolean => (size + lo + hi - k) % s === 0;
          if (!exact(x.shape[0], kernel[0], strides[0], padding[0], padding[1]) || !exact(x.shape[1], kernel[1], strides[1], padding[2], padding[3])) {
            throw new Skip('ceil_mode=1 adds a partial window here; r2r pools with floor sizes (export with ceil_mode=False)');
          }
        }
        if (op === 'MaxPool') unusedOutputs('indices');
        const win = resolveWindow(x.shape[0], x.shape[1], kernel, strides, padding);
        if (op === 'AveragePool' && attrInt(n, 'count_include_pad', 0) === 1 && win.top + win.bottom + win.left + win.right > 0) {
          throw new Skip('count_include_pad=1 with padding; r2r averages over the real cells only (PyTorch: AvgPool2d(count_include_pad=False))');
        }
        emit({ kind: op === 'MaxPool' ? 'maxPool' : 'avgPool', name: name(), inputs: [x.node], poolSize: kernel, strides, padding },
          { rank: 4, shape: [win.outH, win.outW, x.shape[2]], order: null });
        return;
      }
      case 'GlobalAveragePool': case 'ReduceMean': {
        const x = spatialVal(ins[0]);
        let keep = true;
        if (op === 'ReduceMean') {
          const axes = (opset < 18 ? attrInts(n, 'axes') : ins[1] ? ints(constArg(ins[1], 'axes')) : undefined) ?? [];
          const norm = axes.map((a) => (a < 0 ? a + 4 : a)).sort();
          if (norm.join() !== '2,3') throw new Skip(`averages over axes [${axes.join(', ')}]; r2r imports ReduceMean only over the spatial axes [2, 3] (global average pooling)`);
          keep = attrInt(n, 'keepdims', 1) === 1;
        }
        emit({ kind: 'globalAvgPool', name: name(), inputs: [x.node] }, { rank: keep ? 4 : 2, shape: [x.shape[2]], order: null });
        return;
      }
      case 'Flatten': case 'Reshape': {
        const x = need(ins[0]);
        const size = sizeOf(x.shape);
        if (op === 'Flatten') {
          const axis = attrInt(n, 'axis', 1);
          if ((axis < 0 ? axis + x.rank : axis) !== 1) throw new Skip(`axis=${axis}; r2r flattens everything but the batch axis (axis=1)`);
        } else {
          const shape = ints(constArg(ins[1], 'shape'));
          const [a, b] = shape;
          const ok = shape.length === 2 && (a === 0 || a === -1 || (a === batchDim && a > 0)) && (b === size || (b === -1 && a !== -1));
          if (!ok) throw new Skip(`reshapes to [${shape.join(', ')}]; r2r imports Reshape only to [N, ${size}] (flattening), e.g. [-1, ${size}] or [0, -1]`);
        }
        // [N, C, 1, 1] after global pooling is the IR's [C] already (r2r's export writes its
        // globalAvgPool as GlobalAveragePool + Flatten).
        if (x.rank === 4 && x.shape.length === 1) { alias({ ...x, rank: 2 }); return; }
        const order = x.shape.length === 3 ? flattenOrder(x.shape[0], x.shape[1], x.shape[2]) : x.order;
        emit({ kind: 'flatten', name: name(), inputs: [x.node] }, { rank: 2, shape: [size], order });
        return;
      }
      case 'Gemm': case 'MatMul': {
        const x = need(ins[0]);
        if (x.rank !== 2) throw new Skip(`input '${ins[0]}' has rank ${x.rank}; r2r imports ${op} on [N, F] inputs only (flatten first)`);
        const b = constArg(ins[1], 'weight');
        if (b.dims.length !== 2) throw new Skip(`weight must be 2-D, got ${shapeToString(b.dims)}`);
        const trans = op === 'Gemm' && attrInt(n, 'transB', 0) === 1;
        const [k, units] = trans ? [b.dims[1], b.dims[0]] : b.dims;
        if (k !== x.shape[0]) throw new Skip(`weight reads ${k} features, input '${ins[0]}' has ${x.shape[0]}`);
        const alpha = op === 'Gemm' ? attrFloat(n, 'alpha', 1) : 1;
        const beta = op === 'Gemm' ? attrFloat(n, 'beta', 1) : 1;
        let kernel = trans ? transpose2d(f32(b), units, k) : f32(b);
        if (alpha !== 1) kernel = kernel.map((v) => v * alpha);
        let bias: Float32Array | undefined;
        let outName = out;
        if (op === 'Gemm' && ins[2]) bias = vector(constArg(ins[2], 'bias'), units, 'bias').map((v) => v * beta);
        const next = consumers.get(out);
        if (op === 'MatMul' && next?.length === 1 && uses(out) === 1 && isDefault(next[0]) && next[0].opType === 'Add' && next[0].output?.[0]) {
          // PyTorch's Linear on a MatMul: MatMul then Add of the bias.
          const other = (next[0].input ?? []).find((i) => i !== out);
          const c = other !== undefined ? getConst(other) : undefined;
          if (c && sizeOf(c.dims) === units && c.dims.length <= 2) {
            bias = Float32Array.from(c.values);
            fusedAdds.add(next[0]);
            outName = next[0].output[0];
          }
        }
        const nm = name();
        weights[`${nm}/kernel`] = t([k, units], permuteRows(kernel, units, x.order));
        if (bias) weights[`${nm}/bias`] = t([units], bias);
        emit({ kind: 'dense', name: nm, inputs: [x.node], units, useBias: !!bias }, { rank: 2, shape: [units], order: null }, outName);
        return;
      }
      case 'Add': case 'Sum': {
        const c = ins.find((i) => getConst(i));
        if (c) throw new Skip(`adds the constant '${c}'; r2r imports Add of two computed tensors (and a MatMul's bias)`);
        const xs = ins.map(need);
        for (const v of xs.slice(1)) {
          if (v.rank !== xs[0].rank || shapeToString(v.shape) !== shapeToString(xs[0].shape)) {
            throw new Skip(`adds tensors of different shapes (${xs.map((a) => shapeToString(a.shape)).join(' + ')} in NHWC); r2r does not broadcast`);
          }
          if (!sameOrder(v.order, xs[0].order)) throw new Skip('adds flat tensors whose elements come in different orders');
        }
        emit({ kind: 'add', name: name(), inputs: xs.map((v) => v.node) }, xs[0]);
        return;
      }
      case 'Concat': {
        const xs = ins.map(need);
        const rank = xs[0].rank;
        const axis = attrInt(n, 'axis', 1);
        if ((axis < 0 ? axis + rank : axis) !== 1) throw new Skip(`axis=${axis}; r2r concatenates along channels (axis=1) only`);
        const lead = xs[0].shape.slice(0, -1);
        if (xs.some((v) => v.rank !== rank || shapeToString(v.shape.slice(0, -1)) !== shapeToString(lead))) {
          throw new Skip(`inputs differ in more than channels: ${xs.map((v) => shapeToString(v.shape)).join(', ')} (NHWC)`);
        }
        const cs = xs.map((v) => v.shape[v.shape.length - 1]);
        emit({ kind: 'concat', name: name(), inputs: xs.map((v) => v.node) },
          { rank, shape: [...lead, cs.reduce((s, v) => s + v, 0)], order: concatOrders(xs.map((v, k) => ({ order: v.order, size: cs[k] }))) });
        return;
      }
      case 'Dropout': {
        const x = need(ins[0]);
        unusedOutputs('mask');
        const rate = opset < 12 ? attrFloat(n, 'ratio', 0.5) : ins[1] ? scalar(ins[1], 'ratio') : 0.5;
        if (!(rate >= 0 && rate < 1)) throw new Skip(`ratio=${rate}; r2r needs a dropout rate in [0, 1)`);
        emit({ kind: 'dropout', name: name(), inputs: [x.node], rate }, x);
        return;
      }
      case 'Identity':
        alias(need(ins[0]));
        return;
      case 'Softmax': {
        // The IR's output is logits: a final Softmax is kept aside as the output activation.
        const x = need(ins[0]);
        if (!outputs.includes(out) || x.rank !== 2) throw new Skip('r2r imports Softmax only as the last op, on [N, K] logits');
        const axis = attrInt(n, 'axis', opset < 13 ? 1 : -1);
        if (axis !== 1 && axis !== -1) throw new Skip(`axis=${axis}; a softmax over the classes has axis 1`);
        outputActivation = 'softmax';
        alias(x);
        return;
      }
      case 'Pad': {
        const x = need(ins[0]);
        const pads = opset < 11 ? attrInts(n, 'pads') ?? [] : ins[1] ? ints(constArg(ins[1], 'pads')) : [];
        if (pads.some((p) => p !== 0)) throw new Skip(`pads [${pads.join(', ')}]; r2r imports Pad only when it pads nothing (put the padding in the Conv or pool instead)`);
        alias(x);
        return;
      }
    }
    throw new Skip('not handled');
  }

  /** Checks that need no input shape, so they also run downstream of another problem. */
  function attributeChecks(n: NodeProto, op: string): void {
    switch (op) {
      case 'Conv':
        if (attrInt(n, 'group', 1) !== 1) throw new Skip(`group=${attrInt(n, 'group', 1)} (grouped or depthwise convolution) is not supported`);
        ones(n, 'dilations');
        return;
      case 'MaxPool': case 'AveragePool':
        ones(n, 'dilations');
        return;
      case 'Gemm':
        if (attrInt(n, 'transA', 0) !== 0) throw new Skip('transA=1 is not supported');
        return;
      case 'Relu': case 'Sigmoid': case 'Tanh': case 'LeakyRelu': case 'Elu': case 'Clip': case 'Gelu':
        activationOf(n, op);
        return;
    }
  }
  function activationOf(n: NodeProto, op: string): { fn: ActivationFn; alpha?: number } {
    const ins = n.input ?? [];
    switch (op) {
      case 'Relu': return { fn: 'relu' };
      case 'Sigmoid': return { fn: 'sigmoid' };
      case 'Tanh': return { fn: 'tanh' };
      case 'LeakyRelu': return { fn: 'leakyRelu', alpha: attrFloat(n, 'alpha', 0.01) };
      case 'Elu': {
        const a = attrFloat(n, 'alpha', 1);
        if (a !== 1) throw new Skip(`alpha=${a}; r2r's elu has alpha 1`);
        return { fn: 'elu' };
      }
      case 'Gelu': {
        const approx = attrString(n, 'approximate', 'none');
        if (approx !== 'none') throw new Skip(`approximate='${approx}'; r2r's gelu is the exact erf form`);
        return { fn: 'gelu' };
      }
    }
    const [lo, hi] = opset < 11
      ? [attrFloat(n, 'min', -Infinity), attrFloat(n, 'max', Infinity)]
      : [ins[1] ? scalar(ins[1], 'min') : -Infinity, ins[2] ? scalar(ins[2], 'max') : Infinity];
    if (lo === 0 && hi === 6) return { fn: 'relu6' };
    if (lo === 0 && hi === Infinity) return { fn: 'relu' };
    throw new Skip(`clips to [${lo}, ${hi}]; r2r imports Clip only as relu6 [0, 6] or relu [0, inf)`);
  }

  function need(name: string | undefined): Val {
    if (!name) throw new Skip('a required input is missing');
    const v = vals.get(name);
    if (v) return v;
    if (getConst(name)) throw new Skip(`input '${name}' is a constant; r2r needs a tensor computed from the model input here`);
    throw new Skip(`input '${name}' is not produced by any earlier node (the graph is not in topological order)`);
  }
  function spatialVal(name: string | undefined): Val {
    const v = need(name);
    if (v.rank !== 4 || v.shape.length !== 3) throw new Skip(`input '${name}' must be an NCHW volume, got ${v.rank === 4 ? '[N, C, 1, 1] after global pooling' : `rank ${v.rank}`}`);
    return v;
  }
  function constArg(name: string | undefined, what: string): Const {
    const c = name ? getConst(name) : undefined;
    if (!c) throw new Skip(`${what} ${name ? `'${name}' ` : ''}must be an initializer or constant${name ? '' : ' (missing)'}`);
    return c;
  }
  function scalar(name: string, what: string): number {
    const c = constArg(name, what);
    if (c.values.length !== 1) throw new Skip(`${what} '${name}' must be a scalar, got shape ${shapeToString(c.dims)}`);
    return c.values[0];
  }
  function vector(c: Const, n: number, what: string): Float32Array {
    if (c.values.length === n) return f32(c);
    if (c.values.length === 1) return new Float32Array(n).fill(c.values[0]);
    throw new Skip(`${what} has shape ${shapeToString(c.dims)}, expected [${n}]`);
  }
  function windowPadding(n: NodeProto, kernel: [number, number], strides: [number, number], [h, w]: number[]): Padding {
    const auto = attrString(n, 'auto_pad', 'NOTSET');
    if (auto === 'VALID') return 'valid';
    if (auto === 'SAME_UPPER') return 'same';
    if (auto === 'SAME_LOWER') {
      // The odd extra pad goes first: TensorFlow's 'same' with the two sides swapped.
      const s = resolveWindow(h, w, kernel, strides, 'same');
      return [s.bottom, s.top, s.right, s.left];
    }
    if (auto !== 'NOTSET' && auto !== '') throw new Skip(`auto_pad='${auto}' is not an ONNX value`);
    const p = attrInts(n, 'pads') ?? [0, 0, 0, 0];
    if (p.length !== 4) throw new Skip(`pads [${p.join(', ')}] must have 4 entries (2-D windows)`);
    return [p[0], p[2], p[1], p[3]];
  }

  problems.unshift(...[...unsupported].map(([op, names]) => `unsupported op ${op}: node${names.length > 1 ? 's' : ''} ${names.join(', ')}`));
  const hint = unsupported.has('Shape') ? '\n(Shape and Gather come from x.view(x.size(0), -1) under dynamic_axes; PyTorch exports torch.flatten(x, 1) as one Flatten)' : '';
  if (outputs.length !== 1) problems.push(`the model has ${outputs.length} outputs (${outputs.map((o) => `'${o}'`).join(', ')}); r2r imports models with one output`);
  const outVal = vals.get(outputs[0]);
  if (problems.length === 0) {
    if (!outVal) problems.push(`output '${outputs[0]}' is not computed from the input`);
    else if (outVal.shape.length !== 1 || outVal.order) problems.push(`output '${outputs[0]}' must be [N, K] logits, got an NCHW volume or a flattened one`);
    else if (outVal.node === inputName) problems.push(`output '${outputs[0]}' is the input itself`);
  }
  if (problems.length) {
    throw new UnsupportedLayerError(`${where}: cannot import ${problems.length === 1 ? 'this model' : `this model (${problems.length} problems)`}; nothing was converted:\n  ${problems.join('\n  ')}${hint}\n(r2r imports the ONNX ops ${ONNX_IMPORT_OPS.join(', ')})`);
  }

  // The logits node takes the ONNX output's name, so an export writes the same output name.
  let outNode = outVal!.node;
  const want = sanitize(outputs[0]);
  if (want && want !== outNode && !used.has(want)) {
    renameNode(irNodes, weights, outNode, want);
    outNode = want;
  }
  const graph: Graph = { format: 'r2r-graph', version: 1, name: opts.name ?? (g.name || 'onnx-model'), nodes: irNodes, output: outNode };
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, where, info);
  return { graph, weights, ...(outputActivation ? { outputActivation } : {}) };
}

/** PyTorch's exact GELU, `x * 0.5 * (1 + erf(x / sqrt 2))`, exported before opset 20's Gelu op. */
function fuseGelu(nodes: NodeProto[], consumers: Map<string, NodeProto[]>, uses: (v: string) => number, getConst: (n: string) => Const | undefined): NodeProto[] {
  const near = (name: string | undefined, v: number): boolean => {
    const c = name ? getConst(name) : undefined;
    return !!c && c.values.length === 1 && Math.abs(c.values[0] - v) < 1e-6;
  };
  const only = (v: string | undefined, op: string): NodeProto | undefined => {
    const c = v ? consumers.get(v) : undefined;
    return c?.length === 1 && uses(v!) === 1 && c[0].opType === op && isDefault(c[0]) ? c[0] : undefined;
  };
  const drop = new Set<NodeProto>();
  const replace = new Map<NodeProto, NodeProto>();
  for (const div of nodes) {
    if (div.opType !== 'Div' || !isDefault(div) || !near(div.input?.[1], SQRT2)) continue;
    const x = div.input![0];
    const erf = only(div.output?.[0], 'Erf');
    const add = only(erf?.output?.[0], 'Add');
    if (!erf || !add || !near((add.input ?? []).find((i) => i !== erf.output![0]), 1)) continue;
    const mul = only(add.output?.[0], 'Mul');
    if (!mul || !(mul.input ?? []).includes(x)) continue;
    const half = only(mul.output?.[0], 'Mul');
    if (!half || !near((half.input ?? []).find((i) => i !== mul.output![0]), 0.5)) continue;
    [div, erf, add, mul].forEach((n) => drop.add(n));
    replace.set(half, { opType: 'Gelu', name: (erf.name ?? '').replace(/Erf$/, 'Gelu'), input: [x], output: [half.output![0]], attribute: [] });
  }
  return nodes.filter((n) => !drop.has(n)).map((n) => replace.get(n) ?? n);
}

function renameNode(nodes: Node[], weights: Weights, from: string, to: string): void {
  for (const n of nodes) {
    if (n.name === from) n.name = to;
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
  }
  for (const key of Object.keys(weights)) {
    if (key.startsWith(`${from}/`)) {
      weights[`${to}${key.slice(from.length)}`] = weights[key];
      delete weights[key];
    }
  }
}

/** IR names may not contain '/', which PyTorch puts in node names ("/layer1/conv1/Conv"). */
function sanitize(name: string): string {
  return name.replace(/^\/+/, '').replace(/\//g, '.');
}

function isDefault(n: NodeProto): boolean { return !n.domain || n.domain === 'ai.onnx'; }

function attr(n: NodeProto, name: string): AttributeProto | undefined { return (n.attribute ?? []).find((a) => a.name === name); }
function attrInt(n: NodeProto, name: string, dflt: number): number { const a = attr(n, name); return a?.i !== undefined ? Number(a.i) : dflt; }
function attrFloat(n: NodeProto, name: string, dflt: number): number { const a = attr(n, name); return a?.f !== undefined ? a.f : dflt; }
function attrInts(n: NodeProto, name: string): number[] | undefined { const a = attr(n, name); return a ? (a.ints ?? []).map(Number) : undefined; }
function attrString(n: NodeProto, name: string, dflt: string): string { const a = attr(n, name); return a?.s ? new TextDecoder().decode(a.s) : dflt; }
function pair(n: NodeProto, name: string, dflt: [number, number] | undefined): [number, number] {
  const v = attrInts(n, name) ?? dflt;
  if (!v || v.length !== 2) throw new Skip(`${name} ${v ? `[${v.join(', ')}]` : 'missing'}: r2r imports 2-D windows only`);
  return [v[0], v[1]];
}
function ones(n: NodeProto, name: string): void {
  const v = attrInts(n, name);
  if (v && v.some((d) => d !== 1)) throw new Skip(`${name} [${v.join(', ')}] (dilated windows) are not supported`);
}

/** The tensor a Constant node holds, from whichever `value*` attribute it uses. */
function constantTensor(n: NodeProto): TensorProto | undefined {
  const a = (n.attribute ?? [])[0];
  if (!a) return undefined;
  switch (a.name) {
    case 'value': return a.t;
    case 'value_float': return { dims: [], dataType: DataType.FLOAT, floatData: [a.f ?? 0] };
    case 'value_floats': return { dims: [a.floats?.length ?? 0], dataType: DataType.FLOAT, floatData: a.floats ?? [] };
    case 'value_int': return { dims: [], dataType: DataType.INT64, int64Data: [Number(a.i ?? 0)] };
    case 'value_ints': return { dims: [a.ints?.length ?? 0], dataType: DataType.INT64, int64Data: (a.ints ?? []).map(Number) };
  }
  return a.type === AttrType.TENSOR ? a.t : undefined;
}

function f32(c: Const): Float32Array { return c.values instanceof Float32Array ? c.values : Float32Array.from(c.values); }
function ints(c: Const): number[] { return Array.from(c.values, (v) => Math.trunc(v)); }
function t(shape: number[], data: Float32Array): Tensor { return { shape, data }; }
