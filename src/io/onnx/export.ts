/**
 * r2r IR -> ONNX graph (opset 13, NCHW input, as PyTorch would export the same network in eval
 * mode). Each IR node becomes the ONNX node of the same name, whose output value is named after
 * it too, so the graph input and output keep their IR (= imported) names. Weights become
 * initializers named `<node>/<param>`; the IR's NHWC layouts are converted back (conv kernels to
 * `[O, I, kh, kw]`, dense kernels to Gemm `[out, in]` with transB, and the rows of a dense
 * layer reading a flattened volume to ONNX's C, H, W flattening order).
 *
 * Batch norm is written in inference form (moving statistics), as an eval-mode export.
 */
import { UnsupportedLayerError } from '../../errors.ts';
import { analyzeGraph, type GraphInfo } from '../../ir/graph.ts';
import { resolveWindow } from '../../ir/shapes.ts';
import type { Graph, Node, NodeKind, Weights } from '../../ir/types.ts';
import { validateWeights } from '../../ir/weights.ts';
import { concatOrders, flattenOrder, floatTensor, hwioToOihw, permuteRows, sameOrder, transpose2d } from './layout.ts';
import { AttrType, DataType, type AttributeProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './onnx_types.ts';

const EXPORTED_KINDS: ReadonlySet<string> = new Set<NodeKind>([
  'input', 'conv2d', 'dense', 'batchNorm', 'activation', 'maxPool', 'avgPool', 'globalAvgPool', 'flatten', 'add', 'concat', 'dropout',
]);

/** The opset r2r writes: supported by PyTorch >= 1.8 exports and every current ONNX Runtime. */
export const ONNX_EXPORT_OPSET = 13;

export interface OnnxExportOptions {
  /** ONNX graph name (default: the IR graph's name). */
  graphName?: string;
  /** Names the destination (a file) in error messages. */
  where?: string;
  /** Append a Softmax after the logits (as the imported model had; see ImportedModel). */
  outputActivation?: 'softmax';
}

/** What keeps `graph` from being written as ONNX (empty: nothing), without converting weights. */
export function onnxExportProblems(graph: Graph): string[] {
  return flatOrders(graph, analyzeGraph(graph)).problems;
}

export function irToOnnx(graph: Graph, weights: Weights, opts: OnnxExportOptions = {}): ModelProto {
  const where = opts.where ?? 'ONNX export';
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, where, info);
  const { orders, problems } = flatOrders(graph, info);
  if (problems.length) throw new UnsupportedLayerError(`${where}: cannot write this graph as ONNX: ${problems.join('; ')}`);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  // ONNX value of each IR node: its name, except the logits when a Softmax follows them.
  const softmax = opts.outputActivation === 'softmax';
  const val = (name: string): string => (softmax && name === graph.output ? `${name}/logits` : name);
  let input: ValueInfoProto | undefined;

  for (const n of graph.nodes) {
    const ni = info.nodes.get(n.name)!;
    const x = n.inputs.length ? val(n.inputs[0]) : '';
    const order = n.inputs.length ? orders.get(n.inputs[0]) ?? null : null;
    const w = (p: string): Float32Array => weights[`${n.name}/${p}`].data;
    const init = (p: string, dims: number[], data: Float32Array): string => {
      inits.push(floatTensor(`${n.name}/${p}`, dims, data));
      return `${n.name}/${p}`;
    };
    const node = (opType: string, inputs: string[], attribute: AttributeProto[] = [], out = val(n.name), name = n.name): string => {
      nodes.push({ name, opType, input: inputs, output: [out], attribute });
      return out;
    };
    switch (n.kind) {
      case 'input':
        input = valueInfo(n.name, n.shape.length === 3 ? [n.shape[2], n.shape[0], n.shape[1]] : n.shape);
        break;
      case 'conv2d': {
        const [h, wd, c] = ni.inputShapes[0];
        const [kh, kw] = n.kernelSize;
        const win = resolveWindow(h, wd, n.kernelSize, n.strides, n.padding);
        const ins = [x, init('weight', [n.filters, c, kh, kw], hwioToOihw(w('kernel'), [kh, kw, c, n.filters]))];
        if (n.useBias) ins.push(init('bias', [n.filters], w('bias')));
        node('Conv', ins, [ints('kernel_shape', n.kernelSize), ints('strides', n.strides), ints('pads', [win.top, win.left, win.bottom, win.right]), ints('dilations', [1, 1]), int('group', 1)]);
        break;
      }
      case 'dense': {
        const f = ni.inputShapes[0][0];
        const kernel = transpose2d(permuteRows(w('kernel'), n.units, order, true), f, n.units);
        const ins = [x, init('weight', [n.units, f], kernel)];
        if (n.useBias) ins.push(init('bias', [n.units], w('bias')));
        node('Gemm', ins, [float('alpha', 1), float('beta', 1), int('transB', 1)]);
        break;
      }
      case 'batchNorm': {
        const c = ni.outputShape[ni.outputShape.length - 1];
        const ps = (['gamma', 'beta', 'movingMean', 'movingVariance'] as const).map((p) => init(p, [c], permuteRows(w(p), 1, order, true)));
        node('BatchNormalization', [x, ...ps], [float('epsilon', n.epsilon), float('momentum', n.momentum)]);
        break;
      }
      case 'activation':
        activation(n, x, val(n.name), node, init);
        break;
      case 'maxPool': case 'avgPool': {
        const [h, wd] = ni.inputShapes[0];
        const win = resolveWindow(h, wd, n.poolSize, n.strides, n.padding);
        const attrs = [ints('kernel_shape', n.poolSize), ints('strides', n.strides), ints('pads', [win.top, win.left, win.bottom, win.right])];
        // count_include_pad=0: the IR averages over the real cells only.
        node(n.kind === 'maxPool' ? 'MaxPool' : 'AveragePool', [x], n.kind === 'avgPool' ? [...attrs, int('count_include_pad', 0)] : attrs);
        break;
      }
      case 'globalAvgPool':
        // GlobalAveragePool keeps [N, C, 1, 1]; the IR's output is [C], hence the Flatten.
        node('Flatten', [node('GlobalAveragePool', [x], [], `${n.name}/pool`)], [int('axis', 1)], val(n.name), `${n.name}/flatten`);
        break;
      case 'flatten':
        node('Flatten', [x], [int('axis', 1)]);
        break;
      case 'add':
        node(n.inputs.length === 2 ? 'Add' : 'Sum', n.inputs.map(val));
        break;
      case 'concat':
        node('Concat', n.inputs.map(val), [int('axis', 1)]);
        break;
      case 'dropout':
        node('Dropout', [x, init('ratio', [], Float32Array.of(n.rate))]);
        break;
      default:
        throw new UnsupportedLayerError(`${where}: node '${(n as Node).name}' has kind '${(n as Node).kind}', which r2r cannot write to ONNX`);
    }
  }
  if (softmax) nodes.push({ name: `${graph.output}/softmax`, opType: 'Softmax', input: [val(graph.output)], output: [graph.output], attribute: [int('axis', 1)] });
  return {
    irVersion: 7,
    opsetImport: [{ domain: '', version: ONNX_EXPORT_OPSET }],
    producerName: 'r2r',
    graph: {
      name: opts.graphName ?? graph.name ?? 'r2r',
      node: nodes,
      initializer: inits,
      input: [input!],
      output: [valueInfo(graph.output, info.outputShape)],
    },
  };
}

