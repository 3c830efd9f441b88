/**
 * `npm run bench`: training and inference throughput (images/s) and peak memory of the zoo's
 * networks on every available engine, next to PyTorch on the same machine in the same run, on an
 * idle machine and, with `--busy`, again with one competing CPU-burning process.
 *
 * Each (engine, network) runs in its own child process, so peak RSS is that run's alone and
 * engines do not share threads or allocators. PyTorch runs bench/pytorch_reference.py (or
 * R2R_PYTORCH_REFERENCE) with the same protocol: batch 128, Adam lr 3e-3, `--warmup` untimed
 * steps then `--steps` timed ones on one random batch; inference on a batch of 256, 5 untimed
 * then `--infer-steps` (50) timed passes (10 were ~20 ms for the MLP: a JS garbage collection
 * or a thread waking late there halved a measurement). Runs are paired per network and condition (PyTorch, then each engine,
 * back to back, under the same competing process) and repeated `--repeat` times; ratios are per
 * pair. Threads: each side's default unless `--threads N` (r2r: auto, the free cores; PyTorch:
 * one per core). Each side reports the BLAS library it mapped (libtorch's dense layers call it).
 *
 * Then the GPT rows (bench/gpt.ts): training tokens/s of `gpt` 4/4/128 and 6/6/384, batch 12,
 * block 64, against PyTorch training the same network (bench/pytorch_gpt.py), naming the BLAS.
 *
 *   npm run bench
 *   npm run bench -- --busy                    idle and busy, every default network
 *   npm run bench -- --engines torch --nets resnet18:0.125,smallconv:1 --steps 10 --repeat 3
 *   npm run bench -- --json                    JSON Lines, one object per condition, engine and network
 *   npm run bench -- --nets '' --gpt-nets 4/4/128 --threads 1     (GPT rows only)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_GPT_NETS, gptTable, parseGptNet, runGptBench } from './gpt.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_NETS = 'resnet10:0.125,resnet18:0.125,resnet18:0.1875,resnet18:0.5,smallconv:1,mlp:1';

type Condition = 'idle' | 'busy';

interface Args {
  engines: string[];
  nets: string[];
  steps: number;
  warmup: number;
  /** Timed inference passes (batch 256), both sides. */
  inferSteps: number;
  /** A fixed count for both sides, or each side's own default. */
  threads: number | 'default';
  batch: number;
  repeat: number;
  json: boolean;
  pytorch: boolean;
  conditions: Condition[];
  /** Pin the competing process to this CPU (taskset); default: unpinned. */
  busyCpu?: number;
  /** GOMP_SPINCOUNT for the PyTorch reference (default: its own default), to compare at equal OpenMP waiting. */
  pytorchSpin?: string;
  child?: { engine: string; net: string };
  /** GPT rows (bench/gpt.ts): layers/heads/dim networks, timed and warmup steps. */
  gptNets: string[];
  gptSteps: number;
  gptWarmup: number;
}

