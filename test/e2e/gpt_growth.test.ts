/**
 * Growing a GPT through the real command line (issue 10): `r2r verify --transform
 * heads|mlp|width|deepen` is exact for R2R on a random token batch and not for random padding,
 * refusals exit with the transform error's status and say why, and `r2r train --model gpt
 * --transform ...` grows the model at the given steps without a jump in validation loss.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { EXIT_CODES } from '../../src/errors.ts';

const BIN = resolve('bin/r2r.js');
const root = mkdtempSync(join(tmpdir(), 'r2r-e2e-gpt-growth-'));
after(() => rmSync(root, { recursive: true, force: true }));

function r2r(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const TINY = ['--model', 'gpt', '--layers', '2', '--heads', '2', '--dim', '16', '--block', '8', '--vocab', '11', '--engine', 'tfjs', '--batch', '3'];
/** verify --json prints one JSON document whose `results` hold one object per mode. */
const modes = (stdout: string): any[] => JSON.parse(stdout).results;

describe('growing a GPT from the command line', () => {
  for (const [transform, extra] of [['heads', ['--add', '2']], ['mlp', []], ['width', []], ['deepen', ['--position', '1', '--per-stage', '1']]] as const) {
    it(`verify --transform ${transform}: r2r exact in both modes, random not`, () => {
      const ok = r2r('verify', ...TINY, '--transform', transform, '--method', 'r2r', ...extra, '--json');
      assert.equal(ok.status, 0, ok.stderr);
      const m = modes(ok.stdout);
      assert.deepEqual(m.map((x) => [x.mode, x.pass]), [['inference', true], ['training', true]]);
      assert.ok(m.every((x) => x.relDiff <= 1e-5 && x.paramsAfter > x.paramsBefore && x.transform === transform));
      const bad = r2r('verify', ...TINY, '--transform', transform, '--method', 'random', ...extra, '--json');
      assert.equal(bad.status, 0, bad.stderr);
      assert.ok(modes(bad.stdout).every((x) => x.relDiff > 1e-3 && !x.exactExpected));
    });
  }

  it('refusals name the reason: width by 1.5 (layer norm), Net2Net deepening, odd R2R heads', () => {
    const w = r2r('verify', ...TINY, '--transform', 'width', '--method', 'net2net', '--factor', '1.5');
    assert.equal(w.status, EXIT_CODES.R2R_TRANSFORM);
    assert.match(w.stderr, /mean and variance/);
    assert.doesNotMatch(w.stderr, /\n\s+at /, 'no stack trace');
    const d = r2r('verify', ...TINY, '--transform', 'deepen', '--method', 'net2net');
    assert.equal(d.status, EXIT_CODES.R2R_TRANSFORM);
    assert.match(d.stderr, /identity/);
    const h = r2r('verify', ...TINY, '--transform', 'heads', '--method', 'r2r', '--add', '1');
    assert.equal(h.status, EXIT_CODES.R2R_TRANSFORM);
    assert.match(h.stderr, /equal pairs/);
  });

  it('train --transform: grows at the given steps, validation loss unchanged across each R2R growth', () => {
    const text = join(root, 'abc.txt');
    writeFileSync(text, 'to be or not to be, that is the question. '.repeat(40));
    const dir = join(root, 'grow');
    const r = r2r('train', '--model', 'gpt', '--layers', '1', '--heads', '2', '--dim', '8', '--block', '8', '--data-text', text, '--steps', '8', '--eval-every', '4',
      '--eval-batches', '1', '--batch-size', '4', '--engine', 'tfjs', '--out', dir, '--quiet', '--json',
      '--transform', 'width@2:r2r:2', '--transform', 'heads@2:r2r:+2', '--transform', 'mlp@2:r2r', '--transform', 'deepen@4:r2r:+1');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'completed');
    assert.deepEqual(out.transforms.map((t: { spec: string }) => t.spec), ['width@2:r2r:2', 'heads@2:r2r:+2', 'mlp@2:r2r', 'deepen@4:r2r:+1']);
    for (const t of out.transforms) assert.ok(Math.abs(t.valLossAfter - t.valLossBefore) <= 1e-5 * t.valLossBefore, `${t.spec}: ${t.valLossBefore} -> ${t.valLossAfter}`);
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.filter((l) => l.type === 'transform').length, 4);
    const bad = r2r('train', '--model', 'gpt', '--layers', '1', '--heads', '2', '--dim', '8', '--block', '8', '--data-text', text, '--steps', '8', '--engine', 'tfjs', '--out', join(root, 'bad'), '--transform', 'heads@2:r2r:+2:after=x');
    assert.equal(bad.status, EXIT_CODES.R2R_USAGE);
    assert.match(bad.stderr, /unknown option 'after' for heads/);
  });
});
