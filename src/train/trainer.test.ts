/**
 * The trainer on a real engine (TensorFlow.js, wasm backend) and synthetic data: loss goes down,
 * validation is unchanged across an R2R transform mid-training but not across random padding,
 * a stopped and resumed run writes the same metrics as an uninterrupted one, and divergence
 * stops the run with the last good checkpoint intact.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { R2RError } from '../errors.ts';
import { resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadDataset } from '../data/index.ts';
import type { Engine } from '../engines/engine.ts';
import { getEngine } from '../engines/registry.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { countParams } from '../ir/graph.ts';
import { initWeights } from '../ir/weights.ts';
import { zooModel } from '../models/zoo.ts';
import { Rng } from '../rng.ts';
import type { EpochRecord, MetricsRecord, TransformRecord } from './metrics.ts';
import { readMetrics, train, type TrainConfig } from './trainer.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const data = loadDataset({ dataset: 'synthetic', trainLimit: 384, valLimit: 192, synthetic: { shape: [16, 16, 3], seed: 1 } });
let engine: Engine;
before(async () => { engine = await getEngine('tfjs', { backend: 'wasm' }); });

const base: TrainConfig = { epochs: 3, batchSize: 64, optimizer: 'adam', lr: 3e-3, weightDecay: 1e-4, lrDrops: [], transforms: [], seed: 1 };
const start = (model = 'resnet-cifar10') => {
  const graph = zooModel(model, { width: 0.0625, inputShape: data.inputShape });
  return { graph, weights: initWeights(graph, new Rng(7)) };
};
let n = 0;
const run = (config: Partial<TrainConfig>, extra: { model?: string; resume?: boolean; overwrite?: boolean; stopAfterEpoch?: number; dir?: string; engine?: Engine } = {}) =>
  train({ dir: extra.dir ?? join(tmp, `run${n++}`), name: 'test', config: { ...base, ...config }, data, engine: extra.engine ?? engine, start: start(extra.model), resume: extra.resume, overwrite: extra.overwrite, stopAfterEpoch: extra.stopAfterEpoch });

const epochsOf = (r: MetricsRecord[]) => r.filter((x): x is EpochRecord => x.type === 'epoch');
const transformOf = (r: MetricsRecord[]) => r.find((x): x is TransformRecord => x.type === 'transform')!;

describe('trainer (tfjs wasm, synthetic data)', () => {
  it('loss goes down and accuracy rises above chance; metrics.jsonl and checkpoints are written', async () => {
    const dir = join(tmp, 'plain');
    const r = await run({ lrDrops: ['/2@2'] }, { dir });
    const ep = epochsOf(r.records);
    assert.equal(ep.length, 3);
    assert.ok(ep[2].trainLoss < ep[0].trainLoss * 0.8, `train loss ${ep.map((e) => e.trainLoss)}`);
    assert.ok(ep[2].valAcc > 0.3, `val acc ${ep[2].valAcc}`);
    assert.deepEqual(ep.map((e) => e.lr), [3e-3, 3e-3, 1.5e-3]);
    assert.deepEqual(ep.map((e) => e.step), [6, 12, 18]);
    assert.equal(ep[2].flops, 3 * 384 * 3 * ep[0].macsPerExample);
    assert.deepEqual(readMetrics(dir), r.records);
    // Keep the last 2 checkpoints, each loadable with optimizer state; final/ holds the result.
    assert.equal(existsSync(join(dir, 'checkpoints', 'epoch-0001')), false);
    const ck = loadCheckpoint(join(dir, 'checkpoints', 'epoch-0003'));
    assert.equal(ck.optimizer?.step, 18);
    assert.ok(existsSync(join(dir, 'final', 'model.json')));
    assert.equal(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).status, 'completed');
  });

  for (const [spec, model] of [['widen@1:r2r:1.5', 'resnet-cifar10'], ['deepen@1:r2r', 'resnet-cifar10'], ['widen@1:net2net:1.5', 'resnet-cifar10-nores']] as const) {
    it(`${spec}: validation loss and accuracy are the same just before and just after; FLOPs follow the new size`, async () => {
      const r = await run({ epochs: 2, transforms: [spec] }, { model });
      const t = transformOf(r.records);
      assert.equal(t.epoch, 1);
      assert.equal(t.valAccAfter, t.valAccBefore);
      assert.ok(Math.abs(t.valLossAfter - t.valLossBefore) < 1e-5 * Math.max(1, t.valLossBefore), `${t.valLossBefore} -> ${t.valLossAfter}`);
      assert.ok(t.paramsAfter > t.paramsBefore);
      const ep = epochsOf(r.records);
      assert.ok(ep[1].macsPerExample > ep[0].macsPerExample);
      assert.equal(ep[1].params, countParams(r.graph));
      assert.equal(ep[1].flops, 384 * 3 * (ep[0].macsPerExample + ep[1].macsPerExample));
      assert.notEqual(ep[1].arch, ep[0].arch);
    });
  }

  it('random padding (widen@1:random) changes the validation loss', async () => {
    const t = transformOf((await run({ epochs: 2, transforms: ['widen@1:random:1.5'] })).records);
    assert.ok(Math.abs(t.valLossAfter - t.valLossBefore) > 1e-3, `${t.valLossBefore} -> ${t.valLossAfter}`);
  });

  it('a run stopped after an epoch and resumed writes the same metrics as an uninterrupted run (across a transform and an lr drop)', async () => {
    const config: Partial<TrainConfig> = { epochs: 4, transforms: ['widen@2:r2r:1.5'], lrDrops: ['/5@2'] };
    const full = await run(config);
    for (const stopAt of [2, 3]) {
      const dir = join(tmp, `resume${stopAt}`);
      const part = await run(config, { dir, stopAfterEpoch: stopAt });
      assert.equal(part.status, 'stopped');
      assert.equal(epochsOf(part.records).length, stopAt);
      const resumed = await run(config, { dir, resume: true });
      assert.equal(resumed.status, 'completed');
      const strip = (rs: MetricsRecord[]) => rs.map((x) => ({ ...x, wallSeconds: 0 }));
      assert.deepEqual(strip(readMetrics(dir)), strip(full.records));
    }
  });

  it('a NaN loss stops the run with R2R_TRAINING_DIVERGED and keeps the last good checkpoint', async () => {
    const dir = join(tmp, 'diverge');
    // Multiplying the learning rate by 1e30 after epoch 1 blows the weights up.
    await assert.rejects(run({ optimizer: 'sgd', lr: 1e-2, lrDrops: ['/1e-30@1'] }, { dir }), (e: unknown) => {
      const err = e as Error & { code?: string };
      return err.code === 'R2R_TRAINING_DIVERGED' && /diverged in epoch 2/.test(err.message) && /epoch-0001/.test(err.message);
    });
    const ck = loadCheckpoint(join(dir, 'checkpoints', 'epoch-0001'));
    assert.ok(Object.values(ck.weights).every((t) => t.data.every(Number.isFinite)));
    const info = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    assert.equal(info.status, 'failed');
    assert.match(info.error, /diverged/);
  });
});

describe('trainer: nothing lost, bad requests refused before the first step', () => {
  const code = (c: string, re: RegExp) => (e: unknown) => e instanceof R2RError && e.code === c && re.test(e.message);
  const files = (dir: string) => readdirSync(dir).sort().map((f) => [f, existsSync(join(dir, f, 'x')) ? '' : (f.endsWith('.json') || f.endsWith('.jsonl') ? readFileSync(join(dir, f), 'utf8') : readdirSync(join(dir, f)).join())]);

  it('a directory holding a run is refused without resume or overwrite, untouched; overwrite replaces it all', async () => {
    const dir = join(tmp, 'exists');
    await run({ epochs: 2, transforms: ['widen@1:r2r:1.5'] }, { dir, model: 'mlp' });
    const before = files(dir);
    assert.ok(before.some(([f]) => f.startsWith('after-transform-')));
    await assert.rejects(run({ epochs: 1 }, { dir, model: 'mlp' }), code('R2R_RUN_EXISTS', /already holds a run \(after-transform-e0001-0, checkpoints, final, metrics\.jsonl, run\.json\); .*--resume.*--overwrite/));
    assert.deepEqual(files(dir), before);
    const r = await run({ epochs: 1 }, { dir, model: 'mlp', overwrite: true });
    assert.equal(r.status, 'completed');
    assert.deepEqual(readdirSync(dir).sort(), ['checkpoints', 'final', 'metrics.jsonl', 'run.json']);
    assert.equal(readMetrics(dir).length, 1);
  });

  it('a file given as the run directory, or a metrics.jsonl that is a directory, is an R2R_IO error', async () => {
    const f = join(tmp, 'a-file');
    writeFileSync(f, 'x');
    await assert.rejects(run({ epochs: 1 }, { dir: f, model: 'mlp' }), code('R2R_IO', /run directory \(--out\) .*a-file: is a file, not a directory/));
    const d = join(tmp, 'metrics-dir');
    mkdirSync(join(d, 'metrics.jsonl'), { recursive: true });
    await assert.rejects(run({ epochs: 1 }, { dir: d, model: 'mlp', resume: true }), code('R2R_IO', /metrics\.jsonl is not a file/));
  });

  it('a transform that cannot apply, an lr drop past the end, --keep -1, --stop-after 0 and a fractional seed fail before anything is written', async () => {
    const dir = join(tmp, 'never');
    await assert.rejects(run({ epochs: 6, transforms: ['widen@5:r2r:1.01'] }, { dir }), code('R2R_TRANSFORM', /^transform 'widen@5:r2r:1\.01' \(checked before training\): widen: factor 1\.01 adds no channel/));
    await assert.rejects(run({ epochs: 3, transforms: ['deepen@1:r2r', 'widen@2:r2r:1.5:at=nope'] }, { dir }), code('R2R_TRANSFORM', /^transform 'widen@2:r2r:1\.5:at=nope' .*no node named 'nope'/));
    await assert.rejects(run({ epochs: 3, transforms: ['widen@2:r2r:1000000'] }, { dir }), code('R2R_TOO_LARGE', /^transform 'widen@2:r2r:1000000' .*the student needs about .* more than the limit/));
    await assert.rejects(run({ epochs: 3, lrDrops: ['/5@99'] }, { dir }), code('R2R_USAGE', /learning-rate drop '\/5@99' is at epoch 99, but the run has only 3 epochs/));
    await assert.rejects(run({ keepCheckpoints: -1 }, { dir }), code('R2R_USAGE', /--keep.* got -1/));
    await assert.rejects(run({ seed: 0.5 }, { dir }), code('R2R_USAGE', /seed must be an integer, got 0\.5/));
    await assert.rejects(run({}, { dir, stopAfterEpoch: 0 }), code('R2R_USAGE', /--stop-after must be an integer >= 1.* got 0/));
    assert.equal(existsSync(dir), false);
  });

  it('a stopped run says "stopped"; a bad metrics line refuses the resume before anything is cut; a resume on another engine records both', async () => {
    const dir = join(tmp, 'stopped');
    const config: Partial<TrainConfig> = { epochs: 3 };
    await run(config, { dir, model: 'mlp', stopAfterEpoch: 2 });
    const info = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    assert.equal(info.status, 'stopped');
    const good = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
    for (const bad of ['{"type":"epoch","epoch":"x"}', 'not json', '{"type":"other"}']) {
      const lines = good.split('\n'); lines[1] = bad;
      writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n'));
      await assert.rejects(run(config, { dir, model: 'mlp', resume: true }), code('R2R_CHECKPOINT', /metrics\.jsonl:2: not/), bad);
      assert.equal(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'), lines.join('\n'), 'nothing cut');
      assert.equal(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).status, 'stopped');
    }
    writeFileSync(join(dir, 'metrics.jsonl'), good);
    // A write killed mid-way left a temporary: the next start removes it.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    mkdirSync(join(dir, 'checkpoints', `.epoch-0003.tmp-${dead}-0badc0de`));
    const other = Object.create(engine, { description: { value: 'another engine' } }) as Engine;
    const r = await run(config, { dir, model: 'mlp', resume: true, engine: other });
    assert.equal(r.status, 'completed');
    const after = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    assert.deepEqual(after.engines, [{ engine: engine.description, fromEpoch: 0 }, { engine: 'another engine', fromEpoch: 2 }]);
    assert.equal(after.startedAt, info.startedAt);
    assert.deepEqual(readdirSync(join(dir, 'checkpoints')), ['epoch-0002', 'epoch-0003']);
  });
});

// The shared CIFAR-10 copy (R2R_DATA or ../shared/data/cifar10); required in CI.
const cifarDir = process.env.R2R_DATA || resolve(import.meta.dirname, '../../../shared/data/cifar10');
const haveCifar = existsSync(join(cifarDir, 'data_batch_1.bin.gz')) || existsSync(join(cifarDir, 'data_batch_1.bin'));

describe('trainer on a CIFAR-10 slice (tfjs wasm)', { skip: !haveCifar && !process.env.CI ? `no CIFAR-10 in ${cifarDir}` : false }, () => {
  it('loss goes down; R2DeeperR mid-training keeps validation loss and accuracy', async () => {
    const cifar = loadDataset({ dataset: 'cifar10', dir: cifarDir, trainLimit: 512, valLimit: 256 });
    assert.deepEqual(cifar.inputShape, [32, 32, 3]);
    const graph = zooModel('resnet-cifar10', { width: 0.0625 });
    const r = await train({
      dir: join(tmp, 'cifar'), name: 'cifar', data: cifar, engine, start: { graph, weights: initWeights(graph, new Rng(3)) },
      config: { ...base, epochs: 3, transforms: ['deepen@2:r2r:2'] },
    });
    const ep = epochsOf(r.records);
    assert.ok(ep[2].trainLoss < ep[0].trainLoss, `train loss ${ep.map((e) => e.trainLoss)}`);
    const t = transformOf(r.records);
    assert.equal(t.valAccAfter, t.valAccBefore);
    assert.equal(t.valAccBefore, ep[1].valAcc);
    assert.ok(Math.abs(t.valLossAfter - t.valLossBefore) < 1e-5 * t.valLossBefore);
  });
});

it('the per-epoch log line labels the epoch\'s own time and the run\'s total apart', async () => {
  const lines: string[] = [];
  await train({ dir: join(tmp, 'logged'), name: 'logged', config: { ...base, epochs: 2 }, data, engine, start: start(), hooks: { log: (l) => lines.push(l) } });
  const epochs = lines.filter((l) => /: epoch \d\/2 /.test(l));
  assert.equal(epochs.length, 2);
  for (const l of epochs) assert.match(l, /\| epoch \d+\.\d s, run \d+\.\d s so far$/);
});
