/**
 * Bad input through the real `r2r` binary (issue 8, "nothing lost, nothing escaped"): each case
 * must exit with the status of its error code, name the thing at fault, print no stack trace,
 * and leave what was there intact. Tiny models, synthetic data, one thread.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXIT_CODES, type R2RErrorCode } from '../../src/errors.ts';
import { saveCheckpoint } from '../../src/io/checkpoint.ts';
import { encodeSafetensors } from '../../src/io/safetensors.ts';
import { initWeights } from '../../src/ir/weights.ts';
import { zooModel } from '../../src/models/zoo.ts';
import { Rng } from '../../src/rng.ts';

const BIN = resolve('bin/r2r.js');
const root = mkdtempSync(join(tmpdir(), 'r2r-e2e-bad-'));
const work = join(root, 'work');
mkdirSync(work);
after(() => rmSync(root, { recursive: true, force: true }));

function r2r(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: work, encoding: 'utf8', timeout: 120_000, env: { ...process.env, R2R_DATA: '', OMP_NUM_THREADS: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TRAIN = ['train', '--model', 'mlp', '--width', '0.125', '--dataset', 'synthetic', '--limit', '64', '--val-limit', '32', '--batch-size', '32', '--engine', 'tfjs', '--threads', '1', '--quiet'];
const run = join(root, 'run');
const conv = join(root, 'conv');

/** Every file under `dir` with its size and modification time: "nothing destroyed" means this is unchanged. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e), s = statSync(p);
      if (s.isDirectory()) walk(p); else out.push(`${p.slice(dir.length)} ${s.size} ${s.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

/** A checkpoint of `conv` with one thing changed. */
function damaged(name: string, edit: (dir: string) => void): string {
  const dir = join(root, name);
  cpSync(conv, dir, { recursive: true });
  edit(dir);
  return dir;
}

