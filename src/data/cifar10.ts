/**
 * CIFAR-10, the official "binary version": `data_batch_1..5.bin` (training) and `test_batch.bin`
 * (validation), plain or gzipped. Each record is 3073 bytes: one label byte (0-9), then the red,
 * green and blue 32x32 planes, row-major (CHW). Records are transposed to NHWC on reading.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError } from '../errors.ts';
import type { ImageSet } from './dataset.ts';

export const CIFAR10_RECORD_BYTES = 3073;
export const CIFAR10_SHAPE: [number, number, number] = [32, 32, 3];
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
/** Where `r2r data fetch` puts the data and where commands look last. */
export const DEFAULT_DATA_DIR = 'data/cifar10';
export const FETCH_HINT = `get it with \`npx r2r data fetch\` (downloads the official archive, ~163 MB, into ./${DEFAULT_DATA_DIR}), or point --data DIR / R2R_DATA at a directory holding data_batch_1..5.bin and test_batch.bin (plain or .gz)`;

/**
 * The directory to read CIFAR-10 from: `--data DIR`, else `R2R_DATA`, else `./data/cifar10`.
 * A directory that exists but holds no batch files, or the archive's `cifar-10-batches-bin`
 * subdirectory, is accepted too.
 */
export function locateCifar10(dataDir?: string, env: NodeJS.ProcessEnv = process.env): string {
  const from = dataDir ? '--data' : env.R2R_DATA ? 'R2R_DATA' : 'the default location';
  const dir = resolve(dataDir ?? env.R2R_DATA ?? DEFAULT_DATA_DIR);
  for (const d of [dir, join(dir, 'cifar-10-batches-bin')]) {
    if (findBatchFile(d, CIFAR10_TEST_FILE) || findBatchFile(d, CIFAR10_TRAIN_FILES[0])) return d;
  }
  const why = existsSync(dir) ? `${dir} (from ${from}) holds no ${CIFAR10_TRAIN_FILES[0]}[.gz] or ${CIFAR10_TEST_FILE}[.gz]` : `${dir} (from ${from}) does not exist`;
  throw new DataError(`CIFAR-10 not found: ${why}; ${FETCH_HINT}`);
}

/** `name` or `name.gz` in `dir`, or undefined. */
export function findBatchFile(dir: string, name: string): string | undefined {
  for (const p of [join(dir, name), join(dir, `${name}.gz`)]) if (existsSync(p) && statSync(p).isFile()) return p;
  return undefined;
}

/**
 * Reads up to `limit` records of one batch file (all when absent), checking the size and every
 * label byte. Errors name the file and the record.
 */
export function readCifar10File(path: string, limit?: number): ImageSet {
  if (!existsSync(path)) throw new DataError(`${path}: file not found; ${FETCH_HINT}`);
  let bytes: Buffer = readFileSync(path);
  if (path.endsWith('.gz')) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new DataError(`${path}: not a valid gzip file (${(e as Error).message}); the download is probably truncated or corrupt: delete it and fetch again`, { cause: e });
    }
  }
  if (bytes.length === 0) throw new DataError(`${path}: empty file, expected records of ${CIFAR10_RECORD_BYTES} bytes`);
  if (bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    const whole = Math.floor(bytes.length / CIFAR10_RECORD_BYTES);
    throw new DataError(`${path}: truncated or not a CIFAR-10 binary batch: ${bytes.length} bytes is not a multiple of the ${CIFAR10_RECORD_BYTES}-byte record (record ${whole} is incomplete, ${bytes.length - whole * CIFAR10_RECORD_BYTES} bytes); fetch the data again`);
  }
  const total = bytes.length / CIFAR10_RECORD_BYTES;
  const n = limit === undefined ? total : Math.min(total, limit);
  const [h, w, c] = CIFAR10_SHAPE;
  const plane = h * w;
  const pixels = new Uint8Array(n * plane * c);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const off = r * CIFAR10_RECORD_BYTES;
    const label = bytes[off];
    if (label > 9) throw new DataError(`${path}: record ${r} (byte offset ${off}) has label byte ${label}, not a class 0-9; the file is corrupt or not CIFAR-10 (CIFAR-100 records are 3074 bytes)`);
    labels[r] = label;
    // CHW planes to HWC.
    const base = r * plane * c;
    for (let k = 0; k < c; k++) {
      const src = off + 1 + k * plane;
      for (let i = 0; i < plane; i++) pixels[base + i * c + k] = bytes[src + i];
    }
  }
  return { pixels, labels, n, shape: CIFAR10_SHAPE, classes: 10, source: path };
}

export interface Cifar10Options {
  /** Read at most this many training examples (from data_batch_1 onwards). */
  trainLimit?: number;
  /** Read at most this many test examples. */
  valLimit?: number;
}

/** The training set (data_batch_1..5 in order) and the test set used for validation. */
export function readCifar10(dir: string, opts: Cifar10Options = {}): { train: ImageSet; val: ImageSet } {
  const parts: ImageSet[] = [];
  let need = opts.trainLimit ?? Infinity;
  for (const f of CIFAR10_TRAIN_FILES) {
    if (need <= 0) break;
    const path = findBatchFile(dir, f);
    if (!path) throw new DataError(`${join(dir, f)}[.gz]: missing CIFAR-10 training batch; ${FETCH_HINT}`);
    const part = readCifar10File(path, Number.isFinite(need) ? need : undefined);
    parts.push(part);
    need -= part.n;
  }
  const testPath = findBatchFile(dir, CIFAR10_TEST_FILE);
  if (!testPath) throw new DataError(`${join(dir, CIFAR10_TEST_FILE)}[.gz]: missing CIFAR-10 test batch; ${FETCH_HINT}`);
  const val = readCifar10File(testPath, opts.valLimit);
  return { train: concatSets(parts, `${dir}/data_batch_*`), val };
}

function concatSets(parts: ImageSet[], source: string): ImageSet {
  if (parts.length === 1) return parts[0];
  const n = parts.reduce((a, p) => a + p.n, 0);
  const pixels = new Uint8Array(parts.reduce((a, p) => a + p.pixels.length, 0));
  const labels = new Int32Array(n);
  let po = 0, lo = 0;
  for (const p of parts) { pixels.set(p.pixels, po); labels.set(p.labels, lo); po += p.pixels.length; lo += p.n; }
  return { pixels, labels, n, shape: parts[0].shape, classes: 10, source: `${source} (${n} records)` };
}

/** Encodes images as CIFAR-10 binary records (tests and the fetch test build archives with it). */
export function encodeCifar10Records(set: Pick<ImageSet, 'pixels' | 'labels' | 'n'>): Uint8Array {
  const [h, w, c] = CIFAR10_SHAPE;
  const plane = h * w;
  const out = new Uint8Array(set.n * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < set.n; r++) {
    const off = r * CIFAR10_RECORD_BYTES;
    out[off] = set.labels[r];
    for (let k = 0; k < c; k++) for (let i = 0; i < plane; i++) out[off + 1 + k * plane + i] = set.pixels[(r * plane + i) * c + k];
  }
  return out;
}
