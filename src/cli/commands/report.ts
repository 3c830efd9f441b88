/** `r2r report`: a self-contained HTML report (plus one SVG per chart) of a run or a suite. */
import { Command, Option } from '@commander-js/extra-typings';
import { dirname, relative } from 'node:path';
import { checkOutputFile } from '../../io/atomic.ts';
import { formatTable, jsonOption, parseNumber, printJson } from './common.ts';

export function register(program: Command): void {
  program
    .command('report')
    .description('Write report.html for a run directory or a suite directory (runs/<suite>/): validation accuracy against epochs and against cumulative training FLOPs for every run on shared axes, transform markers, a summary table (final accuracy, accuracy just before/after each transform, FLOPs to reach the from-scratch accuracy, total FLOPs, wall time) and each run\'s configuration. Opens offline; every chart is also written as an SVG beside it.')
    .argument('<dir>', 'a run directory (holds metrics.jsonl) or a suite directory holding run directories')
    .addOption(new Option('--out <file>', 'HTML file to write (default: DIR/report.html); the SVGs go in the same directory'))
    .option('--png', 'also write a PNG of every chart beside its SVG (needs headless Chromium)')
    .addOption(new Option('--png-scale <s>', 'pixel density of the PNGs').argParser(parseNumber('--png-scale', { above: 0 })).default(2))
    .addOption(jsonOption('the summary (the table\'s numbers and the files written)'))
    .action(async (dir, o) => {
      if (o.out) checkOutputFile(o.out, '--out', 'report.html');
      const { writeReport } = await import('../../report/report.ts');
      const written = await writeReport(dir, { out: o.out });
      const pngs: string[] = [];
      if (o.png) {
        const { svgToPng } = await import('../../report/browser.ts');
        for (const svg of written.svgs) {
          const png = svg.replace(/\.svg$/, '.png');
          svgToPng(svg, png, { scale: o.pngScale });
          pngs.push(png);
        }
      }
      if (o.json) {
        printJson({ ...written, pngs });
        return;
      }
      const { flops, pct } = await import('../../report/report.ts');
      const s = written.summary;
      const rows = s.runs.map((r) => [
        r.name, r.role, r.epochs, pct(r.finalValAcc),
        r.transforms.map((t) => `${pct(t.before)} -> ${pct(t.after)}`).join(', ') || '-',
        r.reachTarget === undefined ? '-' : r.reachTarget === null ? 'not reached' : flops(r.reachTarget.flops),
        flops(r.totalFlopsShared),
      ]);
      process.stdout.write(formatTable(['run', 'role', 'epochs', 'final acc', 'acc before -> after', `FLOPs to ${s.target ? pct(s.target.valAcc) : 'target'}`, 'total FLOPs'], rows) + '\n');
      for (const w of s.warnings) process.stderr.write(`note: ${w}\n`);
      const here = (p: string) => { const r = relative(process.cwd(), p); return r === '' ? '.' : r.startsWith('..') ? p : r; };
      process.stdout.write(`wrote ${here(written.html)}\n`);
      process.stdout.write(`charts in ${here(dirname(written.html))}: ${[...written.svgs, ...pngs].map((p) => relative(dirname(written.html), p)).join(', ')}\n`);
    });
}
