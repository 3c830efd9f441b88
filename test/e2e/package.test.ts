// The npm package as a user gets it (issue 11): `npm pack`, install the tarball into a fresh
// project, then run a plain-JavaScript ESM program, a CommonJS require, a TypeScript program
// checked by a strict NodeNext tsc (noUncheckedIndexedAccess, skipLibCheck false), and the r2r
// binary - no TypeScript loader anywhere.
//
// The install is offline: the consumer's package-lock.json is derived from r2r's own (its
// non-dev entries), so `npm ci --offline` takes every tarball from the npm cache that installing
// r2r's node_modules filled. Where that fails (a cache without them), it falls back to
// `npm install --prefer-offline`, which asks the registry for package metadata (minutes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', OMP_NUM_THREADS: '1', ...env }, maxBuffer: 64 << 20 });
}
function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const JS_PROGRAM = `
import { GraphBuilder, initWeights, Rng, widen, getEngine, randomBatch, compareLogits, countParams, writeTfjs } from 'r2r';

const b = new GraphBuilder('user-net');
let x = b.input([8, 8, 3]);
x = b.relu(b.batchNorm(b.conv2d(x, 8, 3, { name: 'conv1' }), { name: 'bn1' }), 'relu1');
x = b.relu(b.batchNorm(b.conv2d(x, 8, 3, { name: 'conv2' }), { name: 'bn2' }), 'relu2');
const graph = b.build(b.dense(b.globalAvgPool(x, 'gap'), 4, { name: 'fc' }));
const weights = initWeights(graph, new Rng(1), { randomBatchNorm: true });
const wide = widen(graph, weights, { method: 'r2r', factor: 1.5 });

const engine = await getEngine('tfjs');
const n = 4, batch = randomBatch([8, 8, 3], n, new Rng(2));
const out = {};
for (const training of [false, true]) {
  const t = await engine.build(graph, weights), s = await engine.build(wide.graph, wide.weights);
  out[training ? 'training' : 'inference'] = compareLogits(await t.forward({ x: batch, n }, { training }), await s.forward({ x: batch, n }, { training })).relDiff;
  t.dispose(); s.dispose();
}
await writeTfjs('teacher/model.json', { graph, weights });
console.log(JSON.stringify({ ...out, before: countParams(graph), after: countParams(wide.graph), engine: engine.description }));
`;

