import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadDataset } from '../data/index.ts';
import { findRun, PRESETS, RUNS, scaleRun, suiteRuns, type RunDef } from './catalog.ts';
import { runExperiments, runExperimentSeeds } from './runner.ts';
import { spread } from './seeds.ts';
import { R2RError, RunExistsError } from '../errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-exp-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('experiment catalog', () => {
  it('has the 26 runs of table 5 and the four from-scratch baselines', () => {
    assert.equal(RUNS.filter((r) => !r.extra).length, 26);
    assert.deepEqual(RUNS.filter((r) => r.extra).map((r) => r.name), ['NCT-Scratch-Widen', 'NCT-Scratch-Deepen', 'FTT-Scratch-Widen', 'FTT-Scratch-Deepen']);
    assert.equal(new Set(RUNS.map((r) => r.name)).size, RUNS.length);
    for (const r of RUNS) if ('teacher' in r.start) assert.equal(findRun(r.start.teacher).role, 'teacher');
  });

  it('finds runs by the table\'s spellings', () => {
    assert.equal(findRun('FFT-R2WiderR').name, 'FTT-R2WiderR');
    assert.equal(findRun('nct-r2deeperr').name, 'NCT-R2DeeperR');
    assert.equal(findRun('NCT-WidenTeacher(NoResidual)').name, 'NCT-WidenTeacher-NoResidual');
    assert.equal(findRun('NCT-DeeperTeacher').name, 'NCT-DeepenTeacher');
    assert.throws(() => findRun('NCT-Nope'), /--list/);
    assert.equal(suiteRuns('all').length, RUNS.length);
    assert.throws(() => suiteRuns('nct'), /choose one of/);
  });

  it('the paper preset keeps the table\'s epochs; quick rescales events to the same relative point', () => {
    const ftt = findRun('FTT-R2WiderR');
    assert.deepEqual(scaleRun(ftt, PRESETS.paper), { epochs: 250, transforms: ['widen@25:r2r:1.5'], lrDrops: ['/5@25'] });
    assert.deepEqual(scaleRun(ftt, PRESETS.quick), { epochs: 6, transforms: ['widen@1:r2r:1.5'], lrDrops: ['/5@1'] });
    assert.deepEqual(scaleRun(findRun('NCT-R2DeeperR'), PRESETS.quick), { epochs: 4, transforms: ['deepen@0:r2r:2'], lrDrops: ['/5@0'] });
    assert.deepEqual(scaleRun(findRun('VIZ-R2R'), PRESETS.paper).transforms, ['widen@150:r2r:2:at=conv1']);
  });

  it('the standard preset: all images, 30 epochs, events at the table\'s relative points (FTT 3, BI 5, VIZ 8 of 30)', () => {
    assert.equal(PRESETS.standard.trainLimit, undefined);
    assert.equal(PRESETS.standard.valLimit, undefined);
    assert.equal(PRESETS.standard.batchSize, 128);
    assert.deepEqual(scaleRun(findRun('FTT-R2WiderR'), PRESETS.standard), { epochs: 30, transforms: ['widen@3:r2r:1.5'], lrDrops: ['/5@3'] });
    assert.deepEqual(scaleRun(findRun('BI-He'), PRESETS.standard), { epochs: 30, transforms: ['widen@5:r2r:1.5:init=he'], lrDrops: ['/5@5'] });
    assert.deepEqual(scaleRun(findRun('VIZ-NetMorph'), PRESETS.standard).transforms, ['widen@8:netmorph:2:at=conv1']);
    assert.deepEqual(scaleRun(findRun('NCT-WidenTeacher'), PRESETS.standard), { epochs: 30, transforms: [], lrDrops: [] });
  });
});

