/** `r2r train`: train a zoo model or a checkpoint with lr drops and a schedule of transforms. */
import { Command, Option } from '@commander-js/extra-typings';
import { join } from 'node:path';
import { DATASET_NAMES, loadDataset, type DatasetName } from '../../data/index.ts';
import type { EngineOptions } from '../../engines/registry.ts';
import { UsageError } from '../../errors.ts';
import { loadCheckpoint } from '../../io/checkpoint.ts';
import { initWeights } from '../../ir/weights.ts';
import { assertFits, estimateSize } from '../../ir/budget.ts';
import { ZOO, zooModel } from '../../models/zoo.ts';
import { Rng } from '../../rng.ts';
import { train, validateRunName, type TrainHooks } from '../../train/trainer.ts';
import { readTextDataset } from '../../data/text.ts';
import { analyzeGraph } from '../../ir/graph.ts';
import { GPT_DEFAULTS } from '../../models/gpt.ts';
import { trainText } from '../../train/text_trainer.ts';
import { blockOption, dimOption, headsOption, layersOption, vocabOption } from './common.ts';
import { createProgress } from '../progress.ts';
import { engineOption, jsonOption, openEngine, parseInteger, parseNumber, printJson } from './common.ts';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Flags for where the data comes from, shared with `r2r experiment`. */
export const dataDirOption = () => new Option('--data <dir>', 'CIFAR-10 directory (data_batch_1..5.bin, test_batch.bin, plain or .gz); default: R2R_DATA, else ./data/cifar10');
export const datasetOption = () => new Option('--dataset <name>', 'cifar10, or synthetic (small seeded patterns, for trying things out)').choices(DATASET_NAMES);
export const limitOption = () => new Option('--limit <n>', 'use only the first N training examples').argParser(parseInteger('--limit', 1));
export const valLimitOption = () => new Option('--val-limit <n>', 'use only the first N validation (test-set) examples').argParser(parseInteger('--val-limit', 1));

/** Engine tuning flags shared with `r2r experiment`. */
export const tfjsBackendOption = () => new Option('--tfjs-backend <b>', 'tfjs engine backend').choices(['wasm', 'cpu'] as const);
export const deviceOption = () => new Option('--device <d>', 'torch engine device: cpu or cuda');
export const threadsOption = () => new Option('--threads <n>', 'torch engine intra-op threads: N, or auto (default; or OMP_NUM_THREADS when set): the cores other processes leave free, re-checked as it runs, so a busy machine does not slow two threads down to less than one; give N when runs must repeat bit for bit (the count changes float rounding)')
  .argParser((v): number | 'auto' => {
    if (v === 'auto') return v;
    const n = parseInteger('--threads')(v);
    if (n < 1) throw new UsageError(`--threads: expected a positive integer or auto, got '${v}'`);
    return n;
  });

export function engineOptions(o: { tfjsBackend?: string; device?: string; threads?: number | 'auto' }): EngineOptions {
  return { backend: o.tfjsBackend, device: o.device, threads: o.threads };
}

/** Progress bars on a terminal, plain lines otherwise; per-epoch lines on stderr. */
export function cliHooks(quiet?: boolean): TrainHooks {
  return {
    progress: (label, total) => createProgress(label, total, { quiet }),
    log: quiet ? undefined : (line) => process.stderr.write(line + '\n'),
  };
}

