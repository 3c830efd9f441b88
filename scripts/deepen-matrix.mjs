#!/usr/bin/env node
// The R2DeeperR exactness matrix (issue 8, "done when"): for every zoo model, seed and init, on
// every engine, run the real command
//   npx r2r verify --model M --transform deepen --method r2r --seed S --init I --engine E --threads 1
// and require it to pass (exit 0). Prints one line per run and the worst relative error per
// engine and mode. Runs one command at a time (the machine may be shared).
//
//   node scripts/deepen-matrix.mjs [--engines tfjs,torch] [--models a,b] [--seeds 0-4] [--inits he,match-std,copy]
//   node scripts/deepen-matrix.mjs --cases mlp:1:copy,resnet-cifar10:0:he   (chosen cases, not the product)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ALL_MODELS = ['resnet-cifar10', 'resnet-cifar18', 'resnet-cifar10-nores', 'resnet-cifar18-nores', 'small-conv', 'mlp'];

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
function range(s) {
  return s.split(',').flatMap((p) => {
    const m = /^(\d+)-(\d+)$/.exec(p);
    return m ? Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i) : [Number(p)];
  });
}

const engines = arg('engines', 'tfjs,torch').split(',');
const models = arg('models', ALL_MODELS.join(',')).split(',');
const seeds = range(arg('seeds', '0-4'));
const inits = arg('inits', 'he,match-std,copy').split(',');
const cases = arg('cases')
  ? arg('cases').split(',').map((c) => { const [model, seed, init] = c.split(':'); return { model, seed: Number(seed), init }; })
  : models.flatMap((model) => seeds.flatMap((seed) => inits.map((init) => ({ model, seed, init }))));

/** Every top-level JSON value in `text` (one document, JSON Lines or pretty objects back to back). */
function jsonValues(text) {
  const out = [];
  let depth = 0, start = -1, inString = false, escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') { if (depth++ === 0) start = i; }
    else if (c === '}' || c === ']') { if (--depth === 0) out.push(JSON.parse(text.slice(start, i + 1))); }
  }
  return out;
}
/** Objects with a relDiff and a mode, wherever they sit in the JSON. */
function modeResults(v, acc = []) {
  if (Array.isArray(v)) v.forEach((x) => modeResults(x, acc));
  else if (v && typeof v === 'object') {
    if (typeof v.relDiff === 'number' && typeof v.mode === 'string') acc.push(v);
    else Object.values(v).forEach((x) => modeResults(x, acc));
  }
  return acc;
}

const worst = new Map();
const failures = [];
let runs = 0;
for (const engine of engines) {
  for (const { model, seed, init } of cases) {
    const args = ['verify', '--model', model, '--transform', 'deepen', '--method', 'r2r', '--seed', String(seed), '--init', init, '--engine', engine, '--threads', '1', '--json'];
    const r = spawnSync(process.execPath, ['bin/r2r.js', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    runs++;
    let results = [];
    try { results = modeResults(jsonValues(r.stdout)); } catch { /* reported below */ }
    const cells = results.map((x) => `${x.mode} ${x.relDiff.toExponential(2)}`).join(', ');
    console.log(`${r.status === 0 ? 'pass' : 'FAIL'}  ${engine.padEnd(5)} ${model.padEnd(20)} seed ${seed} ${init.padEnd(9)} ${cells}`);
    if (r.status !== 0 || results.length === 0) failures.push(`r2r ${args.join(' ')} -> exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0]}`);
    for (const x of results) {
      const key = `${engine} ${x.mode}`;
      const w = worst.get(key);
      if (!w || x.relDiff > w.relDiff) worst.set(key, { relDiff: x.relDiff, where: `${model} seed ${seed} ${init}` });
    }
  }
}
console.log(`\n${runs} runs, ${failures.length} failed`);
for (const [key, w] of [...worst].sort()) console.log(`worst ${key}: ${w.relDiff.toExponential(3)} (${w.where})`);
for (const f of failures) console.log(`failed: ${f}`);
process.exit(failures.length ? 1 : 0);
