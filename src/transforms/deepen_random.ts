/**
 * RandomPad deepen (the paper's baseline, not function-preserving): the same residual block as
 * R2DeeperR, with every kernel entry free (init as chosen; fresh batch norms). The student starts
 * from a different function; the report says so.
 */
import type { Rng } from '../rng.ts';
import { channelsOf, residualBlock, tapsOf, type Block, type Site } from './deepen_block.ts';
import { freeKernel } from './deepen_r2r.ts';
import type { InitOptions } from './init.ts';

export function randomBlock(site: Site, init: InitOptions, rng: Rng): Block {
  const c = channelsOf(site), t = tapsOf(site);
  const notes: string[] = [];
  const w1 = freeKernel(site, 'out', [t, c, c], init, rng, notes);
  const w2 = freeKernel(site, 'in', [t, c, c], init, rng, notes);
  return { ...residualBlock(site, w1, w2), notes };
}
