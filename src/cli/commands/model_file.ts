/**
 * `r2r widen`, `r2r deepen` and `r2r convert` on a user's model file (an r2r checkpoint directory,
 * a TensorFlow.js model.json, or any other registered format, e.g. .onnx).
 *
 * Each command reads IN, transforms it, writes the result under a temporary name beside OUT,
 * reads that back with the output format's reader and compares it with IN on one random batch in
 * inference and training mode (the verify table). Only when every mode that is exact by
 * construction passes are the files moved into place; otherwise nothing is written.
 */
import { Command, Option, type OptionValues } from '@commander-js/extra-typings';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { getEngine } from '../../engines/registry.ts';
import type { Engine } from '../../engines/engine.ts';
import { R2RError, UnsupportedLayerError, UsageError } from '../../errors.ts';
import { formatOfInput, formatOfOutput, modelFormats, type ModelFile, type ModelFormat } from '../../io/formats.ts';
import { analyzeGraph, countParams } from '../../ir/graph.ts';
import type { Graph } from '../../ir/types.ts';
import { compareLogits } from '../../reference/compare.ts';
import { Rng } from '../../rng.ts';
import { applyTransform, type TransformSpec } from '../../transforms/index.ts';
import { INIT_METHODS, type InitMethod } from '../../transforms/init.ts';
import { EXACT_TOLERANCE, randomBatch } from '../../verify.ts';
import { engineOption, formatTable, parseInteger, parseNumber, printJson } from './common.ts';

const WIDEN_METHODS = ['r2r', 'net2net', 'netmorph', 'random'] as const;
const DEEPEN_METHODS = ['r2r', 'net2net', 'random'] as const;

type Verb = 'widen' | 'deepen' | 'convert';

interface CommonOpts {
  out: string; from?: string; to?: string; overwrite?: true; engine: 'auto' | 'tfjs' | 'torch';
  batch: number; seed: number; tolerance: number; json?: true;
}

/** One mode's comparison of the written model with the input model. */
export interface FileVerifyRow { mode: 'inference' | 'training'; maxAbsDiff: number; relDiff: number; exactExpected: boolean; pass: boolean }

function formatNames(): string {
  return modelFormats().map((f) => f.name).join('|');
}

function addCommon<Opts extends OptionValues, G extends OptionValues>(cmd: Command<[string], Opts, G>) {
  return cmd
    .requiredOption('--out <path>', 'where to write the result: a checkpoint directory, a .json (tfjs) or another format\'s file')
    .addOption(new Option('--from <format>', `input format (default: from IN's content or name): ${formatNames()}`))
    .addOption(new Option('--to <format>', `output format (default: from OUT's name: .json tfjs, no extension an r2r checkpoint directory, ...): ${formatNames()}`))
    .option('--overwrite', 'replace OUT if it exists')
    .addOption(engineOption())
    .addOption(new Option('--batch <n>', 'examples in the random verification batch').argParser(parseInteger('--batch')).default(16))
    .addOption(new Option('--seed <n>', 'random seed (transform and batch)').argParser(parseInteger('--seed')).default(0))
    .addOption(new Option('--tolerance <rel>', 'largest relative error an exact method may show').argParser(parseNumber('--tolerance')).default(EXACT_TOLERANCE))
    .option('--json', 'print one JSON document instead of the table');
}