describe('experiment runner (tfjs, synthetic data)', () => {
  const dataset = loadDataset({ dataset: 'synthetic', trainLimit: 128, valLimit: 64, synthetic: { shape: [16, 16, 3], seed: 2 } });
  const logs: string[] = [];
  const opts = { out: tmp, engine: 'tfjs' as const, engineOptions: { backend: 'wasm' }, epochs: 2, dataset, hooks: { log: (l: string) => logs.push(l) } };

  it('trains a teacher once, its students from it, records a failing run and goes on, and writes the suite summary', async () => {
    const broken: RunDef = { ...findRun('NCT-NetMorph'), name: 'NCT-Broken', transforms: [{ kind: 'widen', at: 0, rest: 'r2r:1.5:at=no_such_node' }] };
    const defs = [findRun('NCT-WidenTeacher'), broken, findRun('NCT-R2WiderR'), findRun('NCT-RandPadWiden')];
    const res = await runExperiments(defs, opts);
    assert.deepEqual(res.outcomes.map((o) => o.status), ['completed', 'failed', 'completed', 'completed']);
    assert.match(res.outcomes[1].error!, /no_such_node/);
    assert.equal(logs.filter((l) => /training the teacher/.test(l)).length, 1);
    assert.equal(readdirSync(join(tmp, '.teachers')).length, 1);

    const suite = join(tmp, 'nct-widen');
    assert.deepEqual(JSON.parse(readFileSync(join(suite, 'suite.json'), 'utf8')).runs, ['NCT-WidenTeacher', 'NCT-R2WiderR', 'NCT-RandPadWiden', 'NCT-Broken']);
    const broken1 = JSON.parse(readFileSync(join(suite, 'NCT-Broken', 'run.json'), 'utf8'));
    assert.equal(broken1.status, 'failed');
    const sum = res.summaries[0];
    const by = Object.fromEntries(sum.runs.map((r) => [r.name, r]));
    const teacherAcc = by['NCT-WidenTeacher'].finalValAcc;
    // The R2R student starts exactly where its teacher ended; random padding does not (loss).
    const r2r = by['NCT-R2WiderR'].transforms[0];
    assert.equal(r2r.valAccBefore, teacherAcc);
    assert.equal(r2r.valAccAfter, r2r.valAccBefore);
    assert.ok(Math.abs(r2r.valLossAfter - r2r.valLossBefore) < 1e-5);
    const rp = by['NCT-RandPadWiden'].transforms[0];
    assert.ok(Math.abs(rp.valLossAfter - rp.valLossBefore) > 1e-3);
    assert.equal(by['NCT-R2WiderR'].totalFlops, by['NCT-R2WiderR'].trainFlops + by['NCT-WidenTeacher'].trainFlops);
    const md = readFileSync(join(suite, 'summary.md'), 'utf8');
    assert.match(md, /\| NCT-R2WiderR \| completed \| 2 \|/);
    assert.match(md, /NCT-Broken: .*no_such_node/);
    assert.ok(existsSync(join(suite, 'summary.json')));
    assert.ok(existsSync(join(suite, 'NCT-WidenTeacher', 'final', 'weights.safetensors')));

    // A second invocation reuses the cached teacher; --resume skips completed runs.
    logs.length = 0;
    // --keep 0 removes epoch checkpoints of completed runs and does not change the teacher's cache key.
    const again = await runExperiments([findRun('NCT-NetMorph'), findRun('NCT-R2WiderR')], { ...opts, resume: true, keepCheckpoints: 0 });
    assert.deepEqual(again.outcomes.map((o) => o.status), ['completed', 'skipped']);
    assert.deepEqual(readdirSync(join(suite, 'NCT-NetMorph')).sort(), ['after-transform-e0000-0', 'final', 'metrics.jsonl', 'run.json']);
    assert.ok(existsSync(join(suite, 'NCT-R2WiderR', 'checkpoints')));
    assert.equal(logs.filter((l) => /using the cached teacher/.test(l)).length, 1);
    assert.equal(logs.filter((l) => /training the teacher/.test(l)).length, 0);
  });

  it('refuses existing runs before anything runs (no --resume or --overwrite) and checks every run\'s configuration first; --overwrite replaces', async () => {
    const suite = join(tmp, 'nct-widen');
    const run = join(suite, 'NCT-R2WiderR');
    const snapshot = () => [readFileSync(join(run, 'metrics.jsonl'), 'utf8'), readFileSync(join(run, 'run.json'), 'utf8'), readdirSync(join(run, 'checkpoints')).join()];
    const before = snapshot();
    await assert.rejects(runExperiments([findRun('NCT-Scratch-Widen'), findRun('NCT-R2WiderR')], opts), (e: unknown) => e instanceof RunExistsError && e.message.includes(run) && /--resume/.test(e.message));
    assert.deepEqual(snapshot(), before);
    assert.equal(existsSync(join(suite, 'NCT-Scratch-Widen')), false, 'nothing ran');
    await assert.rejects(runExperiments([findRun('NCT-Scratch-Widen')], { ...opts, keepCheckpoints: -1 }), (e: unknown) => e instanceof R2RError && e.code === 'R2R_USAGE' && /NCT-Scratch-Widen: .*--keep.* got -1/.test(e.message));
    assert.equal(existsSync(join(suite, 'NCT-Scratch-Widen')), false);
    const res = await runExperiments([findRun('NCT-R2WiderR')], { ...opts, overwrite: true });
    assert.deepEqual(res.outcomes.map((o) => o.status), ['completed']);
    assert.notEqual(snapshot()[1], before[1], 'replaced');
  });
});

