// PyTorch -> ONNX -> r2r -> ONNX -> ONNX Runtime: models built and exported by PyTorch
// (test/fixtures/export_onnx.py, Debian's python3-torch), imported, widened and deepened by r2r
// (library and CLI), exported, and run in ONNX Runtime, against PyTorch's own outputs.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOnnx, readOnnxFile, writeOnnx } from '../../src/io/onnx/index.ts';
import { analyzeGraph } from '../../src/ir/graph.ts';
import type { Graph, Weights } from '../../src/ir/types.ts';
import { compareLogits } from '../../src/reference/compare.ts';
import { forwardReference } from '../../src/reference/execute.ts';
import { deepen, widen } from '../../src/transforms/index.ts';
import { nchwToNhwc, runOnnx } from '../helpers/onnx_runtime.ts';

const PYTHON = process.env.R2R_PYTHON ?? '/usr/bin/python3';
const inCI = process.env.CI === 'true' || process.env.CI === '1';
const haveTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const TOL = 1e-5;
const BIN = join(import.meta.dirname, '../../bin/r2r.js');

function r2r(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', OMP_NUM_THREADS: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Fixture { file: string; input: number[]; n: number; x: number[]; logits: number[] }

// Under CI a missing PyTorch fails (the export script errors in `before`); elsewhere it skips.
describe('PyTorch -> ONNX -> r2r -> ONNX Runtime', { skip: !haveTorch && !inCI ? `no PyTorch for ${PYTHON} (apt-get install python3-torch)` : false }, () => {
  let dir = '';
  let fixtures: Record<string, Fixture> = {};

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'r2r-onnx-'));
    const r = spawnSync(PYTHON, ['test/fixtures/export_onnx.py', dir], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    assert.equal(r.status, 0, `export_onnx.py failed (PyTorch: apt-get install python3-torch):\n${r.stderr}`);
    fixtures = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  /** Batch of a fixture: NCHW for ONNX Runtime, NHWC for r2r. */
  const batch = (f: Fixture) => ({ nchw: Float32Array.from(f.x), nhwc: nchwToNhwc(f.x, f.n, f.input), dims: [f.n, ...f.input] });
  const ref = (m: { graph: Graph; weights: Weights }, f: Fixture) => forwardReference(m.graph, m.weights, batch(f).nhwc, f.n, { training: false });
  const ort = (bytes: Uint8Array | string, f: Fixture) => runOnnx(bytes, batch(f).nchw, batch(f).dims, { input: 'x', output: 'logits' });

  /** Asserts relDiff(a, b) <= 1e-5 and reports it. */
  function same(t: TestContext, what: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
    const d = compareLogits(a, b);
    t.diagnostic(`${what}: relDiff ${d.relDiff.toExponential(2)}`);
    assert.ok(d.relDiff <= TOL, `${what}: relDiff ${d.relDiff} > ${TOL} (maxAbsDiff ${d.maxAbsDiff})`);
  }
  /** The student exported and run in ONNX Runtime. */
  const studentOrt = (s: { graph: Graph; weights: Weights }, f: Fixture) => ort(writeOnnx(s.graph, s.weights), f);

  test('resnet (batch norm nodes, flatten of a 16x2x2 volume): r2r import and r2r export in ONNX Runtime match PyTorch', async (t) => {
    const f = fixtures.resnet;
    const m = readOnnxFile(join(dir, f.file));
    assert.deepEqual(m.graph.nodes.filter((n) => n.kind === 'batchNorm').length, 6);
    same(t, 'r2r import (reference executor) vs PyTorch', f.logits, ref(m, f));
    same(t, 'ONNX Runtime on r2r\'s export vs PyTorch', f.logits, await ort(writeOnnx(m.graph, m.weights), f));

    // Round trip: r2r's export imports back to the same graph and the same weights.
    const back = readOnnx(writeOnnx(m.graph, m.weights));
    assert.deepEqual(back.graph.nodes.map((n) => `${n.kind}:${n.name}`), m.graph.nodes.map((n) => `${n.kind}:${n.name}`));
    for (const [k, t] of Object.entries(m.weights)) assert.deepEqual(back.weights[k], t, k);

    // Counterpart: fc1's rows left in PyTorch's C, H, W flattening order give another function.
    const c = analyzeGraph(m.graph).nodes.get('fc1.Gemm')!.inputShapes[0][0] / 4;
    const k = m.weights['fc1.Gemm/kernel'];
    const unpermuted = new Float32Array(k.data.length);
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < 4; p++) unpermuted.set(k.data.subarray((p * c + ch) * 32, (p * c + ch + 1) * 32), (ch * 4 + p) * 32);
    const wrong = { graph: m.graph, weights: { ...m.weights, 'fc1.Gemm/kernel': { shape: k.shape, data: unpermuted } } };
    assert.ok(compareLogits(f.logits, ref(wrong, f)).relDiff > 1e-3, 'without the flatten-order permutation the import is wrong');
  });

  test('resnet: R2R widen x1.5 and R2R deepen; the students run in ONNX Runtime to the teacher\'s logits', async (t) => {
    const f = fixtures.resnet;
    const m = readOnnxFile(join(dir, f.file));
    const teacherOrt = await ort(writeOnnx(m.graph, m.weights), f);
    const wide = widen(m.graph, m.weights, { method: 'r2r', factor: 1.5 });
    assert.ok(wide.report.paramsAfter > 2 * wide.report.paramsBefore);
    same(t, 'ONNX Runtime: R2R-widened student vs teacher', teacherOrt, await studentOrt(wide, f));
    const deep = deepen(wide.graph, wide.weights, { method: 'r2r' });
    assert.equal(deep.report.changes.length, 2, 'one zero-output residual block per stage');
    const deepOrt = await studentOrt(deep, f);
    same(t, 'ONNX Runtime: R2R-widened and -deepened student vs teacher', teacherOrt, deepOrt);
    same(t, 'ONNX Runtime: widened and deepened student vs PyTorch', f.logits, deepOrt);
    // Counterpart: random padding changes the function, and ONNX Runtime shows it.
    const rand = widen(m.graph, m.weights, { method: 'random', factor: 1.5 });
    assert.ok(compareLogits(teacherOrt, await studentOrt(rand, f)).relDiff > 1e-2, 'random-pad widen must not pass');
  });

  test('resnet_folded (eval export, batch norms folded into biased convs): ONNX Runtime on the PyTorch file matches r2r; widens and deepens exactly', async (t) => {
    const f = fixtures.resnet_folded;
    const path = join(dir, f.file);
    const m = readOnnxFile(path);
    assert.equal(m.graph.nodes.filter((n) => n.kind === 'batchNorm').length, 0);
    assert.ok(m.graph.nodes.filter((n) => n.kind === 'conv2d').every((n) => n.kind === 'conv2d' && n.useBias));
    const original = await ort(path, f);
    same(t, 'ONNX Runtime on the PyTorch file vs PyTorch', f.logits, original);
    same(t, 'r2r import (reference executor) vs ONNX Runtime on the PyTorch file', original, ref(m, f));
    same(t, 'ONNX Runtime: R2R-widened student vs the PyTorch file', original, await studentOrt(widen(m.graph, m.weights, { method: 'r2r', factor: 1.5 }), f));
    same(t, 'ONNX Runtime: R2R-deepened student vs the PyTorch file', original, await studentOrt(deepen(m.graph, m.weights, { method: 'r2r' }), f));
  });

  test('CLI: r2r widen model.onnx --out wide.onnx --method r2r --factor 1.5, then r2r deepen; ONNX Runtime confirms', async (t) => {
    const f = fixtures.resnet;
    const wide = join(dir, 'wide.onnx');
    const w = r2r('widen', join(dir, f.file), '--out', wide, '--method', 'r2r', '--factor', '1.5');
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /widen r2r \(onnx -> onnx\)/);
    assert.match(w.stdout, /inference .*yes +PASS/);
    same(t, 'ONNX Runtime on the CLI\'s wide.onnx vs PyTorch', f.logits, await ort(wide, f));
    const deep = join(dir, 'deep.onnx');
    const d = r2r('deepen', wide, '--out', deep, '--method', 'r2r');
    assert.equal(d.code, 0, d.stderr);
    same(t, 'ONNX Runtime on the CLI\'s deep.onnx (widened, then deepened) vs PyTorch', f.logits, await ort(deep, f));
    assert.equal(r2r('inspect', deep).code, 0);
  });

  test('CLI: a PyTorch model with ops r2r cannot import gives one error listing them, and writes nothing', () => {
    const out = join(dir, 'never.onnx');
    const r = r2r('widen', join(dir, 'unsupported.onnx'), '--out', out, '--method', 'r2r');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /unsupported op Sin: node '\/Sin'/);
    assert.match(r.stderr, /Conv '\/grouped\/Conv': group=2/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(existsSync(out), false);
  });

  test('branches (concat, ReLU6, LeakyReLU, ELU, Tanh, Sigmoid, GELU, padded average pool, global pool): import, export, widen', async (t) => {
    const f = fixtures.branches;
    const m = readOnnxFile(join(dir, f.file));
    const fns = m.graph.nodes.flatMap((n) => (n.kind === 'activation' ? [n.fn] : []));
    assert.deepEqual(fns, ['leakyRelu', 'relu', 'relu6', 'elu', 'tanh', 'sigmoid', 'gelu']);
    same(t, 'r2r import (reference executor) vs PyTorch', f.logits, ref(m, f));
    const teacherOrt = await ort(writeOnnx(m.graph, m.weights), f);
    same(t, 'ONNX Runtime on r2r\'s export vs PyTorch', f.logits, teacherOrt);
    same(t, 'ONNX Runtime: R2R-widened student (2 channels per group) vs teacher', teacherOrt, await studentOrt(widen(m.graph, m.weights, { method: 'r2r', add: 2 }), f));
    // The GELU pattern PyTorch exports, and the one r2r writes, import as one gelu.
    const back = readOnnx(writeOnnx(m.graph, m.weights));
    assert.deepEqual(back.graph.nodes.flatMap((n) => (n.kind === 'activation' ? [n.fn] : [])), fns);
  });
});
