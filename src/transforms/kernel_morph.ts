/**
 * Kernel-size morph (Network Morphism, Wei et al. 2016; SPEC section 3): zero-pad a conv kernel
 * spatially, centred, from kh x kw to kh' x kw' (kh' - kh and kw' - kw even and >= 0), and grow
 * the padding by half the difference on every side.
 *
 * Why exact: output (o, p) of the old conv reads input row o*s - top + i for tap i; in the new
 * conv tap i' = i + dh reads row o*s - (top + dh) + i' = the same row, and the taps i' < dh or
 * i' >= kh + dh are zero. The output size floor((H + top + bottom - kh) / s) + 1 is unchanged
 * because padding and kernel grow by the same 2*dh. Any stride, any padding mode.
 */
import { TransformError } from '../errors.ts';
import { analyzeGraph, countParams } from '../ir/graph.ts';
import { resolveWindow, shapeToString } from '../ir/shapes.ts';
import type { Conv2dNode, Graph, Padding, Tensor, Weights } from '../ir/types.ts';
import { cloneWeights, tensor, validateWeights } from '../ir/weights.ts';
import type { TensorMap, TransformResult } from './types.ts';

export interface KernelMorphOptions {
  /** The conv2d node whose kernel grows. */
  node: string;
  /** New kernel size [kh, kw], or one number for a square kernel. */
  size: [number, number] | number;
}

export function morphKernel(graph: Graph, weights: Weights, opts: KernelMorphOptions): TransformResult {
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, 'morphKernel: weights', info);
  const node = graph.nodes.find((n) => n.name === opts.node);
  if (!node) throw new TransformError(`morphKernel: no node named '${opts.node}'; conv2d nodes are ${graph.nodes.filter((n) => n.kind === 'conv2d').map((n) => n.name).join(', ')}`);
  if (node.kind !== 'conv2d') throw new TransformError(`morphKernel: '${opts.node}' is a ${node.kind}; only a conv2d kernel can be zero-padded`);
  const [kh, kw] = node.kernelSize;
  const [nh, nw] = typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
  const dh = (nh - kh) / 2, dw = (nw - kw) / 2;
  if (!Number.isInteger(dh) || !Number.isInteger(dw) || dh < 0 || dw < 0) {
    throw new TransformError(`morphKernel: '${node.name}' is ${kh}x${kw}; it can grow only by an even amount per axis to stay centred (e.g. ${kh + 2}x${kw + 2}), got ${nh}x${nw}`);
  }

  const [h, w] = info.nodes.get(node.name)!.inputShapes[0];
  const win = resolveWindow(h, w, node.kernelSize, node.strides, node.padding);
  const grown: [number, number, number, number] = [win.top + dh, win.bottom + dh, win.left + dw, win.right + dw];
  // Keep 'same' where it already resolves to the grown pads (stride 1, odd kernels); else explicit.
  const same = resolveWindow(h, w, [nh, nw], node.strides, 'same');
  const padding: Padding = node.padding === 'same' && [same.top, same.bottom, same.left, same.right].join() === grown.join() ? 'same' : grown;
  const student: Conv2dNode = { ...node, kernelSize: [nh, nw], padding };

  const g: Graph = structuredClone({ ...graph, nodes: graph.nodes.map((n) => (n === node ? student : n)) });
  const info2 = analyzeGraph(g);
  if (shapeToString(info2.nodes.get(node.name)!.outputShape) !== shapeToString(info.nodes.get(node.name)!.outputShape)) {
    throw new TransformError(`morphKernel: internal error, '${node.name}' output shape changed from ${shapeToString(info.nodes.get(node.name)!.outputShape)} to ${shapeToString(info2.nodes.get(node.name)!.outputShape)}`);
  }
  const key = `${node.name}/kernel`;
  const wts = cloneWeights(weights);
  wts[key] = zeroPadKernel(weights[key], [dh, dh, dw, dw]);
  const tensorMaps: Record<string, TensorMap> = {};
  for (const k of Object.keys(weights)) tensorMaps[k] = { kind: 'same', from: k };
  tensorMaps[key] = { kind: 'gather', from: key, axes: [{ axis: 0, source: shifted(nh, kh, dh) }, { axis: 1, source: shifted(nw, kw, dw) }] };
  return {
    graph: g,
    weights: wts,
    report: {
      transform: 'kernel', method: 'netmorph', // the CLI's name for it (--transform kernel --method netmorph)
      exact: { inference: true, training: true },
      changes: [{ node: node.name, what: `kernel ${kh}x${kw} -> ${nh}x${nw}, padding ${JSON.stringify(node.padding)} -> ${JSON.stringify(padding)}` }],
      tensorsChanged: [key],
      paramsBefore: countParams(graph, info), paramsAfter: countParams(g, info2),
      notes: [],
    },
    tensorMaps,
  };
}

/**
 * `[kh, kw, cin, cout]` zero-padded by [top, bottom, left, right] taps. The morph pads evenly;
 * an uneven pad shifts the kernel (a deliberately wrong morph, for tests).
 */
export function zeroPadKernel(k: Tensor, [top, bottom, left, right]: [number, number, number, number]): Tensor {
  const [kh, kw, cin, cout] = k.shape;
  const nh = kh + top + bottom, nw = kw + left + right, c = cin * cout;
  const out = tensor([nh, nw, cin, cout]);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) out.data.set(k.data.subarray((i * kw + j) * c, (i * kw + j + 1) * c), ((i + top) * nw + j + left) * c);
  }
  return out;
}

/** New tap i reads old tap i - d, or -1 (a new zero tap). */
function shifted(n: number, k: number, d: number): Int32Array {
  const s = new Int32Array(n);
  for (let i = 0; i < n; i++) s[i] = i - d >= 0 && i - d < k ? i - d : -1;
  return s;
}