describe('several seeds', () => {
  it('spread: mean, sample standard deviation, min, max', () => {
    assert.deepEqual(spread([0.5]), { n: 1, mean: 0.5, std: 0, min: 0.5, max: 0.5 });
    const s = spread([0.4, 0.6])!;
    assert.ok(Math.abs(s.mean - 0.5) < 1e-15 && Math.abs(s.std - Math.SQRT2 * 0.1) < 1e-12);
    assert.equal(spread([]), null);
  });

  it('runs each seed into its own root and folds them into one table with mean and spread', async () => {
    const out = join(tmp, 'seeds');
    const dataset = loadDataset({ dataset: 'synthetic', trainLimit: 96, valLimit: 48, synthetic: { shape: [16, 16, 3], seed: 3 } });
    const defs = [findRun('NCT-WidenTeacher'), findRun('NCT-R2WiderR'), findRun('NCT-Scratch-Widen')];
    const res = await runExperimentSeeds(defs, [0, 1], { out, engine: 'tfjs', engineOptions: { backend: 'wasm' }, epochs: 1, dataset });
    assert.deepEqual(res.outcomes.map((o) => `${o.seed}:${o.name}:${o.status}`), [
      '0:NCT-WidenTeacher:completed', '0:NCT-R2WiderR:completed', '0:NCT-Scratch-Widen:completed',
      '1:NCT-WidenTeacher:completed', '1:NCT-R2WiderR:completed', '1:NCT-Scratch-Widen:completed']);
    for (const s of [0, 1]) assert.ok(existsSync(join(out, `seed-${s}`, 'nct-widen', 'NCT-R2WiderR', 'final', 'weights.safetensors')));
    const sum = res.summaries[0];
    assert.deepEqual(sum.seeds, [0, 1]);
    const by = Object.fromEntries(sum.runs.map((r) => [r.name, r]));
    // Different seeds give different teachers, and the table's numbers are their mean.
    const t = res.perSeed.map((p) => p.summaries[0].runs.find((r) => r.name === 'NCT-WidenTeacher')!.finalValAcc!);
    assert.equal(by['NCT-WidenTeacher'].finalValAcc!.n, 2);
    assert.ok(Math.abs(by['NCT-WidenTeacher'].finalValAcc!.mean - (t[0] + t[1]) / 2) < 1e-12);
    // Per seed, the R2R student starts at its own teacher's accuracy, so the means agree too.
    assert.ok(Math.abs(by['NCT-R2WiderR'].transforms[0].after!.mean - by['NCT-WidenTeacher'].finalValAcc!.mean) < 1e-12);
    // The scratch run reaches its own final accuracy by definition; the column is filled for every run.
    assert.equal(by['NCT-Scratch-Widen'].reachFlops!.n + by['NCT-Scratch-Widen'].notReached.length, 2);
    assert.equal(by['NCT-Scratch-Widen'].notReached.length, 0);
    const seed0 = res.perSeed[0].summaries[0];
    assert.equal(seed0.reachTarget!.run, 'NCT-Scratch-Widen');
    for (const r of seed0.runs) assert.notEqual(r.reach, undefined, r.name);
    const md = readFileSync(join(out, 'summary-nct-widen.md'), 'utf8');
    assert.match(md, /# Suite nct-widen, seeds 0, 1/);
    assert.match(md, /\| NCT-R2WiderR \| 0,1 \|/);
    assert.ok(existsSync(join(out, 'summary-nct-widen.json')));
    await assert.rejects(runExperimentSeeds(defs, [1, 1], { out, dataset }), /distinct/);
  });
});
