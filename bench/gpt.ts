/**
 * GPT rows of `npm run bench`: training tokens/s of the `gpt` zoo model on every available engine,
 * next to PyTorch training the same network (bench/pytorch_gpt.py) in the same run.
 *
 * Protocol (both sides): batch 12, block 64, vocabulary 65, Adam lr 1e-3, no dropout, `--warmup`
 * untimed then `--steps` timed training steps on one random batch of token windows. Every
 * (engine, network) runs in its own child process; runs are paired per network (PyTorch, then each
 * engine, back to back) and repeated `--repeat` times; ratios are per pair. Each row names the
 * BLAS library its process loaded (the GEMMs that dominate a GPT step). OPENBLAS_NUM_THREADS is
 * set to `--threads` for every child unless already set: Debian's OpenBLAS otherwise runs its own
 * threads (one per core) under any `torch.set_num_threads`, in PyTorch and in the addon alike.
 *
 *   npm run bench -- --nets '' --threads 1                     (GPT rows only, default networks)
 *   node --import tsx bench/gpt.ts --nets 4/4/128,6/6/384 --threads 2 --repeat 3
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
export const DEFAULT_GPT_NETS = '4/4/128,6/6/384';
const BATCH = 12, BLOCK = 64, VOCAB = 65;

export interface GptBenchOptions {
  engines: string[];
  /** layers/heads/dim, e.g. 4/4/128. */
  nets: string[];
  threads: number;
  steps: number;
  warmup: number;
  repeat: number;
  pytorch: boolean;
  /** GOMP_SPINCOUNT for the PyTorch run (default: its own). */
  pytorchSpin?: string;
}

export interface GptMeasurement {
  engine: string;
  description: string;
  net: string;
  params: number;
  threads: number;
  batch: number;
  block: number;
  train_tokens_per_s: number;
  peak_rss_mb: number;
  /** BLAS / MKL libraries the process had loaded (real paths). */
  blas: string[];
}

export interface GptRow {
  engine: string;
  description: string;
  net: string;
  params: number;
  threads: number;
  repeats: number;
  train_tokens_per_s: number;
  train_ratio_vs_pytorch: number | null;
  train_ratio_range?: number[];
  train_runs: number[];
  peak_rss_mb: number;
  blas: string[];
}

export function parseGptNet(spec: string): { layers: number; heads: number; dim: number } {
  const m = /^(\d+)\/(\d+)\/(\d+)$/.exec(spec);
  if (!m) throw new Error(`GPT network '${spec}' is not of the form layers/heads/dim, e.g. 4/4/128`);
  const [layers, heads, dim] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (layers < 1 || heads < 1 || dim % heads !== 0) throw new Error(`GPT network '${spec}': dim must be a multiple of heads, all >= 1`);
  return { layers, heads, dim };
}

function loadedBlas(): string[] {
  let maps: string;
  try { maps = readFileSync('/proc/self/maps', 'utf8'); } catch { return []; }
  const libs = new Set<string>();
  for (const line of maps.split('\n')) {
    const p = line.slice(line.indexOf('/'));
    if (!line.includes('/') || !/blas|libmkl|mkl_rt/i.test(path.basename(p))) continue;
    try { libs.add(realpathSync(p)); } catch { libs.add(p); }
  }
  return [...libs].sort();
}

/** A short name for a list of BLAS libraries: 'OpenBLAS 0.3.21 (pthread)', 'MKL', or 'none'. */
export function blasName(libs: string[]): string {
  if (!libs.length) return 'none';
  const all = libs.join(' ');
  if (/openblas/i.test(all)) {
    const ver = /openblas\w*-r(\d+\.\d+\.\d+)/i.exec(all)?.[1];
    const flavour = /openblas-(pthread|openmp|serial)/i.exec(all)?.[1];
    return `OpenBLAS${ver ? ` ${ver}` : ''}${flavour ? ` (${flavour})` : ''}`;
  }
  if (libs.some((l) => /mkl/i.test(l))) return 'MKL';
  return libs.map((l) => path.basename(l)).join(', ');
}