export function register(program: Command): void {
  addCommon(program
    .command('widen')
    .argument('<in>', 'the model to widen: checkpoint directory, tfjs model.json, or another registered format')
    .description('Widen a model file and write the student: every hidden channel group (or the one holding --at) grows by --factor; prints the verify table and writes nothing when an exact method is not exact.')
    .addOption(new Option('--method <m>', `${WIDEN_METHODS.join('|')}`).choices(WIDEN_METHODS).default('r2r' as const))
    .addOption(new Option('--factor <f>', 'multiply channels by f (default 1.5)').argParser(parseNumber('--factor')))
    .addOption(new Option('--add <e>', 'add E channels instead of a factor').argParser(parseInteger('--add')))
    .addOption(new Option('--at <node>', 'widen only the channel group holding this node\'s output'))
    .addOption(new Option('--init <method>', 'free parameters: match-std, he or copy').choices(INIT_METHODS).default('match-std' as InitMethod)))
    .action(async (input, o) => {
      if (o.factor !== undefined && o.add !== undefined) throw new UsageError('give --factor or --add, not both');
      const spec: TransformSpec = {
        transform: 'widen', method: o.method, at: o.at ?? 'all', ...(o.add !== undefined ? { add: o.add } : { factor: o.factor ?? 1.5 }),
        init: { method: o.init }, seed: o.seed,
      };
      await run('widen', input, o, spec);
    });

  addCommon(program
    .command('deepen')
    .argument('<in>', 'the model to deepen: checkpoint directory, tfjs model.json, or another registered format')
    .description('Deepen a model file: insert a new block after --at (or at the end of every stage) and write the student; prints the verify table and writes nothing when an exact method is not exact.')
    .addOption(new Option('--method <m>', `${DEEPEN_METHODS.join('|')}`).choices(DEEPEN_METHODS).default('r2r' as const))
    .addOption(new Option('--at <node>', 'insert after this node (normally an activation\'s output)'))
    .addOption(new Option('--blocks <n>', 'blocks to insert (after --at; or per stage)').argParser(parseInteger('--blocks')).default(1))
    .addOption(new Option('--init <method>', 'free parameters: match-std, he or copy').choices(INIT_METHODS).default('match-std' as InitMethod)))
    .action(async (input, o) => {
      const spec: TransformSpec = { transform: 'deepen', method: o.method, ...(o.at ? { after: o.at } : {}), perStage: o.blocks, init: { method: o.init }, seed: o.seed };
      await run('deepen', input, o, spec);
    });

  addCommon(program
    .command('convert')
    .argument('<in>', 'the model to convert')
    .description('Convert a model between formats (r2r checkpoint, tfjs, and other registered formats); the written model is read back and checked to compute the same function.'))
    .action(async (input, o) => {
      await run('convert', input, o, undefined);
    });
}

/** Dropout is random in training mode; the comparison turns it off in both networks. */
function withoutDropout(g: Graph): Graph {
  return { ...g, nodes: g.nodes.map((n) => (n.kind === 'dropout' ? { ...n, rate: 0 } : n)) };
}

/** Teacher vs student logits on one standard-normal batch, in inference and training mode. */
export async function compareModels(
  engine: Engine, teacher: ModelFile, student: ModelFile, exact: { inference: boolean; training: boolean },
  opts: { n: number; rng: Rng; tolerance: number },
): Promise<FileVerifyRow[]> {
  const { inputShape } = analyzeGraph(teacher.graph);
  const x = randomBatch(inputShape, opts.n, opts.rng);
  const t = await engine.build(withoutDropout(teacher.graph), teacher.weights);
  const s = await engine.build(withoutDropout(student.graph), student.weights);
  try {
    const rows: FileVerifyRow[] = [];
    for (const mode of ['inference', 'training'] as const) {
      const training = mode === 'training';
      const { maxAbsDiff, relDiff } = compareLogits(await t.forward({ x, n: opts.n }, { training }), await s.forward({ x, n: opts.n }, { training }));
      rows.push({ mode, maxAbsDiff, relDiff, exactExpected: exact[mode], pass: !exact[mode] || relDiff <= opts.tolerance });
    }
    return rows;
  } finally {
    t.dispose();
    s.dispose();
  }
}

/** Moves `from` onto `to`; an existing directory at `to` is replaced only after the move succeeds. */
function moveInto(from: string, to: string): void {
  if (existsSync(to) && statSync(to).isDirectory()) {
    const old = `${to}.r2r-old-${process.pid}`;
    renameSync(to, old);
    try { renameSync(from, to); } catch (e) { renameSync(old, to); throw e; }
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(from, to);
  }
}

function problemsError(fmt: ModelFormat, out: string, problems: string[]): UnsupportedLayerError {
  return new UnsupportedLayerError(`${out}: the ${fmt.name} format cannot hold ${problems.length} node${problems.length > 1 ? 's' : ''} of this model:\n  ${problems.join('\n  ')}`);
}

