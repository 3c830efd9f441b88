import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeGraph, countMacs, countParams } from './graph.ts';
import { parseGraph, serializeGraph } from './json.ts';
import { zooModel } from '../models/zoo.ts';
import { GraphBuilder } from './builder.ts';
import type { Graph } from './types.ts';
import { R2RError } from '../errors.ts';
import { forwardReference } from '../reference/execute.ts';
import { Rng } from '../rng.ts';
import { initWeights } from './weights.ts';

// PyTorch's sum(p.numel()) for the paper's networks (SPEC section 4).
const PYTORCH_PARAMS: [string, number, number][] = [
  ['resnet-cifar10', 0.125, 12_082],
  ['resnet-cifar18', 0.125, 23_794],
  ['resnet-cifar10', 0.1875, 25_990],
  ['resnet-cifar18', 0.1875, 52_198],
  ['resnet-cifar18', 0.5, 359_338],
];

for (const [name, width, params] of PYTORCH_PARAMS) {
  test(`zoo: ${name}(${width}) has PyTorch's ${params} parameters`, () => {
    assert.equal(countParams(zooModel(name, { width })), params);
  });
}

test('zoo: ResNetCifar shapes follow SPEC table 4 (16x16 after conv1, 8x8 after pool, 4x4 in stage 2)', () => {
  const info = analyzeGraph(zooModel('resnet-cifar18', { width: 0.125 }));
  assert.deepEqual(info.nodes.get('conv1')!.outputShape, [16, 16, 8]);
  assert.deepEqual(info.nodes.get('pool1')!.outputShape, [8, 8, 8]);
  assert.deepEqual(info.nodes.get('s2b1_conv1')!.outputShape, [4, 4, 16]);
  assert.deepEqual(info.nodes.get('s2b1_sc_conv')!.outputShape, [4, 4, 16]);
  assert.deepEqual(info.outputShape, [10]);
});

test('zoo: NoResidual variants have no add and no shortcut conv', () => {
  const g = zooModel('resnet-cifar18-nores', { width: 0.125 });
  assert.equal(g.nodes.filter((n) => n.kind === 'add' || n.name.includes('_sc_')).length, 0);
  assert.equal(countParams(g), 23_794 - 128 - 32);
});

test('macs: conv1 of resnet-cifar18(1/8) is 16*16*7*7*3*8 multiply-adds', () => {
  const info = analyzeGraph(zooModel('resnet-cifar18', { width: 0.125 }));
  assert.equal(info.nodes.get('conv1')!.macs, 16 * 16 * 7 * 7 * 3 * 8);
  assert.equal(countMacs(zooModel('mlp', { width: 1 })), 3072 * 256 + 256 * 128 + 128 * 10);
});

test('padding: same and valid follow TensorFlow, explicit pads are honoured', () => {
  const b = new GraphBuilder();
  const x = b.input([9, 9, 2]);
  const s = b.conv2d(x, 3, 3, { stride: 2, padding: 'same', name: 's' });
  const v = b.conv2d(x, 3, 3, { stride: 2, padding: 'valid', name: 'v' });
  const e = b.conv2d(x, 3, 3, { stride: 1, padding: [0, 2, 1, 1], name: 'e' });
  const g = b.flatten(b.concat([b.globalAvgPool(s), b.globalAvgPool(v)].map((n) => n), 'cat'));
  b.dense(b.globalAvgPool(e), 2, { name: 'unused' });
  const info = analyzeGraph(b.build(b.dense(g, 2, { name: 'out' })));
  assert.deepEqual(info.nodes.get('s')!.outputShape, [5, 5, 3]);
  assert.deepEqual(info.nodes.get('v')!.outputShape, [4, 4, 3]);
  assert.deepEqual(info.nodes.get('e')!.outputShape, [9, 9, 3]);
  assert.deepEqual(info.nodes.get('cat')!.outputShape, [6]);
});

function bad(mutate: (g: Graph) => void): Graph {
  const g = structuredClone(zooModel('small-conv'));
  mutate(g);
  return g;
}

