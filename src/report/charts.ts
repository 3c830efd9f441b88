/**
 * Report charts as Vega-Lite specs, rendered to standalone SVG in Node (vega's headless
 * `renderer: 'none'` + `toSVG()`; no browser, no native canvas).
 *
 * One chart draws every run of a suite on shared axes (the paper's figures 5, 6 and 8): a line per
 * run, and at every transform a vertical rule from the validation accuracy just before it to the
 * one just after it, capped by a marker whose shape says the kind (widen, deepen, kernel), so a
 * drop at a transform shows as a visible bar. Transforms at the same x (students of one teacher)
 * are spread a little sideways so that none hides another; the tooltip keeps the true values.
 */
import type { TopLevelSpec } from 'vega-lite';

/** One point of a run's curve, already placed on the suite's shared axes. */
export interface CurvePoint {
  run: string;
  epoch: number;
  flops: number;
  valAcc: number;
  valLoss?: number;
  trainLoss?: number;
  trainAcc?: number;
  /** Drawing order within the run: a transform's "after" point follows the epoch it happened at. */
  seq: number;
}

/** A transform, placed on the suite's shared axes. */
export interface TransformMarker {
  run: string;
  epoch: number;
  flops: number;
  before: number;
  after: number;
  spec: string;
  method: string;
  /** The kind, one marker shape each: widen, deepen or kernel. */
  marker: string;
  /** Drawn x positions: `epoch` / `flops`, spread apart where several transforms share one x. */
  epochShown?: number;
  flopsShown?: number;
}

export type XAxis = 'epoch' | 'flops';
export type YField = 'valAcc' | 'trainLoss' | 'valLoss';

export interface ChartOptions {
  title: string;
  subtitle?: string;
  x: XAxis;
  y: YField;
  /** Run names in legend order; fixes each run's colour across charts. */
  runs: string[];
  /** The x axis's title when not the default (a text run's "epochs" are optimizer steps). */
  xTitle?: string;
  /** A horizontal reference line, e.g. the from-scratch run's final accuracy. */
  target?: { value: number; label: string };
  width?: number;
  height?: number;
}

export const MARKER_TITLE = 'Transform (before → after)';
/** One shape per transform kind, in legend order. */
export const MARKER_SHAPES: Record<string, string> = { widen: 'triangle-up', deepen: 'square', kernel: 'diamond' };

/**
 * Sets `epochShown` and `flopsShown`: markers that share an x are spread symmetrically around
 * it by `step` (a fraction of the axis' span), so overlapping students stay visible.
 */
export function dodgeMarkers(markers: TransformMarker[], points: CurvePoint[], step = 0.012): TransformMarker[] {
  const out = markers.map((m) => ({ ...m }));
  for (const axis of ['epoch', 'flops'] as const) {
    const xs = [...points.map((p) => p[axis]), ...markers.map((m) => m[axis])];
    const span = Math.max(...xs) - (axis === 'flops' ? 0 : Math.min(...xs)) || 1;
    const groups = new Map<number, TransformMarker[]>();
    for (const m of out) groups.set(m[axis], [...(groups.get(m[axis]) ?? []), m]);
    for (const [x, g] of groups) g.forEach((m, i) => { m[`${axis}Shown`] = x + (i - (g.length - 1) / 2) * step * span; });
  }
  return out;
}

const X_TITLE: Record<XAxis, string> = { epoch: 'Epoch', flops: 'Cumulative training FLOPs' };
const Y_TITLE: Record<YField, string> = { valAcc: 'Validation accuracy', trainLoss: 'Training loss', valLoss: 'Validation loss' };

