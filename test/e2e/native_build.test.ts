// scripts/setup.sh rebuilds the native addon only when what it is built from changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: a plain .mjs build script without type declarations
import { buildStamp } from '../../native/build_stamp.mjs';

const NATIVE = join(import.meta.dirname, '../../native');

test('the build stamp changes with the sources, the libtorch library and the flags, and only then', () => {
  const dir = mkdtempSync(join(tmpdir(), 'r2r-stamp-'));
  for (const f of ['binding.gyp', 'build.mjs', 'build_stamp.mjs', 'src']) cpSync(join(NATIVE, f), join(dir, f), { recursive: true });
  const lib = join(dir, 'libtorch', 'lib');
  mkdirSync(lib, { recursive: true });
  writeFileSync(join(lib, 'libtorch_cpu.so'), 'v1');
  const stamp = (gypArgs: string[] = []) => buildStamp({ dir, libtorch: join(dir, 'libtorch'), gypArgs, env: {} }) as string;
  const a = stamp();
  assert.equal(stamp(), a, 'nothing changed');
  assert.match(a, /"abi": "\d+"/);
  appendFileSync(join(dir, 'src', 'net.cc'), '\n// changed\n');
  const b = stamp();
  assert.notEqual(b, a, 'a source changed');
  writeFileSync(join(lib, 'libtorch_cpu.so'), 'v2 is longer');
  const c = stamp();
  assert.notEqual(c, b, 'libtorch changed');
  assert.notEqual(stamp(['--debug']), c, 'other node-gyp flags');
  // Debian's libtorch: installing libdnnl-dev (oneDNN's headers) changes what binding.gyp builds.
  const header = join(dir, 'dnnl.hpp');
  const debian = () => buildStamp({ dir, libDirs: [lib], env: {}, onednnHeader: header }) as string;
  const without = debian();
  writeFileSync(header, '');
  assert.notEqual(debian(), without, 'oneDNN headers installed');
});

test('build:native --if-changed does nothing when the built addon is up to date', (t) => {
  const built = existsSync(join(NATIVE, 'build/Release/r2r_torch.node')) && existsSync(join(NATIVE, 'build/r2r-build-stamp.json'));
  if (!built) {
    // CI builds the addon in scripts/setup.sh, so there it must be there.
    assert.ok(process.env.CI !== 'true', 'CI=true: the native addon and its build stamp are missing (scripts/setup.sh builds them)');
    t.skip('native addon not built with a stamp (npm run build:native)');
    return;
  }
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(NATIVE, 'build.mjs'), '--if-changed'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /up to date/);
  assert.ok(Date.now() - t0 < 20_000, 'no rebuild');
});
