import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DataError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { CIFAR10_RECORD_BYTES, CIFAR10_TRAIN_FILES, encodeCifar10Records, locateCifar10, readCifar10, readCifar10File } from './cifar10.ts';
import { augmentBatch, channelStats, makeDataset, normalize, shuffledOrder } from './dataset.ts';
import { loadDataset } from './index.ts';
import { syntheticSets } from './synthetic.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-cifar-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** n random records with known pixels and labels. */
function fakeRecords(n: number, seed: number) {
  const rng = new Rng(seed);
  const pixels = new Uint8Array(n * 3072).map(() => rng.int(256));
  const labels = new Int32Array(n).map(() => rng.int(10));
  return { pixels, labels, n };
}

function writeDataDir(dir: string, perFile: number, gz: boolean) {
  const sets = [...CIFAR10_TRAIN_FILES, 'test_batch.bin'].map((f, i) => {
    const s = fakeRecords(perFile, i + 1);
    const bytes = encodeCifar10Records(s);
    writeFileSync(join(dir, gz ? `${f}.gz` : f), gz ? gzipSync(bytes) : bytes);
    return s;
  });
  return sets;
}

describe('CIFAR-10 binary reader', () => {
  it('transposes CHW records to NHWC and keeps labels (plain and .gz)', () => {
    for (const gz of [false, true]) {
      const dir = mkdtempSync(join(tmp, 'd'));
      const sets = writeDataDir(dir, 7, gz);
      const { train, val } = readCifar10(dir);
      assert.equal(train.n, 35);
      assert.equal(val.n, 7);
      assert.deepEqual([...train.labels.slice(7, 14)], [...sets[1].labels]);
      // Pixel (y=3, x=5, channel 2) of record 2 of data_batch_1: blue plane byte 3*32+5.
      const bytes = encodeCifar10Records(sets[0]);
      const rec = 2, y = 3, x = 5, ch = 2;
      assert.equal(train.pixels[((rec * 32 + y) * 32 + x) * 3 + ch], bytes[rec * CIFAR10_RECORD_BYTES + 1 + ch * 1024 + y * 32 + x]);
      assert.deepEqual(train.pixels.slice(0, 3072), sets[0].pixels.slice(0, 3072));
    }
  });

  it('reads only what a limit needs, across files', () => {
    const dir = mkdtempSync(join(tmp, 'l'));
    const sets = writeDataDir(dir, 5, false);
    const { train, val } = readCifar10(dir, { trainLimit: 8, valLimit: 3 });
    assert.equal(train.n, 8);
    assert.equal(val.n, 3);
    assert.deepEqual([...train.labels], [...sets[0].labels, ...sets[1].labels.slice(0, 3)]);
  });

  it('names the file and record of a truncated file, a bad label byte, a missing file, a corrupt .gz', () => {
    const dir = mkdtempSync(join(tmp, 'bad'));
    const bytes = encodeCifar10Records(fakeRecords(3, 9));
    const trunc = join(dir, 'trunc.bin');
    writeFileSync(trunc, bytes.subarray(0, 2 * CIFAR10_RECORD_BYTES + 100));
    assert.throws(() => readCifar10File(trunc), (e: unknown) => e instanceof DataError && e.code === 'R2R_DATA' && /trunc\.bin/.test(e.message) && /record 2 is incomplete/.test(e.message));
    const badLabel = bytes.slice();
    badLabel[CIFAR10_RECORD_BYTES] = 37;
    const bl = join(dir, 'label.bin');
    writeFileSync(bl, badLabel);
    assert.throws(() => readCifar10File(bl), (e: unknown) => e instanceof DataError && /label\.bin: record 1 .*label byte 37/.test(e.message));
    const gz = join(dir, 'bad.bin.gz');
    writeFileSync(gz, gzipSync(bytes).subarray(0, 50));
    assert.throws(() => readCifar10File(gz), (e: unknown) => e instanceof DataError && /bad\.bin\.gz: not a valid gzip/.test(e.message));
    // A data directory missing one training batch.
    writeDataDir(dir, 2, false);
    rmSync(join(dir, 'data_batch_3.bin'));
    assert.throws(() => readCifar10(dir), (e: unknown) => e instanceof DataError && /data_batch_3\.bin\[\.gz\]: missing/.test(e.message) && /r2r data fetch/.test(e.message));
  });

  it('locates data by --data, then R2R_DATA, and says how to fetch it when absent', () => {
    const dir = mkdtempSync(join(tmp, 'loc'));
    writeDataDir(dir, 1, true);
    assert.equal(locateCifar10(dir), dir);
    assert.equal(locateCifar10(undefined, { R2R_DATA: dir }), dir);
    assert.throws(() => locateCifar10(join(tmp, 'nowhere')), (e: unknown) => e instanceof DataError && /does not exist/.test(e.message) && /npx r2r data fetch/.test(e.message));
    assert.throws(() => locateCifar10(undefined, { R2R_DATA: join(tmp, 'envnowhere') }), (e: unknown) => e instanceof DataError && /from R2R_DATA/.test(e.message));
  });

  const shared = join(import.meta.dirname, '../../../shared/data/cifar10');
  it('reads the shared CIFAR-10 copy: official first label and class counts of data_batch_1', { skip: !existsSync(shared) && !process.env.CI ? 'no shared data' : false }, () => {
    const s = readCifar10File(join(shared, 'data_batch_1.bin.gz'));
    assert.equal(s.n, 10000);
    assert.equal(s.labels[0], 6); // frog
    const counts = new Array(10).fill(0);
    for (const l of s.labels) counts[l]++;
    assert.deepEqual(counts, [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]);
  });
});

