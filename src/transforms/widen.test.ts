import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calibratedNet, expectChanged, expectPreserved, randomInput, referenceDiff, type Net } from '../../test/helpers/preserved.ts';
import { GraphBuilder } from '../ir/builder.ts';
import { countParams, paramSpecs } from '../ir/graph.ts';
import type { ActivationFn, Graph, Weights } from '../ir/types.ts';
import { cloneWeights, initWeights, validateWeights } from '../ir/weights.ts';
import { mlp } from '../models/mlp.ts';
import { zooModel } from '../models/zoo.ts';
import { Rng } from '../rng.ts';
import { stdOf } from './init.ts';
import type { TensorMap, TransformResult } from './types.ts';
import { widen, WIDEN_METHODS, type WidenOptions } from './widen.ts';

const net = (graph: Graph, seed = 1): Net => calibratedNet(graph, seed);

const MODELS: { name: string; make: () => Graph; opts: Partial<WidenOptions> }[] = [
  // SmallConv widened as in the paper's visualisation (16 -> 32 filters; 150 -> 300 hidden).
  { name: 'SmallConv', make: () => zooModel('small-conv'), opts: { factor: 2 } },
  { name: 'ResNetCifar-18(1/8)', make: () => zooModel('resnet-cifar18', { width: 0.125 }), opts: { factor: 1.5 } },
  { name: 'ResNetCifar-18(1/8) NoResidual', make: () => zooModel('resnet-cifar18-nores', { width: 0.125 }), opts: { factor: 1.5 } },
  { name: 'MLP(32-16)', make: () => zooModel('mlp', { width: 0.125 }), opts: { factor: 1.5 } },
];

/** Every student tensor has a map, and each gather axis has one entry per student index. */
function checkMaps(teacher: Weights, r: TransformResult): void {
  assert.deepEqual(Object.keys(r.tensorMaps).sort(), Object.keys(r.weights).sort());
  for (const [key, m] of Object.entries(r.tensorMaps)) {
    if (m.kind === 'new') continue;
    assert.ok(teacher[m.from], `${key} maps from missing '${m.from}'`);
    if (m.kind === 'same') { assert.deepEqual(r.weights[key].shape, teacher[m.from].shape); continue; }
    for (const a of m.axes) {
      assert.equal(a.source.length, r.weights[key].shape[a.axis], `${key} axis ${a.axis}`);
      assert.ok(a.source.every((s) => s >= -1 && s < teacher[m.from].shape[a.axis]));
    }
  }
}

describe('widen: function preservation on the reference executor', () => {
  for (const model of MODELS) {
    it(`${model.name}: r2r, net2net, netmorph exact in both modes; random is not`, (t) => {
      const teacher = net(model.make());
      const x = randomInput(teacher.graph, 4);
      for (const method of WIDEN_METHODS) {
        const r = widen(teacher.graph, teacher.weights, { method, ...model.opts, seed: 3 });
        validateWeights(r.graph, r.weights, `${method} student`);
        checkMaps(teacher.weights, r);
        assert.ok(r.report.paramsAfter > r.report.paramsBefore);
        const student = { graph: r.graph, weights: r.weights };
        const d = method === 'random' ? expectChanged(teacher, student, { x }) : expectPreserved(teacher, student, { x });
        assert.deepEqual(r.report.exact, method === 'random' ? { inference: false, training: false } : { inference: true, training: true });
        t.diagnostic(`${model.name} ${method}: relDiff inference ${d.inference.relDiff.toExponential(2)}, training ${d.training.relDiff.toExponential(2)}; params ${r.report.paramsBefore} -> ${r.report.paramsAfter}`);
      }
    });
  }

  it('ResNetCifar-18(1/8) x1.5 gives exactly ResNetCifar-18(3/16): 52,198 params, identical shapes', () => {
    const teacher = net(zooModel('resnet-cifar18', { width: 0.125 }));
    const target = zooModel('resnet-cifar18', { width: 0.1875 });
    for (const method of WIDEN_METHODS) {
      const r = widen(teacher.graph, teacher.weights, { method, factor: 1.5 });
      assert.equal(countParams(r.graph), 52_198);
      assert.equal(r.report.paramsBefore, 23_794);
      assert.equal(r.report.paramsAfter, 52_198);
      assert.deepEqual(r.graph.nodes, target.nodes);
      const shapes = (g: Graph) => [...paramSpecs(g)].map(([k, s]) => `${k}:${s.shape.join('x')}`);
      assert.deepEqual(shapes(r.graph), shapes(target));
      // 10 widenable groups; every conv (21), BN (21) and the fc changed.
      assert.equal(r.report.notes.filter((n) => n.startsWith('widened')).length, 10);
      assert.ok(r.report.tensorsChanged.includes('fc/kernel') && !r.report.tensorsChanged.includes('fc/bias'));
    }
  });
});

