// The core commands through the real `r2r` binary: inspect and verify (issue 2's acceptance).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '../../src/io/checkpoint.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { forwardReference } from '../../src/reference/execute.ts';
import { compareLogits } from '../../src/reference/compare.ts';

const BIN = join(import.meta.dirname, '../../bin/r2r.js');

function r2r(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** verify --json prints one JSON document whose `results` hold one object per mode. */
function parseObjects(s: string): Record<string, any>[] {
  const doc = JSON.parse(s);
  assert.ok(Array.isArray(doc.results), 'verify --json: results');
  return doc.results;
}

test('inspect --json: ResNetCifar-18(1/8) has 23,794 parameters, (3/16) 52,198, and the expected groups', () => {
  const a = r2r('inspect', '--model', 'resnet-cifar18', '--width', '0.125', '--json');
  assert.equal(a.code, 0, a.stderr);
  const j = JSON.parse(a.stdout);
  assert.equal(j.params, 23_794);
  assert.ok(j.macs > 0);
  assert.equal(j.groups.filter((g: any) => g.widenable).length, 10);
  assert.equal(JSON.parse(r2r('inspect', '--model', 'resnet-cifar18', '--width', '0.1875', '--json').stdout).params, 52_198);
});

test('inspect: the text form lists nodes and channel groups', () => {
  const a = r2r('inspect', '--model', 'small-conv');
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /conv1 +conv2d/);
  assert.match(a.stdout, /channel groups:/);
  assert.match(a.stdout, /holds the input: not widenable/);
});

const CASES: [string, string[], number][] = [
  ['r2r widen', ['--model', 'resnet-cifar18', '--transform', 'widen', '--method', 'r2r', '--factor', '1.5'], 52_198],
  ['netmorph widen', ['--model', 'resnet-cifar18', '--transform', 'widen', '--method', 'netmorph', '--factor', '1.5'], 52_198],
  ['net2net widen (NoResidual)', ['--model', 'resnet-cifar18-nores', '--transform', 'widen', '--method', 'net2net', '--factor', '1.5'], 51_862],
  ['r2r deepen', ['--model', 'resnet-cifar10', '--transform', 'deepen', '--method', 'r2r'], 23_890], // ResNetCifar-18's 23,794 + each new block's second batch norm
];

for (const [name, args, after] of CASES) {
  test(`verify ${name}: relative error <= 1e-5 in both modes, ${after} parameters after`, () => {
    const r = r2r('verify', ...args, '--width', '0.125', '--json');
    assert.equal(r.code, 0, r.stderr);
    const objs = parseObjects(r.stdout);
    assert.deepEqual(objs.map((o) => o.mode), ['inference', 'training']);
    for (const o of objs) {
      assert.ok(o.relDiff <= 1e-5, `${o.mode}: ${o.relDiff}`);
      assert.equal(o.paramsAfter, after);
      for (const k of ['transform', 'method', 'maxAbsDiff', 'paramsBefore']) assert.ok(k in o, k);
    }
  });
}

test('verify random: the baseline changes the function (relative error > 1e-2) and is not held to exactness', () => {
  const r = r2r('verify', '--model', 'resnet-cifar18', '--width', '0.125', '--method', 'random', '--json');
  assert.equal(r.code, 0, r.stderr);
  for (const o of parseObjects(r.stdout)) {
    assert.ok(o.relDiff > 1e-2, `${o.mode}: ${o.relDiff}`);
    assert.equal(o.exactExpected, false);
  }
});

test('verify exits non-zero (6) when an exact method exceeds the tolerance', () => {
  const r = r2r('verify', '--model', 'resnet-cifar18', '--width', '0.125', '--method', 'r2r', '--tolerance', '1e-12');
  assert.equal(r.code, 6);
  assert.match(r.stderr, /widen r2r is exact by construction but .* relative error .* \(> 1e-12\)/);
});

