// TensorFlow.js layers models: round trips through tfjs itself (tf.loadLayersModel, predict, fit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engines/tfjs/backend.ts';
import { compareLogits } from '../reference/compare.ts';
import { forwardReference } from '../reference/execute.ts';
import { Rng } from '../rng.ts';
import { widen } from '../transforms/widen.ts';
import { deepen } from '../transforms/deepen.ts';
import { randomBatch } from '../verify.ts';
import { readTfjs, writeTfjs } from './tfjs.ts';
import { tfjsFileSystem, toLayersModel } from './tfjs_layers.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'r2r-tfjs-'));

/** A small functional CNN with a residual add, a concat, batch norm and fused activations. */
function functionalModel(): tf.LayersModel {
  const x = tf.input({ shape: [8, 8, 3], name: 'img' });
  let y = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'c1', useBias: false }).apply(x) as tf.SymbolicTensor;
  y = tf.layers.batchNormalization({ name: 'bn1', momentum: 0.5 }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.reLU({ name: 'r1' }).apply(y) as tf.SymbolicTensor;
  let z = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(y) as tf.SymbolicTensor;
  z = tf.layers.batchNormalization({ name: 'bn2', momentum: 0.5 }).apply(z) as tf.SymbolicTensor;
  let s = tf.layers.add({ name: 'add' }).apply([y, z]) as tf.SymbolicTensor;
  s = tf.layers.activation({ activation: 'elu', name: 'act' }).apply(s) as tf.SymbolicTensor;
  const b = tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'tanh', name: 'branch' }).apply(s) as tf.SymbolicTensor;
  let c = tf.layers.concatenate({ name: 'cat' }).apply([s, b]) as tf.SymbolicTensor;
  c = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(c) as tf.SymbolicTensor;
  c = tf.layers.averagePooling2d({ poolSize: 2, padding: 'same', name: 'apool' }).apply(c) as tf.SymbolicTensor;
  const g = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(c) as tf.SymbolicTensor;
  let d = tf.layers.dense({ units: 12, activation: 'sigmoid', name: 'fc1' }).apply(g) as tf.SymbolicTensor;
  d = tf.layers.dropout({ rate: 0.25, name: 'drop' }).apply(d) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 5, activation: 'softmax', name: 'logits' }).apply(d) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out });
}

/** A Sequential MLP-and-conv model, as a tfjs tutorial builds one (auto-named layers). */
function sequentialModel(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.zeroPadding2d({ inputShape: [6, 6, 2], padding: [[1, 0], [0, 2]] }));
  m.add(tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }));
  m.add(tf.layers.batchNormalization({ momentum: 0.5 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 12, activation: 'relu6' }));
  m.add(tf.layers.leakyReLU({ alpha: 0.2 }));
  m.add(tf.layers.dense({ units: 3 }));
  m.add(tf.layers.softmax());
  return m;
}

/** Trains a few steps so batch-norm statistics and weights are no longer their initial values. */
async function trainBriefly(m: tf.LayersModel, inShape: number[], classes: number, seed = 1): Promise<void> {
  const n = 16;
  const rng = new Rng(seed);
  const x = tf.tensor(randomBatch(inShape, n, rng), [n, ...inShape]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % classes), 'int32'), classes);
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  await m.fit(x, y, { epochs: 3, batchSize: 8, verbose: 0 });
  tf.dispose([x, y]);
}

function predict(m: tf.LayersModel, x: Float32Array, shape: number[]): Float32Array {
  return tf.tidy(() => (m.predict(tf.tensor(x, shape)) as tf.Tensor).dataSync() as Float32Array);
}

function softmaxRows(z: Float32Array, k: number): Float32Array {
  const out = new Float32Array(z.length);
  for (let r = 0; r < z.length / k; r++) {
    let m = -Infinity, s = 0;
    for (let j = 0; j < k; j++) m = Math.max(m, z[r * k + j]);
    for (let j = 0; j < k; j++) s += (out[r * k + j] = Math.exp(z[r * k + j] - m));
    for (let j = 0; j < k; j++) out[r * k + j] /= s;
  }
  return out;
}

test('tfjs import: a trained functional model reads into the IR and computes what tfjs computes', async () => {
  await initBackend('cpu');
  const m = functionalModel();
  await trainBriefly(m, [8, 8, 3], 5);
  const dir = tmp();
  await m.save(tfjsFileSystem(join(dir, 'model.json')));
  const imported = await readTfjs(join(dir, 'model.json'));
  assert.equal(imported.outputActivation, 'softmax');
  assert.deepEqual(imported.graph.nodes.map((n) => n.kind), [
    'input', 'conv2d', 'batchNorm', 'activation', 'conv2d', 'activation', 'batchNorm', 'add', 'activation', 'conv2d', 'activation',
    'concat', 'maxPool', 'avgPool', 'globalAvgPool', 'dense', 'activation', 'dropout', 'dense',
  ]);
  const x = randomBatch([8, 8, 3], 4, new Rng(7));
  const ref = softmaxRows(forwardReference(imported.graph, imported.weights, x, 4, { training: false }), 5);
  const { relDiff } = compareLogits(predict(m, x, [4, 8, 8, 3]), ref);
  assert.ok(relDiff <= 1e-5, `reference vs tfjs predict: ${relDiff}`);
  m.dispose();
});

