import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { R2RError } from '../errors.ts';
import { GraphBuilder } from '../ir/builder.ts';
import type { Conv2dNode, Graph, Weights } from '../ir/types.ts';
import { cloneWeights, initWeights } from '../ir/weights.ts';
import { zooModel } from '../models/zoo.ts';
import { compareLogits } from '../reference/compare.ts';
import { forwardReference } from '../reference/execute.ts';
import { Rng } from '../rng.ts';
import { morphKernel, zeroPadKernel } from './kernel_morph.ts';
import type { TransformResult } from './types.ts';

const N = 2;
const EXACT = 1e-6;

function batch(shape: number[]): Float32Array {
  const r = new Rng(2);
  return new Float32Array(N * shape.reduce((a, b) => a * b, 1)).map(() => r.normal());
}

function relDiffs(a: { graph: Graph; weights: Weights }, b: { graph: Graph; weights: Weights }, x: Float32Array): [number, number] {
  const d = (training: boolean) => compareLogits(forwardReference(a.graph, a.weights, x, N, { training }), forwardReference(b.graph, b.weights, x, N, { training })).relDiff;
  return [d(false), d(true)];
}

describe('kernel-size morph', () => {
  const graph = zooModel('resnet-cifar18');
  const weights = initWeights(graph, new Rng(1), { randomBatchNorm: true });
  const x = batch([32, 32, 3]);

  for (const [node, size] of [['s1b1_conv1', 5], ['s2b1_conv1', 5], ['conv1', 9], ['s2b1_sc_conv', 3], ['s1b2_conv2', [5, 3]]] as const) {
    it(`${node} -> ${JSON.stringify(size)} inside ResNetCifar-18 is exact in both modes`, (t) => {
      const res = morphKernel(graph, weights, { node, size: size as number | [number, number] });
      const [inf, train] = relDiffs({ graph, weights }, res, x);
      t.diagnostic(`${node} -> ${JSON.stringify(size)}: relDiff inference ${inf.toExponential(2)}, training ${train.toExponential(2)}; ${res.report.changes[0].what}`);
      assert.ok(inf <= EXACT && train <= EXACT);
      const n = res.graph.nodes.find((m) => m.name === node) as Conv2dNode;
      assert.deepEqual(n.kernelSize, typeof size === 'number' ? [size, size] : size);
      assert.deepEqual(res.report.exact, { inference: true, training: true });
      assert.equal(res.report.paramsAfter - res.report.paramsBefore, res.weights[`${node}/kernel`].data.length - weights[`${node}/kernel`].data.length);
    });
  }

  it("'same' padding: kept where it resolves to the grown pads, explicit where it would not; exact", () => {
    const check = (input: [number, number, number], kernel: number, stride: number, size: number, padding: unknown) => {
      const b = new GraphBuilder('same');
      const y = b.relu(b.conv2d(b.input(input), 4, kernel, { stride, padding: 'same', name: 'c' }));
      const g = b.build(b.dense(b.flatten(y), 3, { name: 'fc' }));
      const w = initWeights(g, new Rng(4));
      const res = morphKernel(g, w, { node: 'c', size });
      assert.deepEqual((res.graph.nodes[1] as Conv2dNode).padding, padding);
      const [inf, train] = relDiffs({ graph: g, weights: w }, res, batch(input));
      assert.ok(inf <= EXACT && train <= EXACT, `relDiff ${inf}, ${train}`);
    };
    // Stride 2 on an even input: TensorFlow pads top 0 / bottom 1 for 3x3 and 1 / 2 for 5x5, the grown pads.
    check([6, 6, 2], 3, 2, 5, 'same');
    // 1x1 stride 3 on 6: 'same' pads nothing, and for 3x3 it would still pad nothing; the morph needs 1 each side.
    check([6, 6, 2], 1, 3, 3, [1, 1, 1, 1]);
  });

  it('an off-centre pad (the deliberately wrong morph) fails the check', () => {
    const res = morphKernel(graph, weights, { node: 's1b1_conv1', size: 5 });
    const wrong: TransformResult['weights'] = cloneWeights(res.weights);
    wrong['s1b1_conv1/kernel'] = zeroPadKernel(weights['s1b1_conv1/kernel'], [0, 2, 1, 1]);
    const [inf] = relDiffs({ graph, weights }, { graph: res.graph, weights: wrong }, x);
    assert.ok(inf > 1e-2, `off-centre pad should change the function, relDiff ${inf}`);
  });

  it('tensor maps: the kernel gathers old taps (-1 = new zero tap), the rest is the same; inputs untouched', () => {
    const before = cloneWeights(weights);
    const res = morphKernel(graph, weights, { node: 's1b1_conv1', size: 5 });
    // The report names the method as the CLI does (--transform kernel --method netmorph), not 'zero-pad'.
    assert.deepEqual([res.report.transform, res.report.method], ['kernel', 'netmorph']);
    const m = res.tensorMaps['s1b1_conv1/kernel'];
    assert.equal(m.kind, 'gather');
    if (m.kind !== 'gather') return;
    assert.deepEqual(m.axes.map((a) => [a.axis, [...a.source]]), [[0, [-1, 0, 1, 2, -1]], [1, [-1, 0, 1, 2, -1]]]);
    assert.deepEqual(res.tensorMaps['s1b1_bn1/gamma'], { kind: 'same', from: 's1b1_bn1/gamma' });
    assert.deepEqual(Object.keys(res.tensorMaps).sort(), Object.keys(res.weights).sort());
    assert.deepEqual(weights, before);
    assert.deepEqual((graph.nodes.find((n) => n.name === 's1b1_conv1') as Conv2dNode).kernelSize, [3, 3]);
  });

  it('errors: unknown node, not a conv, odd or negative growth', () => {
    const code = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof R2RError && e.code === 'R2R_TRANSFORM' && re.test(e.message));
    code(() => morphKernel(graph, weights, { node: 'nope', size: 5 }), /no node named 'nope'/);
    code(() => morphKernel(graph, weights, { node: 's1b1_bn1', size: 5 }), /is a batchNorm/);
    code(() => morphKernel(graph, weights, { node: 's1b1_conv1', size: 4 }), /even amount.*got 4x4/);
    code(() => morphKernel(graph, weights, { node: 'conv1', size: 5 }), /7x7.*got 5x5/);
  });
});
