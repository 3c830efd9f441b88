/**
 * Reading training runs for reports: a run directory holds `metrics.jsonl` (EpochRecord and
 * TransformRecord lines, see src/train/metrics.ts) and, usually, `run.json` (RunInfo). A suite
 * directory holds several run directories; runs are found by scanning for `metrics.jsonl`, so a
 * report never depends on a suite summary file.
 *
 * Text runs (src/train/text_trainer.ts) write `eval` records per evaluation instead of epochs; the
 * reader takes each as an epoch record whose epoch is the step (`unit: 'step'`), so the charts
 * and tables work on them unchanged.
 *
 * The reader is tolerant, because it must also read runs still in progress and runs that were
 * resumed: blank lines and a truncated last line are skipped, a resumed run's repeated epochs keep
 * their latest record, accuracies written as percentages are scaled to fractions, and anything
 * skipped is listed in `warnings` rather than lost silently.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { DataError } from '../errors.ts';
import type { EpochRecord, RunInfo, TransformRecord } from '../train/metrics.ts';

/** What a run is in its suite: teachers and from-scratch baselines are what students are compared with. */
export type RunRole = 'teacher' | 'scratch' | 'student' | 'run';

export interface RunData {
  /** Absolute path of the run directory. */
  dir: string;
  name: string;
  info?: RunInfo;
  /** Epoch records by increasing epoch, one per epoch. */
  epochs: EpochRecord[];
  /** Transform records by increasing epoch. */
  transforms: TransformRecord[];
  role: RunRole;
  /** Name of the teacher run this run started from, when its run.json names one. */
  teacher?: string;
  /** Problems met while reading (skipped lines, missing run.json, ...). */
  warnings: string[];
  /** 'step' for a text run: `epochs[i].epoch` is then the optimizer step of an evaluation. */
  unit: 'epoch' | 'step';
}

export interface SuiteData {
  dir: string;
  name: string;
  runs: RunData[];
  warnings: string[];
}

const METRICS = 'metrics.jsonl';
/** Scratch baselines are named like NCT-Scratch-Widen. */
const SCRATCH_NAME = /(^|[-_\s])scratch([-_\s]|$)/i;
const TEACHER_NAME = /teacher/i;
/** Directories that never hold runs; checkpoints can be many and large. */
const SKIP_DIRS = new Set(['node_modules', 'checkpoints', 'ckpt', '.git']);

/** Reads one run directory. Throws DataError when there is no readable metrics.jsonl. */
export function loadRun(dir: string): RunData {
  const abs = resolve(dir);
  const metricsPath = join(abs, METRICS);
  if (!existsSync(metricsPath)) throw new DataError(`${metricsPath}: no metrics.jsonl; is ${abs} a run directory (runs/<suite>/<name>/)?`);
  if (!statSync(metricsPath).isFile()) throw new DataError(`${metricsPath}: not a file (a directory?); the run directory ${abs} is damaged`);
  const warnings: string[] = [];
  let info: RunInfo | undefined;
  const infoPath = join(abs, 'run.json');
  if (existsSync(infoPath)) {
    try {
      info = JSON.parse(readFileSync(infoPath, 'utf8')) as RunInfo;
      if (typeof info !== 'object' || info === null) throw new Error('not an object');
    } catch (e) {
      warnings.push(`${infoPath}: unreadable (${(e as Error).message}); configuration not shown`);
      info = undefined;
    }
  } else {
    warnings.push(`${infoPath}: missing; configuration not shown`);
  }

  const byEpoch = new Map<number, EpochRecord>();
  const transforms = new Map<string, TransformRecord>();
  let unit: RunData['unit'] = 'epoch';
  const lines = readFileSync(metricsPath, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      warnings.push(`${metricsPath}:${i + 1}: ${last ? 'truncated last line' : 'not JSON'}, skipped`);
      return;
    }
    const r = (rec ?? {}) as Record<string, unknown>;
    if (r.type === 'epoch' && isNum(r.epoch) && isNum(r.valAcc)) {
      // A resumed run may repeat epochs after its last checkpoint: the later record wins.
      byEpoch.set(r.epoch, r as unknown as EpochRecord);
    } else if (r.type === 'eval' && isNum(r.step) && isNum(r.valLoss) && isNum(r.valAcc)) {
      unit = 'step';
      const num = (x: unknown) => (isNum(x) ? x : NaN);
      byEpoch.set(r.step, {
        type: 'epoch', epoch: r.step, step: r.step, lr: num(r.lr), trainLoss: num(r.trainLoss), trainAcc: NaN, valLoss: r.valLoss, valAcc: r.valAcc,
        flops: num(r.flops), macsPerExample: num(r.macsPerExample), params: num(r.params), arch: String(r.arch ?? ''), wallSeconds: num(r.wallSeconds),
      });
    } else if (r.type === 'transform' && isNum(r.epoch)) {
      transforms.set(`${r.epoch}|${String(r.spec ?? '')}|${String(r.transform ?? '')}`, r as unknown as TransformRecord);
    } else {
      warnings.push(`${metricsPath}:${i + 1}: not an epoch or transform record (type ${JSON.stringify(r.type)}), skipped`);
    }
  });
  const epochs = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
  const trs = [...transforms.values()].sort((a, b) => a.epoch - b.epoch);
  if (epochs.length === 0 && trs.length === 0) warnings.push(`${metricsPath}: no epoch records yet`);
  scalePercentages(epochs, trs);

  const name = typeof info?.name === 'string' && info.name ? info.name : basename(abs);
  const teacher = info ? teacherRef(info.config) : undefined;
  return { dir: abs, name, info, epochs, transforms: trs, role: roleOf(name, info, epochs, trs, teacher), teacher: teacher ? teacherName(teacher) : undefined, warnings, unit };
}

