/**
 * Headless Chromium for what Node cannot do alone: a PNG of an SVG chart (vega's own PNG path
 * needs the native `canvas` package). Found at $R2R_CHROMIUM, $CHROME_PATH or the usual Debian
 * and Chrome locations; started with the flags that keep it offline and quiet.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../errors.ts';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--hide-scrollbars', '--mute-audio'];

/** Path of a Chromium binary, or undefined when none is installed. */
export function findChromium(): string | undefined {
  for (const p of [process.env.R2R_CHROMIUM, process.env.CHROME_PATH, ...CANDIDATES]) if (p && existsSync(p)) return p;
  return undefined;
}

/** Size of an SVG from its root width/height attributes. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  const w = Number(/\bwidth="([\d.]+)"/.exec(root)?.[1]), h = Number(/\bheight="([\d.]+)"/.exec(root)?.[1]);
  if (!(w > 0 && h > 0)) throw new UsageError('svgToPng: the SVG has no numeric width/height on its root element');
  return { width: Math.ceil(w), height: Math.ceil(h) };
}

/** Screenshots an SVG file at its own size (times `scale` for sharpness) into a PNG file. */
export function svgToPng(svgPath: string, pngPath: string, opts: { scale?: number; timeoutMs?: number } = {}): void {
  const chromium = findChromium();
  if (!chromium) throw new UsageError('a PNG of a chart needs Chromium (headless), which was not found; install it (Debian: `apt-get install chromium`) or set R2R_CHROMIUM to its path; the SVG files need nothing');
  const svg = readFileSync(svgPath, 'utf8');
  const { width, height } = svgSize(svg);
  rmSync(pngPath, { force: true });
  const work = mkdtempSync(join(tmpdir(), 'r2r-png-'));
  try {
    const page = join(work, 'chart.html');
    writeFileSync(page, `<!DOCTYPE html><html><head><meta charset="utf-8"><style>html,body{margin:0;padding:0;background:#fff;overflow:hidden}svg{display:block}</style></head><body>${svg.replace(/^<\?xml[^>]*>\s*/, '')}</body></html>`);
    const r = spawnSync(chromium, [
      ...CHROMIUM_FLAGS, `--user-data-dir=${join(work, 'profile')}`, `--window-size=${width},${height}`,
      `--force-device-scale-factor=${opts.scale ?? 2}`, '--default-background-color=ffffffff', `--screenshot=${resolve(pngPath)}`, pathToFileURL(page).href,
    ], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
    if (r.status !== 0 || !existsSync(pngPath)) {
      throw new UsageError(`chromium (${chromium}) failed to screenshot ${svgPath}: ${r.error?.message ?? `exit ${r.status}`}; ${(r.stderr ?? '').split('\n').filter((l) => !/dbus|Fontconfig/i.test(l)).slice(-3).join(' ')}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
