/**
 * The gpt-growth suite end to end at a toy size (tfjs wasm): every run trains, the summary reads
 * back the transforms (no jump for R2R, a jump for random padding), the FLOPs to reach the
 * scratch run's loss, and the chart and table files; plus the schedule each method gets.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readTextDataset } from '../data/text.ts';
import { getEngine } from '../engines/registry.ts';
import { writeReport } from '../report/report.ts';
import type { EvalRecord } from '../train/metrics.ts';
import { checkPreset, flopsToReach, GPT_GROWTH_PRESETS, gptGrowthRuns, runGptGrowth, type GptGrowthPreset } from './gpt_growth.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-gpt-growth-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const TOY: GptGrowthPreset = {
  name: 'toy', description: 'test size', target: { layers: 2, heads: 4, dim: 16 }, start: { layers: 1, heads: 2, dim: 8 }, block: 8,
  batchSize: 4, lr: 1e-2, evalEvery: 4, evalBatches: 1, scratchSteps: 12, growthSteps: 16, growAt: { width: 4, depth: 8 }, seeds: [0],
};

describe('gpt-growth suite', () => {
  it('gives each method its schedule; Net2Net deepens by zero-output blocks; presets are consistent', () => {
    const runs = gptGrowthRuns(GPT_GROWTH_PRESETS.paper);
    assert.deepEqual(runs.map((r) => r.name).slice(0, 5), ['GPT-Scratch-s0', 'GPT-Grow-R2R-s0', 'GPT-Grow-Net2Net-s0', 'GPT-Grow-NetMorph-s0', 'GPT-Grow-Random-s0']);
    assert.equal(runs.length, 15);
    assert.deepEqual(runs[1].transforms, ['width@750:r2r:2', 'heads@750:r2r:+2', 'mlp@750:r2r:2', 'deepen@1500:r2r:+2']);
    assert.equal(runs[2].transforms[3], 'deepen@1500:netmorph:+2');
    assert.match(runs[2].description, /Net2DeeperNet has no transformer form/);
    assert.deepEqual(gptGrowthRuns(TOY, ['r2r'], 'init=copy')[1].transforms, ['width@4:r2r:2:init=copy', 'heads@4:r2r:+2:init=copy', 'mlp@4:r2r:2:init=copy', 'deepen@8:r2r:+1:init=copy']);
    checkPreset(GPT_GROWTH_PRESETS.quick);
    assert.throws(() => checkPreset({ ...TOY, target: { layers: 2, heads: 3, dim: 16 } }), /head size/);
    assert.throws(() => checkPreset({ ...TOY, target: { layers: 2, heads: 4, dim: 24 } }), /twice/);
  });

  it('flopsToReach interpolates between evaluations and says null when never reached', () => {
    const ev = (flops: number, valLoss: number) => ({ type: 'eval', step: 0, flops, valLoss } as EvalRecord);
    assert.equal(flopsToReach([ev(0, 4), ev(100, 2), ev(200, 1)], 1.5), 150);
    assert.equal(flopsToReach([ev(0, 4), ev(100, 2)], 1.5), null);
  });

  it('runs at a toy size with one command: summary, table and chart; R2R keeps the loss at each growth, random padding does not', async () => {
    const textFile = join(tmp, 'pets.txt');
    writeFileSync(textFile, 'the cat the dog the owl '.repeat(60));
    const engine = await getEngine('tfjs', { backend: 'wasm' });
    const s = await runGptGrowth({ out: tmp, preset: TOY, data: readTextDataset(textFile, TOY.block), engine, methods: ['r2r', 'random'] });
    assert.deepEqual(s.runs.map((r) => [r.name, r.status]), [['GPT-Scratch', 'completed'], ['GPT-Grow-R2R', 'completed'], ['GPT-Grow-Random', 'completed']]);
    const [scratch, r2r, random] = s.runs;
    assert.equal(scratch.flopsRatio, 1);
    assert.equal(r2r.transforms.length, 4);
    for (const t of r2r.transforms) assert.ok(Math.abs(t.valLossAfter - t.valLossBefore) <= 1e-5 * t.valLossBefore, `${t.spec}: ${t.valLossBefore} -> ${t.valLossAfter}`);
    assert.ok(random.transforms.some((t) => Math.abs(t.valLossAfter - t.valLossBefore) > 1e-3));
    assert.equal(r2r.params, scratch.params, 'the grown model is the target');
    assert.ok(r2r.flops < 2 * scratch.flops && r2r.flops > 0);
    if (r2r.flopsToScratchLoss !== null) assert.ok(Math.abs(r2r.flopsRatio! - r2r.flopsToScratchLoss / scratch.flops) < 1e-12);
    const dir = join(tmp, 'gpt-growth');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')), JSON.parse(JSON.stringify(s)));
    assert.match(readFileSync(join(dir, 'summary.md'), 'utf8'), /GPT-Grow-R2R .*completed/);
    assert.match(readFileSync(join(dir, 'flops-to-scratch-loss.svg'), 'utf8'), /^<svg/);
    assert.match(readFileSync(join(dir, 'report.html'), 'utf8'), /GPT-Grow-R2R/);
    assert.ok(existsSync(join(dir, 'GPT-Grow-R2R', 'final', 'model.json')));
    // The HTML report reads the text runs' evaluations: validation loss against FLOPs and steps.
    const rep = await writeReport(dir);
    assert.deepEqual(rep.svgs.map((p) => p.slice(dir.length + 1)), ['val-loss-vs-flops.svg', 'val-loss-vs-step.svg']);
    assert.ok(!rep.summary.warnings.some((w) => /not an epoch or transform record/.test(w)), rep.summary.warnings.join('; '));
    assert.deepEqual(rep.summary.runs.find((r) => r.name === 'GPT-Grow-R2R')!.transforms.map((t) => t.epoch), [4, 4, 4, 8]);
    // --resume skips completed runs and rewrites the same summary.
    const again = await runGptGrowth({ out: tmp, preset: TOY, data: readTextDataset(textFile, TOY.block), engine, methods: ['r2r', 'random'], resume: true });
    assert.deepEqual(again, s);
  });
});
