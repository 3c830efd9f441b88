/**
 * Transforms in the text trainer's schedule (issue 10): a tiny GPT grown by R2R at chosen steps
 * keeps its validation loss across each transform, ends as the zoo model of the target size,
 * counts FLOPs with the grown model after each transform, and resumes exactly across a growth;
 * random padding shows a jump.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readTextDataset } from '../data/text.ts';
import type { Engine } from '../engines/engine.ts';
import { getEngine } from '../engines/registry.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { countMacs } from '../ir/graph.ts';
import { initWeights } from '../ir/weights.ts';
import { gpt } from '../models/gpt.ts';
import { Rng } from '../rng.ts';
import type { EvalRecord, TransformRecord } from './metrics.ts';
import { trainText, type TextTrainConfig } from './text_trainer.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-text-growth-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const textFile = join(tmp, 'pets.txt');
writeFileSync(textFile, 'the cat the dog the owl '.repeat(60));
const data = readTextDataset(textFile, 8);
const V = data.vocab.length;
const small = gpt({ layers: 1, heads: 2, dim: 8, block: 8, vocab: V });
const GROW = ['width@4:r2r:2', 'heads@4:r2r:+2', 'mlp@4:r2r:2', 'deepen@8:r2r:+1'];
const base: TextTrainConfig = { steps: 12, batchSize: 4, optimizer: 'adam', lr: 1e-2, weightDecay: 0, evalEvery: 6, evalBatches: 2, seed: 1, transforms: GROW };
let engine: Engine;
before(async () => { engine = await getEngine('tfjs', { backend: 'wasm' }); });
let n = 0;
const run = (config: Partial<TextTrainConfig> = {}, extra: { dir?: string; resume?: boolean; stopAfterStep?: number } = {}) =>
  trainText({ dir: extra.dir ?? join(tmp, `run${n++}`), name: 'grow', config: { ...base, ...config }, data, engine, start: { graph: small, weights: initWeights(small, new Rng(3)) }, resume: extra.resume, stopAfterStep: extra.stopAfterStep });
const stable = (r: (EvalRecord | TransformRecord)[]) => r.map((x) => (x.type === 'eval' ? { ...x, wallSeconds: 0, tokensPerSecond: 0 } : x));

describe('text trainer with a growth schedule (tfjs wasm)', () => {
  it('R2R growth at steps 4 and 8: no jump in validation loss, the grown model is the zoo gpt 2/4/16, FLOPs follow the model', async () => {
    const dir = join(tmp, 'grow');
    const r = await run({}, { dir });
    assert.equal(r.status, 'completed');
    assert.deepEqual(r.transforms.map((t) => [t.step, t.spec]), GROW.map((s) => [Number(/@(\d+)/.exec(s)![1]), s]));
    for (const t of r.transforms) {
      assert.ok(Math.abs(t.valLossAfter - t.valLossBefore) <= 1e-5 * t.valLossBefore, `${t.spec}: val loss ${t.valLossBefore} -> ${t.valLossAfter}`);
      assert.ok(t.paramsAfter > t.paramsBefore);
    }
    // Evaluations at 0, at each transform step (the loss before it), every 6 steps and the end.
    assert.deepEqual(r.records.map((x) => x.step), [0, 4, 6, 8, 12]);
    const target = gpt({ layers: 2, heads: 4, dim: 16, block: 8, vocab: V });
    assert.deepEqual(r.graph.nodes, target.nodes);
    const [m0, m1] = [countMacs(small), countMacs(target)];
    const grownAt4 = r.transforms[2].archAfter;
    assert.notEqual(grownAt4, r.transforms[0].archBefore);
    assert.equal(r.records.at(-1)!.flops, 3 * 4 * (m0 * 4 + countMacs(loadCheckpoint(join(dir, 'after-transform-s0000004-2')).graph) * 4 + m1 * 4));
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EvalRecord | TransformRecord);
    assert.deepEqual(lines.map((l) => l.type), ['eval', 'eval', 'transform', 'transform', 'transform', 'eval', 'eval', 'transform', 'eval']);
    const ck = loadCheckpoint(join(dir, 'final'));
    assert.deepEqual(ck.graph.nodes, target.nodes);
    assert.equal(ck.optimizer?.step, 12);
  });

  it('a run stopped after the growth at step 4 and resumed writes the same metrics as an uninterrupted one', async () => {
    const wholeDir = join(tmp, 'whole');
    await run({}, { dir: wholeDir });
    const dir = join(tmp, 'resumed');
    const part = await run({}, { dir, stopAfterStep: 6 });
    assert.equal(part.status, 'stopped');
    const rest = await run({}, { dir, resume: true });
    assert.equal(rest.status, 'completed');
    const all = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EvalRecord | TransformRecord);
    assert.deepEqual(stable(all(dir)), stable(all(wholeDir)));
    assert.deepEqual(loadCheckpoint(join(dir, 'final')).weights, loadCheckpoint(join(wholeDir, 'final')).weights);
  });

  it('random padding at the same steps makes the validation loss jump', async () => {
    const r = await run({ transforms: ['mlp@4:random:2', 'deepen@8:random:+1'] });
    for (const t of r.transforms) assert.ok(Math.abs(t.valLossAfter - t.valLossBefore) > 1e-3, `${t.spec}: ${t.valLossBefore} -> ${t.valLossAfter}`);
  });

  it('a transform at or after the last step is a usage error before training', async () => {
    await assert.rejects(run({ transforms: ['heads@12:r2r:+2'] }), /at step 12, but the run has only 12 steps/);
  });
});
