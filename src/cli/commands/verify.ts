/** `r2r verify`: apply a transform and measure how exactly the student reproduces the teacher. */
import { Command, Option } from '@commander-js/extra-typings';
import { join } from 'node:path';
import { R2RError, UsageError } from '../../errors.ts';
import { getEngine } from '../../engines/registry.ts';
import { saveCheckpoint } from '../../io/checkpoint.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { Rng } from '../../rng.ts';
import { INIT_METHODS, type InitMethod } from '../../transforms/init.ts';
import type { TransformSpec } from '../../transforms/index.ts';
import { EXACT_TOLERANCE, verifyTransform } from '../../verify.ts';
import { checkpointOption, engineOption, formatTable, loadModel, modelOption, parseInteger, parseNumber, printJson, seedOption, widthOption } from './common.ts';
import { engineOptions, threadsOption } from './train.ts';

const METHODS = { widen: ['r2r', 'net2net', 'netmorph', 'random'], deepen: ['r2r', 'net2net', 'random'], kernel: ['netmorph'] } as const;

export function register(program: Command): void {
  program
    .command('verify')
    .description('Apply a transform to a network and compare teacher and student logits on one random batch, in inference and training mode. Exits non-zero when a method that is exact by construction exceeds 1e-5 relative error.')
    .addOption(modelOption())
    .addOption(widthOption())
    .addOption(checkpointOption())
    .addOption(new Option('--transform <t>', 'widen, deepen or kernel (kernel-size morph)').choices(['widen', 'deepen', 'kernel'] as const).default('widen' as const))
    .addOption(new Option('--method <m>', 'widen: r2r|net2net|netmorph|random; deepen: r2r|net2net|random; kernel: netmorph').default('r2r'))
    .addOption(new Option('--factor <f>', 'widen: multiply channels by f (1.5 = the paper\'s widen)').argParser(parseNumber('--factor')))
    .addOption(new Option('--add <e>', 'widen: add E channels instead of a factor').argParser(parseInteger('--add')))
    .addOption(new Option('--at <node>', 'widen: the group holding this node\'s output (default: every hidden group); deepen: insert after this node; kernel: the conv to morph'))
    .addOption(new Option('--per-stage <n>', 'deepen without --at: new blocks at the end of every stage (2 = the paper\'s ResNetCifar-10 to -18)').argParser(parseInteger('--per-stage')).default(2))
    .addOption(new Option('--size <k>', 'kernel: new kernel size (odd, larger than the old one)').argParser(parseInteger('--size')).default(5))
    .addOption(new Option('--init <method>', 'free parameters: match-std, he or copy').choices(INIT_METHODS).default('match-std' as InitMethod))
    .addOption(new Option('--init-scale <s>', 'multiplier on freshly sampled parameters').argParser(parseNumber('--init-scale')).default(1))
    .addOption(new Option('--noise <std>', 'Gaussian noise on new parameters (breaks exactness slightly)').argParser(parseNumber('--noise')).default(0))
    .addOption(new Option('--netmorph-zero <side>', 'netmorph: which side is zero').choices(['producers', 'consumers'] as const).default('producers' as const))
    .addOption(new Option('--tolerance <rel>', 'largest relative error an exact method may show').argParser(parseNumber('--tolerance')).default(EXACT_TOLERANCE))
    .addOption(new Option('--batch <n>', 'examples in the random batch').argParser(parseInteger('--batch')).default(32))
    .addOption(seedOption())
    .addOption(engineOption())
    .addOption(threadsOption())
    .addOption(new Option('--save <dir>', 'write teacher/ and student/ checkpoints and batch.safetensors (input and both logits per mode)'))
    .option('--json', 'print one JSON object per mode')
    .action(async (o) => {
      const allowed = METHODS[o.transform] as readonly string[];
      if (!allowed.includes(o.method)) throw new UsageError(`--method ${o.method} is not a ${o.transform} method; choose one of ${allowed.join(', ')}`);
      if (o.factor !== undefined && o.add !== undefined) throw new UsageError('give --factor or --add, not both');
      const { graph, weights, source } = loadModel(o);
      const init = { method: o.init, scale: o.initScale, noise: o.noise };
      let spec: TransformSpec;
      if (o.transform === 'widen') {
        spec = { transform: 'widen', method: o.method as 'r2r', at: o.at ?? 'all', ...(o.add !== undefined ? { add: o.add } : { factor: o.factor ?? 1.5 }), init, netmorphZeroSide: o.netmorphZero, seed: o.seed };
      } else if (o.transform === 'deepen') {
        spec = { transform: 'deepen', method: o.method as 'r2r', ...(o.at ? { after: o.at } : { perStage: o.perStage }), init, seed: o.seed };
      } else {
        if (!o.at) throw new UsageError('--transform kernel needs --at CONV_NODE');
        spec = { transform: 'kernel', node: o.at, size: o.size };
      }
      const engine = await getEngine(o.engine, engineOptions(o));
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
        for (const r of out.results) printJson({ ...r, model: source, tolerance: o.tolerance });
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