/** The Vega-Lite spec of a chart; exported so tests and users can inspect or restyle it. */
export function chartSpec(points: CurvePoint[], markers: TransformMarker[], o: ChartOptions): TopLevelSpec {
  const x = {
    field: o.x, type: 'quantitative' as const, title: o.xTitle ?? X_TITLE[o.x],
    // FLOPs from zero, so the distances between runs read as cost; epochs from the first one,
    // inset so that a marker at the first epoch (FTT's transforms) is not cut by the axis.
    scale: o.x === 'flops' ? { zero: true } : { zero: false, padding: 14 },
    axis: o.x === 'flops' ? { format: '~s' } : { format: 'd', tickMinStep: 1 },
  };
  const isAcc = o.y === 'valAcc';
  const y = { field: o.y, type: 'quantitative' as const, title: Y_TITLE[o.y], scale: { zero: false, padding: 10 }, axis: isAcc ? { format: '.0%' } : {} };
  const xShown = { ...x, field: `${o.x}Shown` };
  const kinds = Object.keys(MARKER_SHAPES).filter((k) => markers.some((m) => m.marker === k));
  const otherKinds = [...new Set(markers.map((m) => m.marker).filter((k) => !(k in MARKER_SHAPES)))];
  const color = { field: 'run', type: 'nominal' as const, title: 'Run', scale: { domain: o.runs }, legend: { labelLimit: 280 } };
  const layers: unknown[] = [{
    name: 'curve',
    data: { values: points.filter((p) => Number.isFinite(p[o.y] as number)) },
    mark: { type: 'line', strokeWidth: 1.8, point: { size: 14, filled: true } },
    encoding: {
      x, y, color, order: { field: 'seq', type: 'quantitative' },
      tooltip: [{ field: 'run' }, { field: 'epoch', type: 'quantitative' }, { field: o.y, type: 'quantitative', format: isAcc ? '.2%' : '.4f' }, { field: 'flops', type: 'quantitative', format: '.3s', title: 'FLOPs' }],
    },
  }];
  if (isAcc && markers.length > 0) {
    const shown = dodgeMarkers(markers, points);
    layers.push({
      name: 'transformRule',
      data: { values: shown },
      mark: { type: 'rule', strokeWidth: 2.5 },
      encoding: { x: xShown, y: { field: 'before', type: 'quantitative' }, y2: { field: 'after' }, color },
    }, {
      name: 'transformMarker',
      data: { values: shown },
      mark: { type: 'point', filled: true, size: 110, opacity: 0.9, stroke: 'black', strokeWidth: 0.8 },
      encoding: {
        x: xShown, y: { field: 'after', type: 'quantitative' }, color,
        shape: {
          field: 'marker', type: 'nominal', title: MARKER_TITLE,
          scale: { domain: [...kinds, ...otherKinds], range: [...kinds.map((k) => MARKER_SHAPES[k]), ...otherKinds.map(() => 'cross')] },
          legend: { labelLimit: 320 },
        },
        tooltip: [{ field: 'run' }, { field: 'spec', title: 'transform' }, { field: o.x, type: 'quantitative', title: X_TITLE[o.x], format: o.x === 'flops' ? '.3s' : 'd' }, { field: 'before', format: '.2%', title: 'val. acc. before' }, { field: 'after', format: '.2%', title: 'val. acc. after' }],
      },
    });
  }
  if (o.target && Number.isFinite(o.target.value)) {
    const t = [{ value: o.target.value, label: o.target.label }];
    layers.push(
      { name: 'target', data: { values: t }, mark: { type: 'rule', strokeDash: [6, 4], color: '#555', strokeWidth: 1.2 }, encoding: { y: { field: 'value', type: 'quantitative' } } },
      { name: 'targetLabel', data: { values: t }, mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 4, dy: -2, color: '#333', fontSize: 11 }, encoding: { y: { field: 'value', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } } },
    );
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: o.title, subtitle: o.subtitle, anchor: 'start' },
    width: o.width ?? 640,
    height: o.height ?? 360,
    config: { font: 'Helvetica, Arial, sans-serif', legend: { orient: 'right', labelLimit: 320 }, view: { stroke: '#ccc' } },
    layer: layers,
  } as TopLevelSpec;
}

/**
 * Renders a Vega-Lite spec to a standalone SVG. `idPrefix` makes the SVG's internal ids (clip
 * paths, gradients) unique, so several charts can be inlined in one HTML page without clashing.
 */
export async function renderSvg(spec: TopLevelSpec, idPrefix = ''): Promise<string> {
  // Loaded on first use: vega's canvas probe (vega-canvas) has a top-level await, which would
  // keep CommonJS programs from require()-ing r2r at all.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return idPrefix ? prefixIds(svg, idPrefix) : svg;
  } finally {
    view.finalize();
  }
}

function prefixIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${prefix}${id}"`);
}
