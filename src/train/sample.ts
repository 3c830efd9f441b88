/**
 * Text generation from a trained token model: the context is the last `block` tokens (the
 * position table's length), the next token is drawn from softmax(logits / temperature) at the
 * context's last position (temperature 0: the argmax). A context shorter than the block is padded
 * at the end; causal attention keeps padding from reaching the positions read.
 */
import { encodeText, decodeTokens } from '../data/text.ts';
import type { Engine } from '../engines/engine.ts';
import { UsageError } from '../errors.ts';
import { analyzeGraph } from '../ir/graph.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { Rng } from '../rng.ts';

export interface SampleOptions {
  prompt: string;
  /** New tokens to generate. */
  tokens: number;
  /** > 0 divides the logits; 0 picks the most likely token. */
  temperature: number;
  seed: number;
}

export async function sampleText(engine: Engine, graph: Graph, weights: Weights, vocab: readonly string[], o: SampleOptions): Promise<{ text: string; generated: string }> {
  const info = analyzeGraph(graph);
  if (!info.tokens) throw new UsageError(`sample: the model '${graph.name ?? 'graph'}' is not a token model (its input is not tokenInput)`);
  if ([...info.nodes.values()].some((n) => n.node.kind === 'attention' && !n.node.causal)) {
    throw new UsageError('sample: the model has non-causal attention, so later tokens would leak into the prediction; sampling needs causal attention');
  }
  if (!Number.isInteger(o.tokens) || o.tokens < 0) throw new UsageError(`sample: --tokens must be a non-negative integer, got ${o.tokens}`);
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new UsageError(`sample: --temperature must be a finite number >= 0, got ${o.temperature}`);
  if (o.prompt.length === 0) throw new UsageError('sample: the prompt is empty; give at least one character (e.g. --prompt "\\n")');
  const { length: T, vocab: V } = info.tokens;
  const ids = Array.from(encodeText(vocab, o.prompt, 'prompt'));
  const rng = new Rng(o.seed);
  const model = await engine.build(graph, weights, { seed: o.seed });
  try {
    const out: number[] = [];
    for (let i = 0; i < o.tokens; i++) {
      const ctx = ids.slice(-T);
      const tokens = new Int32Array(T);
      tokens.set(ctx);
      const logits = await model.forward({ x: new Float32Array(0), n: 1, tokens }, { training: false });
      const row = logits.subarray((ctx.length - 1) * V, ctx.length * V);
      const next = o.temperature === 0 ? argmax(row) : draw(row, o.temperature, rng);
      ids.push(next);
      out.push(next);
    }
    const generated = decodeTokens(vocab, out);
    return { text: o.prompt + generated, generated };
  } finally {
    model.dispose();
  }
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

function draw(row: Float32Array, temperature: number, rng: Rng): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v / temperature);
  const p = Float64Array.from(row, (v) => Math.exp(v / temperature - max));
  let sum = 0;
  for (const v of p) sum += v;
  let u = rng.next() * sum;
  for (let j = 0; j < p.length; j++) { u -= p[j]; if (u < 0) return j; }
  return p.length - 1;
}