function usage(msg?: string): never {
  if (msg) console.error(`bench: ${msg}`);
  console.error(`usage: npm run bench -- [--engines torch,tfjs] [--nets ${DEFAULT_NETS}]
       [--steps 20] [--warmup 5] [--infer-steps 50] [--threads N] [--batch 128] [--repeat 1] [--no-pytorch] [--json]
       [--busy]                  measure idle, then with one competing CPU-burning process
       [--conditions idle,busy]  the same, by name (busy alone: --conditions busy)
       [--busy-cpu N]            pin the competing process to CPU N (taskset)
       [--pytorch-spincount N]   run PyTorch with GOMP_SPINCOUNT=N (the torch engine uses 30000)
networks: resnet10|resnet18[-nores]:WIDTH, smallconv:WIDTH, mlp:WIDTH
       [--gpt-nets ${DEFAULT_GPT_NETS}] [--gpt-steps 10] [--gpt-warmup 3]   GPT rows ('' for none; idle only)
threads: default = each side's own (r2r torch engine: auto, the free cores; PyTorch: one per core); GPT rows: --threads N, default 1`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { engines: ['torch', 'tfjs'], nets: DEFAULT_NETS.split(','), steps: 20, warmup: 5, inferSteps: 50, threads: 'default', batch: 128, repeat: 1, json: false, pytorch: true, conditions: ['idle'],
    gptNets: DEFAULT_GPT_NETS.split(','), gptSteps: 10, gptWarmup: 3 };
  let childEngine: string | undefined, childNet: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => { const x = argv[++i]; if (x === undefined) usage(`${k} needs a value`); return x; };
    const int = (min = 1) => { const x = Number(v()); if (!Number.isInteger(x) || x < min) usage(`${k} needs an integer >= ${min}`); return x; };
    switch (k) {
      case '--engines': a.engines = v().split(',').filter(Boolean); break;
      case '--nets': a.nets = v().split(',').filter(Boolean); break;
      case '--steps': a.steps = int(); break;
      case '--warmup': a.warmup = int(); break;
      case '--infer-steps': a.inferSteps = int(); break;
      case '--threads': { const t = v(); a.threads = t === 'default' ? t : Number(t); if (t !== 'default' && !(Number.isInteger(a.threads) && (a.threads as number) >= 1)) usage('--threads needs a positive integer or default'); break; }
      case '--batch': a.batch = int(); break;
      case '--repeat': a.repeat = int(); break;
      case '--json': a.json = true; break;
      case '--no-pytorch': a.pytorch = false; break;
      case '--busy': a.conditions = ['idle', 'busy']; break;
      case '--conditions': {
        const c = v().split(',').filter(Boolean);
        if (!c.length || c.some((x) => x !== 'idle' && x !== 'busy')) usage('--conditions takes idle, busy or idle,busy');
        a.conditions = c as Condition[];
        break;
      }
      case '--busy-cpu': a.busyCpu = int(0); break;
      case '--pytorch-spincount': a.pytorchSpin = v(); break;
      case '--gpt-nets': a.gptNets = v().split(',').filter(Boolean); break;
      case '--gpt-steps': a.gptSteps = int(); break;
      case '--gpt-warmup': a.gptWarmup = int(); break;
      case '--child-engine': childEngine = v(); break;
      case '--child-net': childNet = v(); break;
      case '-h': case '--help': usage();
      // falls through (usage exits)
      default: usage(`unknown option '${k}'`);
    }
  }
  for (const n of a.nets) parseNet(n);
  for (const n of a.gptNets) { try { parseGptNet(n); } catch (e) { usage((e as Error).message); } }
  if (childEngine && childNet) a.child = { engine: childEngine, net: childNet };
  return a;
}

function parseNet(spec: string): { model: string; width: number } {
  const m = /^(resnet(10|18)(-nores)?|smallconv|mlp):([0-9.]+)$/.exec(spec);
  if (!m || !(Number(m[4]) > 0)) usage(`network '${spec}' is not of the form resnet18:0.125, resnet10-nores:0.5, smallconv:1 or mlp:1`);
  const model = m[1] === 'smallconv' ? 'small-conv' : m[1] === 'mlp' ? 'mlp' : `resnet-cifar${m[2]}${m[3] ?? ''}`;
  return { model, width: Number(m[4]) };
}

/** BLAS shared objects mapped into this process (the kernel resolves libblas.so.3's alternative). */
function blasLibraries(): string[] {
  let maps: string;
  try { maps = readFileSync('/proc/self/maps', 'utf8'); } catch { return []; }
  const paths = new Set(maps.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 6).map((f) => f[f.length - 1]));
  return [...paths].filter((p) => /blas|mkl_|blis/.test(path.basename(p))).sort();
}

/** A short name for a BLAS: what libblas.so.3 resolves to decides which implementation runs. */
export function blasName(libs: string[] | undefined): string {
  if (!libs) return '?';
  if (libs.length === 0) return 'none mapped';
  const all = libs.join(' ');
  if (/openblas/.test(all)) return `OpenBLAS${/openblas-pthread/.test(all) ? ' (pthread)' : /openblas-openmp/.test(all) ? ' (openmp)' : ''}`;
  if (/mkl_/.test(all)) return 'MKL';
  if (/blis/.test(all)) return 'BLIS';
  if (/\/blas\/libblas\.so/.test(all)) return 'reference BLAS (slow)';
  return libs.map((l) => path.basename(l)).join(', ');
}

