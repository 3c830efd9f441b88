/**
 * A GPT-2-style decoder (pre-LN): token and learned position embeddings; per layer
 * LN -> causal multi-head attention -> add, LN -> dense 4D -> GELU -> dense D -> add; final LN;
 * an untied LM head with bias. No dropout. Node names follow docs/design/transformer-ir.md.
 *
 * Parameters: V*D + T*D + L*(12 D^2 + 13 D) + 2 D + D*V + V (4/4/128/64/65: 818,241).
 */
import { UsageError } from '../errors.ts';
import { GraphBuilder } from '../ir/builder.ts';
import type { Graph } from '../ir/types.ts';

export interface GptOptions {
  layers?: number;
  heads?: number;
  /** Model width D (a multiple of heads; head size D / heads). */
  dim?: number;
  /** Block size T (tokens per example, and the position table's length). */
  block?: number;
  vocab?: number;
}

/** The defaults of `r2r train --model gpt`: 4 layers, 4 heads, width 128, block 64, 65 characters. */
export const GPT_DEFAULTS = { layers: 4, heads: 4, dim: 128, block: 64, vocab: 65 } as const;

export function gpt(opts: GptOptions = {}): Graph {
  // An option given as undefined (a flag left out) takes the default.
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const { layers, heads, dim, block, vocab } = { ...GPT_DEFAULTS, ...given } as Required<GptOptions>;
  for (const [k, v] of Object.entries({ layers, heads, dim, block, vocab })) {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`gpt: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (dim % heads !== 0) throw new UsageError(`gpt: dim ${dim} is not a multiple of heads ${heads}; the head size is dim / heads`);
  const b = new GraphBuilder(`gpt(${layers}x${heads}x${dim},T=${block},V=${vocab})`);
  let x = b.tokenInput(block, vocab, 'tokens');
  x = b.embedding(x, vocab, dim, 'wte');
  x = b.positionEmbedding(x, block, 'wpe');
  for (let i = 0; i < layers; i++) {
    const a = b.attention(b.layerNorm(x, { name: `h${i}_ln1` }), heads, dim / heads, { causal: true, useBias: true, name: `h${i}_attn` });
    x = b.add([x, a], `h${i}_add1`);
    let m = b.dense(b.layerNorm(x, { name: `h${i}_ln2` }), 4 * dim, { name: `h${i}_fc` });
    m = b.activation(m, 'gelu', `h${i}_gelu`);
    m = b.dense(m, dim, { name: `h${i}_proj` });
    x = b.add([x, m], `h${i}_add2`);
  }
  x = b.layerNorm(x, { name: 'ln_f' });
  return b.build(b.dense(x, vocab, { name: 'head' }));
}

/** The formula above, for tests and docs. */
export function gptParamCount(o: Required<GptOptions>): number {
  const { layers: L, dim: D, block: T, vocab: V } = o;
  return V * D + T * D + L * (12 * D * D + 13 * D) + 2 * D + D * V + V;
}