async function run(verb: Verb, input: string, o: CommonOpts, spec: TransformSpec | undefined): Promise<void> {
  // The whole request is checked before any work: formats, the overwrite rule, what OUT can hold.
  const inFmt = formatOfInput(input, o.from);
  const outFmt = formatOfOutput(o.out, o.to);
  const targets = outFmt.outputs(o.out);
  const existing = targets.filter((p) => existsSync(p));
  if (existing.length && !o.overwrite) throw new UsageError(`${existing.join(' and ')} already exist${existing.length > 1 ? '' : 's'}; pass --overwrite to replace ${existing.length > 1 ? 'them' : 'it'}`);
  if (!(o.batch >= 1)) throw new UsageError(`--batch must be at least 1, got ${o.batch}`);

  const teacher = await inFmt.read(input);
  const early = outFmt.problems?.(teacher.graph) ?? [];
  if (early.length) throw problemsError(outFmt, o.out, early);

  const result = spec ? applyTransform(teacher.graph, teacher.weights, spec) : undefined;
  const student: ModelFile = {
    graph: result?.graph ?? teacher.graph, weights: result?.weights ?? teacher.weights,
    ...(teacher.outputActivation ? { outputActivation: teacher.outputActivation } : {}),
  };
  const late = outFmt.problems?.(student.graph) ?? [];
  if (late.length) throw problemsError(outFmt, o.out, late);
  const exact = result?.report.exact ?? { inference: true, training: true };
  const method = result?.report.method ?? '-';

  // Write beside OUT (same file system, so the final renames are atomic), read back, compare.
  mkdirSync(dirname(resolve(o.out)), { recursive: true });
  const stage = mkdtempSync(join(dirname(resolve(o.out)), `.${basename(o.out)}.r2r-`));
  let written = false;
  try {
    const staged = join(stage, basename(o.out));
    await outFmt.write(staged, student);
    const readBack = await outFmt.read(staged);
    const engine = await getEngine(o.engine);
    const rows = await compareModels(engine, teacher, readBack, exact, { n: o.batch, rng: new Rng(o.seed + 1), tolerance: o.tolerance });
    const failed = rows.filter((r) => !r.pass);
    const paramsBefore = countParams(teacher.graph), paramsAfter = countParams(readBack.graph);
    if (!failed.length) {
      const from = outFmt.outputs(staged);
      targets.forEach((to, i) => moveInto(from[i], to));
      written = true;
    }
    if (o.json) {
      printJson({
        command: verb, input, inputFormat: inFmt.name, output: o.out, outputFormat: outFmt.name, method,
        ...(spec ? { spec } : {}), paramsBefore, paramsAfter, notes: result?.report.notes ?? [], engine: engine.description,
        tolerance: o.tolerance, results: rows, written, files: written ? targets : [],
      });
    } else {
      const what = verb === 'convert' ? `convert ${inFmt.name} -> ${outFmt.name}` : `${verb} ${method} (${inFmt.name} -> ${outFmt.name})`;
      console.log(`${input}: ${what} on ${engine.description}; params ${paramsBefore.toLocaleString('en-US')} -> ${paramsAfter.toLocaleString('en-US')}`);
      for (const n of result?.report.notes ?? []) console.log(`  ${n}`);
      if (teacher.outputActivation && outFmt.name === 'r2r') console.log(`  note: ${input} applies a ${teacher.outputActivation} after the logits; an r2r checkpoint holds the logits only`);
      console.log(formatTable(['mode', 'max |Δ logits|', 'relative error', 'exact by construction', 'result'],
        rows.map((r) => [r.mode, r.maxAbsDiff.toExponential(3), r.relDiff.toExponential(3), r.exactExpected ? 'yes' : 'no', r.exactExpected ? (r.pass ? 'PASS' : 'FAIL') : '-'])));
      console.log(written ? `wrote ${targets.join(' and ')}` : `nothing written`);
    }
    if (failed.length) {
      throw new R2RError('R2R_NOT_EXACT', `${verb}${spec ? ` ${method}` : ''} is exact by construction but ${failed.map((r) => `${r.mode} mode has relative error ${r.relDiff.toExponential(3)}`).join(' and ')} (> ${o.tolerance}); ${o.out} was not written`);
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
