/** `r2r verify`: apply a transform and measure how exactly the student reproduces the teacher. */
import { Command, Option } from '@commander-js/extra-typings';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { R2RError, UsageError } from '../../errors.ts';
import { checkOutputDir } from '../../io/atomic.ts';
import { saveCheckpoint } from '../../io/checkpoint.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { Rng } from '../../rng.ts';
import { INIT_METHODS, type InitMethod } from '../../transforms/init.ts';
import { TRANSFORM_KINDS, type TransformSpec } from '../../transforms/index.ts';
import { threadsOption } from './train.ts';
import { EXACT_TOLERANCE, verifyTransform } from '../../verify.ts';
import { blockOption, dimOption, headsOption, layersOption, vocabOption } from './common.ts';
import { checkpointOption, engineOption, formatTable, jsonOption, loadModel, modelOption, openEngine, parseInteger, parseNumber, printJson, seedOption, widthOption } from './common.ts';

const WIDENING = ['r2r', 'net2net', 'netmorph', 'random'] as const;
const METHODS = { widen: WIDENING, mlp: WIDENING, heads: WIDENING, width: WIDENING, deepen: ['r2r', 'net2net', 'random', 'netmorph'], kernel: ['netmorph'] } as const;

export function register(program: Command): void {
  program
    .command('verify')
    .description('Apply a transform to a network and compare teacher and student logits on one random batch, in inference and training mode. Exits non-zero when a method that is exact by construction exceeds 1e-5 relative error. Teacher and student must fit in memory together (estimated from the graphs before anything is allocated; limit: R2R_MEMORY_LIMIT, e.g. 8G, default half of this machine\'s memory).')
    .addOption(modelOption())
    .addOption(widthOption())
    .addOption(layersOption()).addOption(headsOption()).addOption(dimOption()).addOption(blockOption()).addOption(vocabOption())
    .addOption(checkpointOption())
    .addOption(new Option('--transform <t>', 'widen, deepen or kernel (kernel-size morph); transformers: mlp (MLP hidden units), heads (attention heads), width (the residual stream), deepen (whole blocks)').choices(TRANSFORM_KINDS).default('widen' as const))
    .addOption(new Option('--method <m>', 'widen, mlp, heads, width: r2r|net2net|netmorph|random; deepen: r2r|net2net|random (transformers: r2r|netmorph|random); kernel: netmorph').default('r2r'))
    .addOption(new Option('--factor <f>', 'widen: multiply channels by f (1.5 = the paper\'s widen); mlp, heads, width: default 2').argParser(parseNumber('--factor', { above: 1 })))
    .addOption(new Option('--add <e>', 'widen, mlp, width: add E channels instead of a factor; heads: add E heads').argParser(parseInteger('--add', 1)))
    .addOption(new Option('--at <node>', 'widen: the group holding this node\'s output (default: every hidden group); mlp: a block\'s first dense; heads: an attention node; width: a node on the stream; deepen: insert after this node; kernel: the conv to morph'))
    .addOption(new Option('--per-stage <n>', 'deepen without --at: new blocks at the end of every stage (2 = the paper\'s ResNetCifar-10 to -18); on a transformer, blocks inserted').argParser(parseInteger('--per-stage', 1)).default(2))
    .addOption(new Option('--position <i>', 'deepen a transformer: index the new block takes (default: after the last block)').argParser(parseInteger('--position', 0)))
    .addOption(new Option('--size <k>', 'kernel: new kernel size (odd, larger than the old one)').argParser(parseInteger('--size', 1)).default(5))
    .addOption(new Option('--init <method>', 'free parameters: match-std, he or copy').choices(INIT_METHODS).default('match-std' as InitMethod))
    .addOption(new Option('--init-scale <s>', 'multiplier on freshly sampled parameters').argParser(parseNumber('--init-scale', { min: 0 })).default(1))
    .addOption(new Option('--noise <std>', 'Gaussian noise on new parameters (breaks exactness slightly)').argParser(parseNumber('--noise', { min: 0 })).default(0))
    .addOption(new Option('--netmorph-zero <side>', 'netmorph: which side is zero').choices(['producers', 'consumers'] as const).default('producers' as const))
    .addOption(new Option('--tolerance <rel>', 'largest relative error an exact method may show').argParser(parseNumber('--tolerance', { min: 0 })).default(EXACT_TOLERANCE))
    .addOption(new Option('--batch <n>', 'examples in the random batch').argParser(parseInteger('--batch', 1)).default(32))
    .addOption(seedOption())
    .addOption(engineOption())
    .addOption(threadsOption())
    .addOption(new Option('--save <dir>', 'write teacher/ and student/ checkpoints and batch.safetensors (input and both logits per mode); DIR must be new or empty unless --overwrite'))
    .option('--overwrite', 'with --save: replace what DIR already holds')
    .addOption(jsonOption('{model, transform, method, tolerance, pass, notes, results: [one object per mode]}'))
    .action(async (o) => {
      const allowed = METHODS[o.transform] as readonly string[];
      if (!allowed.includes(o.method)) throw new UsageError(`--method ${o.method} is not a ${o.transform} method; choose one of ${allowed.join(', ')}`);
      if (o.factor !== undefined && o.add !== undefined) throw new UsageError('give --factor or --add, not both');
      if (o.save) checkSaveDir(o.save, o.overwrite === true);
      const { graph, weights, source } = loadModel(o, { batch: o.batch });
      const init = { method: o.init, scale: o.initScale, noise: o.noise };
      let spec: TransformSpec;
      if (o.transform === 'widen') {
        spec = { transform: 'widen', method: o.method as 'r2r', at: o.at ?? 'all', ...(o.add !== undefined ? { add: o.add } : { factor: o.factor ?? 1.5 }), init, netmorphZeroSide: o.netmorphZero, seed: o.seed };
      } else if (o.transform === 'mlp' || o.transform === 'heads' || o.transform === 'width') {
        const size = o.add !== undefined ? { add: o.add } : { factor: o.factor ?? 2 };
        spec = o.transform === 'width'
          ? { transform: 'width', method: o.method as 'r2r', ...size, ...(o.at ? { at: o.at } : {}), init: { method: o.init, scale: o.initScale }, seed: o.seed }
          : { transform: o.transform, method: o.method as 'r2r', ...size, ...(o.at ? { at: o.at } : {}), init, netmorphZeroSide: o.netmorphZero, seed: o.seed };
      } else if (o.transform === 'deepen') {
        if (o.position !== undefined && o.at) throw new UsageError('give --position or --at, not both');
        spec = { transform: 'deepen', method: o.method as 'r2r', ...(o.at ? { after: o.at } : o.position !== undefined ? { position: o.position, perStage: o.perStage } : { perStage: o.perStage }), init, seed: o.seed };
      } else {
        if (!o.at) throw new UsageError('--transform kernel needs --at CONV_NODE');
        spec = { transform: 'kernel', node: o.at, size: o.size };
      }
      const engine = await openEngine(o.engine, { threads: o.threads }, { quiet: o.json });
      const out = await verifyTransform(engine, graph, weights, spec, { batchSize: o.batch, rng: new Rng(o.seed + 1), tolerance: o.tolerance });
      if (o.save) {
        saveCheckpoint(join(o.save, 'teacher'), { graph, weights });
        saveCheckpoint(join(o.save, 'student'), { graph: out.student.graph, weights: out.student.weights });
        const k = out.logits.inference.teacher.length / out.batch.n;
        writeSafetensors(join(o.save, 'batch.safetensors'), {
          input: { shape: out.batch.shape, data: out.batch.x },
          teacher_logits_inference: { shape: [out.batch.n, k], data: out.logits.inference.teacher },
          student_logits_inference: { shape: [out.batch.n, k], data: out.logits.inference.student },
          teacher_logits_training: { shape: [out.batch.n, k], data: out.logits.training.teacher },
          student_logits_training: { shape: [out.batch.n, k], data: out.logits.training.student },
        }, { layout: 'NHWC', note: 'training-mode logits use batch statistics of this batch' });
      }
      if (o.json) {
        printJson({
          model: source, transform: o.transform, method: o.method, engine: engine.description, tolerance: o.tolerance,
          pass: out.results.every((r) => r.pass), notes: out.student.report.notes, results: out.results,
        });
      } else {
        const r0 = out.results[0];
        console.log(`${source}: ${o.transform} ${r0.method} on ${engine.description}; params ${r0.paramsBefore.toLocaleString('en-US')} -> ${r0.paramsAfter.toLocaleString('en-US')}`);
        for (const n of out.student.report.notes) console.log(`  ${n}`);
        if (out.results.some((r) => r.dropoutOff)) console.log('  training mode is compared with dropout off (rate 0 in both networks, batch statistics on): masks are random per channel, and a student\'s paired or copied channels would need their partners\' masks');
        console.log(formatTable(['mode', 'max |Δ logits|', 'relative error', 'exact by construction', 'result'],
          out.results.map((r) => [r.mode, r.maxAbsDiff.toExponential(3), r.relDiff.toExponential(3), r.exactExpected ? 'yes' : 'no', r.exactExpected ? (r.pass ? 'PASS' : 'FAIL') : '-'])));
        if (o.save) console.log(`saved teacher/, student/ and batch.safetensors under ${o.save}`);
      }
      const failed = out.results.filter((r) => !r.pass);
      if (failed.length) {
        throw new R2RError('R2R_NOT_EXACT', `${o.transform} ${o.method} is exact by construction but ${failed.map((r) => `${r.mode} mode has relative error ${r.relDiff.toExponential(3)}`).join(' and ')} (> ${o.tolerance})`);
      }
    });
}

/** Before any work: --save DIR is new or an empty folder, or --overwrite says its files may go. */
function checkSaveDir(dir: string, overwrite: boolean): void {
  checkOutputDir(dir, '--save');
  if (!existsSync(dir)) return;
  const held = readdirSync(dir);
  if (held.length && !overwrite) {
    throw new UsageError(`--save ${dir} already holds ${held.slice(0, 3).join(', ')}${held.length > 3 ? ', ...' : ''}; pass --overwrite to replace teacher/, student/ and batch.safetensors there`);
  }
}
