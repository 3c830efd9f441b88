/**
 * Filter grids (the paper's figure 4): the kernels of one conv layer drawn as small images, one
 * per output filter, upscaled so a 7x7 filter is visible, as a PNG.
 *
 * Each filter is colour-normalised on its own: its taps' min..max (over all of kh x kw x cin)
 * map to 0..255, so an RGB first layer shows its colours; a layer with cin != 3 is drawn in grey
 * as the mean over input channels (cin == 1: the taps themselves). A filter whose taps are all
 * equal (e.g. zero) is mid-grey.
 *
 * Layout: one panel per checkpoint, stacked top to bottom and split by a dark blue bar. Each
 * panel starts with a label strip (which checkpoint, which layer, how many filters old and new),
 * drawn with a small pixel font. In a panel the old filters (index < `old`: the teacher's) fill
 * the first rows with grey borders; the new ones start on a fresh row, below an orange line,
 * with orange borders.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import pixelFonts from 'js-pixel-fonts';
import { checkOutputFile, writeFileAtomic } from '../io/atomic.ts';
import { PNG } from 'pngjs';
import { UsageError } from '../errors.ts';
import { isCheckpoint, loadCheckpoint } from '../io/checkpoint.ts';
import type { Graph, Tensor } from '../ir/types.ts';

export interface FilterPanel { label: string; node: string; kernel: Tensor }

export interface FilterGridOptions {
  /** Filters with index >= old are new (default: the smallest filter count over the panels when counts differ, else none). */
  old?: number;
  /** Pixels per tap (default: a 7x7 filter becomes 56 px). */
  scale?: number;
  /** Filters per row (default: up to 16). */
  columns?: number;
  /** A label strip above each panel (default true). */
  labels?: boolean;
}

export interface CellLayout { panel: number; index: number; x: number; y: number; size: [number, number]; isNew: boolean }

export interface FilterGrid {
  width: number;
  height: number;
  /** RGBA, row-major. */
  data: Uint8Array;
  cells: CellLayout[];
  old: number;
  scale: number;
  /** Each panel's label text, as drawn. */
  labels: string[];
}

export const COLORS = {
  background: [255, 255, 255],
  oldBorder: [150, 150, 150],
  newBorder: [242, 142, 43],
  newLine: [242, 142, 43],
  panelBar: [31, 78, 121],
  text: [34, 34, 34],
} as const;

const GAP = 6;
const BORDER = 2;
const MARGIN = 8;
const LINE = 3;
const BAR = 6;
/** Label text: the 7-pixel "Seven plus" font at twice its size. */
const FONT = pixelFonts.fonts.sevenPlus;
const TEXT_SCALE = 2;
const LABEL_H = FONT.lineHeight * TEXT_SCALE + 2 * TEXT_SCALE;

/** The first conv2d node of a graph (the one reading the image). */
export function firstConv(graph: Graph): string {
  const n = graph.nodes.find((x) => x.kind === 'conv2d');
  if (!n) throw new UsageError(`graph${graph.name ? ` '${graph.name}'` : ''} has no conv2d layer; filters can only be drawn for convolutions`);
  return n.name;
}

/**
 * A checkpoint directory, or a run directory standing for its last checkpoint (`final/`, else the
 * newest `checkpoints/epoch-*`).
 */
export function resolveCheckpoint(dir: string): string {
  if (isCheckpoint(dir)) return dir;
  if (isCheckpoint(join(dir, 'final'))) return join(dir, 'final');
  const root = join(dir, 'checkpoints');
  if (existsSync(root)) {
    const epochs = readdirSync(root).filter((e) => isCheckpoint(join(root, e))).sort();
    if (epochs.length) return join(root, epochs[epochs.length - 1]);
  }
  return dir;
}

/** A checkpoint's run and name, from its path: `NCT-R2WiderR/final`, `run/checkpoints/epoch-0004`. */
export function shortName(dir: string): string {
  const parts = resolve(dir).split(sep).filter(Boolean);
  return parts.slice(parts.at(-2) === 'checkpoints' ? -3 : -2).join('/');
}