/**
 * For every flat IR value, the order ONNX holds its elements in: ONNX element j is IR element
 * order[j] (null: the same order). Flatten sets it, channel-wise ops keep it, concat joins it;
 * an add of two differently ordered volumes, or a flattened volume as the output, has no ONNX
 * form with the same function.
 */
function flatOrders(graph: Graph, info: GraphInfo): { orders: Map<string, Int32Array | null>; problems: string[] } {
  const orders = new Map<string, Int32Array | null>();
  const problems: string[] = [];
  for (const n of graph.nodes) {
    const ni = info.nodes.get(n.name)!;
    const first = n.inputs.length ? orders.get(n.inputs[0]) ?? null : null;
    let order: Int32Array | null = null;
    if (!EXPORTED_KINDS.has(n.kind)) problems.push(`node '${n.name}' has kind '${n.kind}', which r2r does not write to ONNX`);
    // Dense and the flat ops are written for [N, F] tensors; the IR's inputs are [F] or [H, W, C].
    if (n.kind === 'dense' && ni.inputShapes[0].length !== 1) problems.push(`node '${n.name}' (dense) reads a rank-${ni.inputShapes[0].length} input; r2r writes dense layers on flat inputs only`);
    switch (n.kind) {
      case 'flatten': {
        const shape = ni.inputShapes[0];
        order = shape.length === 3 ? flattenOrder(shape[0], shape[1], shape[2]) : first;
        break;
      }
      case 'batchNorm': case 'activation': case 'dropout':
        order = first;
        break;
      case 'add':
        if (n.inputs.some((i) => !sameOrder(orders.get(i) ?? null, first))) {
          problems.push(`node '${n.name}' (add) adds flat volumes flattened from different shapes, whose elements ONNX orders differently`);
        }
        order = first;
        break;
      case 'concat':
        if (ni.outputShape.length === 1) order = concatOrders(n.inputs.map((i, k) => ({ order: orders.get(i) ?? null, size: ni.inputShapes[k][0] })));
        break;
    }
    orders.set(n.name, order);
  }
  if (orders.get(graph.output)) problems.push(`output '${graph.output}' is a flattened volume, whose elements ONNX orders differently`);
  return { orders, problems };
}

