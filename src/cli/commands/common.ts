/** Flags and helpers shared by commands: model source (zoo or checkpoint), engine choice, output. */
import { Option } from '@commander-js/extra-typings';
import { UsageError } from '../../errors.ts';
import { loadCheckpoint } from '../../io/checkpoint.ts';
import type { Graph, Weights } from '../../ir/types.ts';
import { initWeights } from '../../ir/weights.ts';
import { assertFits, estimateSize } from '../../ir/budget.ts';
import { ZOO, zooModel } from '../../models/zoo.ts';
import { Rng } from '../../rng.ts';
import type { Engine } from '../../engines/engine.ts';
import { ENGINE_NAMES, getEngine, type EngineOptions } from '../../engines/registry.ts';

export const engineOption = () =>
  new Option('--engine <name>', 'engine: auto prefers the native libtorch engine, else TensorFlow.js').choices(ENGINE_NAMES).default('auto' as const);

export const modelOption = () => new Option('--model <name>', `zoo model: ${ZOO.map((z) => z.name).join(', ')}`);
export const widthOption = () => new Option('--width <r>', 'width multiplier (ResNetCifar: r, e.g. 0.125)').argParser(parseNumber('--width', { above: 0 }));
export const checkpointOption = () => new Option('--checkpoint <dir>', 'load graph and weights from a checkpoint directory');
/** gpt's shape flags (defaults: GPT_DEFAULTS, the issue-9 model 4/4/128/block 64). */
export const layersOption = () => new Option('--layers <n>', 'gpt: transformer blocks (default 4)').argParser(parseInteger('--layers'));
export const headsOption = () => new Option('--heads <n>', 'gpt: attention heads (default 4)').argParser(parseInteger('--heads'));
export const dimOption = () => new Option('--dim <d>', 'gpt: model width, a multiple of --heads (default 128)').argParser(parseInteger('--dim'));
export const blockOption = () => new Option('--block <t>', 'gpt: block size, tokens per sequence (default 64)').argParser(parseInteger('--block'));
export const vocabOption = () => new Option('--vocab <v>', 'gpt: vocabulary size (default: from the data, else 65)').argParser(parseInteger('--vocab'));
export interface GptFlags { layers?: number; heads?: number; dim?: number; block?: number; vocab?: number }
export const seedOption = () => new Option('--seed <n>', 'random seed').argParser(parseInteger('--seed')).default(0);

/** A number flag; `above` (exclusive) or `min` (inclusive) bound it, and a bad value names the flag. */
export function parseNumber(flag: string, bound: { min?: number; above?: number; below?: number } = {}) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`${flag}: expected a number, got '${v}'`);
    if (bound.min !== undefined && x < bound.min) throw new UsageError(`${flag}: must be >= ${bound.min}, got ${v}`);
    if (bound.above !== undefined && !(x > bound.above)) throw new UsageError(`${flag}: must be > ${bound.above}, got ${v}`);
    if (bound.below !== undefined && !(x < bound.below)) throw new UsageError(`${flag}: must be < ${bound.below}, got ${v}`);
    return x;
  };
}
/** An integer flag, at least `min` when given. */
export function parseInteger(flag: string, min?: number) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isInteger(x)) throw new UsageError(`${flag}: expected an integer, got '${v}'`);
    if (min !== undefined && x < min) throw new UsageError(`${flag}: must be an integer >= ${min}, got ${v}`);
    return x;
  };
}

/**
 * The network a command works on: a checkpoint, or a zoo model with seeded weights. Zoo weights get
 * non-trivial batch-norm statistics so exactness checks cannot pass on identity batch norms.
 */
export function loadModel(o: { model?: string; width?: number; checkpoint?: string; seed?: number } & GptFlags, need: { batch?: number } = {}): { graph: Graph; weights: Weights; source: string } {
  if (o.checkpoint && o.model) throw new UsageError('give either --model or --checkpoint, not both');
  if (o.checkpoint) {
    const c = loadCheckpoint(o.checkpoint);
    return { graph: c.graph, weights: c.weights, source: o.checkpoint };
  }
  if (!o.model) throw new UsageError(`give --model NAME (one of ${ZOO.map((z) => z.name).join(', ')}) or --checkpoint DIR`);
  const graph = zooModel(o.model, { width: o.width, layers: o.layers, heads: o.heads, dim: o.dim, block: o.block, vocab: o.vocab });
  // Refused before the weights are allocated when they cannot fit.
  assertFits(`${o.model}${o.width !== undefined ? ` --width ${o.width}` : ''}`, [estimateSize(graph, need.batch ?? 1)]);
  const weights = initWeights(graph, new Rng(o.seed ?? 0), { randomBatchNorm: true });
  return { graph, weights, source: graph.name ?? o.model };
}

/** The graph alone (inspect): a zoo model's weights are not made, so any size can be inspected. */
export function loadGraph(o: { model?: string; width?: number; checkpoint?: string }): { graph: Graph; source: string } {
  if (o.checkpoint || !o.model) return loadModel(o);
  const graph = zooModel(o.model, { width: o.width });
  return { graph, source: graph.name ?? o.model };
}

/**
 * Machine-readable output, one convention for every command: `--json` prints exactly one JSON
 * document on stdout (pretty-printed), so `r2r CMD --json | jq .` always works; a command that
 * streams results as they come prints JSON Lines instead (one compact object per line, via
 * printJsonLine) and says so in its --json help. Human-readable notes go to stderr either way.
 */
export const jsonOption = (what = 'the result') => new Option('--json', `print ${what} as one JSON document on stdout`);
export const jsonLinesOption = (what = 'each result') => new Option('--json', `print ${what} as JSON Lines on stdout (one object per line, as it comes)`);

let jsonDocuments = 0;
let jsonLines = 0;

/** Prints the command's one JSON document. A second call (or mixing with JSON Lines) is a bug: it throws. */
export function printJson(value: unknown): void {
  if (jsonDocuments++ > 0 || jsonLines > 0) throw new Error('printJson: a command prints one JSON document; collect the values into one object or use printJsonLine');
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Prints one line of a JSON Lines stream. */
export function printJsonLine(value: unknown): void {
  if (jsonDocuments > 0) throw new Error('printJsonLine: this command already printed a JSON document');
  jsonLines++;
  process.stdout.write(JSON.stringify(value) + '\n');
}

/**
 * Gets the engine a command asked for and, when it asked for `auto`, says on stderr which one was
 * chosen and why, before any work starts (so a slow run is never a surprise).
 */
export async function openEngine(name: string, opts: EngineOptions = {}, o: { quiet?: boolean } = {}): Promise<Engine> {
  const engine = await getEngine(name, opts);
  if (name === 'auto' && !o.quiet) {
    const why = engine.name === 'torch' ? 'the native libtorch addon is built' : 'the native libtorch addon is not available (see `npm run build:native`)';
    process.stderr.write(`r2r: engine auto -> ${engine.name}: ${engine.description} (${why}; choose with --engine)\n`);
  }
  return engine;
}

export { formatTable } from '../../report/table.ts';
