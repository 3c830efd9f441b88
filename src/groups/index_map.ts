/** Following a channel index through concat offsets and flatten strides (Torch-Pruning's index_mapping). */
import type { IndexStep } from './group.ts';

/** Every position channel `c` of a group lands on after `steps`, ascending. */
export function mapChannel(steps: readonly IndexStep[], c: number): number[] {
  let idx = [c];
  for (const s of steps) {
    if (s.kind === 'concat') idx = idx.map((i) => i + s.offset);
    else idx = idx.flatMap((i) => Array.from({ length: s.spatial }, (_, p) => p * s.channels + i));
  }
  return idx.sort((a, b) => a - b);
}
