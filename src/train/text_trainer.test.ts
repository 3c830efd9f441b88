/**
 * The step-based text trainer and sampling on TensorFlow.js (wasm) with a tiny GPT and a small
 * learnable text: loss goes down, FLOPs and tokens are counted as documented, a stopped and
 * resumed run writes the same metrics, checkpoints carry the vocabulary, and a trained model
 * continues the text's pattern.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readTextDataset } from '../data/text.ts';
import type { Engine } from '../engines/engine.ts';
import { getEngine } from '../engines/registry.ts';
import { R2RError } from '../errors.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { countMacs } from '../ir/graph.ts';
import { initWeights } from '../ir/weights.ts';
import { gpt } from '../models/gpt.ts';
import { Rng } from '../rng.ts';
import type { EvalRecord } from './metrics.ts';
import { sampleText } from './sample.ts';
import { trainText, type TextTrainConfig } from './text_trainer.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-text-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// A periodic text: after "the " comes "cat ", "dog " or "owl " in a fixed order, so a model
// that attends back far enough predicts it exactly.
const textFile = join(tmp, 'pets.txt');
writeFileSync(textFile, 'the cat the dog the owl '.repeat(60));
const data = readTextDataset(textFile, 8);
const graph = gpt({ layers: 1, heads: 2, dim: 16, block: 8, vocab: data.vocab.length });
const base: TextTrainConfig = { steps: 60, batchSize: 8, optimizer: 'adam', lr: 1e-2, weightDecay: 0, evalEvery: 20, evalBatches: 2, seed: 1 };
let engine: Engine;
before(async () => { engine = await getEngine('tfjs', { backend: 'wasm' }); });
let n = 0;
const run = (config: Partial<TextTrainConfig> = {}, extra: { dir?: string; resume?: boolean; stopAfterStep?: number } = {}) =>
  trainText({ dir: extra.dir ?? join(tmp, `run${n++}`), name: 'pets', config: { ...base, ...config }, data, engine, start: { graph, weights: initWeights(graph, new Rng(3)) }, resume: extra.resume, stopAfterStep: extra.stopAfterStep });
const stable = (r: EvalRecord[]) => r.map(({ wallSeconds: _w, tokensPerSecond: _t, ...rest }) => rest);

describe('text trainer (tfjs wasm, tiny GPT)', () => {
  it('evaluates at 0, 20, 40, 60; loss goes down; tokens and FLOPs follow 3 x forward MACs per sequence', async () => {
    const r = await run();
    assert.equal(r.status, 'completed');
    assert.deepEqual(r.records.map((x) => x.step), [0, 20, 40, 60]);
    const [first, , , last] = r.records;
    assert.equal(first.trainLoss, null);
    assert.ok(last.valLoss < 0.5 * first.valLoss, `val loss ${first.valLoss} -> ${last.valLoss}`);
    assert.ok(last.valAcc > 0.6, `val acc ${last.valAcc}`);
    assert.equal(last.tokens, 60 * 8 * 8);
    assert.equal(last.flops, 3 * countMacs(graph) * 8 * 60);
    assert.ok(last.tokensPerSecond! > 0);
    const lines = readFileSync(join(tmp, 'run0', 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.deepEqual(lines.map((l) => JSON.parse(l)), r.records);
    const ck = loadCheckpoint(join(tmp, 'run0', 'final'));
    assert.deepEqual(ck.vocab, [' ', 'a', 'c', 'd', 'e', 'g', 'h', 'l', 'o', 't', 'w']);
    assert.equal(ck.optimizer?.step, 60);

    // Greedy sampling continues the words; sampling with a seed is reproducible.
    const g = await sampleText(engine, ck.graph, ck.weights, ck.vocab!, { prompt: 'the d', tokens: 6, temperature: 0, seed: 0 });
    assert.equal(g.generated, 'og the');
    const a = await sampleText(engine, ck.graph, ck.weights, ck.vocab!, { prompt: 't', tokens: 30, temperature: 1, seed: 5 });
    const b = await sampleText(engine, ck.graph, ck.weights, ck.vocab!, { prompt: 't', tokens: 30, temperature: 1, seed: 5 });
    assert.equal(a.text, b.text);
    assert.equal(a.generated.length, 30);
  });

  it('a run stopped after step 20 and resumed writes the same metrics as an uninterrupted one', async () => {
    const whole = await run({ steps: 40 });
    const dir = join(tmp, 'resumed');
    const part = await run({ steps: 40 }, { dir, stopAfterStep: 20 });
    assert.equal(part.status, 'stopped');
    assert.ok(existsSync(join(dir, 'checkpoints', 'step-0000020')));
    const rest = await run({ steps: 40 }, { dir, resume: true });
    assert.equal(rest.status, 'completed');
    assert.deepEqual(stable(rest.records), stable(whole.records));
    assert.deepEqual(rest.weights['h0_attn/queryKernel'].data, whole.weights['h0_attn/queryKernel'].data);
    // Different flags are refused rather than silently mixed.
    await assert.rejects(run({ steps: 40, lr: 2e-2 }, { dir, resume: true }), (e: unknown) => e instanceof R2RError && e.code === 'R2R_USAGE' && /different configuration/.test(e.message));
  });

  it('an existing run is refused without --resume/--overwrite; a damaged metrics line fails the resume before anything is written', async () => {
    const dir = join(tmp, 'guarded');
    await run({ steps: 40 }, { dir, stopAfterStep: 20 });
    await assert.rejects(run({ steps: 40 }, { dir }), (e: unknown) => e instanceof R2RError && e.code === 'R2R_RUN_EXISTS' && e.message.includes(dir));
    const metrics = join(dir, 'metrics.jsonl');
    const lines = readFileSync(metrics, 'utf8').split('\n');
    lines[1] = '{"type":"eval","step":"ten"}';
    const damaged = lines.join('\n');
    writeFileSync(metrics, damaged);
    await assert.rejects(run({ steps: 40 }, { dir, resume: true }), (e: unknown) => e instanceof R2RError && e.code === 'R2R_CHECKPOINT' && e.message.includes(`${metrics}:2`));
    assert.equal(readFileSync(metrics, 'utf8'), damaged, 'nothing cut or rewritten');
  });

  it('a model whose vocabulary is smaller than the data is refused before training', async () => {
    const small = gpt({ layers: 1, heads: 1, dim: 4, block: 8, vocab: 5 });
    await assert.rejects(trainText({ dir: join(tmp, 'small'), name: 'x', config: base, data, engine, start: { graph: small, weights: initWeights(small, new Rng(1)) } }),
      (e: unknown) => e instanceof R2RError && e.code === 'R2R_USAGE' && /11 distinct characters but the model's vocabulary is 5/.test(e.message));
  });
});