// ---- child: one engine, one network ----

async function runChild(engineName: string, net: string, o: { threads: number; steps: number; warmup: number }): Promise<void> {
  const { getEngine } = await import('../src/engines/registry.ts');
  const { gpt } = await import('../src/models/gpt.ts');
  const { initWeights } = await import('../src/ir/weights.ts');
  const { countParams } = await import('../src/ir/graph.ts');
  const { Rng } = await import('../src/rng.ts');
  const engine = await getEngine(engineName, { threads: o.threads });
  const graph = gpt({ ...parseGptNet(net), block: BLOCK, vocab: VOCAB });
  const rng = new Rng(0);
  const m = await engine.build(graph, initWeights(graph, rng), { threads: o.threads });
  const tokens = Int32Array.from({ length: BATCH * BLOCK }, () => rng.int(VOCAB));
  const labels = Int32Array.from({ length: BATCH * BLOCK }, () => rng.int(VOCAB));
  const batch = { x: new Float32Array(0), n: BATCH, tokens, labels };
  m.setOptimizer({ kind: 'adam', lr: 1e-3 });
  for (let i = 0; i < o.warmup; i++) await m.trainStep(batch);
  const t = performance.now();
  for (let i = 0; i < o.steps; i++) await m.trainStep(batch);
  const tokensPerS = (BATCH * BLOCK * o.steps) / ((performance.now() - t) / 1000);
  m.dispose();
  const out: GptMeasurement = {
    engine: engine.name, description: engine.description, net, params: countParams(graph), threads: o.threads, batch: BATCH, block: BLOCK,
    train_tokens_per_s: round1(tokensPerS), peak_rss_mb: round1(process.resourceUsage().maxRSS / 1024), blas: loadedBlas(),
  };
  console.log(JSON.stringify(out));
}

// ---- parent ----

function round1(v: number): number { return Math.round(v * 10) / 10; }
const median = (xs: number[]): number => { const s = [...xs].sort((p, q) => p - q); const k = s.length >> 1; return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2; };
const spread = (xs: number[], digits = 0): string => xs.length > 1 ? ` [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]` : '';

function childEnv(o: GptBenchOptions, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? String(o.threads), ...extra };
}

function lastJson(stdout: string): Record<string, unknown> | undefined {
  const lines = stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  return lines.length ? JSON.parse(lines[lines.length - 1]) : undefined;
}

function findPython(): string | undefined {
  for (const py of [process.env.PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}

function runPytorch(py: string, net: string, o: GptBenchOptions): GptMeasurement | string {
  const wrapper = 'import json, resource, runpy, sys; path = sys.argv[1]; sys.argv = sys.argv[1:]; runpy.run_path(path, run_name="__main__"); '
    + 'print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))';
  const script = path.join(ROOT, 'bench/pytorch_gpt.py');
  const env = childEnv(o, o.pytorchSpin !== undefined ? { GOMP_SPINCOUNT: o.pytorchSpin } : {});
  const r = spawnSync(py, ['-c', wrapper, script, '--nets', net, '--threads', String(o.threads), '--batch', String(BATCH), '--block', String(BLOCK),
    '--vocab', String(VOCAB), '--steps', String(o.steps), '--warmup', String(o.warmup)], { encoding: 'utf8', env });
  if (r.status !== 0) return `pytorch_gpt.py failed: ${r.stderr.trim().split('\n').pop()}`;
  const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const m = lines.find((l) => 'train_tokens_per_s' in l), rss = lines.find((l) => 'peak_rss_kb' in l);
  if (!m) return 'pytorch_gpt.py printed no result';
  return {
    engine: 'pytorch', description: String(m.engine) + (o.pytorchSpin !== undefined ? ` (GOMP_SPINCOUNT=${o.pytorchSpin})` : ''), net, params: m.params,
    threads: m.threads, batch: m.batch, block: m.block, train_tokens_per_s: m.train_tokens_per_s, peak_rss_mb: round1((rss?.peak_rss_kb ?? 0) / 1024), blas: m.blas ?? [],
  };
}

function runEngine(engine: string, net: string, o: GptBenchOptions): GptMeasurement | string {
  const args = ['--import', 'tsx', SELF, '--child-engine', engine, '--child-net', net, '--threads', String(o.threads), '--steps', String(o.steps), '--warmup', String(o.warmup)];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT, env: childEnv(o) });
  const m = lastJson(r.stdout);
  if (r.status !== 0 || !m) {
    const err = r.stderr.trim().split('\n').find((l) => /Error|error/.test(l)) ?? r.stderr.trim().split('\n').pop();
    return `${engine} failed: ${err}`;
  }
  return m as unknown as GptMeasurement;
}

