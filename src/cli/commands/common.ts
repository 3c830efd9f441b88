/** Flags and helpers shared by commands: model source (zoo or checkpoint), engine choice, output. */
import { Option } from '@commander-js/extra-typings';
import { UsageError } from '../../errors.ts';
import { loadCheckpoint } from '../../io/checkpoint.ts';
import type { Graph, Weights } from '../../ir/types.ts';
import { initWeights } from '../../ir/weights.ts';
import { ZOO, zooModel } from '../../models/zoo.ts';
import { Rng } from '../../rng.ts';
import { ENGINE_NAMES } from '../../engines/registry.ts';

export const engineOption = () =>
  new Option('--engine <name>', 'engine: auto prefers the native libtorch engine, else TensorFlow.js').choices(ENGINE_NAMES).default('auto' as const);

export const modelOption = () => new Option('--model <name>', `zoo model: ${ZOO.map((z) => z.name).join(', ')}`);
export const widthOption = () => new Option('--width <r>', 'width multiplier (ResNetCifar: r, e.g. 0.125)').argParser(parseNumber('--width'));
export const checkpointOption = () => new Option('--checkpoint <dir>', 'load graph and weights from a checkpoint directory');
/** gpt's shape flags (defaults: GPT_DEFAULTS, the issue-9 model 4/4/128/block 64). */
export const layersOption = () => new Option('--layers <n>', 'gpt: transformer blocks (default 4)').argParser(parseInteger('--layers'));
export const headsOption = () => new Option('--heads <n>', 'gpt: attention heads (default 4)').argParser(parseInteger('--heads'));
export const dimOption = () => new Option('--dim <d>', 'gpt: model width, a multiple of --heads (default 128)').argParser(parseInteger('--dim'));
export const blockOption = () => new Option('--block <t>', 'gpt: block size, tokens per sequence (default 64)').argParser(parseInteger('--block'));
export const vocabOption = () => new Option('--vocab <v>', 'gpt: vocabulary size (default: from the data, else 65)').argParser(parseInteger('--vocab'));
export interface GptFlags { layers?: number; heads?: number; dim?: number; block?: number; vocab?: number }
export const seedOption = () => new Option('--seed <n>', 'random seed').argParser(parseInteger('--seed')).default(0);

export function parseNumber(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`${flag}: expected a number, got '${v}'`);
    return x;
  };
}
export function parseInteger(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!Number.isInteger(x)) throw new UsageError(`${flag}: expected an integer, got '${v}'`);
    return x;
  };
}

/**
 * The network a command works on: a checkpoint, or a zoo model with seeded weights. Zoo weights get
 * non-trivial batch-norm statistics so exactness checks cannot pass on identity batch norms.
 */
export function loadModel(o: { model?: string; width?: number; checkpoint?: string; seed?: number } & GptFlags): { graph: Graph; weights: Weights; source: string } {
  if (o.checkpoint && o.model) throw new UsageError('give either --model or --checkpoint, not both');
  if (o.checkpoint) {
    const c = loadCheckpoint(o.checkpoint);
    return { graph: c.graph, weights: c.weights, source: o.checkpoint };
  }
  if (!o.model) throw new UsageError(`give --model NAME (one of ${ZOO.map((z) => z.name).join(', ')}) or --checkpoint DIR`);
  const graph = zooModel(o.model, { width: o.width, layers: o.layers, heads: o.heads, dim: o.dim, block: o.block, vocab: o.vocab });
  const weights = initWeights(graph, new Rng(o.seed ?? 0), { randomBatchNorm: true });
  return { graph, weights, source: graph.name ?? o.model };
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export { formatTable } from '../../report/table.ts';