describe('widen: R2WiderR structure', () => {
  it('producers get [U; U], consumers [V, −V] at every flatten position; BN pairs gamma 1, beta 0, mean 0, var 1', () => {
    const g = zooModel('small-conv', { width: 0.25 }); // 4 filters
    const teacher = net(g);
    const r = widen(g, teacher.weights, { method: 'r2r', at: 'conv1', add: 4 });
    const k = r.weights['conv1/kernel']; // [7, 7, 3, 8]
    assert.deepEqual(k.shape, [7, 7, 3, 8]);
    for (let i = 0; i < 7 * 7 * 3; i++) {
      for (let c = 0; c < 4; c++) assert.equal(k.data[i * 8 + c], teacher.weights['conv1/kernel'].data[i * 4 + c]);
      assert.equal(k.data[i * 8 + 4], k.data[i * 8 + 6]);
      assert.equal(k.data[i * 8 + 5], k.data[i * 8 + 7]);
    }
    const b = r.weights['conv1/bias'].data;
    assert.equal(b[4], b[6]); assert.equal(b[5], b[7]);
    const fc = r.weights['fc1/kernel']; // [16*16*8, 150]
    assert.deepEqual(fc.shape, [16 * 16 * 8, 150]);
    let nonzero = 0;
    for (let p = 0; p < 256; p++) {
      for (let j = 0; j < 150; j++) {
        for (let c = 0; c < 4; c++) assert.equal(fc.data[(p * 8 + c) * 150 + j], teacher.weights['fc1/kernel'].data[(p * 4 + c) * 150 + j]);
        assert.equal(fc.data[(p * 8 + 4) * 150 + j], -fc.data[(p * 8 + 6) * 150 + j]);
        assert.equal(fc.data[(p * 8 + 5) * 150 + j], -fc.data[(p * 8 + 7) * 150 + j]);
        if (fc.data[(p * 8 + 4) * 150 + j] !== 0) nonzero++;
      }
    }
    assert.ok(nonzero > 0, 'V must be free, not zero');
    // match-std: new filters have about the std of the existing kernel (uniform of std s).
    const oldStd = stdOf(teacher.weights['conv1/kernel'].data);
    const newVals = Float32Array.from({ length: 147 * 2 }, (_, i) => k.data[Math.floor(i / 2) * 8 + 4 + (i % 2)]);
    assert.ok(Math.abs(stdOf(newVals) / oldStd - 1) < 0.25, `new std ${stdOf(newVals)} vs ${oldStd}`);

    const res = net(zooModel('resnet-cifar18', { width: 0.125 }));
    const rr = widen(res.graph, res.weights, { method: 'r2r', at: 'conv1', add: 2 });
    for (const bn of ['bn1', 's1b1_bn2', 's1b4_bn2']) {
      assert.deepEqual([...rr.weights[`${bn}/gamma`].data.slice(8)], [1, 1]);
      assert.deepEqual([...rr.weights[`${bn}/beta`].data.slice(8)], [0, 0]);
      assert.deepEqual([...rr.weights[`${bn}/movingMean`].data.slice(8)], [0, 0]);
      assert.deepEqual([...rr.weights[`${bn}/movingVariance`].data.slice(8)], [1, 1]);
    }
    // The 1x1 downsampling shortcut and the stage-2 first conv read the stage-1 stream.
    assert.deepEqual(rr.weights['s2b1_sc_conv/kernel'].shape, [1, 1, 10, 16]);
    assert.deepEqual(rr.weights['s2b1_conv1/kernel'].shape, [3, 3, 10, 16]);
    expectPreserved(res, rr);
  });

  it('odd E is an error naming the group, the amount and E±1', () => {
    const teacher = net(zooModel('resnet-cifar18', { width: 0.125 }));
    assert.throws(() => widen(teacher.graph, teacher.weights, { method: 'r2r', at: 's1b2_relu1', add: 3 }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'R2R_TRANSFORM');
      assert.match(e.message, /group 3 \(s1b2_conv1→s1b2_bn1→s1b2_relu1, 8 channels\)/);
      assert.match(e.message, /got 3; try 2 or 4/);
      return true;
    });
    // 10 * 1.5 = 15: E = 5 is odd too.
    const mlp = net(zooModel('mlp', { width: 10 / 256 }));
    assert.throws(() => widen(mlp.graph, mlp.weights, { method: 'r2r', at: 'fc1', factor: 1.5 }), /got 5; try 4 or 6/);
  });

  it("init 'copy': U copies existing filters of the same producer; still exact", () => {
    const teacher = net(zooModel('resnet-cifar18', { width: 0.125 }));
    const r = widen(teacher.graph, teacher.weights, { method: 'r2r', at: 's1b1_conv1', add: 4, init: { method: 'copy' } });
    const old = teacher.weights['s1b1_conv1/kernel'], k = r.weights['s1b1_conv1/kernel'];
    const filter = (t: { data: Float32Array; shape: number[] }, c: number) => Array.from({ length: 72 }, (_, i) => t.data[i * t.shape[3] + c]);
    for (const c of [8, 9]) assert.ok([...Array(8).keys()].some((o) => filter(old, o).every((v, i) => v === filter(k, c)[i])), `filter ${c} is no copy`);
    expectPreserved(teacher, { graph: r.graph, weights: r.weights });
  });

  it("init 'he' draws far larger new weights than match-std on a trained-scale kernel", () => {
    const teacher = net(zooModel('mlp', { width: 0.125 }));
    const small = cloneWeights(teacher.weights);
    small['fc1/kernel'].data.forEach((v, i, a) => { a[i] = v * 0.01; });
    const newCol = (opts: WidenOptions) => {
      const k = widen(teacher.graph, small, opts).weights['fc1/kernel'];
      return stdOf(Float32Array.from({ length: 3072 }, (_, i) => k.data[i * 48 + 40]));
    };
    const std = newCol({ method: 'r2r', at: 'fc1', add: 16 });
    const he = newCol({ method: 'r2r', at: 'fc1', add: 16, init: { method: 'he' } });
    assert.ok(he > 10 * std, `he ${he} vs match-std ${std}`);
  });
});

