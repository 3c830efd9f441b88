/**
 * Every run of the paper's table 5 (SPEC section 5), plus the from-scratch baselines its figures
 * compare against, as data. Epochs are written at paper scale; a preset rescales them.
 *
 * Names follow the table; `FFT-` (the table's spelling) is accepted for `FTT-`, and lookups ignore
 * case. A student names its teacher run; the runner trains each teacher once and reuses it.
 */
import { UsageError } from '../errors.ts';

export type SuiteName = 'nct-widen' | 'nct-deepen' | 'ftt-widen' | 'ftt-deepen' | 'viz' | 'of' | 'bi';
export const SUITES: readonly SuiteName[] = ['nct-widen', 'nct-deepen', 'ftt-widen', 'ftt-deepen', 'viz', 'of', 'bi'];

export interface ModelRef { zoo: string; width?: number }
/** An event at paper-scale epoch `at`. */
export interface TransformAt { kind: 'widen' | 'deepen'; at: number; /** Method and options after the epoch, e.g. 'r2r:1.5'. */ rest: string }
export interface DropAt { at: number; factor: number }

export interface RunDef {
  name: string;
  suite: SuiteName;
  role: 'teacher' | 'student' | 'scratch' | 'run';
  description: string;
  /** A zoo model from random initialisation, or a teacher run's final checkpoint. */
  start: { model: ModelRef } | { teacher: string };
  lr: number;
  weightDecay: number;
  epochs: number;
  drops: DropAt[];
  transforms: TransformAt[];
  /** Paper table 2, final validation accuracy, where it gives one. */
  paperValAcc?: number;
  /** Not in table 5 (a baseline its figures compare against). */
  extra?: boolean;
}

const RC18 = (width = 0.125, nores = false): ModelRef => ({ zoo: nores ? 'resnet-cifar18-nores' : 'resnet-cifar18', width });
const RC10 = (width = 0.125, nores = false): ModelRef => ({ zoo: nores ? 'resnet-cifar10-nores' : 'resnet-cifar10', width });
const W = (at: number, rest: string): TransformAt => ({ kind: 'widen', at, rest });
const D = (at: number, rest: string): TransformAt => ({ kind: 'deepen', at, rest });
const drop5 = (at: number): DropAt[] => [{ at, factor: 5 }];

function viz(method: string, label: string): RunDef {
  return {
    name: `VIZ-${label}`, suite: 'viz', role: 'run', description: `SmallConv, conv1 widened 16 -> 32 filters by ${label} after 150 epochs (filter visualisations)`,
    start: { model: { zoo: 'small-conv', width: 1 } }, lr: 1e-3, weightDecay: 1e-3, epochs: 600, drops: [], transforms: [W(150, `${method}:2:at=conv1`)],
  };
}

function nctStudent(name: string, suite: SuiteName, teacher: string, t: TransformAt, what: string, paperValAcc?: number): RunDef {
  return { name, suite, role: 'student', description: `${what} of ${teacher}, trained on`, start: { teacher }, lr: 3e-3, weightDecay: 1e-2, epochs: 250, drops: drop5(0), transforms: [t], paperValAcc };
}

function fttRun(name: string, suite: SuiteName, model: ModelRef, t: TransformAt, what: string): RunDef {
  return { name, suite, role: 'run', description: `${model.zoo}(${model.width}) from scratch, ${what} after 25 epochs, trained on`, start: { model }, lr: 3e-3, weightDecay: 1e-2, epochs: 250, drops: drop5(25), transforms: [t] };
}

const teacher = (name: string, suite: SuiteName, model: ModelRef, description: string): RunDef =>
  ({ name, suite, role: 'teacher', description, start: { model }, lr: 3e-3, weightDecay: 5e-3, epochs: 250, drops: [], transforms: [] });