interface Measurement {
  condition?: Condition;
  engine: string;
  description: string;
  net: string;
  params: number;
  threads: number;
  batch: number;
  train_images_per_s: number;
  /** trainStep loop (JS batch each step); for engines with the native dataset path, train_images_per_s is trainEpoch. */
  step_images_per_s?: number;
  infer_images_per_s: number;
  peak_rss_mb: number;
  /** BLAS libraries the process mapped. */
  blas?: string[];
}

// ---- child: one engine, one network ----

async function runChild(a: Args): Promise<void> {
  const { child } = a;
  if (!child) return;
  const { getEngine } = await import('../src/engines/registry.ts');
  const { zooModel } = await import('../src/models/zoo.ts');
  const { initWeights } = await import('../src/ir/weights.ts');
  const { countParams } = await import('../src/ir/graph.ts');
  const { Rng } = await import('../src/rng.ts');
  const threads = a.threads === 'default' ? {} : { threads: a.threads };
  const engine = await getEngine(child.engine, threads);
  const { model, width } = parseNet(child.net);
  const graph = zooModel(model, { width });
  const rng = new Rng(0);
  const m = await engine.build(graph, initWeights(graph, rng), threads);
  const size = 32 * 32 * 3, n = a.batch;
  const x = new Float32Array(n * size);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(10);
  m.setOptimizer({ kind: 'adam', lr: 3e-3 });
  const batch = { x, n, labels };
  for (let i = 0; i < a.warmup; i++) await m.trainStep(batch);
  let t = performance.now();
  for (let i = 0; i < a.steps; i++) await m.trainStep(batch);
  const step = (n * a.steps) / ((performance.now() - t) / 1000);
  let train = step, epochPath: number | undefined;
  if (m.uploadDataset && m.trainEpoch) {
    // The trainer's path: data held by the engine, a whole epoch per call. Same batch, repeated.
    const data = await m.uploadDataset(x, labels, n);
    const order = new Int32Array(n * a.steps);
    for (let i = 0; i < order.length; i++) order[i] = i % n;
    await m.trainEpoch(data, order.subarray(0, n * Math.min(a.warmup, 2)), n);
    t = performance.now();
    await m.trainEpoch(data, order, n);
    epochPath = (n * a.steps) / ((performance.now() - t) / 1000);
    data.release();
    train = epochPath;
  }
  const ni = 256;
  const xe = new Float32Array(ni * size);
  for (let i = 0; i < xe.length; i++) xe[i] = rng.normal();
  for (let i = 0; i < 5; i++) await m.forward({ x: xe, n: ni }, { training: false });
  t = performance.now();
  for (let i = 0; i < a.inferSteps; i++) await m.forward({ x: xe, n: ni }, { training: false });
  const infer = (ni * a.inferSteps) / ((performance.now() - t) / 1000);
  m.dispose();
  const out: Measurement = {
    engine: engine.name, description: engine.description, net: child.net, params: countParams(graph), threads: a.threads === 'default' ? 0 : a.threads, batch: n,
    train_images_per_s: round1(train), ...(epochPath !== undefined ? { step_images_per_s: round1(step) } : {}),
    infer_images_per_s: round1(infer), peak_rss_mb: round1(process.resourceUsage().maxRSS / 1024), blas: blasLibraries(),
  };
  console.log(JSON.stringify(out));
}

// ---- parent: orchestrate, pair with PyTorch, report ----

function round1(v: number): number { return Math.round(v * 10) / 10; }

function lastJson(stdout: string): Record<string, unknown> | undefined {
  const lines = stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  return lines.length ? JSON.parse(lines[lines.length - 1]) : undefined;
}

