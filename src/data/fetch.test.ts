import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { c as createTar } from 'tar';
import { spawnSync } from 'node:child_process';
import { DataError, R2RError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { CIFAR10_TRAIN_FILES, encodeCifar10Records, readCifar10 } from './cifar10.ts';
import { fetchCifar10 } from './fetch.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-fetch-'));
let server: Server;
let base = '';
let archive: Buffer;
let badArchive: Buffer;

before(async () => {
  // A small archive laid out like the official one: cifar-10-batches-bin/<files>.
  const src = join(tmp, 'src');
  mkdirSync(join(src, 'cifar-10-batches-bin'), { recursive: true });
  const rng = new Rng(1);
  for (const f of [...CIFAR10_TRAIN_FILES, 'test_batch.bin']) {
    const n = 4;
    const rec = encodeCifar10Records({ pixels: new Uint8Array(n * 3072).map(() => rng.int(256)), labels: new Int32Array(n).map(() => rng.int(10)), n });
    writeFileSync(join(src, 'cifar-10-batches-bin', f), rec);
  }
  writeFileSync(join(src, 'cifar-10-batches-bin', 'batches.meta.txt'), 'airplane\n');
  await createTar({ gzip: true, file: join(tmp, 'good.tar.gz'), cwd: src }, ['cifar-10-batches-bin']);
  archive = readFileSync(join(tmp, 'good.tar.gz'));
  rmSync(join(src, 'cifar-10-batches-bin', 'test_batch.bin'));
  await createTar({ gzip: true, file: join(tmp, 'bad.tar.gz'), cwd: src }, ['cifar-10-batches-bin']);
  badArchive = readFileSync(join(tmp, 'bad.tar.gz'));

  server = createServer((req, res) => {
    // A connection dropped half-way, a server that stalls after a few bytes, one that never answers.
    if (req.url === '/drop') { res.writeHead(200, { 'content-length': archive.length }); res.write(archive.subarray(0, 1000), () => res.destroy()); return; }
    if (req.url === '/stall') { res.writeHead(200, { 'content-length': archive.length }); res.write(archive.subarray(0, 1000)); return; }
    if (req.url === '/hang') return;
    const body = req.url === '/good.tar.gz' ? archive : req.url === '/bad.tar.gz' ? badArchive : undefined;
    if (!body) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/gzip' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => { server?.closeAllConnections(); server?.close(); rmSync(tmp, { recursive: true, force: true }); });

describe('r2r data fetch', () => {
  it('downloads, checks the MD5, unpacks and validates the batches', async () => {
    const dir = join(tmp, 'out', 'cifar10');
    const md5 = createHash('md5').update(archive).digest('hex');
    let reported = 0;
    const r = await fetchCifar10({ url: `${base}/good.tar.gz`, dir, md5, onProgress: (b) => { reported = b; } });
    assert.equal(r.md5, md5);
    assert.equal(reported, archive.length);
    assert.equal(r.records['test_batch.bin'], 4);
    const { train, val } = readCifar10(dir);
    assert.equal(train.n, 20);
    assert.equal(val.n, 4);
    assert.ok(existsSync(join(dir, 'batches.meta.txt')));
    // No temporary files left beside the target.
    assert.deepEqual(readdirSync(join(tmp, 'out')), ['cifar10']);
    // A second fetch finds the data and does nothing.
    assert.equal((await fetchCifar10({ url: `${base}/good.tar.gz`, dir })).skipped, true);
  });

  it('rejects a wrong MD5, an archive without the batches and an HTTP error, leaving nothing behind', async () => {
    const dir = join(tmp, 'out2', 'cifar10');
    await assert.rejects(fetchCifar10({ url: `${base}/good.tar.gz`, dir, md5: '0'.repeat(32) }), (e: unknown) => e instanceof DataError && /MD5 of the archive is [0-9a-f]{32}, expected 0{32}/.test(e.message));
    await assert.rejects(fetchCifar10({ url: `${base}/bad.tar.gz`, dir }), (e: unknown) => e instanceof DataError && /no cifar-10-batches-bin\/test_batch\.bin/.test(e.message));
    await assert.rejects(fetchCifar10({ url: `${base}/missing.tar.gz`, dir }), (e: unknown) => e instanceof DataError && /HTTP 404/.test(e.message));
    assert.equal(existsSync(dir), false);
    assert.equal(existsSync(join(tmp, 'out2')), false, 'the directories this fetch created are gone');
  });

  it('a dropped connection, a stalled transfer and no response are DataErrors (timeout), leaving nothing behind, not even the parent directory', async () => {
    const parent = join(tmp, 'fresh', 'data');
    const dir = join(parent, 'cifar10');
    await assert.rejects(fetchCifar10({ url: `${base}/drop`, dir }), (e: unknown) => e instanceof DataError && /download of .*\/drop failed after 1000 of \d+ bytes/.test(e.message));
    const t0 = Date.now();
    await assert.rejects(fetchCifar10({ url: `${base}/stall`, dir, timeout: 0.3 }), (e: unknown) => e instanceof DataError && /\/stall: no data for 0\.3 s after 1000 bytes; .*--timeout/.test(e.message));
    await assert.rejects(fetchCifar10({ url: `${base}/hang`, dir, timeout: 0.3 }), (e: unknown) => e instanceof DataError && /\/hang: no data for 0\.3 s \(no response\)/.test(e.message));
    assert.ok(Date.now() - t0 < 10_000);
    await assert.rejects(fetchCifar10({ url: `${base}/missing.tar.gz`, dir }), /HTTP 404/);
    assert.equal(existsSync(join(tmp, 'fresh')), false, 'no empty data/ left');
    await assert.rejects(fetchCifar10({ url: `${base}/good.tar.gz`, dir, timeout: 0 }), (e: unknown) => e instanceof R2RError && e.code === 'R2R_USAGE' && /--timeout/.test(e.message));
  });

  it('an aborted fetch (Ctrl-C) rejects with a DataError and leaves nothing behind', async () => {
    const parent = join(tmp, 'interrupted');
    const ac = new AbortController();
    const p = fetchCifar10({ url: `${base}/stall`, dir: join(parent, 'cifar10'), signal: ac.signal, onProgress: () => ac.abort() });
    await assert.rejects(p, (e: unknown) => e instanceof DataError && /\/stall: fetch interrupted after 1000 bytes; nothing was written/.test(e.message));
    assert.equal(existsSync(parent), false);
  });

  it('--dir below a file is refused naming --dir; temporaries of a killed fetch are removed by the next one', async () => {
    const file = join(tmp, 'plain-file');
    writeFileSync(file, 'x');
    await assert.rejects(fetchCifar10({ url: `${base}/good.tar.gz`, dir: join(file, 'cifar10') }), (e: unknown) => e instanceof R2RError && e.code === 'R2R_IO' && /--dir .*plain-file\/cifar10: .*plain-file is a file, not a directory/.test(e.message));
    const parent = join(tmp, 'killed');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    mkdirSync(join(parent, `.cifar10.tmp-${dead}-0123abcd.staging`), { recursive: true });
    writeFileSync(join(parent, `.cifar10.tmp-${dead}-89abcdef.tar.gz`), 'partial');
    const md5 = createHash('md5').update(archive).digest('hex');
    await fetchCifar10({ url: `${base}/good.tar.gz`, dir: join(parent, 'cifar10'), md5 });
    assert.deepEqual(readdirSync(parent), ['cifar10']);
  });
});