/** A safetensors file with one extra tensor of any name (object literals cannot hold '__proto__'). */
function withExtraTensor(dir: string, name: string): void {
  const g = zooModel('small-conv', { width: 0.25 });
  const w = initWeights(g, new Rng(0));
  const buf = encodeSafetensors(w);
  const hlen = Number(buf.readBigUInt64LE(0));
  const header = buf.subarray(8, 8 + hlen).toString().trimEnd();
  const end = buf.length - 8 - hlen;
  let j = `${header.slice(0, -1)},${JSON.stringify(name)}:{"dtype":"F32","shape":[1],"data_offsets":[${end},${end + 4}]}}`;
  j += ' '.repeat((8 - (j.length % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(j.length));
  writeFileSync(join(dir, 'weights.safetensors'), Buffer.concat([head, Buffer.from(j), buf.subarray(8 + hlen), Buffer.alloc(4)]));
}

before(() => {
  const r = r2r(...TRAIN, '--epochs', '2', '--out', run);
  assert.equal(r.status, 0, r.stderr);
  const g = zooModel('small-conv', { width: 0.25 });
  saveCheckpoint(conv, { graph: g, weights: initWeights(g, new Rng(0), { randomBatchNorm: true }) });
});

interface Case {
  name: string;
  args: () => string[];
  code: R2RErrorCode;
  /** The message names the thing at fault. */
  says: RegExp;
  /** Directories that must be unchanged afterwards (default: the trained run). */
  keeps?: () => string[];
  /** Paths that must not exist afterwards. */
  absent?: () => string[];
}

const CASES: Case[] = [
  { name: 'train into an existing run without --resume', args: () => [...TRAIN, '--epochs', '1', '--out', run], code: 'R2R_RUN_EXISTS', says: /run already holds a run .*--resume.*--overwrite/ },
  { name: 'train --name ../../../../x', args: () => [...TRAIN, '--epochs', '1', '--name', '../../../../x'], code: 'R2R_USAGE', says: /--name "\.\.\/\.\.\/\.\.\/\.\.\/x" is not allowed/, absent: () => [join(work, 'runs')] },
  { name: "train --name ''", args: () => [...TRAIN, '--epochs', '1', '--name', ''], code: 'R2R_USAGE', says: /--name "" is not allowed/, absent: () => [join(work, 'runs')] },
  { name: 'a transform that cannot apply is refused before the first epoch', args: () => [...TRAIN, '--epochs', '6', '--transform', 'widen@5:r2r:1.01', '--out', join(root, 'never')], code: 'R2R_TRANSFORM', says: /transform 'widen@5:r2r:1\.01' \(checked before training\): widen: factor 1\.01 adds no channel/, absent: () => [join(root, 'never')] },
  { name: '--lr-drop /5@99 past the last epoch', args: () => [...TRAIN, '--epochs', '2', '--lr-drop', '/5@99', '--out', join(root, 'never')], code: 'R2R_USAGE', says: /learning-rate drop '\/5@99' is at epoch 99, but the run has only 2 epochs/, absent: () => [join(root, 'never')] },
  { name: '--keep -1', args: () => [...TRAIN, '--keep', '-1', '--out', join(root, 'never')], code: 'R2R_USAGE', says: /--keep: must be an integer >= 0, got -1/ },
  { name: '--stop-after 0', args: () => [...TRAIN, '--stop-after', '0', '--out', join(root, 'never')], code: 'R2R_USAGE', says: /--stop-after: must be an integer >= 1, got 0/ },
  { name: 'seed=0.5 in a transform spec', args: () => [...TRAIN, '--epochs', '2', '--transform', 'widen@1:r2r:1.5:seed=0.5', '--out', join(root, 'never')], code: 'R2R_USAGE', says: /seed must be an integer, got '0\.5'/ },
  { name: 'train --out a file', args: () => [...TRAIN, '--out', join(run, 'run.json')], code: 'R2R_IO', says: /run directory \(--out\) .*run\.json: is a file, not a directory/ },
  { name: 'a bad line in metrics.jsonl refuses --resume before anything is cut', args: () => [...TRAIN, '--epochs', '2', '--resume', '--out', damagedRun('badline', (d) => { const p = join(d, 'metrics.jsonl'); writeFileSync(p, readFileSync(p, 'utf8').replace(/"epoch":2/, '"epoch":"two"')); })], code: 'R2R_CHECKPOINT', says: /metrics\.jsonl:2: not a metrics record/, keeps: () => [join(root, 'badline')] },
  { name: 'metrics.jsonl that is a folder (train --resume)', args: () => [...TRAIN, '--epochs', '2', '--resume', '--out', damagedRun('mdir', metricsFolder)], code: 'R2R_IO', says: /metrics\.jsonl is not a file/, keeps: () => [join(root, 'mdir')] },
  { name: 'metrics.jsonl that is a folder (report)', args: () => ['report', damagedRun('mdir', metricsFolder)], code: 'R2R_DATA', says: /metrics\.jsonl: not a file/, keeps: () => [join(root, 'mdir')] },
  { name: 'report --out an existing folder', args: () => ['report', run, '--out', root], code: 'R2R_IO', says: /--out .* is a directory; give a file name, e\.g\. .*report\.html/ },
  { name: 'filters --out below a file', args: () => ['filters', conv, '--out', join(run, 'run.json', 'x.png')], code: 'R2R_IO', says: /--out .*run\.json\/x\.png: .*run\.json is a file, not a directory/ },
  { name: 'data fetch --dir below a file', args: () => ['data', 'fetch', '--dir', join(run, 'run.json', 'cifar10'), '--url', 'http://127.0.0.1:9/x.tar.gz'], code: 'R2R_IO', says: /--dir .*: .*run\.json is a file, not a directory/ },
  { name: 'verify --factor 1000000', args: () => ['verify', '--model', 'mlp', '--factor', '1000000'], code: 'R2R_TOO_LARGE', says: /verify of widen r2r .* needs about .* more than the limit of .*R2R_MEMORY_LIMIT/ },
  { name: 'verify --width 1e5', args: () => ['verify', '--model', 'resnet-cifar18', '--width', '1e5'], code: 'R2R_TOO_LARGE', says: /resnet-cifar18 --width 100000 needs about .* more than the limit/ },
  { name: 'verify on an input of [100000, 100000, 3]', args: () => ['verify', '--checkpoint', hugeInput()], code: 'R2R_TOO_LARGE', says: /needs about .* activation values per example .* more than the limit/ },
  { name: 'verify --save into a folder that holds files', args: () => ['verify', '--model', 'mlp', '--save', savedBefore()], code: 'R2R_USAGE', says: /--save .*saved already holds keep\.txt; pass --overwrite/, keeps: () => [join(root, 'saved')] },
  { name: 'verify --width 0', args: () => ['verify', '--model', 'mlp', '--width', '0'], code: 'R2R_USAGE', says: /--width: must be > 0, got 0/ },
  { name: 'verify --tolerance -1', args: () => ['verify', '--model', 'mlp', '--tolerance', '-1'], code: 'R2R_USAGE', says: /--tolerance: must be >= 0, got -1/ },
  { name: 'verify --noise -1', args: () => ['verify', '--model', 'mlp', '--noise', '-1'], code: 'R2R_USAGE', says: /--noise: must be >= 0, got -1/ },
  { name: 'a NaN weight in a checkpoint', args: () => ['verify', '--checkpoint', damaged('nan', (d) => { const p = join(d, 'weights.safetensors'); const b = readFileSync(p); b.writeFloatLE(NaN, b.length - 4); writeFileSync(p, b); })], code: 'R2R_WEIGHT_VALUES', says: /weights\.safetensors: tensor '.*' of node '.*' holds NaN at index \d+/ },
  { name: 'a negative moving variance in a checkpoint', args: () => ['inspect', '--checkpoint', negativeVariance()], code: 'R2R_WEIGHT_VALUES', says: /tensor 'bn1\/movingVariance' .* negative variance -1 at index 0/ },
  ...['__proto__', '__proto__/conv1/kernel', 'constructor'].map((t): Case => ({
    name: `a tensor named ${t} in a checkpoint`, args: () => ['inspect', '--checkpoint', damaged(`proto-${t.replace(/\W/g, '')}`, (d) => withExtraTensor(d, t))], code: 'R2R_CHECKPOINT', says: new RegExp(`tensor '${t}' belongs to no parameter`),
  })),
];

function savedBefore(): string {
  const d = join(root, 'saved');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'keep.txt'), 'an earlier verify --save\n');
  return d;
}