/** Runs the GPT rows; `log` gets progress lines. Returns one row per (engine, network). */
export function runGptBench(o: GptBenchOptions, log: (s: string) => void): GptRow[] {
  for (const n of o.nets) parseGptNet(n);
  let py: string | undefined;
  if (o.pytorch) {
    py = existsSync(path.join(ROOT, 'bench/pytorch_gpt.py')) ? findPython() : undefined;
    if (!py) log('GPT PyTorch reference: no python3 with torch (apt-get install -y python3-torch); ratios omitted');
  }
  log(`GPT rows: batch ${BATCH}, block ${BLOCK}, vocab ${VOCAB}, Adam lr 1e-3; threads ${o.threads}, OPENBLAS_NUM_THREADS=${childEnv(o).OPENBLAS_NUM_THREADS}, `
    + `${o.warmup} warmup + ${o.steps} timed steps, repeat ${o.repeat}`);
  interface Acc { engine: string; description: string; net: string; runs: GptMeasurement[]; ratios: number[]; failed?: string }
  const acc = new Map<string, Acc>();
  const row = (engine: string, net: string): Acc => {
    const k = `${engine} ${net}`;
    if (!acc.has(k)) acc.set(k, { engine, description: engine, net, runs: [], ratios: [] });
    return acc.get(k)!;
  };
  const unavailable = new Set<string>();
  for (const net of o.nets) {
    for (let rep = 0; rep < o.repeat; rep++) {
      let ref: GptMeasurement | undefined;
      if (py) {
        const r = runPytorch(py, net, o);
        const pr = row('pytorch', net);
        if (typeof r === 'string') pr.failed = r; else { ref = r; pr.description = r.description; pr.runs.push(r); }
        log(`  gpt ${net} pytorch: ${typeof r === 'string' ? r : `train ${r.train_tokens_per_s} tokens/s`}`);
      }
      for (const engine of o.engines) {
        if (unavailable.has(engine)) continue;
        const r = runEngine(engine, net, o);
        const er = row(engine, net);
        if (typeof r === 'string') {
          er.failed = r;
          if (/ENGINE_UNAVAILABLE|not built|EngineUnavailable/.test(r)) unavailable.add(engine);
          log(`  gpt ${net} ${engine}: ${r}`);
          continue;
        }
        er.description = r.description;
        er.runs.push(r);
        if (ref) er.ratios.push(r.train_tokens_per_s / ref.train_tokens_per_s);
        log(`  gpt ${net} ${engine}: train ${r.train_tokens_per_s} tokens/s${ref ? `; x${(r.train_tokens_per_s / ref.train_tokens_per_s).toFixed(2)} PyTorch` : ''}`);
      }
    }
  }
  const rows: GptRow[] = [];
  for (const r of acc.values()) {
    if (r.failed && !r.runs.length) log(`(gpt ${r.net} ${r.engine}: ${r.failed})`);
    if (!r.runs.length) continue;
    const train = r.runs.map((m) => m.train_tokens_per_s);
    rows.push({
      engine: r.engine, description: r.description, net: r.net, params: r.runs[0].params, threads: o.threads, repeats: r.runs.length,
      train_tokens_per_s: round1(median(train)),
      train_ratio_vs_pytorch: r.engine === 'pytorch' ? 1 : r.ratios.length ? Math.round(median(r.ratios) * 1000) / 1000 : null,
      ...(r.ratios.length > 1 ? { train_ratio_range: [Math.min(...r.ratios), Math.max(...r.ratios)].map((v) => Math.round(v * 1000) / 1000) } : {}),
      train_runs: train, peak_rss_mb: round1(Math.max(...r.runs.map((m) => m.peak_rss_mb))), blas: r.runs[0].blas,
    });
  }
  return rows;
}

