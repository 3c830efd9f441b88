/** `r2r filters`: a conv layer's filters as a PNG grid (the paper's figure 4). */
import { Command, Option } from '@commander-js/extra-typings';
import { UsageError } from '../../errors.ts';
import { checkOutputFile } from '../../io/atomic.ts';
import { jsonOption, parseInteger, printJson } from './common.ts';

export function register(program: Command): void {
  program
    .command('filters')
    .description('Draw the filters of the first conv layer (or --layer) of a checkpoint as a PNG grid, each filter colour-normalised to its own min..max. With --compare, a second panel below shows the same layer of another checkpoint (e.g. right after the widen, then after further training). A label strip above each panel names its run, checkpoint and layer. The teacher\'s filters (index < --old, or the smaller filter count of the two) have grey borders; the new ones start on a fresh row below an orange line and have orange borders.')
    .argument('<checkpoint>', 'checkpoint directory (model.json + weights.safetensors), or a run directory for its last checkpoint')
    .addOption(new Option('--compare <checkpoint>', 'a second checkpoint drawn as a second panel (below a blue bar)'))
    .addOption(new Option('--out <file>', 'PNG file to write').default('filters.png'))
    .addOption(new Option('--layer <node>', 'conv2d node to draw (default: the first conv)'))
    .addOption(new Option('--old <n>', 'filters with index >= n are new (default: the smaller filter count when the panels differ, else none)').argParser(parseInteger('--old', 0)))
    .addOption(new Option('--teacher <checkpoint>', 'take the old filter count from this checkpoint\'s layer (the teacher before the widen)'))
    .addOption(new Option('--scale <px>', 'pixels per kernel tap (default: a 7x7 filter becomes 56 px)').argParser(parseInteger('--scale', 1)))
    .addOption(new Option('--columns <n>', 'filters per row (default: up to 16)').argParser(parseInteger('--columns', 1)))
    .addOption(jsonOption('the layout'))
    .action(async (checkpoint, o) => {
      if (o.old !== undefined && o.teacher) throw new UsageError('give --old N or --teacher CHECKPOINT, not both');
      if (o.columns !== undefined && o.columns < 1) throw new UsageError(`--columns must be at least 1, got ${o.columns}`);
      checkOutputFile(o.out, '--out', 'filters.png');
      const { writeFilters } = await import('../../report/filters.ts');
      const ckpts = o.compare ? [checkpoint, o.compare] : [checkpoint];
      const grid = writeFilters(ckpts, o.out, { layer: o.layer, old: o.old, teacher: o.teacher, scale: o.scale, columns: o.columns });
      const counts = ckpts.map((_, i) => grid.cells.filter((c) => c.panel === i).length);
      if (o.json) {
        printJson({ out: o.out, width: grid.width, height: grid.height, old: grid.old, scale: grid.scale, panels: grid.checkpoints.map((c, i) => ({ checkpoint: c, filters: counts[i] })) });
        return;
      }
      process.stdout.write(`wrote ${o.out} (${grid.width}x${grid.height})\n`);
      grid.checkpoints.forEach((c, i) => {
        const n = counts[i];
        const fresh = Math.max(0, n - grid.old);
        process.stdout.write(`panel ${i + 1} (${i === 0 ? 'top' : 'below the blue bar'}): ${c}: ${n} filters${fresh ? `, ${Math.min(n, grid.old)} old (grey) + ${fresh} new (orange, below the orange line)` : ''}\n`);
      });
    });
}