function findPytorchReference(): string | undefined {
  const c = [process.env.R2R_PYTORCH_REFERENCE, path.join(ROOT, 'bench/pytorch_reference.py')];
  return c.find((p): p is string => !!p && existsSync(p));
}

function findPython(): string | undefined {
  for (const py of [process.env.PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return undefined;
}

function runPytorch(py: string, script: string, net: string, a: Args): Measurement | string {
  // Peak RSS from inside the process; the script itself prints the throughput line.
  const wrapper = 'import json, resource, runpy, sys; path = sys.argv[1]; sys.argv = sys.argv[1:]; runpy.run_path(path, run_name="__main__"); '
    + 'print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))';
  const env = a.pytorchSpin !== undefined ? { ...process.env, GOMP_SPINCOUNT: a.pytorchSpin } : process.env;
  const threads = a.threads === 'default' ? '0' : String(a.threads);
  const r = spawnSync(py, ['-c', wrapper, script, '--nets', net, '--threads', threads, '--batch', String(a.batch), '--steps', String(a.steps), '--warmup', String(a.warmup), '--infer-steps', String(a.inferSteps)], { encoding: 'utf8', env });
  if (r.status !== 0) return `pytorch_reference.py failed: ${r.stderr.trim().split('\n').pop()}`;
  const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const m = lines.find((l) => 'train_images_per_s' in l), rss = lines.find((l) => 'peak_rss_kb' in l);
  if (!m) return 'pytorch_reference.py printed no result';
  return {
    engine: 'pytorch', description: String(m.engine) + (a.pytorchSpin !== undefined ? ` (GOMP_SPINCOUNT=${a.pytorchSpin})` : ''), net, params: m.params, threads: m.threads, batch: m.batch,
    train_images_per_s: m.train_images_per_s, infer_images_per_s: m.infer_images_per_s, peak_rss_mb: round1((rss?.peak_rss_kb ?? 0) / 1024), blas: m.blas,
  };
}

function runEngine(engine: string, net: string, a: Args): Measurement | string {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child-engine', engine, '--child-net', net,
    '--steps', String(a.steps), '--warmup', String(a.warmup), '--infer-steps', String(a.inferSteps), '--threads', String(a.threads), '--batch', String(a.batch)];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT });
  const m = lastJson(r.stdout);
  if (r.status !== 0 || !m) {
    const err = r.stderr.trim().split('\n').find((l) => /Error|error/.test(l)) ?? r.stderr.trim().split('\n').pop();
    return `${engine} failed: ${err}`;
  }
  return m as unknown as Measurement;
}

const median = (xs: number[]): number => { const s = [...xs].sort((p, q) => p - q); const k = s.length >> 1; return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2; };
const spread = (xs: number[], digits = 0): string => xs.length > 1 ? ` [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]` : '';

/**
 * The competing process of the busy condition: one CPU-burning Node process (one core's worth of
 * demand), unpinned unless --busy-cpu. Started before a pair of measurements, stopped after it.
 */
function startBurner(a: Args): ChildProcess {
  const burn = [process.execPath, '-e', 'for (;;);'];
  const cmd = a.busyCpu !== undefined ? ['taskset', '-c', String(a.busyCpu), ...burn] : burn;
  const p = spawn(cmd[0], cmd.slice(1), { stdio: 'ignore' });
  p.on('error', (e) => { console.error(`bench: could not start the competing process (${cmd.join(' ')}): ${e.message}`); process.exit(1); });
  return p;
}