describe('widen: other methods', () => {
  it('Net2WiderNet copies channels (BN stats included) and divides consumer rows by n_c; noise breaks exactness', () => {
    const teacher = net(zooModel('resnet-cifar18-nores', { width: 0.125 }));
    const r = widen(teacher.graph, teacher.weights, { method: 'net2net', at: 's1b1_conv1', add: 6, seed: 9 });
    const mean = r.weights['s1b1_bn1/movingMean'].data;
    const m = r.tensorMaps['s1b1_bn1/movingMean'] as Extract<TensorMap, { kind: 'gather' }>;
    const src = m.axes[0].source;
    for (let j = 8; j < 14; j++) assert.equal(mean[j], teacher.weights['s1b1_bn1/movingMean'].data[src[j]]);
    const cm = r.tensorMaps['s1b1_conv2/kernel'] as Extract<TensorMap, { kind: 'gather' }>;
    const count = (c: number) => [...src].filter((s) => s === c).length;
    for (let j = 0; j < 14; j++) assert.ok(Math.abs(cm.axes[0].scale![j] - 1 / count(src[j])) < 1e-7);
    assert.equal(cm.axes[0].axis, 2);
    const noisy = widen(teacher.graph, teacher.weights, { method: 'net2net', at: 's1b1_conv1', add: 6, init: { noise: 1e-2 } });
    assert.deepEqual(noisy.report.exact, { inference: false, training: false });
    const d = referenceDiff(teacher, { graph: noisy.graph, weights: noisy.weights });
    assert.ok(d.inference.relDiff > 1e-6 && d.inference.relDiff < 0.5, `noise gives a small change, got ${d.inference.relDiff}`);
  });

  it('NetMorph: zero producers need ops mapping 0 to 0 (sigmoid refused); the consumer side takes any op', () => {
    const mlp = (fn: ActivationFn) => {
      const b = new GraphBuilder('m');
      const x = b.activation(b.dense(b.flatten(b.input([4, 4, 2])), 6, { name: 'fc1' }), fn, 'act1');
      return net(b.build(b.dense(x, 3, { name: 'fc2' })));
    };
    const sig = mlp('sigmoid');
    assert.throws(() => widen(sig.graph, sig.weights, { method: 'netmorph', at: 'fc1', add: 2 }), (e: Error & { code?: string }) => e.code === 'R2R_TRANSFORM' && /activation 'act1' \(sigmoid\)/.test(e.message) && /consumers/.test(e.message));
    const r = widen(sig.graph, sig.weights, { method: 'netmorph', at: 'fc1', add: 2, netmorphZeroSide: 'consumers' });
    expectPreserved(sig, { graph: r.graph, weights: r.weights });
    assert.ok([...r.weights['fc1/kernel'].data].some((v, i) => i % 8 >= 6 && v !== 0), 'U free on the consumer-zero side');
    const gelu = mlp('gelu');
    const rg = widen(gelu.graph, gelu.weights, { method: 'netmorph', at: 'fc1', add: 3 });
    expectPreserved(gelu, { graph: rg.graph, weights: rg.weights });
    const teacher = net(zooModel('resnet-cifar18', { width: 0.125 }));
    const rc = widen(teacher.graph, teacher.weights, { method: 'netmorph', netmorphZeroSide: 'consumers', factor: 1.5 });
    expectPreserved(teacher, { graph: rc.graph, weights: rc.weights });
  });
});

