import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder } from '../ir/builder.ts';
import type { Graph, Node, Weights } from '../ir/types.ts';
import { initWeights } from '../ir/weights.ts';
import { compareLogits } from '../reference/compare.ts';
import { forwardReference } from '../reference/execute.ts';
import { Rng } from '../rng.ts';
import { widen } from '../transforms/widen.ts';
import { randomBatch } from '../verify.ts';
import { zooModel } from '../models/zoo.ts';
import { analyzeChannelGroups, analyzeGroups } from './analyze.ts';
import { mapChannel } from './index_map.ts';

const groupWith = (groups: ReturnType<typeof analyzeChannelGroups>, node: string) => {
  const g = groups.find((x) => x.volumes.includes(node));
  assert.ok(g, `no group holds '${node}'`);
  return g;
};

describe('channel groups', () => {
  it('ResNetCifar-18(1/8): stream groups, one group per block interior, input and logits not widenable', () => {
    const groups = analyzeChannelGroups(zooModel('resnet-cifar18', { width: 0.125 }));
    assert.equal(groups.length, 12);
    assert.deepEqual(groups.map((g) => g.id), groups.map((_, i) => i));

    const input = groups[0];
    assert.deepEqual(input.volumes, ['input']);
    assert.equal(input.containsInput, true);
    assert.equal(input.widenable, false);

    const s1 = groupWith(groups, 'conv1');
    assert.equal(s1.size, 8);
    for (const v of ['bn1', 'relu1', 'pool1', 's1b1_add', 's1b2_add', 's1b3_add', 's1b4_add', 's1b4_relu2', 's1b1_bn2']) assert.ok(s1.volumes.includes(v), v);
    assert.deepEqual(s1.producers, ['conv1', 's1b1_conv2', 's1b2_conv2', 's1b3_conv2', 's1b4_conv2']);
    assert.deepEqual(s1.consumers.map((c) => c.node), ['s1b1_conv1', 's1b2_conv1', 's1b3_conv1', 's1b4_conv1', 's2b1_conv1', 's2b1_sc_conv']);
    assert.deepEqual(s1.adds, ['s1b1_add', 's1b2_add', 's1b3_add', 's1b4_add']);
    assert.deepEqual(s1.channelOps.find((o) => o.node === 'bn1')?.params, ['gamma', 'beta', 'movingMean', 'movingVariance']);
    assert.deepEqual(s1.channelOps.find((o) => o.node === 'relu1')?.params, []);
    assert.ok(s1.widenable);
    assert.ok(s1.label.startsWith('conv1→bn1→relu1→pool1→'), s1.label);

    const s2 = groupWith(groups, 's2b1_sc_conv');
    assert.equal(s2.size, 16);
    for (const v of ['s2b1_conv2', 's2b1_sc_bn', 's2b1_add', 's2b4_relu2', 'gap']) assert.ok(s2.volumes.includes(v), v);
    assert.ok(s2.producers.includes('s2b1_sc_conv'));
    assert.ok(s2.consumers.some((c) => c.node === 'fc'));
    assert.ok(s2.widenable, 'gap feeds a dense, not the logits directly');

    const interiors = groups.filter((g) => g.volumes.length === 3 && /_conv1$/.test(g.volumes[0]));
    assert.equal(interiors.length, 8);
    for (const g of interiors) {
      const p = g.volumes[0].replace(/_conv1$/, '');
      assert.deepEqual(g.volumes, [`${p}_conv1`, `${p}_bn1`, `${p}_relu1`]);
      assert.deepEqual(g.consumers.map((c) => c.node), [`${p}_conv2`]);
      assert.ok(g.widenable);
    }

    const logits = groupWith(groups, 'fc');
    assert.equal(logits.feedsOutput, true);
    assert.equal(logits.widenable, false);
    assert.equal(groups.filter((g) => g.widenable).length, 10);
  });

  it('NoResidual: every conv output is its own group', () => {
    const groups = analyzeChannelGroups(zooModel('resnet-cifar18-nores', { width: 0.125 }));
    // input, conv1 stream, 16 block convs, fc
    assert.equal(groups.length, 19);
    assert.equal(groups.filter((g) => g.widenable).length, 17);
    assert.ok(groups.every((g) => g.producers.length <= 1));
  });

  it('SmallConv: the conv group is consumed through flatten with stride C', () => {
    const groups = analyzeChannelGroups(zooModel('small-conv'));
    const conv = groupWith(groups, 'conv1');
    assert.deepEqual(conv.volumes, ['conv1', 'relu1', 'pool1']);
    assert.equal(conv.size, 16);
    assert.deepEqual(conv.derivedGroups, [groupWith(groups, 'flatten').id]);
    assert.equal(conv.consumers.length, 1);
    const c = conv.consumers[0];
    assert.equal(c.node, 'fc1');
    assert.deepEqual(c.steps, [{ kind: 'flatten', node: 'flatten', spatial: 16 * 16, channels: 16 }]);
    // channel 3 at (h, w) is row (h*W + w)*C + 3
    const rows = mapChannel(c.steps, 3);
    assert.equal(rows.length, 256);
    assert.deepEqual(rows.slice(0, 3), [3, 19, 35]);
    assert.equal(rows[255], 255 * 16 + 3);
    const flat = groupWith(groups, 'flatten');
    assert.equal(flat.widenable, false);
    assert.equal(flat.derivedFrom[0].kind, 'flatten');
    assert.ok(groupWith(groups, 'fc1').widenable);
    assert.equal(groupWith(groups, 'fc2').feedsOutput, true);
  });

  it('MLP: the input and its flatten are not widenable; hidden layers are', () => {
    const groups = analyzeChannelGroups(zooModel('mlp'));
    assert.deepEqual(groups.map((g) => [g.label, g.size, g.widenable]), [
      ['input', 3, false], ['flatten', 3072, false], ['fc1→act1', 256, true], ['fc2→act2', 128, true], ['fc3', 10, false],
    ]);
    assert.equal(groups[0].containsInput, true);
  });

  it('concat: a derived group of segments; consumers map with offsets; feeding the logits propagates', () => {
    const b = new GraphBuilder('cat');
    const x = b.input([6, 6, 3]);
    const a = b.relu(b.conv2d(x, 4, 3, { name: 'ca' }), 'ra');
    const c = b.conv2d(x, 2, 1, { name: 'cb' });
    const cat = b.concat([a, c, a], 'cat');
    const bn = b.batchNorm(cat, { name: 'bn' });
    const y = b.conv2d(bn, 5, 3, { name: 'cc' });
    const g: Graph = b.build(b.dense(b.globalAvgPool(y, 'gap'), 3, { name: 'fc' }));
    const { groups, groupOf } = analyzeGroups(g);
    const ga = groups[groupOf.get('ca')!], gb = groups[groupOf.get('cb')!], gc = groups[groupOf.get('cat')!];
    assert.deepEqual(gc.volumes, ['cat', 'bn']);
    assert.equal(gc.size, 10);
    assert.equal(gc.widenable, false);
    assert.deepEqual(gc.derivedFrom, [{ kind: 'concat', node: 'cat', segments: [{ group: ga.id, offset: 0, size: 4 }, { group: gb.id, offset: 4, size: 2 }, { group: ga.id, offset: 6, size: 4 }] }]);
    // 'a' appears twice in the concat: cc consumes its channels at both offsets.
    assert.deepEqual(ga.consumers.map((k) => [k.node, k.steps.map((s) => (s.kind === 'concat' ? s.offset : -1))]), [['cc', [0]], ['cc', [6]]]);
    assert.deepEqual(mapChannel(ga.consumers[1].steps, 1), [7]);
    assert.deepEqual(gb.consumers.map((k) => k.node), ['cc']);
    assert.ok(ga.widenable && gb.widenable);

    // The same concat feeding the logits blocks its sources.
    const b2 = new GraphBuilder('cat2');
    const x2 = b2.input([4]);
    const d1 = b2.dense(x2, 2, { name: 'd1' }), d2 = b2.dense(x2, 3, { name: 'd2' });
    const out = analyzeChannelGroups(b2.build(b2.concat([d1, d2], 'logits')));
    assert.ok(out.every((k) => !k.widenable));
    assert.equal(out.find((k) => k.producers.includes('d1'))!.feedsOutput, true);
  });

  it('add(flatten(x), globalAvgPool(x)) with x of shape [1, 1, C]: one group, widenable and widened exactly; other groups unaffected', () => {
    // Flattening [1, 1, C] keeps channel c at index c: it ties like a channel-wise op. As a
    // derivation (stride C over H*W = 1 position) it made the add tie x's group to a group derived
    // from it, and the analysis threw for the whole graph (issue 8).
    const b = new GraphBuilder('gap-flat');
    const r1 = b.relu(b.conv2d(b.input([4, 4, 3]), 6, 3, { name: 'c1' }), 'r1');
    const x = b.conv2d(r1, 8, 4, { name: 'c2', padding: 'valid' });
    const g = b.build(b.dense(b.add([b.flatten(x, 'fl'), b.globalAvgPool(x, 'gap')], 'sum'), 3, { name: 'fc' }));
    const groups = analyzeChannelGroups(g);
    assert.deepEqual(groups.map((k) => [k.label, k.size, k.widenable]), [['input', 3, false], ['c1→r1', 6, true], ['c2→fl→gap→sum', 8, true], ['fc', 3, false]]);
    const weights = initWeights(g, new Rng(1));
    const x0 = randomBatch([4, 4, 3], 5, new Rng(2));
    const ref = (gr: Graph, w: Weights) => forwardReference(gr, w, x0, 5, { training: true });
    for (const at of ['c1', 'c2', 'all']) {
      const res = widen(g, weights, { method: 'r2r', at, add: 4 });
      assert.ok(compareLogits(ref(g, weights), ref(res.graph, res.weights)).relDiff <= 1e-9, at);
    }
    const rnd = widen(g, weights, { method: 'random', at: 'c2', add: 4 });
    assert.ok(compareLogits(ref(g, weights), ref(rnd.graph, rnd.weights)).relDiff > 1e-3);
  });

  it('an unknown node kind is an UnsupportedLayerError, never a default', () => {
    const g = zooModel('mlp', { width: 0.05 });
    const bad = { ...g, nodes: g.nodes.map((n) => (n.name === 'act1' ? ({ ...n, kind: 'groupNorm' } as unknown as Node) : n)) };
    assert.throws(() => analyzeChannelGroups(bad), { code: 'R2R_UNSUPPORTED_LAYER' });
  });
});