/**
 * Reads a suite directory (every run below it, at most three levels deep) or a single run
 * directory (a suite of one). Teachers that a student's run.json points to outside the suite
 * (a shared teacher cache) are loaded too, so students can be drawn after their teacher.
 */
export function loadSuite(dir: string): SuiteData {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new DataError(`${abs}: not a directory; give a run directory or a suite directory (runs/<suite>/)`);
  const dirs = findRunDirs(abs, 3);
  if (dirs.length === 0) throw new DataError(`${abs}: no runs found (no metrics.jsonl in it or in its subdirectories up to 3 levels); train a run first, e.g. \`r2r experiment --suite nct-widen\``);
  const runs = dirs.map(loadRun);
  const warnings: string[] = [];
  // Names key the charts' series: two runs with one name (copies, reruns) get their directory added.
  const seen = new Map<string, number>();
  for (const r of runs) seen.set(r.name, (seen.get(r.name) ?? 0) + 1);
  for (const r of runs) {
    if (seen.get(r.name)! < 2) continue;
    const rel = relative(abs, r.dir) || basename(r.dir);
    warnings.push(`two or more runs are named ${r.name}; shown as ${r.name} (${rel})`);
    r.name = `${r.name} (${rel})`;
  }
  const names = new Set(runs.map((r) => r.name));
  for (const r of [...runs]) {
    const ref = r.info ? teacherRef(r.info.config) : undefined;
    if (!ref || names.has(teacherName(ref))) continue;
    const tdir = findTeacherDir(ref, [r.dir, abs, process.cwd()]);
    if (!tdir) { warnings.push(`run ${r.name}: its teacher '${ref}' is not in ${abs}; drawn without its teacher`); continue; }
    if (resolve(tdir) === r.dir) continue; // a run is never its own teacher
    const t = loadRun(tdir);
    t.role = 'teacher';
    if (!names.has(t.name)) { runs.push(t); names.add(t.name); }
    r.teacher = t.name;
  }
  for (const r of runs) if (r.teacher === r.name) r.teacher = undefined;
  for (const r of runs) if (runs.some((s) => s.teacher === r.name)) r.role = 'teacher';
  const order: Record<RunRole, number> = { teacher: 0, scratch: 1, student: 2, run: 3 };
  runs.sort((a, b) => order[a.role] - order[b.role] || a.name.localeCompare(b.name));
  const info = runs.length === 1 && dirs[0] === abs ? runs[0].info : undefined;
  const name = info?.suite ?? (dirs[0] === abs ? runs[0].name : basename(abs));
  return { dir: abs, name, runs, warnings };
}

