/**
 * Dropout and the exactness check (issue 8 item 3). Dropout draws a random mask per channel, so a
 * widened student's paired (R2R) or copied (Net2Net) channels get masks independent of their
 * partners: with dropout active the student is not the teacher per batch. The transform report
 * says so; `verify` compares training mode with dropout off, and says that too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { getEngine } from './engines/registry.ts';
import { saveCheckpoint } from './io/checkpoint.ts';
import { GraphBuilder } from './ir/builder.ts';
import type { Graph, Weights } from './ir/types.ts';
import { initWeights } from './ir/weights.ts';
import { compareLogits } from './reference/compare.ts';
import { Rng } from './rng.ts';
import { applyTransform, type TransformSpec } from './transforms/index.ts';
import { randomBatch, verifyTransform, withoutDropout } from './verify.ts';

/** input [4, 4, 3] -> conv 8 -> BN -> ReLU -> dropout 0.5 -> flatten -> dense 3. */
function withDropout(rate = 0.5): { graph: Graph; weights: Weights } {
  const b = new GraphBuilder('drop-net');
  const y = b.dropout(b.relu(b.batchNorm(b.conv2d(b.input([4, 4, 3]), 8, 3, { name: 'conv', useBias: false }), { name: 'bn' }), 'relu'), rate, 'drop');
  const graph = b.build(b.dense(b.flatten(y, 'flat'), 3, { name: 'fc' }));
  return { graph, weights: initWeights(graph, new Rng(2), { randomBatchNorm: true }) };
}

const widenAtConv = (method: string): TransformSpec => ({ transform: 'widen', method: method as 'r2r', at: 'conv', add: 4, seed: 1 });

describe('dropout in training mode', () => {
  it('the report says where new paired or copied channels get independent dropout masks (R2R, Net2Net; not NetMorph, not without dropout)', () => {
    const { graph, weights } = withDropout();
    for (const method of ['r2r', 'net2net']) {
      const notes = applyTransform(graph, weights, widenAtConv(method)).report.notes.join('\n');
      assert.match(notes, /dropout 'drop' \(rate 0\.5\) masks group .*independent.*differs from the teacher per batch.*dropout off/s, method);
    }
    assert.doesNotMatch(applyTransform(graph, weights, widenAtConv('netmorph')).report.notes.join('\n'), /dropout/);
    const off = withDropout(0);
    assert.doesNotMatch(applyTransform(off.graph, off.weights, widenAtConv('r2r')).report.notes.join('\n'), /dropout/);
  });

  it('with dropout active, an R2R student differs from its teacher per batch; verify compares with dropout off and passes', async () => {
    const engine = await getEngine('tfjs');
    const { graph, weights } = withDropout();
    const student = applyTransform(graph, weights, widenAtConv('r2r'));
    const x = randomBatch([4, 4, 3], 16, new Rng(3));
    // Same seed, but the student's conv has 12 channels: its masks cannot be the teacher's.
    const t = await engine.build(graph, weights, { seed: 5 }), s = await engine.build(student.graph, student.weights, { seed: 5 });
    const on = compareLogits(await t.forward({ x, n: 16 }, { training: true }), await s.forward({ x, n: 16 }, { training: true })).relDiff;
    t.dispose(); s.dispose();
    assert.ok(on > 1e-2, `with dropout on: relDiff ${on}`);

    const out = await verifyTransform(engine, graph, weights, widenAtConv('r2r'), { rng: new Rng(4), batchSize: 16 });
    const [inf, train] = out.results;
    assert.deepEqual([inf.dropoutOff, train.dropoutOff], [false, true]);
    assert.ok(inf.pass && train.pass && train.exactExpected, JSON.stringify(out.results));
    assert.ok(train.relDiff <= 1e-5);
    // The comparison really ran without dropout: rerunning the rate-0 graphs gives the same logits.
    const t0 = await engine.build(withoutDropout(graph), weights);
    assert.deepEqual(await t0.forward({ x: out.batch.x, n: 16 }, { training: true }), out.logits.training.teacher);
    t0.dispose();
    // And the check still catches a transform that is not exact there.
    const rnd = await verifyTransform(engine, graph, weights, widenAtConv('random'), { rng: new Rng(4), batchSize: 16 });
    assert.ok(rnd.results[1].relDiff > 1e-2 && rnd.results[1].dropoutOff);
  });

  it('r2r verify prints that training mode ran with dropout off, and marks it in --json', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'r2r-drop-')), 'ckpt');
    saveCheckpoint(dir, withDropout());
    const bin = join(import.meta.dirname, '../bin/r2r.js');
    const run = (...a: string[]) => spawnSync(process.execPath, [bin, 'verify', '--checkpoint', dir, '--at', 'conv', '--add', '4', '--engine', 'tfjs', ...a], { encoding: 'utf8' });
    const text = run();
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /dropout 'drop' \(rate 0\.5\)/);
    assert.match(text.stdout, /training mode is compared with dropout off/);
    const json = run('--json');
    assert.equal(json.status, 0, json.stderr);
    assert.match(json.stdout, /"dropoutOff":\s*true/);
  });
});
