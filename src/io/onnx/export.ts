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
import { analyzeGraph } from '../../ir/graph.ts';
import { resolveWindow } from '../../ir/shapes.ts';
import type { Graph, Node, Weights } from '../../ir/types.ts';
import { validateWeights } from '../../ir/weights.ts';
import { concatOrders, flattenOrder, floatTensor, hwioToOihw, permuteRows, sameOrder, transpose2d } from './layout.ts';
import { AttrType, DataType, type AttributeProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.ts';

/** The opset r2r writes: supported by PyTorch >= 1.8 exports and every current ONNX Runtime. */
export const ONNX_EXPORT_OPSET = 13;

export interface OnnxExportOptions {
  /** ONNX graph name (default: the IR graph's name). */
  graphName?: string;
  /** Names the destination (a file) in error messages. */
  where?: string;
}

export function irToOnnx(graph: Graph, weights: Weights, opts: OnnxExportOptions = {}): ModelProto {
  const where = opts.where ?? 'ONNX export';
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, where, info);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  /** Flat IR values: ONNX element j is IR element order[j] (null: the same order). */
  const orders = new Map<string, Int32Array | null>();
  let input: ValueInfoProto | undefined;

  for (const n of graph.nodes) {
    const ni = info.nodes.get(n.name)!;
    const x = n.inputs[0];
    const order = x !== undefined ? orders.get(x) ?? null : null;
    const w = (p: string): Float32Array => weights[`${n.name}/${p}`].data;
    const init = (p: string, dims: number[], data: Float32Array): string => {
      inits.push(floatTensor(`${n.name}/${p}`, dims, data));
      return `${n.name}/${p}`;
    };
    const node = (opType: string, inputs: string[], attribute: AttributeProto[] = [], out = n.name, name = n.name): string => {
      nodes.push({ name, opType, input: inputs, output: [out], attribute });
      return out;
    };
    orders.set(n.name, null);
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
        orders.set(n.name, order);
        break;
      }
      case 'activation':
        activation(n, x, node, init);
        orders.set(n.name, order);
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
        node('Flatten', [node('GlobalAveragePool', [x], [], `${n.name}/pool`)], [int('axis', 1)], n.name, `${n.name}/flatten`);
        break;
      case 'flatten': {
        const [h, wd, c] = ni.inputShapes[0];
        node('Flatten', [x], [int('axis', 1)]);
        orders.set(n.name, flattenOrder(h, wd, c));
        break;
      }
      case 'add': {
        const os = n.inputs.map((i) => orders.get(i) ?? null);
        if (os.some((o) => !sameOrder(o, os[0]))) {
          throw new UnsupportedLayerError(`${where}: node '${n.name}' (add) adds flat volumes flattened from different shapes; ONNX would add them in different element orders`);
        }
        node(n.inputs.length === 2 ? 'Add' : 'Sum', n.inputs);
        orders.set(n.name, os[0]);
        break;
      }
      case 'concat': {
        node('Concat', n.inputs, [int('axis', 1)]);
        if (ni.outputShape.length === 1) {
          orders.set(n.name, concatOrders(n.inputs.map((i, k) => ({ order: orders.get(i) ?? null, size: ni.inputShapes[k][0] }))));
        }
        break;
      }
      case 'dropout': {
        const ratio = init('ratio', [], Float32Array.of(n.rate));
        node('Dropout', [x, ratio]);
        orders.set(n.name, order);
        break;
      }
      default:
        throw new UnsupportedLayerError(`${where}: node '${(n as Node).name}' has kind '${(n as Node).kind}', which r2r cannot write to ONNX`);
    }
  }
  if (orders.get(graph.output)) {
    throw new UnsupportedLayerError(`${where}: output '${graph.output}' is a flattened volume; ONNX would order its elements differently`);
  }
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

type Emit = (opType: string, inputs: string[], attribute?: AttributeProto[], out?: string, name?: string) => string;
type Init = (p: string, dims: number[], data: Float32Array) => string;

function activation(n: Extract<Node, { kind: 'activation' }>, x: string, node: Emit, init: Init): void {
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
      node('Mul', [mul, scalar('half', 0.5)], [], n.name, `${n.name}/half`);
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