function findRunDirs(dir: string, depth: number): string[] {
  if (existsSync(join(dir, METRICS))) return [dir];
  if (depth === 0) return [];
  const out: string[] = [];
  let entries: string[];
  try { entries = readdirSync(dir).sort(); } catch { return out; }
  for (const e of entries) {
    if (SKIP_DIRS.has(e) || e.startsWith('.')) continue;
    const p = join(dir, e);
    try { if (!statSync(p).isDirectory()) continue; } catch { continue; }
    out.push(...findRunDirs(p, depth - 1));
  }
  return out;
}

function isNum(x: unknown): x is number { return typeof x === 'number' && Number.isFinite(x); }

/** Accuracies are fractions; a run that wrote percentages (any value above 1) is scaled. */
function scalePercentages(epochs: EpochRecord[], trs: TransformRecord[]): void {
  const accs = [...epochs.flatMap((e) => [e.valAcc, e.trainAcc]), ...trs.flatMap((t) => [t.valAccBefore, t.valAccAfter])];
  if (!accs.some((a) => isNum(a) && a > 1.0000001)) return;
  for (const e of epochs) { e.valAcc /= 100; if (isNum(e.trainAcc)) e.trainAcc /= 100; }
  for (const t of trs) { if (isNum(t.valAccBefore)) t.valAccBefore /= 100; if (isNum(t.valAccAfter)) t.valAccAfter /= 100; }
}

/**
 * The teacher a run's configuration names, under any key containing "teacher" (teacher,
 * teacherRun, teacherDir, teacherCheckpoint, or an object with a name/dir/path).
 */
export function teacherRef(config: unknown): string | undefined {
  if (!config || typeof config !== 'object') return undefined;
  for (const [k, v] of Object.entries(config as Record<string, unknown>)) {
    // teacherKey (the runner's cache hash) and the like name no run.
    if (!/teacher/i.test(k) || /key|hash|id$/i.test(k)) continue;
    if (typeof v === 'string' && v) return v;
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      for (const key of ['dir', 'runDir', 'path', 'name', 'run', 'checkpoint']) if (typeof o[key] === 'string' && o[key]) return o[key] as string;
    }
  }
  return undefined;
}

/** A teacher reference may be a name, a run directory or a checkpoint inside one. */
function teacherName(ref: string): string {
  if (!ref.includes('/') && !ref.includes('\\')) return ref;
  const dir = findRunDirUp(ref);
  // A teacher cache folder that is not there any more (results copied elsewhere) still names its
  // run: the runner calls it `<name>-<12 hex of its configuration>`.
  return dir ? readName(dir) : basename(ref).replace(/-[0-9a-f]{12}$/, '');
}

function findTeacherDir(ref: string, bases: string[]): string | undefined {
  for (const base of bases) {
    const p = isAbsolute(ref) ? ref : resolve(base, ref);
    const d = findRunDirUp(p);
    if (d) return d;
    if (isAbsolute(ref)) break;
  }
  return undefined;
}

/** The path itself or one of its three nearest ancestors that holds metrics.jsonl. */
function findRunDirUp(p: string): string | undefined {
  let d = resolve(p);
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(d, METRICS))) return d;
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return undefined;
}

function readName(dir: string): string {
  try {
    const info = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunInfo;
    if (typeof info.name === 'string' && info.name) return info.name;
  } catch { /* fall back to the directory name */ }
  return basename(dir);
}

function roleOf(name: string, info: RunInfo | undefined, epochs: EpochRecord[], trs: TransformRecord[], teacher: string | undefined): RunRole {
  const cfg = (info?.config ?? {}) as Record<string, unknown>;
  if (SCRATCH_NAME.test(name) || cfg.scratch === true || cfg.role === 'scratch') return 'scratch';
  if (TEACHER_NAME.test(name) || cfg.role === 'teacher') return 'teacher';
  if (teacher || cfg.role === 'student' || (epochs.length > 0 && epochs[0].epoch > 1) || trs.some((t) => t.epoch === 0)) return 'student';
  return 'run';
}
