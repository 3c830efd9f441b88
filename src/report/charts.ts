/**
 * Report charts as Vega-Lite specs, rendered to standalone SVG in Node (vega's headless
 * `renderer: 'none'` + `toSVG()`; no browser, no native canvas).
 *
 * One chart draws every run of a suite on shared axes (the paper's figures 5, 6 and 8): a line per
 * run, and at every transform a vertical rule from the validation accuracy just before it to the
 * one just after it, capped by a triangle marker, so a drop at a transform shows as a visible bar.
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
  marker: string;
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
  /** A horizontal reference line, e.g. the from-scratch run's final accuracy. */
  target?: { value: number; label: string };
  width?: number;
  height?: number;
}

export const MARKER_LABEL = 'transform (before → after)';

const X_TITLE: Record<XAxis, string> = { epoch: 'Epoch', flops: 'Cumulative training FLOPs' };
const Y_TITLE: Record<YField, string> = { valAcc: 'Validation accuracy', trainLoss: 'Training loss', valLoss: 'Validation loss' };

/** The Vega-Lite spec of a chart; exported so tests and users can inspect or restyle it. */
export function chartSpec(points: CurvePoint[], markers: TransformMarker[], o: ChartOptions): TopLevelSpec {
  const x = {
    field: o.x, type: 'quantitative' as const, title: X_TITLE[o.x],
    // FLOPs from zero, so the distances between runs read as cost; epochs from the first one.
    scale: { zero: o.x === 'flops' },
    axis: o.x === 'flops' ? { format: '~s' } : { format: 'd', tickMinStep: 1 },
  };
  const isAcc = o.y === 'valAcc';
  const y = { field: o.y, type: 'quantitative' as const, title: Y_TITLE[o.y], scale: { zero: false }, axis: isAcc ? { format: '.0%' } : {} };
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
    layers.push({
      name: 'transformRule',
      data: { values: markers },
      mark: { type: 'rule', strokeWidth: 2.5 },
      encoding: { x, y: { field: 'before', type: 'quantitative' }, y2: { field: 'after' }, color },
    }, {
      name: 'transformMarker',
      data: { values: markers },
      mark: { type: 'point', filled: true, size: 110, opacity: 1, stroke: 'black', strokeWidth: 0.8 },
      encoding: {
        x, y: { field: 'after', type: 'quantitative' }, color,
        shape: { field: 'marker', type: 'nominal', title: null, scale: { domain: [MARKER_LABEL], range: ['triangle-up'] }, legend: { labelLimit: 320 } },
        tooltip: [{ field: 'run' }, { field: 'spec', title: 'transform' }, { field: 'before', format: '.2%', title: 'val. acc. before' }, { field: 'after', format: '.2%', title: 'val. acc. after' }],
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
