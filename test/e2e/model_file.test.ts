// `r2r widen|deepen|convert|inspect` on a user's own model files, through the real binary, with
// the results loaded back by TensorFlow.js itself (issue 11).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engines/tfjs/backend.ts';
import { tfjsFileSystem } from '../../src/io/tfjs_layers.ts';
import { compareLogits } from '../../src/reference/compare.ts';
import { Rng } from '../../src/rng.ts';
import { randomBatch } from '../../src/verify.ts';
import { trainBriefly, writeTrainedTfjsModel } from '../helpers/tfjs_models.ts';

const BIN = join(import.meta.dirname, '../../bin/r2r.js');

function r2r(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', OMP_NUM_THREADS: '1' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'r2r-byom-'));
const teacherPath = join(dir, 'teacher', 'model.json');

function predict(m: tf.LayersModel, x: Float32Array): Float32Array {
  return tf.tidy(() => (m.predict(tf.tensor(x, [8, 8, 8, 3])) as tf.Tensor).dataSync() as Float32Array);
}

test('r2r widen on a trained tfjs model: verify table, tf.loadLayersModel gives the same predictions, model.fit trains it', async () => {
  await writeTrainedTfjsModel(teacherPath);
  const out = join(dir, 'wide', 'model.json');
  const r = r2r('widen', teacherPath, '--out', out, '--method', 'r2r', '--factor', '1.5');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /widen r2r \(tfjs -> tfjs\)/);
  assert.match(r.stdout, /inference .*yes +PASS/);
  assert.match(r.stdout, /training .*yes +PASS/);
  assert.deepEqual(readdirSync(join(dir, 'wide')).sort(), ['model.json', 'weights.bin']);

  await initBackend('cpu');
  const teacher = await tf.loadLayersModel(tfjsFileSystem(teacherPath));
  const student = await tf.loadLayersModel(tfjsFileSystem(out));
  assert.ok(student.countParams() > teacher.countParams(), `${student.countParams()} params`);
  const x = randomBatch([8, 8, 3], 8, new Rng(5));
  const { relDiff } = compareLogits(predict(teacher, x), predict(student, x));
  assert.ok(relDiff <= 1e-5, `tfjs predictions of teacher and widened student differ by ${relDiff}`);
  const before = student.getLayer('conv1').getWeights()[0].dataSync().slice();
  await trainBriefly(student, 3);
  assert.ok(compareLogits(before, student.getLayer('conv1').getWeights()[0].dataSync()).maxAbsDiff > 0, 'fit did not change conv1');
  teacher.dispose();
  student.dispose();
});

test('r2r deepen --json and convert tfjs -> r2r -> tfjs keep the function; inspect reads every format', () => {
  const deep = join(dir, 'deep.json');
  const d = r2r('deepen', teacherPath, '--out', deep, '--method', 'r2r', '--at', 'relu1', '--json');
  assert.equal(d.code, 0, d.stderr);
  const j = JSON.parse(d.stdout);
  assert.equal(j.written, true);
  assert.deepEqual(j.files, [join(dir, 'deep.weights.bin'), deep]);
  assert.ok(j.paramsAfter > j.paramsBefore);
  for (const row of j.results) assert.ok(row.pass && row.relDiff <= 1e-5, JSON.stringify(row));

  const ckpt = join(dir, 'ckpt');
  const c = r2r('convert', teacherPath, '--out', ckpt);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /convert tfjs -> r2r/);
  assert.match(c.stdout, /softmax after the logits/);
  assert.ok(existsSync(join(ckpt, 'weights.safetensors')));
  const back = join(dir, 'back', 'm.json');
  const b = r2r('convert', ckpt, '--out', back, '--to', 'tfjs');
  assert.equal(b.code, 0, b.stderr);
  assert.ok(existsSync(join(dir, 'back', 'm.weights.bin')));

  for (const [file, fmt] of [[teacherPath, 'tfjs'], [ckpt, 'r2r'], [join(ckpt, 'model.json'), 'r2r'], [deep, 'tfjs']] as const) {
    const i = r2r('inspect', file, '--json');
    assert.equal(i.code, 0, i.stderr);
    const info = JSON.parse(i.stdout);
    assert.equal(info.name, `${file} (${fmt})`);
    assert.ok(info.nodes.some((n: { name: string }) => n.name === 'conv1'));
  }
});

test('an exact method that misses the tolerance writes nothing (exit 6); an existing OUT needs --overwrite (exit 2)', () => {
  const out = join(dir, 'strict', 'model.json');
  const r = r2r('widen', teacherPath, '--out', out, '--tolerance', '1e-30');
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stdout, /FAIL/);
  assert.match(r.stdout, /nothing written/);
  assert.match(r.stderr, /was not written/);
  assert.ok(!existsSync(out));
  assert.deepEqual(readdirSync(join(dir, 'strict')), [], 'no temporary files are left behind');

  const wide = join(dir, 'wide', 'model.json');
  const mtime = statSync(wide).mtimeMs;
  const again = r2r('widen', teacherPath, '--out', wide);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exist; pass --overwrite/);
  assert.equal(statSync(wide).mtimeMs, mtime);
  const ok = r2r('widen', teacherPath, '--out', wide, '--overwrite', '--factor', '2');
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(readFileSync(wide, 'utf8').includes('"filters":16'));
});

test('an unsupported layer fails the command (exit 3) with every unsupported layer named, and nothing is written', async () => {
  await initBackend('cpu');
  const x = tf.input({ shape: [6, 6, 2], name: 'in' });
  let y = tf.layers.separableConv2d({ filters: 4, kernelSize: 3, name: 'sep' }).apply(x) as tf.SymbolicTensor;
  y = tf.layers.upSampling2d({ name: 'up' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.flatten({ name: 'flat' }).apply(y) as tf.SymbolicTensor;
  const m = tf.model({ inputs: x, outputs: tf.layers.dense({ units: 2, name: 'fc' }).apply(y) as tf.SymbolicTensor });
  const bad = join(dir, 'bad', 'model.json');
  await m.save(tfjsFileSystem(bad));
  m.dispose();
  const out = join(dir, 'bad-out', 'model.json');
  const r = r2r('widen', bad, '--out', out);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /cannot import 2 layers/);
  assert.match(r.stderr, /SeparableConv2D 'sep'/);
  assert.match(r.stderr, /UpSampling2D 'up'/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(!existsSync(out));
});
