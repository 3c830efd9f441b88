/** Loading a dataset by name: CIFAR-10 from disk (optionally a slice) or the synthetic set. */
import { UsageError } from '../errors.ts';
import { locateCifar10, readCifar10 } from './cifar10.ts';
import { makeDataset, type Dataset } from './dataset.ts';
import { syntheticSets, type SyntheticOptions } from './synthetic.ts';

export type DatasetName = 'cifar10' | 'synthetic';
export const DATASET_NAMES: readonly DatasetName[] = ['cifar10', 'synthetic'];

export interface DataSpec {
  dataset: DatasetName;
  /** CIFAR-10 directory (`--data`); else R2R_DATA, else ./data/cifar10. */
  dir?: string;
  /** Use only the first N training examples (`--limit`). */
  trainLimit?: number;
  /** Use only the first N validation examples (`--val-limit`). */
  valLimit?: number;
  /** Synthetic data options (sizes, shape, seed). */
  synthetic?: SyntheticOptions;
}

export function loadDataset(spec: DataSpec): Dataset {
  for (const [k, v] of [['trainLimit', spec.trainLimit], ['valLimit', spec.valLimit]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw new UsageError(`${k}: expected a positive integer, got ${v}`);
  }
  if (spec.dataset === 'cifar10') {
    const dir = locateCifar10(spec.dir);
    const { train, val } = readCifar10(dir, { trainLimit: spec.trainLimit, valLimit: spec.valLimit });
    return makeDataset('cifar10', train, val, { dataset: 'cifar10', dir, trainLimit: spec.trainLimit ?? null, valLimit: spec.valLimit ?? null });
  }
  if (spec.dataset === 'synthetic') {
    const o: SyntheticOptions = { ...spec.synthetic };
    if (spec.trainLimit !== undefined) o.trainExamples = spec.trainLimit;
    if (spec.valLimit !== undefined) o.valExamples = spec.valLimit;
    const { train, val } = syntheticSets(o);
    return makeDataset('synthetic', train, val, { dataset: 'synthetic', synthetic: o });
  }
  throw new UsageError(`unknown dataset '${String(spec.dataset)}'; choose one of ${DATASET_NAMES.join(', ')}`);
}

export * from './dataset.ts';
export { locateCifar10, readCifar10, readCifar10File, CIFAR10_CLASSES, FETCH_HINT, DEFAULT_DATA_DIR } from './cifar10.ts';
export { syntheticSets, type SyntheticOptions } from './synthetic.ts';