test('verify --save: checkpoints and batch re-check outside the engine', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'r2r-verify-')), 'out');
  const r = r2r('verify', '--model', 'resnet-cifar10', '--width', '0.125', '--transform', 'deepen', '--method', 'r2r', '--save', dir, '--batch', '8');
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['teacher/model.json', 'student/weights.safetensors', 'batch.safetensors']) assert.ok(existsSync(join(dir, f)), f);
  const { tensors } = readSafetensors(join(dir, 'batch.safetensors'));
  assert.deepEqual(tensors.input.shape, [8, 32, 32, 3]);
  const student = loadCheckpoint(join(dir, 'student'));
  const ref = forwardReference(student.graph, student.weights, tensors.input.data, 8, { training: false });
  // The engine's saved student logits agree with an independent executor.
  assert.ok(compareLogits(ref, tensors.student_logits_inference.data).relDiff <= 1e-5);
  assert.ok(compareLogits(tensors.teacher_logits_inference.data, tensors.student_logits_inference.data).relDiff <= 1e-5);
  // A second --save into the same folder is refused (exit 2) unless --overwrite.
  const again = r2r('verify', '--model', 'mlp', '--save', dir, '--batch', '8');
  assert.equal(again.code, 2, again.stderr);
  assert.match(again.stderr, /already holds .*pass --overwrite/);
  assert.equal(loadCheckpoint(join(dir, 'student')).graph.nodes.length, student.graph.nodes.length, 'the earlier student is kept');
  const replaced = r2r('verify', '--model', 'mlp', '--save', dir, '--batch', '8', '--overwrite');
  assert.equal(replaced.code, 0, replaced.stderr);
  assert.notEqual(loadCheckpoint(join(dir, 'student')).graph.nodes.length, student.graph.nodes.length);
});

test('bad input: clear errors and exit codes', () => {
  const odd = r2r('verify', '--model', 'mlp', '--method', 'r2r', '--add', '3');
  assert.equal(odd.code, 5);
  assert.match(odd.stderr, /got 3; try 2 or 4/);
  const unknown = r2r('inspect', '--model', 'resnet-cifar99');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown model 'resnet-cifar99'; the zoo has/);
  const method = r2r('verify', '--model', 'mlp', '--transform', 'deepen', '--method', 'foo');
  assert.equal(method.code, 2);
  assert.match(method.stderr, /--method foo is not a deepen method/);
  // netmorph deepens transformers (zero-output blocks) only.
  const netmorph = r2r('verify', '--model', 'mlp', '--transform', 'deepen', '--method', 'netmorph');
  assert.equal(netmorph.code, 5);
  assert.match(netmorph.stderr, /'netmorph' inserts zero-output transformer blocks; this graph has none/);
  const ckpt = r2r('inspect', '--checkpoint', '/nonexistent/dir');
  assert.equal(ckpt.code, 4);
  assert.match(ckpt.stderr, /\/nonexistent\/dir: not a checkpoint/);
});

test('verify --json is one JSON document (model, pass, results per mode), and auto names its engine only on stderr', () => {
  const r = r2r('verify', '--model', 'mlp', '--width', '0.25', '--json');
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.pass, true);
  assert.equal(doc.transform, 'widen');
  assert.deepEqual(doc.results.map((o: any) => o.mode), ['inference', 'training']);
  const text = r2r('verify', '--model', 'mlp', '--width', '0.25');
  assert.match(text.stderr, /^r2r: engine auto -> (torch|tfjs): /m);
});

test('CLI conventions: typos exit 2 with a one-line error and a suggestion, not the whole help', () => {
  for (const [args, hint] of [[['verfy'], /Did you mean verify\?/], [['verify', '--modle', 'mlp'], /Did you mean --model\?/], [['verify', '--engine', 'x'], /Allowed choices/]] as const) {
    const r = r2r(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^r2r: error: /);
    assert.match(r.stderr, hint);
    assert.doesNotMatch(r.stderr, /Usage:|Options:/);
    assert.ok(r.stderr.split('\n').length <= 4, r.stderr);
  }
  // r2r's own usage errors: the same form and status.
  const own = r2r('verify', '--seed', 'x');
  assert.equal(own.code, 2);
  assert.match(own.stderr, /^r2r: error: --seed: expected an integer/);
  assert.equal(r2r('--version').code, 0);
});

test('--help lists every exit status', () => {
  const r = r2r('--help');
  assert.equal(r.code, 0);
  for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) assert.match(r.stdout, new RegExp(`^ +${code}  \\S`, 'm'), `exit status ${code}`);
  assert.match(r.stdout, /--json prints one JSON document/);
});
