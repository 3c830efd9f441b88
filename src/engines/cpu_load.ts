/**
 * How many intra-op threads to run on a machine that other processes may be using.
 *
 * Two OpenMP threads on 2 cores that another busy process shares lose badly: each parallel
 * region waits for the thread that was descheduled (measured on this project's 2-core machine:
 * the README's main job took 14 min instead of about 1 min, and `--threads 1` trained 3x faster
 * than 2). With static work splitting, t threads on a core shared with a busy process finish a
 * region when the slowest one does, so the best count is about the number of *free* cores.
 *
 * We measure it from /proc/stat (all CPUs' busy time) minus this process's own CPU time
 * (`process.cpuUsage()`, every thread of ours included, spinning OpenMP workers too): what is
 * left is what other processes used. Measured over the last interval (at least `minWindowMs`),
 * so a running engine can re-check between epochs without sleeping. Linux only; elsewhere (no
 * /proc/stat) every core counts as free.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface CpuSample {
  /** Wall clock, ms. */
  at: number;
  /** All CPUs' ticks: busy (everything but idle and iowait) and total. */
  busy: number;
  total: number;
  /** CPUs in /proc/stat. */
  cpus: number;
  /** This process's user + system CPU time, µs. */
  self: number;
}

/** Parses the aggregate `cpu` line of /proc/stat and counts the `cpuN` lines. */
export function parseProcStat(text: string): { busy: number; total: number; cpus: number } | undefined {
  const lines = text.split('\n');
  const agg = lines.find((l) => l.startsWith('cpu '));
  if (!agg) return undefined;
  const v = agg.trim().split(/\s+/).slice(1).map(Number);
  if (v.length < 4 || v.some((x) => !Number.isFinite(x))) return undefined;
  // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + (v[4] ?? 0);
  return { busy: total - idle, total, cpus: lines.filter((l) => /^cpu\d+ /.test(l)).length };
}

export function sampleCpu(readStat: () => string = () => readFileSync('/proc/stat', 'utf8')): CpuSample | undefined {
  let s;
  try { s = parseProcStat(readStat()); } catch { return undefined; }
  if (!s) return undefined;
  const u = process.cpuUsage();
  return { ...s, at: Date.now(), self: u.user + u.system };
}

/** Cores' worth of CPU that other processes used between two samples (steal time included). */
export function othersBusyCores(a: CpuSample, b: CpuSample): number {
  const dTotal = b.total - a.total, dWall = b.at - a.at;
  if (dTotal <= 0 || dWall <= 0) return 0;
  const allBusy = ((b.busy - a.busy) / dTotal) * b.cpus;
  const self = (b.self - a.self) / 1000 / dWall;
  return Math.max(0, allBusy - self);
}

/**
 * Threads for `cores` usable cores when others keep `othersBusy` cores' worth busy: the free
 * cores, rounded (a core half used by others is a wash either way), at least 1.
 */
export function chooseThreads(cores: number, othersBusy: number): number {
  return Math.max(1, Math.min(cores, Math.round(cores - othersBusy - 1e-9)));
}

/**
 * Picks thread counts over time from the CPU use since the last decision. `threads()` waits for
 * a first window of `minWindowMs`; `recheck()` never waits and keeps the last choice until a
 * window of `minWindowMs` has passed.
 */
export class ThreadAdvisor {
  private last?: CpuSample;
  private choice: number;
  /** Cores other processes used in the last window (for messages). */
  othersBusy = 0;

  constructor(readonly cores = availableParallelism(), readonly minWindowMs = 250, private readonly sample: () => CpuSample | undefined = sampleCpu,
              private readonly clock: () => number = Date.now) {
    this.choice = cores;
    this.last = this.sample();
  }

  /** The thread count now, measured over at least `minWindowMs` (sleeps for the rest of a first window). */
  async threads(): Promise<number> {
    if (!this.last) return this.choice;
    const wait = this.last.at + this.minWindowMs - this.clock();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    return this.recheck();
  }

  /** The thread count from the CPU use since the last decision; the previous one while that window is short. */
  recheck(): number {
    // Called before every engine call: the clock first, /proc/stat (a file read) only once a window has passed.
    if (!this.last || this.clock() - this.last.at < this.minWindowMs) return this.choice;
    const now = this.sample();
    if (!now) return this.choice;
    this.othersBusy = othersBusyCores(this.last, now);
    this.choice = chooseThreads(Math.min(this.cores, now.cpus || this.cores), this.othersBusy);
    this.last = now;
    return this.choice;
  }
}