const metricsFolder = (d: string) => { rmSync(join(d, 'metrics.jsonl')); mkdirSync(join(d, 'metrics.jsonl')); };

function damagedRun(name: string, edit: (dir: string) => void): string {
  const dir = join(root, name);
  if (!existsSync(dir)) { cpSync(run, dir, { recursive: true }); edit(dir); }
  return dir;
}

function hugeInput(): string {
  const dir = join(root, 'huge');
  if (!existsSync(dir)) {
    const g = zooModel('resnet-cifar10', { width: 0.0625, inputShape: [100000, 100000, 3] });
    saveCheckpoint(dir, { graph: g, weights: initWeights(g, new Rng(0)) });
  }
  return dir;
}

function negativeVariance(): string {
  const dir = join(root, 'negvar');
  if (!existsSync(dir)) {
    const g = zooModel('resnet-cifar10', { width: 0.0625 });
    const w = initWeights(g, new Rng(0));
    saveCheckpoint(dir, { graph: g, weights: w });
    w['bn1/movingVariance'].data[0] = -1;
    writeFileSync(join(dir, 'weights.safetensors'), encodeSafetensors(w));
  }
  return dir;
}

describe('bad input: an exit status per code, a message naming the fault, no stack trace, nothing destroyed', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const args = c.args();
      const keeps = c.keeps?.() ?? [run];
      const before = keeps.map(snapshot);
      const r = r2r(...args);
      assert.equal(r.status, EXIT_CODES[c.code], `exit ${r.status}, expected ${EXIT_CODES[c.code]} (${c.code}); stderr: ${r.stderr}`);
      assert.match(r.stderr, /^r2r: /m);
      assert.match(r.stderr, c.says);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
      assert.deepEqual(keeps.map(snapshot), before, 'nothing destroyed');
      for (const p of c.absent?.() ?? []) assert.equal(existsSync(p), false, `${p} was created`);
    });
  }
});

describe('outputs and statuses', () => {
  it('inspect | head: a closed pipe ends quietly', () => {
    // `true` exits at once, long before r2r writes (its start takes most of a second): the write gets EPIPE.
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" inspect --model resnet-cifar18 --json | true`], { encoding: 'utf8' });
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
  });

  it('filters --out into a folder that does not exist yet creates it', () => {
    const out = join(root, 'new', 'dir', 'x.png');
    const r = r2r('filters', conv, '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(statSync(out).size > 0);
  });

  it('a run stopped by --stop-after says "stopped"; --overwrite replaces a run', () => {
    const dir = join(root, 'stop');
    const s = r2r(...TRAIN, '--epochs', '2', '--stop-after', '1', '--out', dir);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).status, 'stopped');
    const o = r2r(...TRAIN, '--epochs', '1', '--overwrite', '--out', dir);
    assert.equal(o.status, 0, o.stderr);
    const info = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    assert.equal(info.status, 'completed');
    assert.equal(info.config.train.epochs, 1);
  });
});
