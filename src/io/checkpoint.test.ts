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

/** A safetensors file with the given tensor names, written by hand (an object literal cannot hold '__proto__' as a key). */
function rawSafetensors(entries: [string, Float32Array, number[]][], metadata?: Record<string, string>): Buffer {
  let off = 0;
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const [name, d, shape] of entries) { parts.push(`${JSON.stringify(name)}:{"dtype":"F32","shape":${JSON.stringify(shape)},"data_offsets":[${off},${off + d.byteLength}]}`); off += d.byteLength; }
  let j = `{${parts.join(',')}}`; j += ' '.repeat((8 - (j.length % 8)) % 8);
  const head = Buffer.alloc(8); head.writeBigUInt64LE(BigInt(j.length));
  return Buffer.concat([head, Buffer.from(j), ...entries.map(([, d]) => Buffer.from(d.buffer, d.byteOffset, d.byteLength))]);
}

const polluted = () => ['conv1', 'kernel', 'shape', 'data', 'constructor/kernel'].filter((k) => k in ({} as Record<string, unknown>) && k !== 'constructor');

test('checkpoint: crafted tensor names (__proto__, constructor) are refused by name and never reach Object.prototype', () => {
  const all = Object.entries(weights).map(([k, t]) => [k, t.data, t.shape] as [string, Float32Array, number[]]);
  const k = weights['conv1/kernel'];
  for (const bad of ['__proto__', '__proto__/conv1/kernel', 'constructor', 'toString/kernel']) {
    const dir = corrupt((d) => writeFileSync(join(d, 'weights.safetensors'), rawSafetensors([...all, [bad, k.data, k.shape]])));
    assert.throws(() => loadCheckpoint(dir), (e: unknown) => e instanceof R2RError && e.message.includes(`tensor '${bad}' belongs to no parameter`), bad);
    assert.deepEqual(polluted(), [], bad);
  }
  // The decoder keeps such names as plain keys.
  const dec = decodeSafetensors(rawSafetensors([['__proto__', new Float32Array([1]), [1]]]));
  assert.deepEqual(Object.keys(dec.tensors), ['__proto__']);
  assert.equal(Object.getPrototypeOf(dec.tensors), null);
});

test('checkpoint: crafted optimizer tensor names (m/constructor, __proto__/conv1/kernel, __proto__) are refused and never pollute', () => {
  const k = weights['conv1/kernel'];
  for (const bad of ['m/constructor', '__proto__/conv1/kernel', '__proto__', 'constructor/conv1/kernel', 'm/__proto__']) {
    const dir = corrupt((d) => writeFileSync(join(d, 'optimizer.safetensors'), rawSafetensors([[bad, k.data, k.shape]], { kind: 'adam', step: '1' })));
    assert.throws(() => loadCheckpoint(dir), (e: unknown) => e instanceof R2RError && e.code === 'R2R_CHECKPOINT' && e.message.includes(`tensor '${bad}'`), bad);
    assert.deepEqual(polluted(), [], bad);
  }
  const meta = corrupt((d) => writeFileSync(join(d, 'optimizer.safetensors'), rawSafetensors([['m/conv1/kernel', k.data, k.shape]], { kind: 'adam', step: 'x' })));
  assert.throws(() => loadCheckpoint(meta), /metadata\.step must be a non-negative integer, got "x"/);
});

test('checkpoint: NaN, Inf and negative moving variance are caught on load, naming tensor and index', () => {
  const withValue = (key: string, i: number, v: number) => corrupt((d) => {
    const w = { ...weights, [key]: { shape: weights[key].shape, data: new Float32Array(weights[key].data) } };
    w[key].data[i] = v;
    writeFileSync(join(d, 'weights.safetensors'), encodeSafetensors(w));
  });
  const is = (re: RegExp) => (e: unknown) => e instanceof R2RError && e.code === 'R2R_WEIGHT_VALUES' && re.test(e.message);
  assert.throws(() => loadCheckpoint(withValue('conv1/kernel', 5, NaN)), is(/weights\.safetensors: tensor 'conv1\/kernel' of node 'conv1' holds NaN at index 5/));
  assert.throws(() => loadCheckpoint(withValue('fc/bias', 2, -Infinity)), is(/tensor 'fc\/bias' of node 'fc' holds -Infinity at index 2/));
  assert.throws(() => loadCheckpoint(withValue('bn1/movingVariance', 3, -0.5)), is(/tensor 'bn1\/movingVariance' of node 'bn1' holds a negative variance -0\.5 at index 3/));
  // Optimizer moments too.
  const k = weights['conv1/kernel'];
  const bad = new Float32Array(k.data); bad[7] = Infinity;
  const dir = corrupt((d) => writeFileSync(join(d, 'optimizer.safetensors'), rawSafetensors([['m/conv1/kernel', bad, k.shape]], { kind: 'adam', step: '1' })));
  assert.throws(() => loadCheckpoint(dir), is(/optimizer tensor 'm\/conv1\/kernel' holds Infinity at index 7/));
});

test('checkpoint: temporaries of a killed write are removed by the next write beside them; a live process\'s are kept', async () => {
  const { spawnSync } = await import('node:child_process');
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const root = tmp();
  const { mkdirSync, existsSync } = await import('node:fs');
  const stale = join(root, `.epoch-0003.tmp-${dead}-0badc0de`), staleOld = `${stale}.old`, live = join(root, `.epoch-0004.tmp-${process.ppid}-0123abcd`);
  for (const d of [stale, staleOld, live]) mkdirSync(d);
  writeFileSync(join(root, `.metrics.jsonl.tmp-${dead}-00ff00ff`), 'x');
  saveCheckpoint(join(root, 'epoch-0003'), { graph, weights });
  assert.deepEqual(readdirSync(root).sort(), [`.epoch-0004.tmp-${process.ppid}-0123abcd`, 'epoch-0003']);
  assert.ok(existsSync(live));
});