export const RUNS: readonly RunDef[] = [
  viz('r2r', 'R2R'), viz('net2net', 'Net2Net'), viz('netmorph', 'NetMorph'),

  { name: 'OF-Teacher', suite: 'of', role: 'teacher', description: 'ResNetCifar-18(1/8) trained without weight decay (over-fits)', start: { model: RC18() }, lr: 1e-3, weightDecay: 0, epochs: 250, drops: [], transforms: [] },
  { name: 'OF-Student', suite: 'of', role: 'student', description: 'OF-Teacher widened x1.5 by R2WiderR', start: { teacher: 'OF-Teacher' }, lr: 1e-3, weightDecay: 3e-3, epochs: 250, drops: drop5(0), transforms: [W(0, 'r2r:1.5')] },
  { name: 'OF-Rand', suite: 'of', role: 'scratch', description: 'ResNetCifar-18(3/16) from scratch', start: { model: RC18(0.1875) }, lr: 1e-3, weightDecay: 3e-4, epochs: 250, drops: [], transforms: [] },

  { name: 'BI-He', suite: 'bi', role: 'run', description: 'ResNetCifar-18(1/8), R2WiderR x1.5 after 20 epochs, new weights He-initialised', start: { model: RC18() }, lr: 1e-3, weightDecay: 1e-3, epochs: 120, drops: drop5(20), transforms: [W(20, 'r2r:1.5:init=he')] },
  { name: 'BI-Std', suite: 'bi', role: 'run', description: 'ResNetCifar-18(1/8), R2WiderR x1.5 after 20 epochs, new weights matching the std of existing ones', start: { model: RC18() }, lr: 1e-3, weightDecay: 1e-3, epochs: 120, drops: drop5(20), transforms: [W(20, 'r2r:1.5:init=match-std')] },

  teacher('NCT-WidenTeacher', 'nct-widen', RC18(), 'ResNetCifar-18(1/8) teacher for the widening students'),
  nctStudent('NCT-R2WiderR', 'nct-widen', 'NCT-WidenTeacher', W(0, 'r2r:1.5'), 'R2WiderR x1.5', 0.699),
  nctStudent('NCT-NetMorph', 'nct-widen', 'NCT-WidenTeacher', W(0, 'netmorph:1.5'), 'NetMorph widen x1.5', 0.698),
  nctStudent('NCT-RandPadWiden', 'nct-widen', 'NCT-WidenTeacher', W(0, 'random:1.5'), 'random-padding widen x1.5', 0.702),
  teacher('NCT-WidenTeacher-NoResidual', 'nct-widen', RC18(0.125, true), 'ResNetCifar-18(1/8) without shortcuts, teacher for Net2WiderNet'),
  nctStudent('NCT-Net2WiderNet', 'nct-widen', 'NCT-WidenTeacher-NoResidual', W(0, 'net2net:1.5'), 'Net2WiderNet x1.5', 0.696),
  { name: 'NCT-Scratch-Widen', suite: 'nct-widen', role: 'scratch', extra: true, description: 'the widened student architecture ResNetCifar-18(3/16) from random initialisation, students\' hyper-parameters', start: { model: RC18(0.1875) }, lr: 3e-3, weightDecay: 1e-2, epochs: 250, drops: drop5(0), transforms: [], paperValAcc: 0.699 },

  teacher('NCT-DeepenTeacher', 'nct-deepen', RC10(), 'ResNetCifar-10(1/8) teacher for the deepening students'),
  nctStudent('NCT-R2DeeperR', 'nct-deepen', 'NCT-DeepenTeacher', D(0, 'r2r:2'), 'R2DeeperR, 2 blocks per stage (to ResNetCifar-18)', 0.721),
  nctStudent('NCT-RandPadDeeper', 'nct-deepen', 'NCT-DeepenTeacher', D(0, 'random:2'), 'random-padding deepen, 2 blocks per stage', 0.715),
  teacher('NCT-DeepenTeacher-NoResidual', 'nct-deepen', RC10(0.125, true), 'ResNetCifar-10(1/8) without shortcuts, teacher for Net2DeeperNet'),
  nctStudent('NCT-Net2DeeperNet', 'nct-deepen', 'NCT-DeepenTeacher-NoResidual', D(0, 'net2net:2'), 'Net2DeeperNet, 2 blocks per stage', 0.705),
  { name: 'NCT-Scratch-Deepen', suite: 'nct-deepen', role: 'scratch', extra: true, description: 'the deepened student architecture ResNetCifar-18(1/8) from random initialisation, students\' hyper-parameters', start: { model: RC18() }, lr: 3e-3, weightDecay: 1e-2, epochs: 250, drops: drop5(0), transforms: [] },

  fttRun('FTT-R2WiderR', 'ftt-widen', RC18(), W(25, 'r2r:1.5'), 'R2WiderR x1.5'),
  fttRun('FTT-NetMorph', 'ftt-widen', RC18(), W(25, 'netmorph:1.5'), 'NetMorph widen x1.5'),
  fttRun('FTT-RandPadWiden', 'ftt-widen', RC18(), W(25, 'random:1.5'), 'random-padding widen x1.5'),
  fttRun('FTT-Net2WiderNet', 'ftt-widen', RC18(0.125, true), W(25, 'net2net:1.5'), 'Net2WiderNet x1.5 (no shortcuts)'),
  { name: 'FTT-Scratch-Widen', suite: 'ftt-widen', role: 'scratch', extra: true, description: 'ResNetCifar-18(3/16) from scratch with the FTT students\' hyper-parameters', start: { model: RC18(0.1875) }, lr: 3e-3, weightDecay: 1e-2, epochs: 250, drops: drop5(25), transforms: [] },
  fttRun('FTT-R2DeeperR', 'ftt-deepen', RC10(), D(25, 'r2r:2'), 'R2DeeperR, 2 blocks per stage'),
  fttRun('FTT-RandPadDeeper', 'ftt-deepen', RC10(), D(25, 'random:2'), 'random-padding deepen, 2 blocks per stage'),
  fttRun('FTT-Net2DeeperNet', 'ftt-deepen', RC10(0.125, true), D(25, 'net2net:2'), 'Net2DeeperNet, 2 blocks per stage (no shortcuts)'),
  { name: 'FTT-Scratch-Deepen', suite: 'ftt-deepen', role: 'scratch', extra: true, description: 'ResNetCifar-18(1/8) from scratch with the FTT students\' hyper-parameters', start: { model: RC18() }, lr: 3e-3, weightDecay: 1e-2, epochs: 250, drops: drop5(25), transforms: [] },
];