/** The GPT rows as a Markdown table. */
export function gptTable(rows: GptRow[]): string {
  const head = ['GPT (layers/heads/dim)', 'params', 'engine', 'BLAS', 'train tokens/s', 'peak RSS MB', 'train vs PyTorch'];
  const cells = rows.map((r) => [
    r.net, r.params.toLocaleString('en-US'), r.description, blasName(r.blas),
    r.train_tokens_per_s.toFixed(0) + spread(r.train_runs), r.peak_rss_mb.toFixed(0),
    r.engine === 'pytorch' ? '1' : r.train_ratio_vs_pytorch === null ? '-' : `${r.train_ratio_vs_pytorch.toFixed(2)}x${r.train_ratio_range ? ` [${r.train_ratio_range[0].toFixed(2)}-${r.train_ratio_range[1].toFixed(2)}]` : ''}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

// ---- as a script ----

function usage(msg?: string): never {
  if (msg) console.error(`bench/gpt: ${msg}`);
  console.error(`usage: node --import tsx bench/gpt.ts [--engines torch,tfjs] [--nets ${DEFAULT_GPT_NETS}] [--threads 1]
       [--steps 10] [--warmup 3] [--repeat 1] [--no-pytorch] [--pytorch-spincount N] [--json]`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const o: GptBenchOptions = { engines: ['torch', 'tfjs'], nets: DEFAULT_GPT_NETS.split(','), threads: 1, steps: 10, warmup: 3, repeat: 1, pytorch: true };
  let json = false, childEngine: string | undefined, childNet: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => { const x = argv[++i]; if (x === undefined) usage(`${k} needs a value`); return x; };
    const int = () => { const x = Number(v()); if (!Number.isInteger(x) || x < 1) usage(`${k} needs a positive integer`); return x; };
    switch (k) {
      case '--engines': o.engines = v().split(',').filter(Boolean); break;
      case '--nets': o.nets = v().split(',').filter(Boolean); break;
      case '--threads': o.threads = int(); break;
      case '--steps': o.steps = int(); break;
      case '--warmup': o.warmup = int(); break;
      case '--repeat': o.repeat = int(); break;
      case '--no-pytorch': o.pytorch = false; break;
      case '--pytorch-spincount': o.pytorchSpin = v(); break;
      case '--json': json = true; break;
      case '--child-engine': childEngine = v(); break;
      case '--child-net': childNet = v(); break;
      case '-h': case '--help': usage();
      // falls through (usage exits)
      default: usage(`unknown option '${k}'`);
    }
  }
  if (childEngine && childNet) return runChild(childEngine, childNet, o);
  try { for (const n of o.nets) parseGptNet(n); } catch (e) { usage((e as Error).message); }
  const log = (s: string) => (json ? console.error(s) : console.log(s));
  log(`machine: ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.availableParallelism()} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const rows = runGptBench(o, log);
  if (json) { for (const r of rows) console.log(JSON.stringify(r)); return; }
  console.log(`\n${gptTable(rows)}\n\nmedians over repeats, [min-max] when repeated; ratios are per back-to-back pair.`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    process.exit(1);
  });
}
