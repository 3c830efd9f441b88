import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { R2RError } from '../../errors.ts';
import { GraphBuilder } from '../../ir/builder.ts';
import { analyzeGraph } from '../../ir/graph.ts';
import type { Graph, Weights } from '../../ir/types.ts';
import { initWeights } from '../../ir/weights.ts';
import { zooModel } from '../../models/zoo.ts';
import { compareLogits } from '../../reference/compare.ts';
import { forwardReference } from '../../reference/execute.ts';
import { Rng } from '../../rng.ts';
import { randomBatch } from '../../verify.ts';
import { nhwcToNchw, runOnnx } from '../../../test/helpers/onnx_runtime.ts';
import { onnxExportProblems, readOnnx, writeOnnx, writeOnnxFile } from './index.ts';
import { flattenOrder, floatTensor, hwioToOihw, oihwToHwio } from './layout.ts';
import { AttrType, DataType, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from './onnx_types.ts';
import { encodeModel } from './proto.ts';
import { ONNX_SCHEMA } from './schema.ts';

/** Every IR node kind and activation; asymmetric 'same' pads; BN and concat on flattened volumes. */
function everyOp(): Graph {
  const b = new GraphBuilder('every-op');
  const x = b.input([9, 9, 3]);
  let a = b.conv2d(x, 6, 2, { stride: 2, padding: 'same' }); // pads 0 before, 1 after
  a = b.activation(b.batchNorm(a), 'leakyRelu', 'leaky');
  const e = b.activation(b.conv2d(a, 4, 3, { padding: 'same', useBias: false }), 'elu');
  const r = b.activation(b.relu(b.conv2d(a, 4, 1)), 'relu6');
  const cat = b.concat([e, r]);
  const p = b.maxPool(cat, 2, { stride: 2, padding: 'same' });
  const q = b.avgPool(cat, 3, { stride: 2, padding: 'same' });
  const f = b.batchNorm(b.flatten(b.activation(b.add([p, q]), 'tanh')));
  const g = b.flatten(b.activation(b.globalAvgPool(cat), 'sigmoid')); // flatten of a flat volume
  const d = b.dropout(b.activation(b.dense(b.concat([f, g]), 12), 'gelu'), 0.3);
  const graph = b.build(b.dense(d, 5, { name: 'logits' }));
  const leaky = graph.nodes.find((n) => n.name === 'leaky');
  if (leaky?.kind === 'activation') leaky.alpha = 0.2;
  return graph;
}

/** IR reference logits, and ONNX Runtime's on r2r's export, for one random batch. */
async function refAndOrt(graph: Graph, weights: Weights, n = 3): Promise<{ ref: Float32Array; ort: Float32Array; bytes: Uint8Array; x: Float32Array }> {
  const info = analyzeGraph(graph);
  const x = randomBatch(info.inputShape, n, new Rng(7));
  const bytes = writeOnnx(graph, weights);
  const xin = info.inputShape.length === 3 ? nhwcToNchw(x, n, info.inputShape) : x;
  const dims = info.inputShape.length === 3 ? [n, info.inputShape[2], info.inputShape[0], info.inputShape[1]] : [n, ...info.inputShape];
  const ort = await runOnnx(bytes, xin, dims, { input: info.inputName, output: graph.output });
  return { ref: forwardReference(graph, weights, x, n, { training: false }), ort, bytes, x };
}

describe('ONNX schema', () => {
  it('schema.ts is the vendored onnx.proto as protobufjs parses it (regenerate: node scripts/gen-onnx-schema.mjs)', () => {
    const parsed = protobuf.parse(readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8')).root.toJSON();
    assert.deepEqual(JSON.parse(JSON.stringify(parsed)), ONNX_SCHEMA);
  });
});

describe('ONNX layouts', () => {
  it('conv kernels: OIHW -> HWIO -> OIHW is the identity, and element [o, i, y, x] lands at [y, x, i, o]', () => {
    const dims = [3, 2, 2, 4];
    const w = Float32Array.from({ length: 48 }, (_, k) => k);
    const k = oihwToHwio(w, dims);
    assert.equal(k[((1 * 4 + 3) * 2 + 1) * 3 + 2], w[((2 * 2 + 1) * 2 + 1) * 4 + 3]);
    assert.deepEqual(hwioToOihw(k, [2, 4, 2, 3]), w);
  });
  it('flatten order: ONNX (C, H, W) index -> IR (H, W, C) index', () => {
    // H=1, W=2, C=2: ONNX [c0p0, c0p1, c1p0, c1p1], IR [p0c0, p0c1, p1c0, p1c1].
    assert.deepEqual(flattenOrder(1, 2, 2), Int32Array.from([0, 2, 1, 3]));
    assert.equal(flattenOrder(1, 1, 5), null);
  });
});

describe('ONNX export in ONNX Runtime matches the reference executor; import reads it back', () => {
  const cases: [string, () => Graph][] = [
    ['resnet-cifar10(1/8)', () => zooModel('resnet-cifar10', { width: 0.125 })],
    ['small-conv (flatten of a 13x13x8 volume)', () => zooModel('small-conv', { width: 0.5 })],
    ['mlp (flatten of the input)', () => zooModel('mlp', { width: 0.125 })],
    ['every IR op and activation', everyOp],
  ];
  for (const [name, build] of cases) {
    it(name, async () => {
      const graph = build();
      const weights = initWeights(graph, new Rng(0), { randomBatchNorm: true });
      const { ref, ort, bytes, x } = await refAndOrt(graph, weights);
      const d = compareLogits(ref, ort);
      assert.ok(d.relDiff <= 1e-5, `ONNX Runtime vs reference: relDiff ${d.relDiff}`);
      const back = readOnnx(bytes);
      assert.deepEqual(back.graph.nodes.map((n) => `${n.kind}:${n.name}`), graph.nodes.map((n) => `${n.kind}:${n.name}`));
      assert.equal(back.graph.output, graph.output);
      for (const [k, t] of Object.entries(weights)) assert.deepEqual(back.weights[k], t, k);
      assert.ok(compareLogits(ref, forwardReference(back.graph, back.weights, x, 3, { training: false })).relDiff <= 1e-6);
    });
  }
  it('a final Softmax: written on request, read back as the output activation, logits unchanged', async () => {
    const graph = zooModel('mlp', { width: 0.125 });
    const weights = initWeights(graph, new Rng(0));
    const n = 2;
    const x = randomBatch([32, 32, 3], n, new Rng(3));
    const bytes = writeOnnx(graph, weights, { outputActivation: 'softmax' });
    const probs = await runOnnx(bytes, nhwcToNchw(x, n, [32, 32, 3]), [n, 3, 32, 32], { input: 'input', output: graph.output });
    const logits = forwardReference(graph, weights, x, n, { training: false });
    const k = logits.length / n;
    for (let b = 0; b < n; b++) {
      const row = logits.subarray(b * k, (b + 1) * k);
      const z = row.reduce((s, v) => s + Math.exp(v), 0);
      row.forEach((v, i) => assert.ok(Math.abs(Math.exp(v) / z - probs[b * k + i]) < 1e-6));
    }
    const back = readOnnx(bytes);
    assert.equal(back.outputActivation, 'softmax');
    assert.equal(back.graph.output, graph.output);
    assert.deepEqual(forwardReference(back.graph, back.weights, x, n, { training: false }), logits);
    assert.equal(readOnnx(writeOnnx(graph, weights)).outputActivation, undefined);
  });
  it('counterpart: a changed weight shows in ONNX Runtime', async () => {
    const graph = zooModel('small-conv', { width: 0.5 });
    const weights = initWeights(graph, new Rng(0));
    const { ref } = await refAndOrt(graph, weights);
    const k = weights['fc1/kernel'];
    const cols = k.shape[1];
    const changed = Float32Array.from(k.data);
    changed.set(k.data.subarray(0, cols), cols); // row 1 := row 0
    const { ort } = await refAndOrt(graph, { ...weights, 'fc1/kernel': { shape: k.shape, data: changed } });
    assert.ok(compareLogits(ref, ort).relDiff > 1e-4);
  });
});

// Hand-built ONNX models for what PyTorch's exports above do not produce.
const attrs = {
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints }),
  int: (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i }),
  str: (name: string, s: string): AttributeProto => ({ name, type: AttrType.STRING, s: new TextEncoder().encode(s) }),
};
function onnxModel(inputDims: number[], nodes: NodeProto[], inits: TensorProto[], output: string, inputName = 'x'): Uint8Array {
  const vi = (name: string, dims: (number | string)[]) => ({
    name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  const m: ModelProto = {
    irVersion: 7, opsetImport: [{ domain: '', version: 13 }], producerName: 'test',
    graph: { name: 'hand', node: nodes, initializer: inits, input: [vi(inputName, ['N', ...inputDims])], output: [vi(output, ['N', 5])] },
  };
  return encodeModel(m);
}
const rand = (n: number, seed: number) => { const r = new Rng(seed); return Float32Array.from({ length: n }, () => r.uniform(-1, 1)); };

describe('ONNX import of hand-built graphs', () => {
  it('SAME_UPPER conv, Reshape [0, -1] of a 2x2 volume, MatMul + Add as one dense, Identity to the output: ONNX Runtime agrees', async () => {
    const bytes = onnxModel([2, 3, 3], [
      { name: 'conv', opType: 'Conv', input: ['x', 'W'], output: ['c'], attribute: [attrs.str('auto_pad', 'SAME_UPPER'), attrs.ints('strides', [2, 2])] },
      { name: 'reshape', opType: 'Reshape', input: ['c', 'shape'], output: ['r'] },
      { name: 'mm', opType: 'MatMul', input: ['r', 'Wm'], output: ['m'] },
      { name: 'bias', opType: 'Add', input: ['m', 'bm'], output: ['a'] },
      { name: 'id', opType: 'Identity', input: ['a'], output: ['out'] },
    ], [floatTensor('W', [4, 2, 3, 3], rand(72, 1)), { name: 'shape', dims: [2], dataType: DataType.INT64, int64Data: [0, -1] },
      floatTensor('Wm', [16, 5], rand(80, 2)), floatTensor('bm', [5], rand(5, 3))], 'out');
    const { graph, weights } = readOnnx(bytes);
    assert.deepEqual(graph.nodes.map((n) => `${n.kind}:${n.name}`), ['input:x', 'conv2d:conv', 'flatten:reshape', 'dense:out']);
    const n = 2;
    const x = randomBatch([3, 3, 2], n, new Rng(5));
    const ort = await runOnnx(bytes, nhwcToNchw(x, n, [3, 3, 2]), [n, 2, 3, 3], { input: 'x', output: 'out' });
    const d = compareLogits(ort, forwardReference(graph, weights, x, n, { training: false }));
    assert.ok(d.relDiff <= 1e-5, `relDiff ${d.relDiff}`);
  });

  it('SAME_LOWER conv, ceil_mode pool that adds no window, zero Pad, ReduceMean over H, W, Sum, Gemm with alpha/beta and no transB', async () => {
    const bytes = onnxModel([3, 7, 7], [
      { name: 'conv', opType: 'Conv', input: ['x', 'W', 'b'], output: ['c'], attribute: [attrs.str('auto_pad', 'SAME_LOWER'), attrs.ints('strides', [2, 2])] },
      { name: 'pool', opType: 'MaxPool', input: ['c'], output: ['p'], attribute: [attrs.ints('kernel_shape', [2, 2]), attrs.ints('strides', [2, 2]), attrs.int('ceil_mode', 1)] },
      { name: 'pad', opType: 'Pad', input: ['p', 'pads'], output: ['q'] },
      { name: 'mean', opType: 'ReduceMean', input: ['q'], output: ['m'], attribute: [attrs.ints('axes', [-1, 2]), attrs.int('keepdims', 0)] },
      { name: 'sum', opType: 'Sum', input: ['m', 'm', 'm'], output: ['s'] },
      { name: 'gemm', opType: 'Gemm', input: ['s', 'Wg', 'C'], output: ['out'], attribute: [{ name: 'alpha', type: AttrType.FLOAT, f: 0.5 }, { name: 'beta', type: AttrType.FLOAT, f: 2 }] },
    ], [floatTensor('W', [4, 3, 2, 2], rand(48, 1)), floatTensor('b', [4], rand(4, 2)), { name: 'pads', dims: [8], dataType: DataType.INT64, int64Data: [0, 0, 0, 0, 0, 0, 0, 0] },
      floatTensor('Wg', [4, 5], rand(20, 3)), floatTensor('C', [1, 5], rand(5, 4))], 'out');
    const { graph, weights } = readOnnx(bytes);
    assert.deepEqual(graph.nodes.map((n) => n.kind), ['input', 'conv2d', 'maxPool', 'globalAvgPool', 'add', 'dense']);
    const n = 2;
    const x = randomBatch([7, 7, 3], n, new Rng(5));
    const ort = await runOnnx(bytes, nhwcToNchw(x, n, [7, 7, 3]), [n, 3, 7, 7], { input: 'x', output: 'out' });
    const d = compareLogits(ort, forwardReference(graph, weights, x, n, { training: false }));
    assert.ok(d.relDiff <= 1e-5, `relDiff ${d.relDiff}`);
  });

  it('one error lists every unsupported op type and node, and attributes r2r cannot map', () => {
    const bytes = onnxModel([3, 8, 8], [
      { name: 's1', opType: 'Sin', input: ['x'], output: ['a'] },
      { name: 'grouped', opType: 'Conv', input: ['x', 'Wg'], output: ['b'], attribute: [attrs.int('group', 3)] },
      { name: 'lstm', opType: 'LSTM', input: ['b'], output: ['c'] },
      { name: 'conv', opType: 'Conv', input: ['x', 'W'], output: ['d'] },
      { name: 'avg', opType: 'AveragePool', input: ['d'], output: ['e'], attribute: [attrs.ints('kernel_shape', [3, 3]), attrs.ints('pads', [1, 1, 1, 1]), attrs.int('count_include_pad', 1)] },
      { name: 'clip', opType: 'Clip', input: ['d', 'lo', 'hi'], output: ['f'] },
      { name: 's2', opType: 'Sin', input: ['e'], output: ['g'] },
    ], [floatTensor('Wg', [3, 1, 3, 3], rand(27, 1)), floatTensor('W', [4, 3, 3, 3], rand(108, 2)), floatTensor('lo', [], Float32Array.of(-1)), floatTensor('hi', [], Float32Array.of(1))], 'g');
    assert.throws(() => readOnnx(bytes, { where: 'bad.onnx' }), (e: unknown) => {
      assert.ok(e instanceof R2RError && e.code === 'R2R_UNSUPPORTED_LAYER');
      for (const part of ["bad.onnx: cannot import this model (5 problems)", "unsupported op Sin: nodes 's1', 's2'", "unsupported op LSTM: node 'lstm'",
        "Conv 'grouped': group=3", "AveragePool 'avg': count_include_pad=1", "Clip 'clip': clips to [-1, 1]"]) {
        assert.ok(e.message.includes(part), `message lacks "${part}":\n${e.message}`);
      }
      return true;
    });
  });

  it('malformed bytes give ModelFormatError naming the source', () => {
    const good = writeOnnx(zooModel('mlp', { width: 0.125 }), initWeights(zooModel('mlp', { width: 0.125 }), new Rng(0)));
    for (const bytes of [new TextEncoder().encode('{"format": "r2r-graph"}'), good.subarray(0, good.length >> 1)]) {
      assert.throws(() => readOnnx(bytes, { where: 'x.onnx' }), (e: unknown) => e instanceof R2RError && e.code === 'R2R_MODEL_FORMAT' && e.message.startsWith('x.onnx: '));
    }
  });

  it('names from the file cannot reach an object prototype', () => {
    const bytes = onnxModel([6], [
      { name: '__proto__', opType: 'Gemm', input: ['constructor', 'W'], output: ['h'], attribute: [attrs.int('transB', 1)] },
      { name: 'toString', opType: 'Relu', input: ['h'], output: ['__proto__'] },
    ], [floatTensor('W', [5, 6], rand(30, 1))], '__proto__', 'constructor');
    const { graph, weights } = readOnnx(bytes);
    assert.equal(Object.getPrototypeOf(weights), null);
    // '__proto__' is taken, so the logits node keeps its own name.
    assert.deepEqual(graph.nodes.map((n) => n.name), ['constructor', '__proto__', 'toString']);
    assert.deepEqual(weights['__proto__/kernel'].shape, [6, 5]);
    assert.equal(({} as Record<string, unknown>).kernel, undefined);
  });
});

describe('ONNX export errors', () => {
  it('adding flattened volumes of different shapes is refused and nothing is written', () => {
    const b = new GraphBuilder('mixed');
    const x = b.input([4, 4, 2]);
    const fa = b.flatten(b.conv2d(x, 2, 1));
    const fb = b.flatten(b.conv2d(x, 8, 2, { stride: 2, padding: 'valid' }));
    const graph = b.build(b.dense(b.add([fa, fb]), 3));
    const dir = mkdtempSync(join(tmpdir(), 'r2r-onnx-'));
    try {
      const path = join(dir, 'mixed.onnx');
      assert.equal(onnxExportProblems(graph).length, 1);
      assert.deepEqual(onnxExportProblems(zooModel('small-conv')), []);
      assert.throws(() => writeOnnxFile(path, graph, initWeights(graph, new Rng(0))), (e: unknown) => e instanceof R2RError && e.code === 'R2R_UNSUPPORTED_LAYER' && /node 'add1'/.test(e.message));
      assert.equal(existsSync(path), false);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
