/** A small fluent builder for graphs; the zoo uses it, and so can users. */
import type { ActivationFn, Graph, Node, Padding } from './types.ts';

export class GraphBuilder {
  readonly nodes: Node[] = [];
  private counts = new Map<string, number>();

  constructor(readonly name?: string) {}

  private fresh(prefix: string): string {
    const n = (this.counts.get(prefix) ?? 0) + 1;
    this.counts.set(prefix, n);
    return `${prefix}${n}`;
  }
  private push<N extends Node>(node: N): string { this.nodes.push(node); return node.name; }

  input(shape: number[], name = 'input'): string { return this.push({ kind: 'input', name, inputs: [], shape }); }
  conv2d(x: string, filters: number, kernel: number, opts: { stride?: number; padding?: Padding | number; useBias?: boolean; name?: string } = {}): string {
    const p = opts.padding ?? 'same';
    return this.push({
      kind: 'conv2d', name: opts.name ?? this.fresh('conv'), inputs: [x], filters, kernelSize: [kernel, kernel],
      strides: [opts.stride ?? 1, opts.stride ?? 1], padding: typeof p === 'number' ? [p, p, p, p] : p, useBias: opts.useBias ?? true,
    });
  }
  dense(x: string, units: number, opts: { useBias?: boolean; name?: string } = {}): string {
    return this.push({ kind: 'dense', name: opts.name ?? this.fresh('dense'), inputs: [x], units, useBias: opts.useBias ?? true });
  }
  batchNorm(x: string, opts: { epsilon?: number; momentum?: number; name?: string } = {}): string {
    return this.push({ kind: 'batchNorm', name: opts.name ?? this.fresh('bn'), inputs: [x], epsilon: opts.epsilon ?? 1e-5, momentum: opts.momentum ?? 0.9 });
  }
  activation(x: string, fn: ActivationFn = 'relu', name?: string): string {
    return this.push({ kind: 'activation', name: name ?? this.fresh(fn), inputs: [x], fn });
  }
  relu(x: string, name?: string): string { return this.activation(x, 'relu', name); }
  maxPool(x: string, size: number, opts: { stride?: number; padding?: Padding | number; name?: string } = {}): string {
    const p = opts.padding ?? 'valid';
    return this.push({ kind: 'maxPool', name: opts.name ?? this.fresh('maxpool'), inputs: [x], poolSize: [size, size], strides: [opts.stride ?? size, opts.stride ?? size], padding: typeof p === 'number' ? [p, p, p, p] : p });
  }
  avgPool(x: string, size: number, opts: { stride?: number; padding?: Padding | number; name?: string } = {}): string {
    const p = opts.padding ?? 'valid';
    return this.push({ kind: 'avgPool', name: opts.name ?? this.fresh('avgpool'), inputs: [x], poolSize: [size, size], strides: [opts.stride ?? size, opts.stride ?? size], padding: typeof p === 'number' ? [p, p, p, p] : p });
  }
  globalAvgPool(x: string, name?: string): string { return this.push({ kind: 'globalAvgPool', name: name ?? this.fresh('gap'), inputs: [x] }); }
  flatten(x: string, name?: string): string { return this.push({ kind: 'flatten', name: name ?? this.fresh('flatten'), inputs: [x] }); }
  add(xs: string[], name?: string): string { return this.push({ kind: 'add', name: name ?? this.fresh('add'), inputs: xs }); }
  concat(xs: string[], name?: string): string { return this.push({ kind: 'concat', name: name ?? this.fresh('concat'), inputs: xs }); }
  dropout(x: string, rate: number, name?: string): string { return this.push({ kind: 'dropout', name: name ?? this.fresh('dropout'), inputs: [x], rate }); }
  tokenInput(length: number, vocab: number, name = 'tokens'): string { return this.push({ kind: 'tokenInput', name, inputs: [], length, vocab }); }
  embedding(x: string, vocab: number, dim: number, name?: string): string { return this.push({ kind: 'embedding', name: name ?? this.fresh('embedding'), inputs: [x], vocab, dim }); }
  positionEmbedding(x: string, maxLength: number, name?: string): string { return this.push({ kind: 'positionEmbedding', name: name ?? this.fresh('pos'), inputs: [x], maxLength }); }
  layerNorm(x: string, opts: { epsilon?: number; name?: string } = {}): string {
    return this.push({ kind: 'layerNorm', name: opts.name ?? this.fresh('ln'), inputs: [x], epsilon: opts.epsilon ?? 1e-5 });
  }
  attention(x: string, heads: number, keyDim: number, opts: { causal?: boolean; useBias?: boolean; name?: string } = {}): string {
    return this.push({ kind: 'attention', name: opts.name ?? this.fresh('attn'), inputs: [x], heads, keyDim, causal: opts.causal ?? true, useBias: opts.useBias ?? true });
  }

  build(output: string): Graph {
    return { format: 'r2r-graph', version: 1, ...(this.name ? { name: this.name } : {}), nodes: this.nodes, output };
  }
}