export function register(program: Command): void {
  program
    .command('train')
    .description('Train a network (a zoo model from random initialisation, or a checkpoint) on CIFAR-10 with Adam or SGD (or a gpt on a text file with --data-text and --steps), learning-rate drops and scheduled transforms (e.g. --transform widen@25:r2r:1.5). Writes run.json, metrics.jsonl, checkpoints/ and final/ into the run directory; a directory that already holds a run is refused unless --resume or --overwrite. The whole schedule is checked on the model before the first step, and every student must fit in memory (R2R_MEMORY_LIMIT, default half of this machine\'s memory).')
    .addOption(new Option('--model <name>', `zoo model: ${ZOO.map((z) => z.name).join(', ')}`))
    .addOption(new Option('--width <r>', 'width multiplier (ResNetCifar: r, default 0.125)').argParser(parseNumber('--width', { above: 0 })))
    .addOption(new Option('--checkpoint <dir>', 'start from a checkpoint (its optimizer state is carried in unless --reset-optimizer)'))
    .addOption(dataDirOption()).addOption(datasetOption()).addOption(limitOption()).addOption(valLimitOption())
    .addOption(layersOption()).addOption(headsOption()).addOption(dimOption()).addOption(blockOption()).addOption(vocabOption())
    .addOption(new Option('--data-text <file>', 'token models (gpt): a UTF-8 text file, or the name tinyshakespeare (R2R_DATA_TEXT, else ../shared/data/tinyshakespeare/input.txt); default tinyshakespeare'))
    .addOption(new Option('--steps <n>', 'token models: optimizer steps (default 2000)').argParser(parseInteger('--steps', 1)))
    .addOption(new Option('--eval-every <n>', 'token models: evaluate and checkpoint every N steps (default 200)').argParser(parseInteger('--eval-every', 1)))
    .addOption(new Option('--eval-batches <n>', 'token models: validation batches per evaluation (default 20)').argParser(parseInteger('--eval-batches', 1)))
    .addOption(new Option('--epochs <n>', 'total epochs (default 10; image models)').argParser(parseInteger('--epochs', 1)))
    .addOption(new Option('--batch-size <n>', 'minibatch size (default 128; gpt: 12 sequences)').argParser(parseInteger('--batch-size', 1)))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'sgd'] as const).default('adam' as const))
    .addOption(new Option('--lr <x>', 'learning rate').argParser(parseNumber('--lr', { above: 0 })).default(1e-3))
    .addOption(new Option('--momentum <m>', 'SGD momentum').argParser(parseNumber('--momentum', { min: 0, below: 1 })).default(0.9))
    .addOption(new Option('--weight-decay <x>', 'L2 weight decay (added to the gradient, PyTorch semantics)').argParser(parseNumber('--weight-decay', { min: 0 })).default(0))
    .addOption(new Option('--lr-drop <spec>', 'learning-rate drop, repeatable: /FACTOR@EPOCH, e.g. /5@25').argParser(collect))
    .addOption(new Option('--transform <spec>', 'transform, repeatable: widen@EPOCH:METHOD[:FACTOR|+N][:key=value...] or deepen@EPOCH:METHOD[:BLOCKS_PER_STAGE][:key=value...]; e.g. widen@25:r2r:1.5, deepen@0:r2r:2, widen@20:r2r:1.5:init=he. Token models (gpt) count steps and grow by heads@STEP:METHOD[:FACTOR|+N], mlp@STEP:METHOD[:FACTOR|+N], width@STEP:METHOD[:FACTOR] (the residual stream; r2r: x2, net2net: an integer factor) and deepen@STEP:METHOD[:+BLOCKS][:position=I] (r2r|netmorph|random blocks); e.g. --transform width@500:r2r:2 --transform heads@500:r2r:+2 --transform mlp@500:r2r:2 --transform deepen@1000:r2r:+2').argParser(collect))
    .option('--reset-optimizer', 'start a fresh optimizer after each transform (and ignore a checkpoint\'s optimizer state)')
    .option('--augment', 'random crop (padding 4) and horizontal flip (the paper uses none)')
    .addOption(new Option('--seed <n>', 'seed for initialisation, shuffling and transforms').argParser(parseInteger('--seed')).default(0))
    .addOption(new Option('--out <dir>', 'run directory (default runs/train/<name>)'))
    .addOption(new Option('--name <name>', 'run name: letters, digits, . _ + - (one directory under runs/train/)').default('run'))
    .option('--resume', 'continue from the newest checkpoint in the run directory')
    .option('--overwrite', 'replace a run already in the run directory (default: refuse, so no run is lost)')
    .addOption(new Option('--stop-after <n>', 'stop after N epochs as if killed (resume later with --resume)').argParser(parseInteger('--stop-after', 1)))
    .addOption(new Option('--keep <n>', 'checkpoints to keep').argParser(parseInteger('--keep', 0)).default(2))
    .addOption(engineOption()).addOption(tfjsBackendOption()).addOption(deviceOption()).addOption(threadsOption())
    .addOption(jsonOption('{dir, status, finalValAcc, flops, records}'))
    .option('--quiet', 'no progress output')
    .action(async (o) => {
      if (!!o.model === !!o.checkpoint) throw new UsageError('give exactly one of --model NAME or --checkpoint DIR');
      validateRunName(o.name, '--name');
      if (await trainTokenModel(o)) return;
      const gptOnly = (['dataText', 'steps', 'evalEvery', 'evalBatches', 'layers', 'heads', 'dim', 'block', 'vocab'] as const).filter((k) => o[k] !== undefined);
      if (gptOnly.length) throw new UsageError(`${gptOnly.map(flag).join(', ')} apply to token models (--model gpt); ${o.model ?? o.checkpoint} is an image model`);
      const data = loadDataset({ dataset: (o.dataset ?? 'cifar10') as DatasetName, dir: o.data, trainLimit: o.limit, valLimit: o.valLimit });
      let start;
      if (o.checkpoint) {
        const ck = loadCheckpoint(o.checkpoint);
        start = { graph: ck.graph, weights: ck.weights, optimizer: ck.optimizer };
      } else {
        const graph = zooModel(o.model!, { width: o.width, inputShape: data.inputShape, classes: data.classes });
        assertFits(`${o.model}${o.width !== undefined ? ` --width ${o.width}` : ''} (batch ${o.batchSize})`, [estimateSize(graph, o.batchSize ?? 128)]);
        start = { graph, weights: initWeights(graph, new Rng(`init:${o.seed}`)) };
      }
      const engine = await openEngine(o.engine, engineOptions(o), { quiet: o.quiet });
      const dir = o.out ?? join('runs', 'train', o.name);
      const r = await train({
        dir, name: o.name, data, engine, start, resume: o.resume, overwrite: o.overwrite, stopAfterEpoch: o.stopAfter, hooks: cliHooks(o.quiet),
        describe: { model: o.model ?? null, width: o.width ?? null, checkpoint: o.checkpoint ?? null },
        config: {
          epochs: o.epochs ?? 10, batchSize: o.batchSize ?? 128, optimizer: o.optimizer, lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay,
          lrDrops: o.lrDrop ?? [], transforms: o.transform ?? [], resetOptimizer: o.resetOptimizer, augment: o.augment, seed: o.seed, keepCheckpoints: o.keep,
        },
      });
      if (o.json) { printJson({ dir, status: r.status, finalValAcc: r.finalValAcc, flops: r.flops, records: r.records }); return; }
      console.log(`${o.name}: ${r.status} after ${r.epochs} epochs on ${engine.description}; final val acc ${(100 * r.finalValAcc).toFixed(2)}%, training FLOPs ${r.flops.toExponential(3)}; results in ${dir}`);
    });
}