describe('widen: groups it may not widen, and options', () => {
  const teacher = net(zooModel('small-conv', { width: 0.25 }));
  const expectCode = (opts: WidenOptions, re: RegExp) => assert.throws(() => widen(teacher.graph, teacher.weights, opts), (e: Error & { code?: string }) => e.code === 'R2R_TRANSFORM' && re.test(e.message));
  it('input, logits, derived groups, unknown nodes, bad amounts', () => {
    expectCode({ method: 'r2r', at: 'input', add: 2 }, /'input' is in group 0 \(input, 3 channels\), which holds the network input/);
    expectCode({ method: 'net2net', at: 'fc2', add: 2 }, /'fc2' is in group \d \(fc2, 10 channels\), which feeds the output logits of 'fc2'/);
    expectCode({ method: 'r2r', at: 'flatten', add: 2 }, /a flatten \('flatten'\) of group\(s\) 1; widen those groups instead/);
    expectCode({ method: 'r2r', at: 'nope', add: 2 }, /no node named 'nope'/);
    expectCode({ method: 'r2r', at: 'conv1', add: 2, factor: 2 }, /either factor/);
    expectCode({ method: 'r2r', at: 'conv1', add: 0 }, /add must be a positive integer/);
    expectCode({ method: 'r2r', at: 'conv1', factor: 0.5 }, /factor must be a number > 1/);
    expectCode({ method: 'wider' as 'r2r' }, /unknown method "wider"/);
  });
  it("'all' skips groups a factor cannot grow, with a note; none growable is an error", () => {
    const small = net(mlp({ hidden: [1, 16], inputShape: [4] }));
    const r = widen(small.graph, small.weights, { method: 'net2net', factor: 1.2 });
    assert.deepEqual(r.weights['fc2/kernel'].shape, [1, 19]);
    assert.match(r.report.notes.join('\n'), /skipped group \d \(fc1→act1, 1 channels\): factor 1.2 adds no channel/);
    const tiny = net(mlp({ hidden: [1], inputShape: [4] }));
    assert.throws(() => widen(tiny.graph, tiny.weights, { method: 'net2net', factor: 1.2 }), /adds no channel to any group/);
  });
});

