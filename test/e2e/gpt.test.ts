/**
 * Transformers through the real command line: `r2r inspect` reports the issue-9 GPT's 818,241
 * parameters, `r2r verify` checks an R2R widening of a GPT on a random token batch, `r2r train
 * --model gpt` trains a tiny GPT on a text file (stopped and resumed), and `r2r sample` generates
 * from its checkpoint without the data file. Bad requests exit with their code's status.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { EXIT_CODES } from '../../src/errors.ts';

const BIN = resolve('bin/r2r.js');
const root = mkdtempSync(join(tmpdir(), 'r2r-e2e-gpt-'));
after(() => rmSync(root, { recursive: true, force: true }));

function r2r(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const readJsonl = (p: string) => readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const TINY = ['--model', 'gpt', '--layers', '1', '--heads', '2', '--dim', '16', '--block', '16'];

describe('r2r with GPT models (CLI)', () => {
  it('inspect --json: 4 layers / 4 heads / 128 / block 64 / vocab 65 has 818,241 parameters; the stream group is coupled', () => {
    const r = r2r('inspect', '--model', 'gpt', '--layers', '4', '--heads', '4', '--dim', '128', '--block', '64', '--vocab', '65', '--json');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.params, 818_241);
    assert.equal(j.macs, 4 * (12 * 64 * 128 * 128 + 2 * 64 * 64 * 128) + 64 * 128 * 65);
    const stream = j.groups.find((g: any) => g.volumes.includes('wte'));
    assert.equal(stream.widenable, false);
    assert.equal(stream.coupled[0].node, 'h0_ln1');
    assert.equal(j.groups.filter((g: any) => g.widenable).length, 4, 'the four MLP hidden groups');
    const t = r2r('inspect', '--model', 'gpt');
    assert.match(t.stdout, /818,241 parameters/);
    assert.match(t.stdout, /coupled by h0_ln1: not widenable channel-wise/);
  });

  it('verify: R2R widening of a GPT (MLP groups) is exact on a random token batch; random padding is not', () => {
    const ok = r2r('verify', ...TINY, '--vocab', '11', '--transform', 'widen', '--method', 'r2r', '--add', '4', '--engine', 'tfjs', '--batch', '3', '--json');
    assert.equal(ok.status, 0, ok.stderr);
    const modes: any[] = JSON.parse(ok.stdout).results; // verify --json: one document, `results` per mode
    assert.deepEqual(modes.map((m) => m.pass), [true, true]);
    assert.ok(modes.every((m) => m.relDiff <= 1e-5 && m.paramsAfter > m.paramsBefore));
    const bad = r2r('verify', ...TINY, '--vocab', '11', '--transform', 'widen', '--method', 'random', '--add', '4', '--engine', 'tfjs', '--batch', '3', '--json');
    assert.equal(bad.status, 0, bad.stderr);
    assert.ok((JSON.parse(bad.stdout).results as any[]).every((m) => m.relDiff > 1e-3));
    const coupled = r2r('verify', ...TINY, '--transform', 'widen', '--at', 'h0_ln1', '--add', '2', '--engine', 'tfjs');
    assert.equal(coupled.status, EXIT_CODES.R2R_TRANSFORM);
    assert.match(coupled.stderr, /coupled by 'h0_ln1'/);
  });

  it('train --model gpt on a text file: step metrics, stop and resume, then sample from the checkpoint', () => {
    const text = join(root, 'abc.txt');
    writeFileSync(text, 'to be or not to be, that is the question. '.repeat(40));
    const dir = join(root, 'run');
    const args = ['train', ...TINY, '--data-text', text, '--steps', '6', '--eval-every', '3', '--eval-batches', '1', '--batch-size', '4', '--engine', 'tfjs', '--out', dir, '--quiet'];
    const a = r2r(...args, '--stop-after', '3');
    assert.equal(a.status, 0, a.stderr);
    assert.deepEqual(readJsonl(join(dir, 'metrics.jsonl')).map((r) => r.step), [0, 3]);
    const b = r2r(...args, '--resume', '--json');
    assert.equal(b.status, 0, b.stderr);
    const out = JSON.parse(b.stdout);
    assert.equal(out.status, 'completed');
    const recs = readJsonl(join(dir, 'metrics.jsonl'));
    assert.deepEqual(recs.map((r) => r.step), [0, 3, 6]);
    assert.equal(recs[2].tokens, 6 * 4 * 16);
    assert.ok(recs.every((r) => r.type === 'eval' && Number.isFinite(r.valLoss)));
    const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    assert.equal(run.config.train.batchSize, 4);
    assert.equal(run.config.data.vocab, 15);

    // The data file is gone: the checkpoint's vocabulary is enough.
    rmSync(text);
    const s1 = r2r('sample', join(dir, 'final'), '--prompt', 'to be', '--tokens', '20', '--seed', '3', '--engine', 'tfjs', '--json');
    assert.equal(s1.status, 0, s1.stderr);
    const j1 = JSON.parse(s1.stdout);
    assert.equal(j1.text.length, 25);
    assert.ok(j1.text.startsWith('to be'));
    assert.equal(r2r('sample', join(dir, 'final'), '--prompt', 'to be', '--tokens', '20', '--seed', '3', '--engine', 'tfjs', '--json').stdout, s1.stdout, 'same seed, same text');
    const unknown = r2r('sample', join(dir, 'final'), '--prompt', 'TO BE', '--engine', 'tfjs');
    assert.equal(unknown.status, EXIT_CODES.R2R_DATA);
    assert.match(unknown.stderr, /prompt: character "T" \(U\+0054\) at position 0 is not in the model's 15-character vocabulary/);
  });

  it('clear errors: a text too short for the block, image flags on a gpt, a checkpoint without a vocabulary', () => {
    const short = join(root, 'short.txt');
    writeFileSync(short, 'tiny text');
    const r = r2r('train', ...TINY, '--data-text', short, '--steps', '1', '--engine', 'tfjs', '--out', join(root, 'x'));
    assert.equal(r.status, EXIT_CODES.R2R_DATA);
    assert.match(r.stderr, /short\.txt: the training split \(first 90%\) has 8 characters, fewer than block \+ 1 = 17/);
    const e = r2r('train', ...TINY, '--data-text', short, '--epochs', '3', '--engine', 'tfjs', '--out', join(root, 'y'));
    assert.equal(e.status, EXIT_CODES.R2R_USAGE);
    assert.match(e.stderr, /--epochs do not apply to token models/);
    const v = r2r('verify', ...TINY, '--add', '2', '--batch', '2', '--engine', 'tfjs', '--save', join(root, 'saved'));
    assert.equal(v.status, 0, v.stderr);
    const s = r2r('sample', join(root, 'saved', 'teacher'));
    assert.equal(s.status, EXIT_CODES.R2R_CHECKPOINT);
    assert.match(s.stderr, /no vocabulary \(vocab\.json\); sample needs a checkpoint written by a text run/);
  });
});
