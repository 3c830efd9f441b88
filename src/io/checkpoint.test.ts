import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { decodeSafetensors, encodeSafetensors, readSafetensors } from './safetensors.ts';
import { zooModel } from '../models/zoo.ts';
import { initWeights } from '../ir/weights.ts';
import { Rng } from '../rng.ts';
import { R2RError } from '../errors.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'r2r-ckpt-'));
const graph = zooModel('resnet-cifar10', { width: 0.125 });
const weights = initWeights(graph, new Rng(1), { randomBatchNorm: true });

test('safetensors: standard layout (u64 LE header length, 8-byte aligned JSON, F32 data)', () => {
  const buf = encodeSafetensors({ b: { shape: [2], data: new Float32Array([1.5, -2]) }, a: { shape: [1, 1], data: new Float32Array([3]) } }, { k: 'v' });
  const hlen = Number(buf.readBigUInt64LE(0));
  assert.equal((8 + hlen) % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString());
  assert.deepEqual(header.__metadata__, { k: 'v' });
  assert.deepEqual(header.a, { dtype: 'F32', shape: [1, 1], data_offsets: [0, 4] });
  assert.deepEqual(header.b, { dtype: 'F32', shape: [2], data_offsets: [4, 12] });
  assert.equal(buf.readFloatLE(8 + hlen + 4), 1.5);
  const back = decodeSafetensors(buf);
  assert.deepEqual([...back.tensors.b.data], [1.5, -2]);
});

test('checkpoint: round trip keeps graph, every weight bit, optimizer state and trainer state', () => {
  const dir = join(tmp(), 'ck');
  const m = { 'conv1/kernel': { shape: weights['conv1/kernel'].shape, data: new Float32Array(weights['conv1/kernel'].data.length).fill(0.25) } };
  saveCheckpoint(dir, { graph, weights, optimizer: { kind: 'adam', step: 7, slots: { m, v: m } }, state: { epoch: 3 } });
  const c = loadCheckpoint(dir);
  assert.deepEqual(c.graph, graph);
  for (const k of Object.keys(weights)) assert.deepEqual(c.weights[k], weights[k], k);
  assert.equal(c.optimizer!.step, 7);
  assert.equal(c.optimizer!.kind, 'adam');
  assert.deepEqual(c.optimizer!.slots.m['conv1/kernel'], m['conv1/kernel']);
  assert.deepEqual(c.state, { epoch: 3 });
  // Tensor names are the documented `<node>/<param>`.
  const names = Object.keys(readSafetensors(join(dir, 'weights.safetensors')).tensors);
  for (const n of ['conv1/kernel', 'bn1/gamma', 'bn1/beta', 'bn1/movingMean', 'bn1/movingVariance', 'fc/kernel', 'fc/bias']) assert.ok(names.includes(n), n);
});

test('checkpoint: overwriting is atomic and leaves no temporary files', () => {
  const root = tmp();
  const dir = join(root, 'ck');
  saveCheckpoint(dir, { graph, weights });
  saveCheckpoint(dir, { graph, weights, state: { epoch: 2 } });
  assert.deepEqual(readdirSync(root), ['ck']);
  assert.deepEqual(loadCheckpoint(dir).state, { epoch: 2 });
});

test('checkpoint: a failed save leaves the previous checkpoint intact', () => {
  const dir = join(tmp(), 'ck');
  saveCheckpoint(dir, { graph, weights, state: { epoch: 1 } });
  const broken = { ...weights, 'conv1/kernel': { shape: [1], data: new Float32Array(1) } };
  assert.throws(() => saveCheckpoint(dir, { graph, weights: broken, state: { epoch: 2 } }), /conv1\/kernel/);
  assert.deepEqual(loadCheckpoint(dir).state, { epoch: 1 });
});

function corrupt(fn: (dir: string) => void): string {
  const dir = join(tmp(), 'ck');
  saveCheckpoint(dir, { graph, weights });
  fn(dir);
  return dir;
}

test('checkpoint: truncated weights file is an error naming the file and tensor', () => {
  const dir = corrupt((d) => { const p = join(d, 'weights.safetensors'); truncateSync(p, statSync(p).size - 100); });
  assert.throws(() => loadCheckpoint(dir), (e: unknown) => e instanceof R2RError && e.code === 'R2R_CHECKPOINT' && /weights\.safetensors: tensor '.*': data ends at byte \d+ but the file has only \d+ data bytes \(truncated\)/.test(e.message));
});

test('checkpoint: file shorter than its header is an error', () => {
  const dir = corrupt((d) => truncateSync(join(d, 'weights.safetensors'), 20));
  assert.throws(() => loadCheckpoint(dir), /header length \d+ exceeds the file size 20/);
});

test('checkpoint: a tensor whose shape disagrees with the graph is an error naming both', () => {
  const dir = corrupt((d) => {
    const w = { ...weights, 'bn1/gamma': { shape: [9], data: new Float32Array(9) } };
    writeFileSync(join(d, 'weights.safetensors'), encodeSafetensors(w));
  });
  assert.throws(() => loadCheckpoint(dir), /tensor 'bn1\/gamma' has shape \[9\], but node 'bn1' needs \[8\]/);
});

test('checkpoint: a missing or extra tensor is an error', () => {
  const missing = corrupt((d) => { const w = { ...weights }; delete w['fc/bias']; writeFileSync(join(d, 'weights.safetensors'), encodeSafetensors(w)); });
  assert.throws(() => loadCheckpoint(missing), /missing tensor 'fc\/bias'/);
  const extra = corrupt((d) => writeFileSync(join(d, 'weights.safetensors'), encodeSafetensors({ ...weights, 'ghost/kernel': { shape: [1], data: new Float32Array(1) } })));
  assert.throws(() => loadCheckpoint(extra), /tensor 'ghost\/kernel' belongs to no parameter/);
});

test('checkpoint: bad header JSON, wrong dtype and inconsistent offsets are errors', () => {
  const enc = (header: object, data = 0) => {
    let j = JSON.stringify(header); j += ' '.repeat((8 - (j.length % 8)) % 8);
    const b = Buffer.alloc(8 + j.length + data); b.writeBigUInt64LE(BigInt(j.length)); b.write(j, 8); return b;
  };
  assert.throws(() => decodeSafetensors(Buffer.concat([enc({}).subarray(0, 8), Buffer.from('{bad json}      ')]), 'f'), /f: header is not valid JSON/);
  assert.throws(() => decodeSafetensors(enc({ t: { dtype: 'F16', shape: [1], data_offsets: [0, 2] } }, 2), 'f'), /f: tensor 't': dtype "F16" is not supported/);
  assert.throws(() => decodeSafetensors(enc({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4), 'f'), /data_offsets span 4 bytes but shape \[2\] needs 8/);
  assert.throws(() => decodeSafetensors(enc({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), 'f'), /overlap/);
});

test('checkpoint: a directory without model.json is not a checkpoint', () => {
  assert.throws(() => loadCheckpoint(tmp()), /not a checkpoint \(no model\.json\)/);
});

test('checkpoint: model.json that is not a graph names the file', () => {
  const dir = corrupt((d) => writeFileSync(join(d, 'model.json'), readFileSync(join(d, 'model.json'), 'utf8').replace('"conv1"', '"conv1/x"')));
  assert.throws(() => loadCheckpoint(dir), /model\.json: node 'conv1\/x': names may not contain '\/'/);
});
