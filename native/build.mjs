#!/usr/bin/env node
// Builds the libtorch addon: `npm run build:native` in a checkout, `npx r2r-build-native` where r2r
// is an installed package, and native/install.mjs at install time (which never fails the install).
// Finds Node's headers next to the running node (Debian: /usr/include/node) so node-gyp does not
// try to download them, and checks for libtorch first so a missing one gets a clear message.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildStamp } from './build_stamp.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function fail(msg) {
  console.error(`build:native: ${msg}`);
  process.exit(1);
}

const libtorch = process.env.LIBTORCH;
if (libtorch) {
  if (!existsSync(path.join(libtorch, 'include/torch/csrc/api/include/torch/torch.h'))) {
    fail(`LIBTORCH=${libtorch} has no include/torch/csrc/api/include/torch/torch.h; point it at an unpacked LibTorch (the folder holding include/ and lib/)`);
  }
} else if (!existsSync('/usr/include/torch/csrc/api/include/torch/torch.h')) {
  fail('libtorch not found: install it with `apt-get install -y libtorch-dev` (Debian/Ubuntu), or set LIBTORCH=/path/to/libtorch (an unpacked LibTorch download), then run `npm run build:native` again');
}

// `--if-changed` (scripts/setup.sh): skip the 1-3 minute rebuild when the addon exists and
// nothing it was built from changed: our sources, the libtorch library, Node's ABI, the flags.
const args0 = process.argv.slice(2);
const ifChanged = args0.includes('--if-changed');
const gypArgs = args0.filter((a) => a !== '--if-changed');
const addon = path.join(here, 'build/Release/r2r_torch.node');
const stampFile = path.join(here, 'build/r2r-build-stamp.json');
const stamp = buildStamp({ dir: here, libtorch, gypArgs });
if (ifChanged && existsSync(addon) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
  console.error(`build:native: up to date (${addon}); sources, libtorch and Node unchanged`);
  process.exit(0);
}

const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')].filter(Boolean);
const nodedir = candidates.find((d) => existsSync(path.join(d, 'include/node/node_api.h')));

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  fail('node-gyp is not installed; run `npm install` first');
}
const args = [gyp, 'rebuild', `--directory=${here}`, ...(nodedir ? [`--nodedir=${nodedir}`] : []), ...gypArgs];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) fail(`node-gyp failed (exit ${r.status}); see the compiler output above`);
writeFileSync(stampFile, stamp);
console.error(`build:native: built ${addon}`);

