/**
 * Small trained TensorFlow.js layers models saved as `model.json` + `weights.bin`, for the CLI and
 * package tests. Run as a script to write one: `node --import tsx test/helpers/tfjs_models.ts OUT.json`.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engines/tfjs/backend.ts';
import { tfjsFileSystem } from '../../src/io/tfjs_layers.ts';
import { Rng } from '../../src/rng.ts';
import { randomBatch } from '../../src/verify.ts';

/** conv-bn-relu x2 with a residual add, global pooling, dropout and a softmax classifier. */
export function smallResidualModel(): tf.LayersModel {
  const x = tf.input({ shape: [8, 8, 3], name: 'image' });
  let y = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'conv1' }).apply(x) as tf.SymbolicTensor;
  y = tf.layers.batchNormalization({ name: 'bn1', momentum: 0.5 }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.activation({ activation: 'relu', name: 'relu1' }).apply(y) as tf.SymbolicTensor;
  let z = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'conv2' }).apply(y) as tf.SymbolicTensor;
  z = tf.layers.batchNormalization({ name: 'bn2', momentum: 0.5 }).apply(z) as tf.SymbolicTensor;
  let s = tf.layers.add({ name: 'add' }).apply([y, z]) as tf.SymbolicTensor;
  s = tf.layers.activation({ activation: 'relu', name: 'relu2' }).apply(s) as tf.SymbolicTensor;
  let g = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(s) as tf.SymbolicTensor;
  g = tf.layers.dropout({ rate: 0.1, name: 'drop' }).apply(g) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4, activation: 'softmax', name: 'classifier' }).apply(g) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out, name: 'small_residual' });
}

/** A few Adam steps on random data, so weights and batch-norm statistics are not their initial values. */
export async function trainBriefly(m: tf.LayersModel, seed = 1): Promise<void> {
  const inShape = m.inputs[0].shape.slice(1) as number[];
  const classes = m.outputs[0].shape[1] as number;
  const n = 16;
  const x = tf.tensor(randomBatch(inShape, n, new Rng(seed)), [n, ...inShape]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % classes), 'int32'), classes);
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  await m.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0 });
  tf.dispose([x, y]);
}

/** Builds, trains and saves smallResidualModel at `path` (a model.json). */
export async function writeTrainedTfjsModel(path: string): Promise<void> {
  await initBackend('cpu');
  const m = smallResidualModel();
  await trainBriefly(m);
  await m.save(tfjsFileSystem(path));
  m.dispose();
}

if (process.argv[1] && import.meta.filename === (await import('node:path')).resolve(process.argv[1])) {
  await writeTrainedTfjsModel(process.argv[2] ?? 'model.json');
}
