/**
 * Schedules as written on the command line and in experiment definitions:
 * - transforms `widen@25:r2r:1.5`, `deepen@25:r2r`, `deepen@0:r2r:2` (2 blocks per stage),
 *   `widen@20:r2r:1.5:init=he`, `widen@0:netmorph:+8:at=conv1:zero=consumers`: `<kind>@<epoch>:<method>[:<amount>][:key=value...]`;
 *   for transformers (text runs count steps): `heads@500:r2r:+2`, `mlp@500:r2r:2`, `width@1500:net2net:2`,
 *   `deepen@1000:r2r:+1` (blocks appended), `deepen@1000:netmorph:+1:position=0`;
 * - learning-rate drops `/5@25` (divide by 5 from epoch 26 on, i.e. after 25 epochs).
 * `@E` means "after E epochs of training" (0 = before any training).
 */
import { UsageError } from '../errors.ts';
import type { TransformSpec } from '../transforms/index.ts';
import type { InitMethod, InitOptions } from '../transforms/init.ts';

export interface ScheduledTransform {
  /** When it applies: epochs completed (image runs), or optimizer steps taken (text runs, `--steps`). */
  epoch: number;
  /** As written, e.g. 'widen@25:r2r:1.5'. */
  spec: string;
  transform: TransformSpec;
}

export interface LrDrop { epoch: number; factor: number }

const KINDS = ['widen', 'deepen', 'mlp', 'heads', 'width'] as const;
type Kind = (typeof KINDS)[number];
const WIDEN_METHODS = ['r2r', 'net2net', 'netmorph', 'random'] as const;
/** netmorph deepens transformers only (zero output projections); applyTransform says so for a CNN. */
const DEEPEN_METHODS = ['r2r', 'net2net', 'random', 'netmorph'] as const;
const INITS: readonly InitMethod[] = ['match-std', 'he', 'copy'];
/** Spellings from the paper's run names. */
const METHOD_ALIASES: Record<string, string> = { randpad: 'random', randompad: 'random', r2widerr: 'r2r', r2deeperr: 'r2r', net2widernet: 'net2net', net2deepernet: 'net2net' };
/** Options each kind accepts after the amount. */
const KNOWN: Record<Kind, readonly string[]> = {
  widen: ['init', 'scale', 'noise', 'seed', 'at', 'zero'],
  mlp: ['init', 'scale', 'noise', 'seed', 'at', 'zero'],
  heads: ['init', 'scale', 'noise', 'seed', 'at', 'zero'],
  width: ['init', 'scale', 'seed', 'at'],
  deepen: ['init', 'scale', 'noise', 'seed', 'after', 'position'],
};

/** The schedule syntax, for --help texts and error messages. */
export const TRANSFORM_SPEC_HELP = '<kind>@<when>:<method>[:<amount>][:key=value...], kind widen|deepen (CNN stages or transformer blocks)|mlp|heads|width; e.g. widen@25:r2r:1.5, deepen@0:r2r:2, heads@500:r2r:+2, mlp@500:r2r:2, width@1500:net2net:2, deepen@1000:r2r:+1:position=0';

function bad(spec: string, why: string): UsageError {
  return new UsageError(`transform '${spec}': ${why}; write ${TRANSFORM_SPEC_HELP}`);
}

function num(spec: string, what: string, v: string, min?: number): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw bad(spec, `${what} must be a number, got '${v}'`);
  if (min !== undefined && x < min) throw bad(spec, `${what} must be >= ${min}, got '${v}'`);
  return x;
}

/** `+E` (add E) or a factor > 1, for the widening kinds. */
function amountOf(spec: string, amount: string, unit: string): { add: number } | { factor: number } {
  if (amount.startsWith('+')) {
    const add = num(spec, `added ${unit}`, amount.slice(1));
    if (!Number.isInteger(add) || add <= 0) throw bad(spec, `added ${unit} must be a positive integer, got '${amount}'`);
    return { add };
  }
  const f = num(spec, 'widening factor', amount);
  if (f <= 1) throw bad(spec, `widening factor must be > 1, got ${f}`);
  return { factor: f };
}

/**
 * `<kind>@<when>:<method>[:<amount>][:key=value...]`. Amounts: widen/mlp/heads/width take a factor
 * (default 1.5 for widen, 2 for the others) or `+E`; deepen takes a count (`2` or `+2`: blocks per
 * stage on a CNN, blocks inserted on a transformer).
 */
