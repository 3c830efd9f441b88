/**
 * RandomPad deepen (the paper's baseline, not function-preserving): the same residual block as
 * R2DeeperR (two branches, deepen_block.ts), with every kernel entry free (init as chosen; fresh
 * batch norms). The student starts from a different function; the report says so.
 */
import type { Rng } from '../rng.ts';
import { branchWidth, channelsOf, residualBlock, tapsOf, type Block, type Site } from './deepen_block.ts';
import { freeKernel } from './deepen_r2r.ts';
import type { InitOptions } from './init.ts';

export function randomBlock(site: Site, init: InitOptions, rng: Rng): Block {
  const c = channelsOf(site), k = branchWidth(site), t = tapsOf(site);
  const notes: string[] = [];
  const free = (side: 'in' | 'out') => freeKernel(site, side, side === 'out' ? [t, c, k] : [t, k, c], init, rng, notes);
  const [a1, a2, b1, b2] = [free('out'), free('in'), free('out'), free('in')];
  return { ...residualBlock(site, { a1, a2, b1, b2 }), notes };
}