describe('widen: structure and repeatability', () => {
  it('widens twice (r2r then net2net); maps compose back to the first teacher', () => {
    const teacher = net(zooModel('resnet-cifar18', { width: 0.125 }));
    const r1 = widen(teacher.graph, teacher.weights, { method: 'r2r', factor: 1.5, seed: 1 });
    const r2 = widen(r1.graph, r1.weights, { method: 'r2r', at: 's2b1_relu2', add: 4, seed: 2 });
    const r3 = widen(r2.graph, r2.weights, { method: 'net2net', at: 's1b1_conv1', add: 3, seed: 3 });
    assert.deepEqual(r3.weights['s2b1_conv2/kernel'].shape, [3, 3, 24, 28]);
    assert.deepEqual(r3.weights['s1b1_conv2/kernel'].shape, [3, 3, 15, 12]);
    const d = expectPreserved(teacher, { graph: r3.graph, weights: r3.weights });
    assert.ok(d.training.relDiff <= 1e-5);
  });

  it("'all' as one call equals the same groups widened one by one, composed maps included", async () => {
    const { composeMaps } = await import('./widen.ts');
    const teacher = net(zooModel('mlp', { width: 0.125 }));
    const all = widen(teacher.graph, teacher.weights, { method: 'net2net', add: 2, seed: 4 });
    const a = widen(teacher.graph, teacher.weights, { method: 'net2net', at: 'fc1', add: 2, seed: 4 });
    assert.deepEqual(a.weights['fc1/kernel'], all.weights['fc1/kernel']);
    const maps = composeMaps(a.tensorMaps, widen(a.graph, a.weights, { method: 'r2r', at: 'fc2', add: 2 }).tensorMaps);
    const fc2 = maps['fc2/kernel'] as Extract<TensorMap, { kind: 'gather' }>;
    assert.equal(fc2.from, 'fc2/kernel');
    assert.deepEqual(fc2.axes.map((x) => [x.axis, x.source.length]), [[0, 34], [1, 18]]);
    assert.deepEqual([...fc2.axes[1].source.slice(16)], [-1, -1]);
    // Net2Net's 1/n_c on fc2's rows survives the composition.
    assert.deepEqual(fc2.axes[0].scale, (a.tensorMaps['fc2/kernel'] as Extract<TensorMap, { kind: 'gather' }>).axes[0].scale);
  });

  it('concat (one input twice), BN after it, a producer added into it, then flatten: all methods', (t) => {
    const b = new GraphBuilder('cat');
    const x = b.input([6, 6, 3]);
    const a = b.relu(b.conv2d(x, 4, 3, { name: 'ca' }), 'ra');
    const c = b.conv2d(x, 2, 1, { name: 'cb' });
    const cat = b.batchNorm(b.concat([a, c, a], 'cat'), { name: 'bn' });
    const s = b.relu(b.add([cat, b.conv2d(x, 10, 1, { name: 'cd' })], 'sum'), 'rs');
    const y = b.maxPool(s, 2, { name: 'pool' });
    const h = b.relu(b.dense(b.flatten(y, 'flat'), 7, { name: 'fc1' }), 'rh');
    const teacher = net(b.build(b.dense(h, 3, { name: 'fc2' })));
    for (const method of WIDEN_METHODS) {
      for (const at of ['ca', 'cb']) {
        const r = widen(teacher.graph, teacher.weights, { method, at, add: 2, seed: 5 });
        checkMaps(teacher.weights, r);
        const sizeA = at === 'ca' ? 6 : 4, sizeB = at === 'cb' ? 4 : 2;
        assert.deepEqual(r.weights['cd/kernel'].shape, [1, 1, 3, 2 * sizeA + sizeB]);
        assert.deepEqual(r.weights['bn/gamma'].shape, [2 * sizeA + sizeB]);
        assert.deepEqual(r.weights['fc1/kernel'].shape, [9 * (2 * sizeA + sizeB), 7]);
        const student = { graph: r.graph, weights: r.weights };
        const d = method === 'random' ? expectChanged(teacher, student) : expectPreserved(teacher, student);
        t.diagnostic(`concat graph ${method} at ${at}: relDiff ${d.inference.relDiff.toExponential(2)} / ${d.training.relDiff.toExponential(2)}`);
      }
    }
    // New channels of 'ca' sit after each of its two segments: old cat channel 4 (cb's first) moves to 6.
    const r = widen(teacher.graph, teacher.weights, { method: 'net2net', at: 'ca', add: 2 });
    const src = [...(r.tensorMaps['bn/gamma'] as Extract<TensorMap, { kind: 'gather' }>).axes[0].source];
    assert.deepEqual([...src.slice(0, 4), ...src.slice(6, 12)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Net2Net copies: the same old channel g(t) in both segments of 'ra'.
    for (const t of [0, 1]) {
      assert.ok(src[4 + t] >= 0 && src[4 + t] < 4);
      assert.equal(src[12 + t], src[4 + t] + 6);
    }
  });

  it('one seed gives the same student bit for bit; another seed differs; inputs are never mutated', () => {
    const teacher = net(zooModel('resnet-cifar18', { width: 0.125 }));
    const graphBefore = JSON.stringify(teacher.graph);
    const weightsBefore = cloneWeights(teacher.weights);
    for (const method of WIDEN_METHODS) {
      const a = widen(teacher.graph, teacher.weights, { method, factor: 1.5, seed: 11 });
      const b = widen(teacher.graph, teacher.weights, { method, factor: 1.5, seed: 11 });
      const c = widen(teacher.graph, teacher.weights, { method, factor: 1.5, seed: 12 });
      assert.deepEqual(a.weights, b.weights);
      assert.notDeepEqual(a.weights, c.weights);
      for (const [k, t] of Object.entries(a.weights)) assert.notEqual(t.data, teacher.weights[k].data, `${k} shares memory with the teacher`);
    }
    assert.equal(JSON.stringify(teacher.graph), graphBefore);
    assert.deepEqual(teacher.weights, weightsBefore);
  });
});
