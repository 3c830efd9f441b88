/** The model zoo by name, as the CLI and experiments refer to it. */
import { UsageError } from '../errors.ts';
import type { Graph } from '../ir/types.ts';
import { gpt, type GptOptions } from './gpt.ts';
import { mlp } from './mlp.ts';
import { resnetCifar } from './resnet_cifar.ts';
import { smallConv } from './small_conv.ts';

export interface ZooOptions extends GptOptions {
  /** Width multiplier r for ResNetCifar (default 1/8); filter count multiplier for small-conv (1 = 16 filters). */
  width?: number;
  classes?: number;
  inputShape?: [number, number, number];
}

export interface ZooEntry { name: string; description: string; build(opts: ZooOptions): Graph }

const resnet = (depth: 10 | 18, residual: boolean): ZooEntry => ({
  name: `resnet-cifar${depth}${residual ? '' : '-nores'}`,
  description: `ResNetCifar-${depth}(r)${residual ? '' : ' without shortcuts (NoResidual)'}, SPEC section 4; --width r (default 0.125)`,
  build: (o) => resnetCifar({ width: o.width ?? 0.125, blocksPerStage: depth === 10 ? 2 : 4, residual, classes: o.classes, inputShape: o.inputShape }),
});

export const ZOO: readonly ZooEntry[] = [
  resnet(10, true), resnet(18, true), resnet(10, false), resnet(18, false),
  { name: 'small-conv', description: 'SmallConv: conv 7x7 x16, max pool, dense 150, dense 10 (the paper\'s visualisation net); --width scales the filters', build: (o) => smallConv({ filters: Math.round(16 * (o.width ?? 1)), classes: o.classes, inputShape: o.inputShape }) },
  { name: 'gpt', description: 'GPT (pre-LN, causal attention, GELU MLP, untied head); --layers 4 --heads 4 --dim 128 --block 64, --vocab from the data (65)', build: (o) => gpt({ layers: o.layers, heads: o.heads, dim: o.dim, block: o.block, vocab: o.vocab }) },
  { name: 'mlp', description: 'MLP: flatten, dense 256, ReLU, dense 128, ReLU, dense 10; --width scales the hidden sizes', build: (o) => mlp({ hidden: [256, 128].map((h) => Math.max(1, Math.round(h * (o.width ?? 1)))), classes: o.classes, inputShape: o.inputShape }) },
];

export function zooModel(name: string, opts: ZooOptions = {}): Graph {
  const e = ZOO.find((z) => z.name === name);
  if (!e) throw new UsageError(`unknown model '${name}'; the zoo has ${ZOO.map((z) => z.name).join(', ')}`);
  return e.build(opts);
}