const TS_PROGRAM = `
import { GraphBuilder, initWeights, Rng, widen, forwardReference, compareLogits, countParams, readTfjs, R2RError } from 'r2r';
import type { Graph, Node, TransformResult, Weights, ImportedModel } from 'r2r';

const b = new GraphBuilder('typed-net');
const h = b.relu(b.dense(b.input([12]), 16, { name: 'fc1' }), 'relu1');
const graph: Graph = b.build(b.dense(h, 3, { name: 'fc2' }));
const weights: Weights = initWeights(graph, new Rng(3));
const wide: TransformResult = widen(graph, weights, { method: 'r2r', factor: 1.5 });

const first: Node | undefined = wide.graph.nodes[0]; // noUncheckedIndexedAccess: may be undefined
if (first === undefined || first.kind !== 'input') throw new Error('no input node');
const n = 3;
const x = new Float32Array(n * (first.shape[0] ?? 0)).map((_, i) => Math.sin(i + 1));
const rel = compareLogits(
  forwardReference(graph, weights, x, n, { training: false }),
  forwardReference(wide.graph, wide.weights, x, n, { training: false }),
).relDiff;

const imported: ImportedModel = await readTfjs('wide/model.json');
let code = '';
try { widen(graph, weights, { method: 'r2r', at: 'no-such-node' }); } catch (e) { if (e instanceof R2RError) code = e.code; }
console.log(JSON.stringify({ rel, before: countParams(graph), after: countParams(wide.graph), importedNodes: imported.graph.nodes.length, code }));
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true,
    noUncheckedIndexedAccess: true, skipLibCheck: false, outDir: 'build',
  },
  files: ['main.ts'],
};

test('npm pack, install into a fresh project, and use r2r from plain node, require(), strict tsc and the r2r binary', { timeout: 900_000 }, (t) => {
  const work = mkdtempSync(join(tmpdir(), 'r2r-pack-'));
  t.after(() => rmSync(work, { recursive: true, force: true })); // the installed project is ~100 MB

  // 1. Pack (runs `prepare`, which builds dist/).
  const packed = JSON.parse(ok(sh('npm', ['pack', '--json', '--pack-destination', work], ROOT), 'npm pack')) as { filename: string; files: { path: string }[]; size: number }[];
  const { filename, files, size } = packed[0]!;
  const paths = files.map((f) => f.path);
  for (const p of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'bin/r2r.js', 'native/binding.gyp', 'native/build.mjs', 'native/install.mjs', 'native/src/addon.cc', 'README.md', 'LICENSE', 'package.json']) {
    assert.ok(paths.includes(p), `the tarball lacks ${p}`);
  }
  // What `npx r2r-build-native` needs: every module the packed build scripts import, every source binding.gyp compiles.
  for (const script of paths.filter((p) => /^native\/[^/]+\.mjs$/.test(p))) {
    for (const m of readFileSync(join(ROOT, script), 'utf8').matchAll(/from '\.\/([^']+)'/g)) {
      assert.ok(paths.includes(`native/${m[1]}`), `${script} imports ./${m[1]}, which the tarball lacks`);
    }
  }
  for (const m of readFileSync(join(ROOT, 'native/binding.gyp'), 'utf8').matchAll(/"(src\/[^"]+)"/g)) {
    assert.ok(paths.includes(`native/${m[1]}`), `binding.gyp compiles ${m[1]}, which the tarball lacks`);
  }
  const stray = paths.filter((p) => /^(src|test|docs|bench|scripts|\.ci)\//.test(p) || p.endsWith('.test.js') || p.endsWith('.test.d.ts') || p.endsWith('.ts') && !p.endsWith('.d.ts'));
  assert.deepEqual(stray, [], 'the tarball holds only what a user needs');
  assert.ok(size < 400_000, `tarball is ${size} bytes`);

  // 2. A fresh project whose lock is r2r's runtime dependency tree (npm ci --offline needs no metadata).
  const app = join(work, 'app');
  mkdirSync(app);
  copyFileSync(join(work, filename), join(app, filename));
  const tgz = readFileSync(join(app, filename));
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const spec = `file:${filename}`;
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies: { r2r: spec } },
    'node_modules/r2r': {
      version: pkg.version, resolved: spec, integrity: `sha512-${createHash('sha512').update(tgz).digest('base64')}`,
      hasInstallScript: true, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines,
    },
  };
  for (const [k, v] of Object.entries(lock.packages)) if (k.startsWith('node_modules/') && !v.dev && !v.link) packages[k] = v;
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { r2r: spec } }, null, 2));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }, null, 2));
  // R2R_SKIP_NATIVE: where npm runs r2r's install script, do not spend a minute compiling libtorch here.
  const installEnv = { R2R_SKIP_NATIVE: '1' };
  let inst = sh('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app, installEnv);
  if (inst.status !== 0) {
    process.stderr.write(`package.test: npm ci --offline failed (${inst.stderr.split('\n').find((l) => l.includes('error')) ?? ''}); trying npm install --prefer-offline\n`);
    inst = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], app, installEnv);
  }
  ok(inst, 'installing the tarball');

  // 3. The install step never fails: without libtorch it says so and names the fallback.
  const native = sh(process.execPath, ['node_modules/r2r/native/install.mjs'], app, { LIBTORCH: join(work, 'no-libtorch') });
  assert.equal(native.status, 0, native.stderr);
  assert.match(native.stderr, /r2r will use TensorFlow\.js/);

  // 4. Plain JavaScript (ESM), no loader.
  writeFileSync(join(app, 'main.mjs'), JS_PROGRAM);
  const js = JSON.parse(ok(sh(process.execPath, ['main.mjs'], app), 'node main.mjs').trim().split('\n').pop()!) as Record<string, number>;
  assert.ok(js.inference! <= 1e-5 && js.training! <= 1e-5, JSON.stringify(js));
  assert.ok(js.after! > js.before!);

  // 5. CommonJS require() of the ESM package (Node's require(esm), 20.19+ / 22.12+).
  const cjs = sh(process.execPath, ['-e', "const r = require('r2r'), t = require('r2r/tfjs'); console.log(typeof r.widen, typeof r.readTfjs, typeof t.toLayersModel)"], app);
  assert.equal(ok(cjs, 'require("r2r")').trim(), 'function function function');

  // 6. The binary: widen the tfjs model main.mjs wrote, with the verify table.
  const cli = ok(sh(process.execPath, ['node_modules/.bin/r2r', 'widen', 'teacher/model.json', '--out', 'wide/model.json', '--method', 'r2r', '--factor', '1.5', '--engine', 'tfjs'], app), 'r2r widen');
  assert.match(cli, /inference .*PASS/);
  assert.match(cli, /training .*PASS/);
  assert.match(ok(sh(process.execPath, ['node_modules/.bin/r2r', '--version'], app), 'r2r --version').trim(), new RegExp(`^${String(pkg.version).replace(/\./g, '\\.')}$`));

  // 7. TypeScript: strict, NodeNext, noUncheckedIndexedAccess, library checking on; then run the output.
  writeFileSync(join(app, 'main.ts'), TS_PROGRAM);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  ok(sh(process.execPath, [TSC, '-p', '.'], app), 'tsc (strict consumer)');
  const ts = JSON.parse(ok(sh(process.execPath, ['build/main.js'], app), 'node build/main.js').trim()) as Record<string, unknown>;
  assert.ok((ts.rel as number) <= 1e-5, JSON.stringify(ts));
  assert.ok((ts.after as number) > (ts.before as number));
  assert.ok((ts.importedNodes as number) > 5);
  assert.equal(ts.code, 'R2R_TRANSFORM');
});
