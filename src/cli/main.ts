/**
 * The r2r command line: a thin layer over the library. Each command lives in commands/<name>.ts,
 * parses its flags, calls the public API and prints; errors become exit statuses by code.
 */
import { Command, CommanderError } from '@commander-js/extra-typings';
import { readFileSync } from 'node:fs';
import { EXIT_CODES, R2RError, type R2RErrorCode } from '../errors.ts';
import * as data from './commands/data.ts';
import * as experiment from './commands/experiment.ts';
import * as filters from './commands/filters.ts';
import * as inspect from './commands/inspect.ts';
import * as modelFile from './commands/model_file.ts';
import * as report from './commands/report.ts';
import * as sample from './commands/sample.ts';
import * as train from './commands/train.ts';
import * as verify from './commands/verify.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command()
    .name('r2r')
    .description('Function-preserving transforms: widen or deepen a trained network exactly (R2R, Net2Net, NetMorph), then train on.')
    .version(pkg.version)
    // A typo gets commander's one-line message and its "(Did you mean ...?)", not the whole help.
    .showSuggestionAfterError(true)
    .showHelpAfterError('(add --help for usage)')
    // Throw instead of process.exit, so parser errors get the same exit status as r2r's own.
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(errorLine(str.replace(/^error: /, ''))) })
    .addHelpText('after', HELP_EPILOGUE);
  for (const m of [inspect, verify, modelFile, train, experiment, data, report, filters]) m.register(program);
  sample.register(program);
  return program;
}

/** Every error the CLI prints has this one form. */
export function errorLine(message: string): string {
  return `r2r: error: ${message.trimEnd()}\n`;
}

/**
 * What each error code means to a user. A Record over every code, so a new code does not compile
 * until it is described here, and --help lists it (codes sharing a status share a line).
 */
const CODE_MEANING: Record<R2RErrorCode, string> = {
  R2R_USAGE: 'usage: unknown command or option, bad flag value, missing argument',
  R2R_INVALID_GRAPH: 'invalid graph',
  R2R_SHAPE_MISMATCH: 'shape mismatch',
  R2R_UNSUPPORTED_LAYER: 'unsupported layer',
  R2R_INVALID_WEIGHTS: 'bad weights',
  R2R_CHECKPOINT: 'bad or missing checkpoint',
  R2R_TRANSFORM: 'a transform cannot be applied as asked',
  R2R_NOT_EXACT: 'verify: an exact-by-construction method exceeded the tolerance',
  R2R_ENGINE_UNAVAILABLE: 'engine unavailable',
  R2R_ENGINE: 'engine failed',
  R2R_DATA: 'data missing or corrupt',
  R2R_TRAINING_DIVERGED: 'training diverged',
  R2R_WEIGHT_VALUES: 'bad weights: a non-finite value or a negative moving variance',
  R2R_RUN_EXISTS: 'a run already exists where it would be written (--resume or --overwrite)',
  R2R_TOO_LARGE: 'the model would not fit in memory (R2R_MEMORY_LIMIT)',
  R2R_IO: 'a file or folder could not be read or written',
  R2R_MODEL_FORMAT: 'a model file is not in the format its name or --from says (or is damaged)',
};

/** Exit statuses, documented in --help and the README. Usage errors (r2r's and the parser's) are 2. */
export const EXIT_STATUS_TEXT: [number, string][] = [
  [0, 'success'],
  [1, 'unexpected failure (a bug: please report it), or some runs of `r2r experiment` failed'],
  ...[...new Set(Object.values(EXIT_CODES))].sort((a, b) => a - b).map((status): [number, string] => [
    status,
    (Object.keys(CODE_MEANING) as R2RErrorCode[]).filter((c) => EXIT_CODES[c] === status).map((c) => CODE_MEANING[c]).join('; '),
  ]),
];

const HELP_EPILOGUE = `
Output: results on stdout; progress, notes and errors on stderr ("r2r: error: ...").
--json prints one JSON document on stdout (every command that has it).

Exit status:
${EXIT_STATUS_TEXT.map(([c, t]) => `  ${String(c).padStart(2)}  ${t}`).join('\n')}`;

export async function main(argv: string[] = process.argv): Promise<number> {
  // A reader that goes away (`r2r inspect | head`) ends the output quietly, as in other Unix tools.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof R2RError) {
      process.stderr.write(errorLine(e.message));
      return EXIT_CODES[e.code] ?? 1;
    }
    if (e instanceof CommanderError) {
      // --help and --version end with status 0; anything else commander rejects is a usage
      // error, whose message it has already printed.
      return e.exitCode === 0 ? 0 : EXIT_CODES.R2R_USAGE;
    }
    const err = e as Error;
    // A file-system error that no command turned into a message: its own message names the path.
    if (typeof (err as NodeJS.ErrnoException).syscall === 'string') {
      process.stderr.write(errorLine(err.message));
      return EXIT_CODES.R2R_IO;
    }
    process.stderr.write(errorLine(`unexpected error: ${err.stack ?? err}`));
    return 1;
  }
}

process.exitCode = await main();
