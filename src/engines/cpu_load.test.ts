import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chooseThreads, othersBusyCores, parseProcStat, sampleCpu, ThreadAdvisor, type CpuSample } from './cpu_load.ts';

const STAT = `cpu  100 0 50 800 50 0 0 0 0 0
cpu0 50 0 25 400 25 0 0 0 0 0
cpu1 50 0 25 400 25 0 0 0 0 0
intr 1 2 3
`;

describe('cpu load', () => {
  it('parses /proc/stat: idle and iowait are idle, steal is busy', () => {
    assert.deepEqual(parseProcStat(STAT), { busy: 150, total: 1000, cpus: 2 });
    assert.deepEqual(parseProcStat('cpu  10 0 0 80 0 0 0 10\ncpu0 1\n'), { busy: 20, total: 100, cpus: 1 });
    assert.equal(parseProcStat('nothing here'), undefined);
  });

  it('counts what other processes used: all busy time minus this process\'s own', () => {
    const a: CpuSample = { at: 0, busy: 0, total: 0, cpus: 2, self: 0 };
    // 1 s, 2 CPUs: 150 of 200 ticks busy = 1.5 cores; we used 0.5 s of CPU -> others 1.0.
    assert.equal(othersBusyCores(a, { at: 1000, busy: 150, total: 200, cpus: 2, self: 500_000 }), 1);
    // Never negative (tick and µs clocks disagree a little).
    assert.equal(othersBusyCores(a, { at: 1000, busy: 100, total: 200, cpus: 2, self: 1_100_000 }), 0);
    assert.equal(othersBusyCores(a, a), 0);
  });

  it('chooses the free cores, rounded, at least one', () => {
    const cases: [number, number, number][] = [[2, 0, 2], [2, 0.3, 2], [2, 0.5, 1], [2, 1, 1], [2, 1.9, 1], [2, 5, 1], [8, 2.2, 6], [1, 0, 1]];
    for (const [cores, busy, want] of cases) assert.equal(chooseThreads(cores, busy), want, `${cores} cores, others ${busy}`);
  });

  it('ThreadAdvisor: waits for a first window, then keeps its choice until the next window', async () => {
    let t = Date.now(), busy = 0, total = 0;
    const samples: CpuSample[] = [];
    const sample = () => { const s = { at: t, busy, total, cpus: 2, self: 0 }; samples.push(s); return s; };
    const adv = new ThreadAdvisor(2, 1000, sample, () => t);
    // Another process keeps one of two cores busy.
    t += 1000; busy += 100; total += 200;
    assert.equal(await adv.threads(), 1);
    assert.equal(adv.othersBusy, 1);
    // Within the window nothing is re-measured, /proc/stat is not even read (recheck runs before
    // every engine call: a file read each time cost the MLP's inference passes several percent).
    const n = samples.length;
    t += 10;
    assert.equal(adv.recheck(), 1);
    assert.equal(samples.length, n);
    // It stops: both cores are free again after the next full window.
    t += 1000; total += 200;
    assert.equal(adv.recheck(), 2);
    assert.ok(samples.length > n);
  });

  it('without /proc/stat every core counts as free', async () => {
    const adv = new ThreadAdvisor(4, 10, () => undefined);
    assert.equal(await adv.threads(), 4);
    assert.equal(sampleCpu(() => { throw new Error('ENOENT'); }), undefined);
  });

  it('on Linux, sees a CPU-burning child process as another busy core', { skip: !existsSync('/proc/stat') && 'no /proc/stat' }, async () => {
    const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 5000; while (Date.now() < end);'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const a = sampleCpu()!;
      await new Promise((r) => setTimeout(r, 600));
      const b = sampleCpu()!;
      // The child alone is about one core (less on a crowded machine, whose other processes add).
      assert.ok(othersBusyCores(a, b) >= 0.6, `others used ${othersBusyCores(a, b).toFixed(2)} cores`);
    } finally {
      child.kill();
    }
  });
});
