/**
 * Size guard: the memory a network needs, estimated from its graph alone (nothing allocated),
 * against a limit, so a request that cannot fit (`--width 1e5`, `--factor 1000000`, an input of
 * [100000, 100000, 3]) is refused with a message before any tensor is allocated.
 *
 * The estimate is deliberately simple and on the low side (so it never refuses what fits):
 * 4 bytes per float, each parameter held PARAM_COPIES times (the JS weights, the engine's copy,
 * its gradient and Adam's two moments) and each activation value ACTIVATION_COPIES times per
 * example of the batch (the forward value kept for backward and its gradient).
 */
import { totalmem } from 'node:os';
import { TooLargeError, UsageError } from '../errors.ts';
import { analyzeGraph, paramSpecs } from './graph.ts';
import { sizeOf } from './shapes.ts';
import type { Graph } from './types.ts';

export const PARAM_COPIES = 5;
export const ACTIVATION_COPIES = 2;
/** Default limit: this fraction of the machine's memory. */
export const DEFAULT_MEMORY_FRACTION = 0.5;

export interface SizeEstimate {
  /** Every stored value: trainable parameters and batch-norm statistics. */
  params: number;
  /** Values of all node outputs for one example. */
  activationsPerExample: number;
  batch: number;
  bytes: number;
}

export function estimateSize(graph: Graph, batch: number): SizeEstimate {
  const info = analyzeGraph(graph);
  let params = 0, acts = 0;
  for (const spec of paramSpecs(graph, info).values()) params += sizeOf(spec.shape);
  for (const ni of info.nodes.values()) acts += sizeOf(ni.outputShape);
  return { params, activationsPerExample: acts, batch, bytes: 4 * (params * PARAM_COPIES + acts * batch * ACTIVATION_COPIES) };
}

/** `R2R_MEMORY_LIMIT` (bytes, or with a K/M/G/T suffix, powers of 1024), else half of this machine's memory. */
export interface MemoryLimit { bytes: number; /** Where the limit comes from, for messages. */ source: string }

export function memoryLimit(env: NodeJS.ProcessEnv = process.env): MemoryLimit {
  const v = env.R2R_MEMORY_LIMIT?.trim();
  if (!v) return { bytes: Math.floor(totalmem() * DEFAULT_MEMORY_FRACTION), source: `half of this machine's ${formatBytes(totalmem())}; set R2R_MEMORY_LIMIT (e.g. 8G) to change it` };
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(v);
  if (!m) throw new UsageError(`R2R_MEMORY_LIMIT: expected bytes or a size like 512M or 8G, got '${v}'`);
  const exp = m[2] ? 'KMGT'.indexOf(m[2].toUpperCase()) + 1 : 0;
  return { bytes: Number(m[1]) * 1024 ** exp, source: `R2R_MEMORY_LIMIT=${v}` };
}

/**
 * Throws TooLargeError when the networks together (e.g. teacher and student) would need more
 * than the limit. `what` names the request in the message.
 */
export function assertFits(what: string, parts: SizeEstimate[], limit: MemoryLimit = memoryLimit()): void {
  const bytes = parts.reduce((a, p) => a + p.bytes, 0);
  if (bytes <= limit.bytes && Number.isFinite(bytes)) return;
  const detail = parts.map((p) => `${p.params.toExponential(2)} parameters and ${p.activationsPerExample.toExponential(2)} activation values per example x batch ${p.batch}`).join(' + ');
  throw new TooLargeError(`${what} needs about ${formatBytes(bytes)} (${detail}), more than the limit of ${formatBytes(limit.bytes)} (${limit.source}); use a smaller size or batch`);
}

export function formatBytes(b: number): string {
  if (!Number.isFinite(b)) return `${b} bytes`;
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return i === units.length - 1 && b >= 1024 ? `${b.toExponential(2)} ${units[i]}` : `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}