const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

interface TextFlags {
  model?: string; checkpoint?: string; dataText?: string; steps?: number; evalEvery?: number; evalBatches?: number;
  layers?: number; heads?: number; dim?: number; block?: number; vocab?: number; epochs?: number; batchSize?: number;
  dataset?: string; data?: string; limit?: number; valLimit?: number; lrDrop?: string[]; transform?: string[]; augment?: boolean;
  optimizer: 'adam' | 'sgd'; lr: number; momentum: number; weightDecay: number; seed: number; out?: string; name: string;
  resume?: boolean; overwrite?: boolean; stopAfter?: number; keep: number; engine: string; tfjsBackend?: string; device?: string; threads?: number | 'auto';
  json?: boolean; quiet?: boolean; resetOptimizer?: boolean;
}

/**
 * Token models (gpt, or a checkpoint whose input is tokenInput): step-based training on a text
 * file. The defaults are the issue-9 run: 4 layers, 4 heads, width 128, block 64, batch 12,
 * Adam lr 1e-3, no dropout, 2,000 steps. Returns false for image models.
 */
async function trainTokenModel(o: TextFlags): Promise<boolean> {
  const ck = o.checkpoint ? loadCheckpoint(o.checkpoint) : undefined;
  const isText = o.model === 'gpt' || (ck !== undefined && analyzeGraph(ck.graph).tokens !== undefined);
  if (!isText) return false;
  const imageOnly = (['epochs', 'dataset', 'data', 'limit', 'valLimit', 'lrDrop', 'augment'] as const).filter((k) => o[k] !== undefined);
  if (imageOnly.length) throw new UsageError(`${imageOnly.map(flag).join(', ')} do not apply to token models; a text run is step-based (--steps, --eval-every) on --data-text`);
  if (ck && (['layers', 'heads', 'dim', 'block', 'vocab'] as const).some((k) => o[k] !== undefined)) throw new UsageError('--layers/--heads/--dim/--block/--vocab build a new gpt; a checkpoint brings its own shape');
  const block = ck ? analyzeGraph(ck.graph).tokens!.length : o.block ?? GPT_DEFAULTS.block;
  const data = readTextDataset(o.dataText ?? 'tinyshakespeare', block);
  let start;
  if (ck) {
    start = { graph: ck.graph, weights: ck.weights, optimizer: o.resetOptimizer ? undefined : ck.optimizer };
  } else {
    const graph = zooModel('gpt', { layers: o.layers, heads: o.heads, dim: o.dim, block, vocab: o.vocab ?? data.vocab.length });
    start = { graph, weights: initWeights(graph, new Rng(`init:${o.seed}`)) };
  }
  const engine = await openEngine(o.engine, engineOptions(o), { quiet: o.quiet });
  const dir = o.out ?? join('runs', 'train', o.name);
  const r = await trainText({
    dir, name: o.name, data, engine, start, resume: o.resume, overwrite: o.overwrite, stopAfterStep: o.stopAfter, hooks: cliHooks(o.quiet),
    describe: { model: o.model ?? null, checkpoint: o.checkpoint ?? null, graph: start.graph.name ?? null, block },
    config: {
      steps: o.steps ?? 2000, batchSize: o.batchSize ?? 12, optimizer: o.optimizer, lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay,
      evalEvery: o.evalEvery ?? 200, evalBatches: o.evalBatches ?? 20, seed: o.seed, keepCheckpoints: o.keep,
      transforms: o.transform ?? [], resetOptimizer: o.resetOptimizer,
    },
  });
  if (o.json) { printJson({ dir, status: r.status, finalValLoss: r.finalValLoss, flops: r.flops, records: r.records, transforms: r.transforms }); return true; }
  const last = r.records[r.records.length - 1];
  const tps = r.records.filter((x) => x.tokensPerSecond !== null);
  const mean = tps.length ? tps.reduce((a, x) => a + x.tokensPerSecond!, 0) / tps.length : NaN;
  console.log(`${o.name}: ${r.status} after ${r.steps} steps on ${engine.description}; final val loss ${last.valLoss.toFixed(4)}, ${Math.round(mean).toLocaleString('en-US')} training tokens/s, training FLOPs ${r.flops.toExponential(3)}; results in ${dir}`);
  return true;
}
