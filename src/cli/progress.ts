/**
 * Progress for long work: a bar on an interactive terminal (stderr), plain periodic lines
 * otherwise, so CI logs stay readable. Silent with `quiet`.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, info?: string): void;
  stop(): void;
}

export function createProgress(label: string, total: number, opts: { quiet?: boolean; intervalMs?: number } = {}): Progress {
  if (opts.quiet) return { update() {}, stop() {} };
  if (process.stderr.isTTY && (process.stderr.columns ?? 0) > 20) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% {value}/{total} {info} eta {eta_formatted}`, hideCursor: true, stream: process.stderr, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { info: '' });
    return { update: (d, info = '') => bar.update(d, { info }), stop: () => bar.stop() };
  }
  const every = opts.intervalMs ?? 10_000;
  const start = Date.now();
  let last = start;
  return {
    update(done, info = '') {
      const now = Date.now();
      if (now - last >= every || done === total) {
        last = now;
        process.stderr.write(`${label}: ${done}/${total}${info ? ` ${info}` : ''}${done < total ? `, eta ${eta(now - start, done, total)}` : ''}\n`);
      }
    },
    stop() {},
  };
}

/** Remaining time at the rate so far, e.g. "42 s" or "3.5 min". */
export function eta(elapsedMs: number, done: number, total: number): string {
  if (done <= 0) return '?';
  const s = ((elapsedMs / done) * (total - done)) / 1000;
  return s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;
}