const BAD_GRAPHS: [string, (g: Graph) => void, string, RegExp][] = [
  ['unknown input', (g) => { g.nodes[2].inputs = ['nope']; }, 'R2R_INVALID_GRAPH', /node 'relu1': unknown input 'nope'/],
  ['cycle', (g) => { g.nodes[1].inputs = ['relu1']; }, 'R2R_INVALID_GRAPH', /node 'conv1': input 'relu1' is not defined before this node: the graph has a cycle/],
  ['duplicate name', (g) => { g.nodes[2].name = 'conv1'; }, 'R2R_INVALID_GRAPH', /node 'conv1': duplicate node name/],
  ['unknown kind', (g) => { (g.nodes[2] as { kind: string }).kind = 'softmax2'; }, 'R2R_UNSUPPORTED_LAYER', /node 'relu1': unknown kind "softmax2"/],
  ['bad attribute', (g) => { (g.nodes[1] as { filters: number }).filters = -3; }, 'R2R_INVALID_GRAPH', /node 'conv1': filters must be a positive integer, got -3/],
  // dense acts on the last axis of any rank, so per-pixel logits reach the output check.
  ['dense on a volume', (g) => { g.nodes[5].inputs = ['pool1']; }, 'R2R_SHAPE_MISMATCH', /graph: output 'fc2' must be flat logits \[K\], got \[16, 16, 10\]/],
  ['unknown output', (g) => { g.output = 'logits'; }, 'R2R_INVALID_GRAPH', /output 'logits' is not a node/],
];

for (const [what, mutate, code, msg] of BAD_GRAPHS) {
  test(`invalid graph: ${what} is an error naming the node`, () => {
    assert.throws(() => analyzeGraph(bad(mutate)), (e: unknown) => e instanceof R2RError && e.code === code && msg.test(e.message));
  });
}

test('invalid graph: shape mismatch at an add names both inputs and shapes', () => {
  const b = new GraphBuilder();
  const x = b.input([8, 8, 3]);
  const a = b.conv2d(x, 4, 3, { name: 'a' });
  const c = b.conv2d(x, 5, 3, { name: 'c' });
  const g = b.build(b.dense(b.globalAvgPool(b.add([a, c], 'sum')), 2));
  assert.throws(() => analyzeGraph(g), /node 'sum' \(add\): input 'c' has shape \[8, 8, 5\] but 'a' has \[8, 8, 4\]/);
});

test('json: round trip, and parse errors name the file and field', () => {
  const g = zooModel('resnet-cifar10', { width: 0.125 });
  assert.deepEqual(parseGraph(serializeGraph(g)), g);
  assert.throws(() => parseGraph('{nope', 'm.json'), /m\.json: not valid JSON/);
  assert.throws(() => parseGraph({ format: 'r2r-graph', version: 2, nodes: [], output: 'x' }, 'm.json'), /m\.json: not an r2r graph:[\s\S]*version/);
  const broken = JSON.parse(serializeGraph(g));
  broken.nodes[3].inputs = ['ghost'];
  assert.throws(() => parseGraph(broken, 'm.json'), /m\.json: node 'relu1': unknown input 'ghost'/);
});

test('a pooling window lying wholly in explicit padding is refused, naming the node; one that touches the input is fine', () => {
  // Accepted before (issue 8): the window has nothing to pool, so max pooling gave -inf and the logits NaN.
  const pooled = (kind: 'maxPool' | 'avgPool', padding: [number, number, number, number]) => {
    const b = new GraphBuilder('pad');
    const x = b.input([4, 4, 1]);
    const p = kind === 'maxPool' ? b.maxPool(x, 2, { stride: 2, padding, name: 'pool' }) : b.avgPool(x, 2, { stride: 2, padding, name: 'pool' });
    return b.build(b.dense(b.flatten(p), 2, { name: 'fc' }));
  };
  for (const kind of ['maxPool', 'avgPool'] as const) {
    assert.throws(() => analyzeGraph(pooled(kind, [2, 0, 0, 0])), (e: unknown) => e instanceof R2RError && e.code === 'R2R_INVALID_GRAPH' && /node 'pool': a \w+Pool window covers rows -2\.\.-1 of an input with rows 0\.\.3, i\.e\. only padding/.test(e.message));
    assert.throws(() => analyzeGraph(pooled(kind, [0, 0, 0, 3])), /node 'pool': .*covers columns 4\.\.5 of an input with columns 0\.\.3/);
    const ok = pooled(kind, [1, 0, 0, 1]);
    assert.deepEqual(analyzeGraph(ok).nodes.get('pool')!.outputShape, [2, 2, 1]);
    const w = initWeights(ok, new Rng(0));
    assert.ok(forwardReference(ok, w, Float32Array.from({ length: 16 }, (_, i) => i - 8), 1, { training: false }).every(Number.isFinite));
  }
});
