#!/usr/bin/env node
// The package's install step: try to build the libtorch addon, and never fail the install.
// Without libtorch (or a compiler) it prints why and r2r uses TensorFlow.js (--engine auto).
// Skipped in a source checkout (src/ exists: scripts/setup.sh builds there) and when
// R2R_SKIP_NATIVE=1. npm 11 runs a dependency's install script only once approved
// (`npm install-scripts approve r2r`); `npx r2r-build-native` builds it by hand at any time.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const say = (msg) => console.error(`r2r install: ${msg}`);

if (existsSync(path.join(here, '..', 'src'))) process.exit(0);
if (process.env.R2R_SKIP_NATIVE === '1') {
  say('R2R_SKIP_NATIVE=1: not building the native libtorch engine; TensorFlow.js will be used');
  process.exit(0);
}
const r = spawnSync(process.execPath, [path.join(here, 'build.mjs')], { stdio: 'inherit' });
if (r.status === 0) say('built the native libtorch engine');
else say('the native libtorch engine was not built (see above); r2r will use TensorFlow.js. To build it later: `npx r2r-build-native`');
process.exit(0);