describe('datasets', () => {
  it('normalises each channel with the training statistics', () => {
    const { train, val } = syntheticSets({ trainExamples: 200, valExamples: 50, seed: 3 });
    const ds = makeDataset('s', train, val);
    for (let c = 0; c < 3; c++) {
      let m = 0, q = 0;
      for (let i = c; i < ds.train.x.length; i += 3) { m += ds.train.x[i]; q += ds.train.x[i] ** 2; }
      const cnt = ds.train.x.length / 3;
      m /= cnt;
      assert.ok(Math.abs(m) < 1e-4, `channel ${c} mean ${m}`);
      assert.ok(Math.abs(q / cnt - m * m - 1) < 1e-3, `channel ${c} variance`);
    }
    // Validation uses the training statistics, not its own.
    assert.deepEqual(normalize(val, channelStats(train)), ds.val.x);
  });

  it('synthetic data and shuffles are deterministic by seed', () => {
    const a = syntheticSets({ trainExamples: 50, seed: 1 }), b = syntheticSets({ trainExamples: 50, seed: 1 }), c = syntheticSets({ trainExamples: 50, seed: 2 });
    assert.deepEqual(a.train.pixels, b.train.pixels);
    assert.notDeepEqual(a.train.pixels, c.train.pixels);
    assert.deepEqual(shuffledOrder(100, new Rng(5)), shuffledOrder(100, new Rng(5)));
    const o = shuffledOrder(100, new Rng(6));
    assert.deepEqual([...o].sort((x, y) => x - y), [...Array(100).keys()]);
  });

  it('augmentation (crop with padding, flip) keeps shapes, moves pixels, is seeded', () => {
    const ds = loadDataset({ dataset: 'synthetic', trainLimit: 8, valLimit: 4 });
    const x1 = ds.train.x.slice(), x2 = ds.train.x.slice();
    augmentBatch(x1, 8, ds.inputShape, new Rng(1));
    augmentBatch(x2, 8, ds.inputShape, new Rng(1));
    assert.deepEqual(x1, x2);
    assert.notDeepEqual(x1, ds.train.x);
    // With no padding and a forced flip pattern, each row is a permutation of the original row.
    const y = ds.train.x.slice(0, 16 * 16 * 3);
    augmentBatch(y, 1, ds.inputShape, new Rng(2), 0);
    const rowSum = (a: Float32Array) => a.subarray(0, 48).reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(rowSum(y) - rowSum(ds.train.x)) < 1e-3);
  });
});