async function stopBurner(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await done;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.child) return runChild(a);

  const log = (s: string) => { if (!a.json) console.log(s); else console.error(s); };
  let py: string | undefined, script: string | undefined;
  if (a.pytorch) {
    script = findPytorchReference();
    py = script ? findPython() : undefined;
    if (!script) log('PyTorch reference: bench/pytorch_reference.py not found (or R2R_PYTORCH_REFERENCE); ratios omitted');
    else if (!py) log('PyTorch reference: no python3 with torch (apt-get install -y python3-torch); ratios omitted');
  }
  log(`machine: ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.availableParallelism()} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; `
    + `${process.env.GOMP_SPINCOUNT ? `GOMP_SPINCOUNT=${process.env.GOMP_SPINCOUNT}, ` : ''}threads ${a.threads === 'default' ? 'each side\'s default' : a.threads}, batch ${a.batch}, `
    + `${a.warmup} warmup + ${a.steps} timed steps, inference 5 warmup + ${a.inferSteps} timed passes of 256, repeat ${a.repeat}; conditions: ${a.conditions.map((c) => c === 'busy' ? `busy (one CPU-burning process${a.busyCpu !== undefined ? ` on CPU ${a.busyCpu}` : ''})` : c).join(', ')}`);
  if (a.conditions.includes('idle') && os.loadavg()[0] > 0.5) log(`note: load average ${os.loadavg()[0].toFixed(1)} before starting: "idle" numbers are only idle on an otherwise idle machine`);

  interface Row { condition: Condition; engine: string; description: string; net: string; runs: Measurement[]; ratios: { train: number; infer: number }[]; failed?: string }
  const rows = new Map<string, Row>();
  const row = (condition: Condition, engine: string, net: string): Row => {
    const k = `${condition} ${engine} ${net}`;
    if (!rows.has(k)) rows.set(k, { condition, engine, description: engine, net, runs: [], ratios: [] });
    return rows.get(k)!;
  };
  const unavailable = new Set<string>();
  let burner: ChildProcess | undefined;
  const cleanup = () => { burner?.kill('SIGKILL'); };
  process.on('exit', cleanup);
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  for (const net of a.nets) {
    for (let rep = 0; rep < a.repeat; rep++) {
      for (const condition of a.conditions) {
        if (condition === 'busy') {
          burner = startBurner(a);
          await new Promise((r) => setTimeout(r, 500)); // let it reach full speed
        }
        try {
          let ref: Measurement | undefined;
          if (py && script) {
            const r = runPytorch(py, script, net, a);
            const pr = row(condition, 'pytorch', net);
            if (typeof r === 'string') pr.failed = r; else { ref = { ...r, condition }; pr.description = r.description; pr.runs.push(ref); }
            log(`  ${condition} ${net} pytorch: ${typeof r === 'string' ? r : `train ${r.train_images_per_s}, infer ${r.infer_images_per_s} img/s (${r.threads} threads, ${blasName(r.blas)})`}`);
          }
          for (const engine of a.engines) {
            if (unavailable.has(engine)) continue;
            const r = runEngine(engine, net, a);
            const er = row(condition, engine, net);
            if (typeof r === 'string') {
              er.failed = r;
              if (/ENGINE_UNAVAILABLE|not built|EngineUnavailable/.test(r)) unavailable.add(engine);
              log(`  ${condition} ${net} ${engine}: ${r}`);
              continue;
            }
            er.description = r.description;
            er.runs.push({ ...r, condition });
            if (ref) er.ratios.push({ train: r.train_images_per_s / ref.train_images_per_s, infer: r.infer_images_per_s / ref.infer_images_per_s });
            log(`  ${condition} ${net} ${engine}: train ${r.train_images_per_s}${r.step_images_per_s ? ` (trainStep loop ${r.step_images_per_s})` : ''}, infer ${r.infer_images_per_s} img/s (${r.description}, ${blasName(r.blas)})`
              + (ref ? `; x${(r.train_images_per_s / ref.train_images_per_s).toFixed(2)} / x${(r.infer_images_per_s / ref.infer_images_per_s).toFixed(2)} PyTorch` : ''));
          }
        } finally {
          await stopBurner(burner);
          burner = undefined;
        }
      }
    }
  }

  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  const results = [...rows.values()].filter((r) => r.runs.length > 0).map((r) => {
    const train = r.runs.map((m) => m.train_images_per_s), infer = r.runs.map((m) => m.infer_images_per_s);
    const step = r.runs.map((m) => m.step_images_per_s).filter((v): v is number => v !== undefined);
    const tr = r.ratios.map((q) => q.train), ir = r.ratios.map((q) => q.infer);
    return {
      condition: r.condition, engine: r.engine, description: r.description, net: r.net, params: r.runs[0].params, threads: a.threads, batch: a.batch, repeats: r.runs.length,
      blas: blasName(r.runs[0].blas), blas_libraries: r.runs[0].blas ?? null,
      train_images_per_s: round1(median(train)), ...(step.length ? { step_images_per_s: round1(median(step)) } : {}),
      infer_images_per_s: round1(median(infer)), peak_rss_mb: round1(Math.max(...r.runs.map((m) => m.peak_rss_mb))),
      train_ratio_vs_pytorch: r.engine === 'pytorch' ? 1 : tr.length ? r3(median(tr)) : null,
      infer_ratio_vs_pytorch: r.engine === 'pytorch' ? 1 : ir.length ? r3(median(ir)) : null,
      train_ratio_range: tr.length > 1 ? [Math.min(...tr), Math.max(...tr)].map(r3) : undefined,
      infer_ratio_range: ir.length > 1 ? [Math.min(...ir), Math.max(...ir)].map(r3) : undefined,
      train_runs: train, infer_runs: infer,
    };
  });

  const gpt = () => runGptBench({
    engines: a.engines, nets: a.gptNets, threads: a.threads === 'default' ? 1 : a.threads, steps: a.gptSteps, warmup: a.gptWarmup, repeat: a.repeat, pytorch: a.pytorch,
    ...(a.pytorchSpin !== undefined ? { pytorchSpin: a.pytorchSpin } : {}),
  }, log);
  if (a.json) {
    for (const r of results) console.log(JSON.stringify(r));
    if (a.gptNets.length) for (const r of gpt()) console.log(JSON.stringify({ kind: 'gpt', ...r }));
    return;
  }
  console.log('');
  const ratioText = (r: typeof results[number], k: 'train' | 'infer') => {
    const v = k === 'train' ? r.train_ratio_vs_pytorch : r.infer_ratio_vs_pytorch;
    const rr = rows.get(`${r.condition} ${r.engine} ${r.net}`)!;
    return r.engine === 'pytorch' ? '1' : v === null ? '-' : `${v.toFixed(2)}x${spread(rr.ratios.map((q) => q[k]), 2)}`;
  };
  printTable(['condition', 'network', 'engine', 'BLAS', 'train img/s', 'infer img/s', 'peak RSS MB', 'train vs PyTorch', 'infer vs PyTorch'], results.map((r) => [
    r.condition, r.net, r.description, r.blas,
    r.train_images_per_s.toFixed(0) + spread(r.train_runs),
    r.infer_images_per_s.toFixed(0) + spread(r.infer_runs),
    r.peak_rss_mb.toFixed(0), ratioText(r, 'train'), ratioText(r, 'infer'),
  ]));
  for (const r of rows.values()) if (r.failed && r.runs.length === 0) console.log(`(${r.condition}: ${r.engine} on ${r.net}: ${r.failed})`);
  if (a.conditions.length > 1) {
    // The question --busy answers: does each engine keep up with PyTorch in both conditions?
    console.log('\nratios to PyTorch (train / infer), per condition:');
    const engines = [...new Set(results.filter((r) => r.engine !== 'pytorch').map((r) => r.engine))];
    const cell = (c: Condition, e: string, net: string) => {
      const r = results.find((x) => x.condition === c && x.engine === e && x.net === net);
      return r && r.train_ratio_vs_pytorch !== null && r.infer_ratio_vs_pytorch !== null ? `${r.train_ratio_vs_pytorch.toFixed(2)}x / ${r.infer_ratio_vs_pytorch.toFixed(2)}x` : '-';
    };
    printTable(['network', 'engine', ...a.conditions], a.nets.flatMap((net) => engines.map((e) => [net, e, ...a.conditions.map((c) => cell(c, e, net))])));
  }
  console.log('\nmedians over repeats, [min-max] when repeated; ratios are per back-to-back pair (same condition).');
  if (a.gptNets.length) console.log(`\n${gptTable(gpt())}`);
}

function printTable(head: string[], table: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const t of table) console.log(line(t));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