export function findRun(name: string): RunDef {
  const key = name.trim().toLowerCase().replace(/^fft-/, 'ftt-').replace(/[()]/g, '').replace(/\s+/g, '-');
  const alias: Record<string, string> = {
    'nct-widenteachernoresidual': 'nct-widenteacher-noresidual', 'nct-deepenteachernoresidual': 'nct-deepenteacher-noresidual',
    'nct-deeperteacher': 'nct-deepenteacher', 'nct-deeperteacher-noresidual': 'nct-deepenteacher-noresidual', 'viz-netmorpg': 'viz-netmorph',
  };
  const k = alias[key] ?? key;
  const r = RUNS.find((x) => x.name.toLowerCase() === k);
  if (!r) throw new UsageError(`unknown experiment '${name}'; \`r2r experiment --list\` names them all (e.g. NCT-R2WiderR, FTT-R2DeeperR, NCT-Scratch-Widen)`);
  return r;
}

export function suiteRuns(suite: string): RunDef[] {
  if (suite === 'all') return [...RUNS];
  if (!SUITES.includes(suite as SuiteName)) throw new UsageError(`unknown suite '${suite}'; choose one of ${[...SUITES, 'all'].join(', ')}`);
  return RUNS.filter((r) => r.suite === suite);
}

export interface Preset {
  name: PresetName;
  description: string;
  trainLimit?: number;
  valLimit?: number;
  batchSize: number;
  /** Epochs of a run with no event after epoch 0 (teachers, NCT students, scratch runs without a mid-run drop). */
  plainEpochs?: number;
  /** Epochs of a run with a mid-run transform or drop. */
  midRunEpochs?: number;
}

export type PresetName = 'paper' | 'standard' | 'quick';
export const PRESET_NAMES: readonly PresetName[] = ['quick', 'standard', 'paper'];

export const PRESETS: Record<PresetName, Preset> = {
  paper: { name: 'paper', description: 'the table\'s epochs on all 50,000 training and 10,000 test images', batchSize: 128 },
  standard: {
    name: 'standard', description: 'all 50,000 training and 10,000 test images, 30 epochs per run; mid-run transforms and lr drops at the table\'s relative points (FTT at epoch 3, BI at 5, VIZ at 8 of 30), the table\'s learning rates and weight decays, batch 128',
    batchSize: 128, plainEpochs: 30, midRunEpochs: 30,
  },
  quick: {
    name: 'quick', description: 'the same structure in minutes: 5,000 training and 2,000 test images, 4 epochs per run (6 for runs with a mid-run transform, which happens at the same relative point, at least after epoch 1)',
    trainLimit: 5000, valLimit: 2000, batchSize: 128, plainEpochs: 4, midRunEpochs: 6,
  },
};

/** A run at a preset's scale: total epochs and event epochs rescaled. */
export interface ScaledRun { epochs: number; transforms: string[]; lrDrops: string[] }

export function scaleRun(def: RunDef, preset: Preset): ScaledRun {
  const midRun = [...def.drops.map((d) => d.at), ...def.transforms.map((t) => t.at)].some((a) => a > 0);
  const epochs = (midRun ? preset.midRunEpochs : preset.plainEpochs) ?? def.epochs;
  const at = (a: number) => (a === 0 || epochs === def.epochs ? a : Math.min(epochs - 1, Math.max(1, Math.round((a / def.epochs) * epochs))));
  return {
    epochs,
    transforms: def.transforms.map((t) => `${t.kind}@${at(t.at)}:${t.rest}`),
    lrDrops: def.drops.map((d) => `/${d.factor}@${at(d.at)}`),
  };
}

/** Teachers a set of runs needs, in dependency order. */
export function teacherOf(def: RunDef): RunDef | undefined {
  return 'teacher' in def.start ? findRun(def.start.teacher) : undefined;
}
