/**
 * The r2r command line: a thin layer over the library. Each command lives in commands/<name>.ts,
 * parses its flags, calls the public API and prints; errors become exit statuses by code.
 */
import { Command } from '@commander-js/extra-typings';
import { readFileSync } from 'node:fs';
import { EXIT_CODES, R2RError } from '../errors.ts';
import * as data from './commands/data.ts';
import * as experiment from './commands/experiment.ts';
import * as filters from './commands/filters.ts';
import * as inspect from './commands/inspect.ts';
import * as modelFile from './commands/model_file.ts';
import * as report from './commands/report.ts';
import * as train from './commands/train.ts';
import * as verify from './commands/verify.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command()
    .name('r2r')
    .description('Function-preserving transforms: widen or deepen a trained network exactly (R2R, Net2Net, NetMorph), then train on.')
    .version(pkg.version)
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  for (const m of [inspect, verify, modelFile, train, experiment, data, report, filters]) m.register(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof R2RError) {
      process.stderr.write(`r2r: ${e.message}\n`);
      return EXIT_CODES[e.code] ?? 1;
    }
    const err = e as Error & { code?: string; exitCode?: number };
    // commander's own errors (bad flags) already printed their message.
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) return err.exitCode ?? 2;
    process.stderr.write(`r2r: unexpected error: ${err.stack ?? err}\n`);
    return 1;
  }
}

process.exitCode = await main();