/** Reads a conv layer's kernel [kh, kw, cin, cout] from a checkpoint (or run) directory. */
export function loadFilterPanel(path: string, layer?: string, label = path): FilterPanel {
  const dir = resolveCheckpoint(path);
  const { graph, weights } = loadCheckpoint(dir);
  const node = layer ?? firstConv(graph);
  const n = graph.nodes.find((x) => x.name === node);
  if (!n) throw new UsageError(`${dir}: no layer '${node}'; its conv layers are ${graph.nodes.filter((x) => x.kind === 'conv2d').map((x) => x.name).join(', ') || 'none'}`);
  if (n.kind !== 'conv2d') throw new UsageError(`${dir}: layer '${node}' is a ${n.kind}, not a conv2d; pick one of ${graph.nodes.filter((x) => x.kind === 'conv2d').map((x) => x.name).join(', ')}`);
  return { label, node, kernel: weights[`${node}/kernel`] };
}

/** Lays out and paints the filter grid of one or more panels. */
export function filterGrid(panels: FilterPanel[], opts: FilterGridOptions = {}): FilterGrid {
  if (panels.length === 0) throw new UsageError('filterGrid: no checkpoints given');
  const [kh, kw] = panels[0].kernel.shape;
  for (const p of panels) {
    if (p.kernel.shape.length !== 4) throw new UsageError(`${p.label}: layer '${p.node}' kernel has shape [${p.kernel.shape}], expected [kh, kw, cin, cout]`);
    if (p.kernel.shape[0] !== kh || p.kernel.shape[1] !== kw || p.kernel.shape[2] !== panels[0].kernel.shape[2]) {
      throw new UsageError(`${p.label}: layer '${p.node}' kernel [${p.kernel.shape}] differs from ${panels[0].label}'s [${panels[0].kernel.shape}] in size or input channels; compare the same layer`);
    }
  }
  const counts = panels.map((p) => p.kernel.shape[3]);
  const minCount = Math.min(...counts), maxCount = Math.max(...counts);
  const old = opts.old ?? (minCount < maxCount ? minCount : maxCount);
  if (!Number.isInteger(old) || old < 0) throw new UsageError(`old filter count must be a non-negative integer, got ${old}`);
  const scale = opts.scale ?? Math.max(1, Math.round(56 / Math.max(kh, kw)));
  if (!Number.isInteger(scale) || scale < 1 || scale > 64) throw new UsageError(`scale must be an integer 1..64, got ${scale}`);
  const columns = opts.columns ?? Math.min(16, Math.max(1, maxCount));
  const cellW = kw * scale + 2 * BORDER, cellH = kh * scale + 2 * BORDER;

  // Layout first, then paint.
  const cells: CellLayout[] = [];
  const lines: number[] = [];
  const bars: number[] = [];
  const labels: { y: number; text: string }[] = [];
  let y = MARGIN;
  panels.forEach((p, pi) => {
    if (pi > 0) { bars.push(y); y += BAR + GAP; }
    const count = p.kernel.shape[3];
    const groups = [Math.min(old, count), Math.max(0, count - old)];
    if (opts.labels ?? true) {
      labels.push({ y, text: `${panels.length > 1 ? `${pi + 1}: ` : ''}${p.label} - ${p.node}, ${count} filters${groups[1] ? ` (${groups[0]} old, ${groups[1]} new)` : ''}` });
      y += LABEL_H + GAP;
    }
    groups.forEach((n, gi) => {
      if (n === 0) return;
      if (gi === 1 && groups[0] > 0) { lines.push(y); y += LINE + GAP; }
      const start = gi === 0 ? 0 : groups[0];
      for (let i = 0; i < n; i++) {
        const col = i % columns, row = Math.floor(i / columns);
        cells.push({ panel: pi, index: start + i, x: MARGIN + col * (cellW + GAP), y: y + row * (cellH + GAP), size: [cellW, cellH], isNew: gi === 1 });
      }
      y += Math.ceil(n / columns) * (cellH + GAP);
    });
  });
  const width = 2 * MARGIN + columns * cellW + (columns - 1) * GAP;
  const height = y - GAP + MARGIN;
  const data = new Uint8Array(width * height * 4);
  fill(data, width, 0, 0, width, height, COLORS.background);
  for (const b of bars) fill(data, width, 0, b, width, BAR, COLORS.panelBar);
  for (const l of lines) fill(data, width, MARGIN, l, width - 2 * MARGIN, LINE, COLORS.newLine);
  for (const l of labels) drawText(data, width, MARGIN, l.y + TEXT_SCALE, l.text, width - 2 * MARGIN);
  for (const c of cells) {
    fill(data, width, c.x, c.y, c.size[0], c.size[1], c.isNew ? COLORS.newBorder : COLORS.oldBorder);
    paintFilter(data, width, c.x + BORDER, c.y + BORDER, panels[c.panel].kernel, c.index, scale);
  }
  return { width, height, data, cells, old, scale, labels: labels.map((l) => l.text) };
}