type Emit = (opType: string, inputs: string[], attribute?: AttributeProto[], out?: string, name?: string) => string;
type Init = (p: string, dims: number[], data: Float32Array) => string;

/** Writes one activation from x to the value `out`. */
function activation(n: Extract<Node, { kind: 'activation' }>, x: string, out: string, node: Emit, init: Init): void {
  const scalar = (p: string, v: number): string => init(p, [], Float32Array.of(v));
  switch (n.fn) {
    case 'relu': node('Relu', [x]); return;
    case 'sigmoid': node('Sigmoid', [x]); return;
    case 'tanh': node('Tanh', [x]); return;
    case 'leakyRelu': node('LeakyRelu', [x], [float('alpha', n.alpha ?? 0.01)]); return;
    case 'elu': node('Elu', [x], [float('alpha', 1)]); return;
    case 'relu6': node('Clip', [x, scalar('min', 0), scalar('max', 6)]); return;
    case 'gelu': {
      // Gelu is an op only from opset 20: write PyTorch's exact form, 0.5 x (1 + erf(x / sqrt 2)).
      // The Erf node carries the IR name (the importer names the fused gelu after it).
      const part = (s: string): [string, string] => [`${n.name}/${s}`, `${n.name}/${s}`];
      const div = node('Div', [x, scalar('sqrt2', Math.SQRT2)], [], ...part('div'));
      const erf = node('Erf', [div], [], `${n.name}/erf`);
      const add = node('Add', [erf, scalar('one', 1)], [], ...part('add'));
      const mul = node('Mul', [x, add], [], ...part('mul'));
      node('Mul', [mul, scalar('half', 0.5)], [], out, `${n.name}/half`);
      return;
    }
  }
}

function valueInfo(name: string, shape: number[]): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, ...shape.map((d) => ({ dimValue: d }))] } } },
  };
}
function ints(name: string, v: number[]): AttributeProto { return { name, type: AttrType.INTS, ints: v }; }
function int(name: string, v: number): AttributeProto { return { name, type: AttrType.INT, i: v }; }
function float(name: string, v: number): AttributeProto { return { name, type: AttrType.FLOAT, f: v }; }