for (const [label, make, inShape, classes] of [
  ['functional', functionalModel, [8, 8, 3], 5],
  ['Sequential', sequentialModel, [6, 6, 2], 3],
] as const) {
  test(`tfjs round trip (${label}): train, save, widen (R2R) and deepen, load with tf.loadLayersModel: same predictions; fit works`, async () => {
    await initBackend('cpu');
    const m = make();
    await trainBriefly(m, [...inShape], classes);
    const dir = tmp();
    await m.save(tfjsFileSystem(join(dir, 'model.json')));
    const t = await readTfjs(join(dir, 'model.json'));
    if (label === 'Sequential') assert.deepEqual((t.graph.nodes[1] as { padding: unknown }).padding, [1, 0, 0, 2], 'ZeroPadding2D + Conv2D is one conv');
    const x = randomBatch([...inShape], 6, new Rng(3));
    const before = predict(m, x, [6, ...inShape]);

    const wide = widen(t.graph, t.weights, { method: 'r2r', factor: 1.5 });
    assert.ok(wide.graph.nodes.some((n, i) => n.kind === 'conv2d' && (t.graph.nodes[i] as typeof n).filters < n.filters), 'a conv was widened');
    await writeTfjs(join(dir, 'wide', 'model.json'), { ...wide, outputActivation: t.outputActivation });
    assert.deepEqual(readdirSync(join(dir, 'wide')).sort(), ['model.json', 'weights.bin']);
    const w = await tf.loadLayersModel(tfjsFileSystem(join(dir, 'wide', 'model.json')));
    const after = predict(w, x, [6, ...inShape]);
    const { relDiff } = compareLogits(before, after);
    assert.ok(relDiff <= 1e-5, `widened model's predictions differ: relative ${relDiff}`);
    assert.ok(w.countParams() > m.countParams());

    // The widened model trains on in tfjs: one fit step changes its weights.
    const k0 = w.getLayer(wide.graph.nodes.find((n) => n.kind === 'conv2d')!.name).getWeights()[0].dataSync().slice();
    await trainBriefly(w, [...inShape], classes, 2);
    const k1 = w.getLayer(wide.graph.nodes.find((n) => n.kind === 'conv2d')!.name).getWeights()[0].dataSync();
    assert.ok(compareLogits(k0, k1).maxAbsDiff > 0, 'fit changed no weight');

    // A non-preserving widen fails the same comparison.
    const rand = widen(t.graph, t.weights, { method: 'random', factor: 1.5 });
    const r = await toLayersModel(rand.graph, rand.weights, { outputActivation: t.outputActivation });
    assert.ok(compareLogits(before, predict(r, x, [6, ...inShape])).relDiff > 1e-3, 'random widen kept the function?');

    const deep = deepen(t.graph, t.weights, { method: 'r2r', after: t.graph.nodes.find((n) => n.kind === 'activation')!.name });
    const dm = await toLayersModel(deep.graph, deep.weights, { outputActivation: t.outputActivation });
    assert.ok(compareLogits(before, predict(dm, x, [6, ...inShape])).relDiff <= 1e-5, 'deepened model differs');
    for (const model of [m, w, r, dm]) model.dispose();
  });
}

test('tfjs import: every unsupported layer is named in one error', async () => {
  await initBackend('cpu');
  const x = tf.input({ shape: [8, 8, 3], name: 'in' });
  let y = tf.layers.depthwiseConv2d({ kernelSize: 3, name: 'dw' }).apply(x) as tf.SymbolicTensor;
  y = tf.layers.conv2d({ filters: 4, kernelSize: 3, dilationRate: 2, name: 'dilated' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'selu', name: 'selu_conv' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.flatten({ name: 'flat' }).apply(y) as tf.SymbolicTensor;
  const m = tf.model({ inputs: x, outputs: tf.layers.dense({ units: 2, name: 'out' }).apply(y) as tf.SymbolicTensor });
  const dir = tmp();
  await m.save(tfjsFileSystem(join(dir, 'model.json')));
  await assert.rejects(readTfjs(join(dir, 'model.json')), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'R2R_UNSUPPORTED_LAYER');
    assert.match(e.message, /3 layers/);
    assert.match(e.message, /DepthwiseConv2D 'dw': layer class not supported/);
    assert.match(e.message, /Conv2D 'dilated': dilation_rate \[2,2\]/);
    assert.match(e.message, /Conv2D 'selu_conv': activation 'selu'/);
    return true;
  });
  m.dispose();
});

test('tfjs import: missing shards, short shards and paths outside the folder are refused with the file named', async () => {
  await initBackend('cpu');
  const m = sequentialModel();
  const dir = tmp();
  await m.save(tfjsFileSystem(join(dir, 'model.json')));
  writeFileSync(join(dir, 'weights.bin'), new Uint8Array(8));
  await assert.rejects(readTfjs(join(dir, 'model.json')), /weight shards hold 8 bytes but the manifest needs/);
  const j = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'model.json'), 'utf8'));
  j.weightsManifest[0].paths = ['../elsewhere.bin'];
  writeFileSync(join(dir, 'evil.json'), JSON.stringify(j));
  await assert.rejects(readTfjs(join(dir, 'evil.json')), /must be a relative path inside/);
  await assert.rejects(readTfjs(join(dir, 'nope.json')), /nope\.json: no such file/);
  assert.ok(!existsSync(join(dir, '..', 'elsewhere.bin')));
  m.dispose();
});