/** Text in the pixel font, left-aligned at (x, y), cut to `maxWidth` pixels with "..". */
function drawText(data: Uint8Array, width: number, x: number, y: number, text: string, maxWidth: number): void {
  // The font has printable ASCII; anything else would be logged as missing.
  const clean = [...text].map((ch) => (FONT.glyphs[ch] ? ch : '?')).join('');
  let shown = clean;
  let px = pixelFonts.renderPixels(shown, FONT);
  while (shown.length > 2 && (px[0]?.length ?? 0) * TEXT_SCALE > maxWidth) {
    shown = clean.slice(0, Math.floor(shown.length * 0.9) - 2) + '..';
    px = pixelFonts.renderPixels(shown, FONT);
  }
  px.forEach((row, r) => row?.forEach((on, c) => {
    if (on) fill(data, width, x + c * TEXT_SCALE, y + r * TEXT_SCALE, TEXT_SCALE, TEXT_SCALE, COLORS.text);
  }));
}

/** The filter's colours, normalised to 0..255 over its own taps: [kh][kw] of RGB. */
export function normalizedFilter(kernel: Tensor, f: number): { rgb: Uint8Array; kh: number; kw: number } {
  const [kh, kw, cin, cout] = kernel.shape;
  if (f < 0 || f >= cout) throw new UsageError(`filter ${f} out of range 0..${cout - 1}`);
  const v = new Float32Array(kh * kw * 3);
  for (let i = 0; i < kh * kw; i++) {
    if (cin === 3) for (let c = 0; c < 3; c++) v[i * 3 + c] = kernel.data[(i * cin + c) * cout + f];
    else {
      let s = 0;
      for (let c = 0; c < cin; c++) s += kernel.data[(i * cin + c) * cout + f];
      v[i * 3] = v[i * 3 + 1] = v[i * 3 + 2] = s / cin;
    }
  }
  let lo = Infinity, hi = -Infinity;
  for (const x of v) { if (x < lo) lo = x; if (x > hi) hi = x; }
  const rgb = new Uint8Array(v.length);
  const range = hi - lo;
  for (let i = 0; i < v.length; i++) rgb[i] = range > 0 && Number.isFinite(range) ? Math.round(((v[i] - lo) / range) * 255) : 128;
  return { rgb, kh, kw };
}

function paintFilter(data: Uint8Array, width: number, x0: number, y0: number, kernel: Tensor, f: number, scale: number): void {
  const { rgb, kh, kw } = normalizedFilter(kernel, f);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
    const k = (i * kw + j) * 3;
    fill(data, width, x0 + j * scale, y0 + i * scale, scale, scale, [rgb[k], rgb[k + 1], rgb[k + 2]]);
  }
}

function fill(data: Uint8Array, width: number, x: number, y: number, w: number, h: number, c: readonly number[]): void {
  for (let r = y; r < y + h; r++) for (let q = x; q < x + w; q++) {
    const o = (r * width + q) * 4;
    data[o] = c[0]; data[o + 1] = c[1]; data[o + 2] = c[2]; data[o + 3] = 255;
  }
}

export function encodePng(grid: FilterGrid): Buffer {
  const png = new PNG({ width: grid.width, height: grid.height });
  png.data = Buffer.from(grid.data.buffer, grid.data.byteOffset, grid.data.byteLength);
  return PNG.sync.write(png);
}

export interface WriteFiltersOptions extends FilterGridOptions {
  /** Layer to draw (default: the first conv). */
  layer?: string;
  /** A checkpoint whose filter count of the layer is the old count (e.g. the teacher). */
  teacher?: string;
}

/** Draws the checkpoints' filters (one panel each, in order) and writes the PNG to `out`. */
export function writeFilters(checkpoints: string[], out: string, opts: WriteFiltersOptions = {}): FilterGrid & { checkpoints: string[] } {
  checkOutputFile(out, 'filters PNG');
  const resolved = checkpoints.map(resolveCheckpoint);
  const panels = resolved.map((c) => loadFilterPanel(c, opts.layer, shortName(c)));
  let old = opts.old;
  if (old === undefined && opts.teacher) old = loadFilterPanel(opts.teacher, opts.layer).kernel.shape[3];
  const grid = filterGrid(panels, { ...opts, old });
  writeFileAtomic(out, encodePng(grid));
  return { ...grid, checkpoints: resolved };
}
