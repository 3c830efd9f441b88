/**
 * ResNetCifar-10(r) / -18(r), the paper's table 4 (SPEC section 4), and their NoResidual variants.
 * Parameter counts equal PyTorch's: 12,082 for -10(1/8), 23,794 for -18(1/8), 25,990 for -10(3/16),
 * 52,198 for -18(3/16), 359,338 for -18(1/2).
 */
import { GraphBuilder } from '../ir/builder.ts';
import type { Graph } from '../ir/types.ts';

export interface ResNetCifarOptions {
  /** Width multiplier r: stages have floor(64r) and floor(128r) channels. */
  width: number;
  /** Basic blocks per stage: 2 for ResNetCifar-10, 4 for ResNetCifar-18. */
  blocksPerStage: number;
  /** false drops every shortcut (the NoResidual variant Net2Net needs). */
  residual?: boolean;
  classes?: number;
  inputShape?: [number, number, number];
}

/** One basic block: conv3x3-BN-ReLU-conv3x3-BN (+ shortcut) then ReLU. Returns the output node. */
export function basicBlock(b: GraphBuilder, x: string, prefix: string, cin: number, cout: number, stride: number, residual: boolean): string {
  let y = b.conv2d(x, cout, 3, { stride, padding: 1, useBias: false, name: `${prefix}_conv1` });
  y = b.batchNorm(y, { name: `${prefix}_bn1` });
  y = b.relu(y, `${prefix}_relu1`);
  y = b.conv2d(y, cout, 3, { padding: 1, useBias: false, name: `${prefix}_conv2` });
  y = b.batchNorm(y, { name: `${prefix}_bn2` });
  if (residual) {
    let sc = x;
    if (stride !== 1 || cin !== cout) {
      sc = b.conv2d(x, cout, 1, { stride, padding: 0, useBias: false, name: `${prefix}_sc_conv` });
      sc = b.batchNorm(sc, { name: `${prefix}_sc_bn` });
    }
    y = b.add([y, sc], `${prefix}_add`);
  }
  return b.relu(y, `${prefix}_relu2`);
}

export function resnetCifar(opts: ResNetCifarOptions): Graph {
  const { width: r, blocksPerStage, residual = true, classes = 10, inputShape = [32, 32, 3] } = opts;
  const c1 = Math.floor(64 * r), c2 = Math.floor(128 * r);
  const depth = 2 + 4 * blocksPerStage;
  const b = new GraphBuilder(`resnet-cifar${depth}${residual ? '' : '-nores'}(${r})`);
  let x = b.input(inputShape);
  x = b.conv2d(x, c1, 7, { stride: 2, padding: 3, useBias: false, name: 'conv1' });
  x = b.batchNorm(x, { name: 'bn1' });
  x = b.relu(x, 'relu1');
  x = b.maxPool(x, 3, { stride: 2, padding: 1, name: 'pool1' });
  let cin = c1;
  for (const [stage, cout] of [[1, c1], [2, c2]] as const) {
    for (let i = 1; i <= blocksPerStage; i++) {
      const stride = stage === 2 && i === 1 ? 2 : 1;
      x = basicBlock(b, x, `s${stage}b${i}`, cin, cout, stride, residual);
      cin = cout;
    }
  }
  x = b.globalAvgPool(x, 'gap');
  x = b.dense(x, classes, { name: 'fc' });
  return b.build(x);
}
