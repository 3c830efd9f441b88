/**
 * `r2r data fetch`: download the official CIFAR-10 binary archive, check its MD5, unpack the
 * batch files and validate every record, all into a temporary directory that is renamed into
 * place only when complete (a failed or interrupted fetch leaves nothing half-written). A failed
 * fetch removes the directories it created; temporaries of a killed one are removed by the next.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { x as extractTar } from 'tar';
import { DataError, UsageError } from '../errors.ts';
import { checkOutputDir, removeStaleTemps, tmpSibling, writeDirAtomic } from '../io/atomic.ts';
import { CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, DEFAULT_DATA_DIR, findBatchFile, readCifar10File } from './cifar10.ts';

export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
/** Seconds without a byte from the server before a fetch gives up. */
export const DEFAULT_FETCH_TIMEOUT_S = 60;

export interface FetchOptions {
  url?: string;
  /** Target directory (default ./data/cifar10). */
  dir?: string;
  /** Expected MD5 of the archive: the official one for the official URL; unchecked for other URLs unless given. */
  md5?: string;
  /** Replace data that is already there. */
  force?: boolean;
  /** Seconds without any data (no response, or a stalled transfer) before giving up; default 60. */
  timeout?: number;
  /** Aborts the fetch (e.g. on Ctrl-C); it then cleans up and rejects with a DataError. */
  signal?: AbortSignal;
  onProgress?: (bytes: number, total: number | undefined) => void;
}

export interface FetchResult { dir: string; files: string[]; bytes: number; md5: string; records: Record<string, number>; skipped?: boolean }

export async function fetchCifar10(opts: FetchOptions = {}): Promise<FetchResult> {
  const url = opts.url ?? CIFAR10_URL;
  const dir = resolve(opts.dir ?? DEFAULT_DATA_DIR);
  const expectMd5 = opts.md5 ?? (url === CIFAR10_URL ? CIFAR10_MD5 : undefined);
  if (expectMd5 !== undefined && !/^[0-9a-f]{32}$/i.test(expectMd5)) throw new UsageError(`--md5: expected 32 hex digits, got '${expectMd5}'`);
  const timeout = opts.timeout ?? DEFAULT_FETCH_TIMEOUT_S;
  if (!(timeout > 0)) throw new UsageError(`--timeout: expected seconds > 0, got ${timeout}`);
  checkOutputDir(dir, '--dir');
  if (!opts.force && findBatchFile(dir, CIFAR10_TEST_FILE) && CIFAR10_TRAIN_FILES.every((f) => findBatchFile(dir, f))) {
    return { dir, files: readdirSync(dir), bytes: 0, md5: '', records: {}, skipped: true };
  }

  const parent = dirname(dir);
  const created = mkdirSync(parent, { recursive: true });
  removeStaleTemps(parent);
  const archive = tmpSibling(dir, '.tar.gz');
  let bytes = 0;
  const hash = createHash('md5');
  // One timer, re-armed by every chunk: it fires on no response and on a stalled transfer alike.
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => { clearTimeout(timer); timer = setTimeout(() => abort.abort(), timeout * 1000); };
  const signal = opts.signal ? AbortSignal.any([abort.signal, opts.signal]) : abort.signal;
  const interrupted = () => new DataError(`${url}: fetch interrupted after ${bytes} bytes; nothing was written`);
  const stalled = () => opts.signal?.aborted ? interrupted() : new DataError(`${url}: no data for ${timeout} s${bytes ? ` after ${bytes} bytes` : ' (no response)'}; check the network and run the fetch again, or wait longer with --timeout SECONDS`);
  try {
    let res: Response;
    try {
      arm();
      res = await fetch(url, { signal });
    } catch (e) {
      if (signal.aborted) throw stalled();
      throw new DataError(`could not download ${url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}; check the network, or download and unpack the archive yourself and pass its cifar-10-batches-bin directory as --data DIR`, { cause: e });
    }
    if (!res.ok || !res.body) throw new DataError(`could not download ${url}: HTTP ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get('content-length')) || undefined;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        arm();
        hash.update(chunk);
        opts.onProgress?.(bytes, total);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), meter, createWriteStream(archive));
    } catch (e) {
      if (signal.aborted) throw stalled();
      const err = e as Error & { cause?: Error; code?: string };
      throw new DataError(`download of ${url} failed after ${bytes}${total ? ` of ${total}` : ''} bytes (${err.cause?.message ?? err.code ?? err.message}); run the fetch again`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
    if (total !== undefined && bytes !== total) throw new DataError(`download of ${url} is incomplete: got ${bytes} of ${total} bytes; run the fetch again`);
    const md5 = hash.digest('hex');
    if (expectMd5 && md5 !== expectMd5.toLowerCase()) throw new DataError(`${url}: MD5 of the archive is ${md5}, expected ${expectMd5}; the download is corrupt or not the CIFAR-10 binary archive: run the fetch again`);

    const records: Record<string, number> = {};
    let files: string[] = [];
    await writeDirAtomicAsync(dir, async (tmp) => {
      try {
        await extractTar({ file: archive, cwd: tmp, strip: 1, filter: (p) => /^(\.\/)?cifar-10-batches-bin\/[^/]+$/.test(p) });
      } catch (e) {
        throw new DataError(`${url}: could not unpack the archive (${(e as Error).message}); is it a .tar.gz?`, { cause: e });
      }
      for (const f of [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE]) {
        const p = findBatchFile(tmp, f);
        if (!p) throw new DataError(`${url}: the archive has no cifar-10-batches-bin/${f}; is it the CIFAR-10 *binary* version?`);
        records[f] = readCifar10File(p).n;
      }
      files = readdirSync(tmp);
      if (opts.signal?.aborted) throw interrupted();
    });
    return { dir, files, bytes, md5, records };
  } catch (e) {
    // Leave no empty directories behind (a failed first fetch must not leave ./data).
    rmSync(archive, { force: true });
    if (created) removeEmptyUpTo(parent, created);
    throw e;
  } finally {
    clearTimeout(timer);
    rmSync(archive, { force: true });
  }
}

function removeEmptyUpTo(dir: string, top: string): void {
  for (let d = dir; ; d = dirname(d)) {
    try { rmdirSync(d); } catch { return; }
    if (d === top || dirname(d) === d) return;
  }
}

/** `writeDirAtomic` with an async fill: build in a temporary sibling, then swap into place. */
async function writeDirAtomicAsync(path: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const staging = tmpSibling(path, '.staging');
  mkdirSync(staging, { recursive: true });
  try {
    await fill(staging);
    writeDirAtomic(path, (tmp) => {
      // The finished files become writeDirAtomic's temporary directory (same parent: a cheap rename).
      rmSync(tmp, { recursive: true, force: true });
      renameSync(staging, tmp);
    });
  } finally {
    if (existsSync(staging)) rmSync(staging, { recursive: true, force: true });
  }
}
