/**
 * End to end through the real command line: `r2r experiment --list`, an NCT student and an FTT
 * run on synthetic data with the summary table, `r2r train` stopped and resumed, `r2r data info`,
 * and the message a user without data gets.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { CIFAR10_TRAIN_FILES, encodeCifar10Records } from '../../src/data/cifar10.ts';
import { EXIT_CODES } from '../../src/errors.ts';

const BIN = resolve('bin/r2r.js');
const root = mkdtempSync(join(tmpdir(), 'r2r-e2e-train-'));
after(() => rmSync(root, { recursive: true, force: true }));

function r2r(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, R2R_DATA: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const readJsonl = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('r2r experiment / train / data (CLI)', () => {
  it('--list --json names all 26 runs of table 5 (FTT spelled FTT) and the from-scratch baselines', () => {
    const r = r2r('experiment', '--list', '--json');
    assert.equal(r.status, 0, r.stderr);
    const names = (JSON.parse(r.stdout) as { name: string }[]).map((x) => x.name);
    for (const n of ['VIZ-R2R', 'VIZ-Net2Net', 'VIZ-NetMorph', 'OF-Teacher', 'OF-Student', 'OF-Rand', 'BI-He', 'BI-Std',
      'NCT-WidenTeacher', 'NCT-R2WiderR', 'NCT-NetMorph', 'NCT-RandPadWiden', 'NCT-WidenTeacher-NoResidual', 'NCT-Net2WiderNet',
      'NCT-DeepenTeacher', 'NCT-R2DeeperR', 'NCT-RandPadDeeper', 'NCT-DeepenTeacher-NoResidual', 'NCT-Net2DeeperNet',
      'FTT-R2WiderR', 'FTT-NetMorph', 'FTT-RandPadWiden', 'FTT-Net2WiderNet', 'FTT-R2DeeperR', 'FTT-RandPadDeeper', 'FTT-Net2DeeperNet',
      'NCT-Scratch-Widen', 'NCT-Scratch-Deepen', 'FTT-Scratch-Widen', 'FTT-Scratch-Deepen']) assert.ok(names.includes(n), n);
    assert.equal(names.length, 30);
  });

  it('runs a student with its teacher and an FTT run (FFT- spelling), prints and writes the summary', () => {
    const out = join(root, 'runs');
    const r = r2r('experiment', 'NCT-R2DeeperR', 'FFT-R2WiderR', '--dataset', 'synthetic', '--limit', '128', '--val-limit', '64', '--epochs', '2', '--engine', 'tfjs', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /suite nct-deepen[\s\S]*NCT-R2DeeperR\s+completed\s+2\s/);
    assert.match(r.stdout, /suite ftt-widen[\s\S]*FTT-R2WiderR\s+completed\s+2\s/);
    assert.match(r.stderr, /NCT-DeepenTeacher: training the teacher/);
    const m = readJsonl(join(out, 'ftt-widen', 'FTT-R2WiderR', 'metrics.jsonl'));
    assert.deepEqual(m.map((x) => `${x.type}:${x.epoch}`), ['epoch:1', 'transform:1', 'epoch:2']);
    assert.equal(m[1].valAccAfter, m[1].valAccBefore);
    assert.equal(m[1].valAccBefore, m[0].valAcc);
    const sum = JSON.parse(readFileSync(join(out, 'nct-deepen', 'summary.json'), 'utf8'));
    assert.equal(sum.runs[0].name, 'NCT-R2DeeperR');
    assert.equal(sum.runs[0].transforms[0].spec, 'deepen@0:r2r:2');
  });

  it('train --stop-after then --resume gives the metrics of an uninterrupted run', () => {
    const args = ['train', '--model', 'resnet-cifar10', '--width', '0.0625', '--dataset', 'synthetic', '--limit', '128', '--val-limit', '64', '--epochs', '3',
      '--batch-size', '32', '--lr', '3e-3', '--transform', 'widen@1:r2r:1.5', '--lr-drop', '/5@1', '--engine', 'tfjs', '--quiet'];
    const a = join(root, 'ta'), b = join(root, 'tb');
    assert.equal(r2r(...args, '--out', a).status, 0);
    const s1 = r2r(...args, '--out', b, '--stop-after', '1');
    assert.equal(s1.status, 0, s1.stderr);
    assert.match(s1.stdout, /stopped after 1 epochs/);
    const s2 = r2r(...args, '--out', b, '--resume');
    assert.equal(s2.status, 0, s2.stderr);
    const strip = (p: string) => readJsonl(join(p, 'metrics.jsonl')).map((x) => ({ ...x, wallSeconds: 0 }));
    assert.deepEqual(strip(b), strip(a));
  });

  it('tells a user without data how to get it (exit status of R2R_DATA)', () => {
    const r = r2r('experiment', 'NCT-R2WiderR', '--data', join(root, 'no-data-here'), '--engine', 'tfjs');
    assert.equal(r.status, EXIT_CODES.R2R_DATA);
    assert.match(r.stderr, /CIFAR-10 not found: .*no-data-here .*does not exist; get it with `npx r2r data fetch`/);
  });

  it('data info reports files, record and class counts', () => {
    const dir = join(root, 'cifar');
    const counts = writeTinyCifar(dir);
    const r = r2r('data', 'info', '--data', dir, '--json');
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.files.length, 6);
    assert.equal(info.files[0].records, 3);
    assert.deepEqual(info.files[0].classCounts, counts);
  });
});

/** Six tiny batch files; returns data_batch_1's class counts. */
function writeTinyCifar(dir: string): number[] {
  mkdirSync(dir, { recursive: true });
  const labels = new Int32Array([1, 1, 7]);
  for (const f of [...CIFAR10_TRAIN_FILES, 'test_batch.bin']) writeFileSync(join(dir, f), encodeCifar10Records({ pixels: new Uint8Array(3 * 3072), labels, n: 3 }));
  const c = new Array(10).fill(0);
  c[1] = 2; c[7] = 1;
  return c;
}