export function parseTransformSpec(spec: string): ScheduledTransform {
  const m = /^(widen|deepen|mlp|heads|width)@(\d+)(?::(.*))?$/.exec(spec.trim());
  if (!m) throw bad(spec, 'cannot parse');
  const kind = m[1] as Kind;
  const epoch = Number(m[2]);
  const parts = (m[3] ?? '').split(':').filter((p) => p !== '');
  const rawMethod = (parts.shift() ?? 'r2r').toLowerCase();
  const method = METHOD_ALIASES[rawMethod] ?? rawMethod;
  const methods: readonly string[] = kind === 'deepen' ? DEEPEN_METHODS : WIDEN_METHODS;
  if (!methods.includes(method)) throw bad(spec, `unknown ${kind} method '${rawMethod}' (choose ${methods.join(', ')})`);
  let amount: string | undefined;
  if (parts.length && !parts[0].includes('=')) amount = parts.shift();
  const kv: Record<string, string> = Object.create(null); // keys are user text ('__proto__=1' is an unknown option)
  for (const p of parts) {
    const i = p.indexOf('=');
    if (i <= 0) throw bad(spec, `expected key=value, got '${p}'`);
    kv[p.slice(0, i)] = p.slice(i + 1);
  }
  for (const k of Object.keys(kv)) if (!KNOWN[kind].includes(k)) throw bad(spec, `unknown option '${k}' for ${kind} (known: ${KNOWN[kind].join(', ')})`);
  const init: InitOptions = {};
  if (kv.init !== undefined) {
    if (!INITS.includes(kv.init as InitMethod)) throw bad(spec, `init must be one of ${INITS.join(', ')}, got '${kv.init}'`);
    init.method = kv.init as InitMethod;
  }
  if (kv.scale !== undefined) init.scale = num(spec, 'scale', kv.scale, 0);
  if (kv.noise !== undefined) init.noise = num(spec, 'noise', kv.noise, 0);
  const seed = kv.seed !== undefined ? num(spec, 'seed', kv.seed) : undefined;
  if (seed !== undefined && !Number.isInteger(seed)) throw bad(spec, `seed must be an integer, got '${kv.seed}'`);
  if (kv.zero !== undefined && (method !== 'netmorph' || (kv.zero !== 'producers' && kv.zero !== 'consumers'))) {
    // NetMorph: which side of the new channels is zero (producers' filters or consumers' slices).
    throw bad(spec, `zero=producers|consumers applies to netmorph only, got '${kv.zero}' for ${method}`);
  }
  const common = {
    ...(Object.keys(init).length ? { init } : {}),
    ...(seed !== undefined ? { seed } : {}),
  };

  let transform: TransformSpec;
  if (kind === 'deepen') {
    const t: TransformSpec & { transform: 'deepen' } = { transform: 'deepen', method: method as (typeof DEEPEN_METHODS)[number] };
    if (amount !== undefined) {
      const n = num(spec, 'blocks', amount.startsWith('+') ? amount.slice(1) : amount);
      if (!Number.isInteger(n) || n < 1) throw bad(spec, `blocks (per stage) must be a positive integer, got '${amount}'`);
      t.perStage = n;
    }
    if (kv.after !== undefined) t.after = kv.after;
    if (kv.position !== undefined) {
      const p = num(spec, 'position', kv.position);
      if (!Number.isInteger(p) || p < 0) throw bad(spec, `position must be a block index >= 0, got '${kv.position}'`);
      t.position = p;
    }
    transform = { ...t, ...common };
  } else {
    const size = amount !== undefined ? amountOf(spec, amount, kind === 'heads' ? 'heads' : 'channels') : { factor: kind === 'widen' ? 1.5 : 2 };
    const zero = kv.zero !== undefined ? { netmorphZeroSide: kv.zero as 'producers' | 'consumers' } : {};
    const at = kv.at !== undefined ? { at: kv.at } : {};
    const m = method as (typeof WIDEN_METHODS)[number];
    transform = kind === 'width'
      ? { transform: 'width', method: m, ...size, ...at, ...common }
      : { transform: kind, method: m, ...size, ...at, ...zero, ...common };
  }
  return { epoch, spec: spec.trim(), transform };
}

/** `/5@25`: divide the learning rate by 5 after 25 epochs. */
export function parseLrDrop(spec: string): LrDrop {
  const m = /^\/([0-9.eE+-]+)@(\d+)$/.exec(spec.trim());
  const factor = m ? Number(m[1]) : NaN;
  if (!m || !Number.isFinite(factor) || factor <= 0) throw new UsageError(`learning-rate drop '${spec}': write /<factor>@<epoch>, e.g. /5@25 (divide by 5 after 25 epochs)`);
  return { epoch: Number(m[2]), factor };
}

/** The learning rate while training epoch index `epoch` (0-based: drops at @E apply from index E). */
export function lrAt(baseLr: number, drops: readonly LrDrop[], epoch: number): number {
  let lr = baseLr;
  for (const d of drops) if (epoch >= d.epoch) lr /= d.factor;
  return lr;
}
