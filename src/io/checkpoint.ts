/**
 * Checkpoints: a directory with
 *   model.json            the graph IR
 *   weights.safetensors   tensors `<node>/<param>` (F32), NHWC layout
 *   optimizer.safetensors (optional) tensors `<slot>/<node>/<param>`, metadata {kind, step}
 *   state.json            (optional) trainer state: epoch, RNG, schedule position, ...
 *   vocab.json            (optional) a text model's vocabulary: token id i is the string at i
 * The directory is written atomically (built under a temporary name, then renamed into place),
 * so a failed write leaves the previous checkpoint intact.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../errors.ts';
import { parseGraph, serializeGraph } from '../ir/json.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { validateWeights } from '../ir/weights.ts';
import type { OptimizerState } from '../engines/engine.ts';
import { encodeSafetensors, readSafetensors } from './safetensors.ts';
import { writeDirAtomic } from './atomic.ts';

export interface Checkpoint {
  graph: Graph;
  weights: Weights;
  optimizer?: OptimizerState;
  /** JSON-serialisable trainer state. */
  state?: Record<string, unknown>;
  /** A token model's vocabulary (character-level: one character per id), so sampling needs no data file. */
  vocab?: string[];
}

export function saveCheckpoint(dir: string, ckpt: Checkpoint): void {
  validateWeights(ckpt.graph, ckpt.weights, `checkpoint ${dir}`);
  writeDirAtomic(dir, (tmp) => {
    writeFileSync(join(tmp, 'model.json'), serializeGraph(ckpt.graph));
    writeFileSync(join(tmp, 'weights.safetensors'), encodeSafetensors(ckpt.weights, { format: 'r2r', layout: 'NHWC' }));
    if (ckpt.optimizer) {
      const flat: Weights = {};
      for (const [slot, ws] of Object.entries(ckpt.optimizer.slots)) for (const [k, t] of Object.entries(ws)) flat[`${slot}/${k}`] = t;
      writeFileSync(join(tmp, 'optimizer.safetensors'), encodeSafetensors(flat, { kind: ckpt.optimizer.kind, step: String(ckpt.optimizer.step) }));
    }
    if (ckpt.state) writeFileSync(join(tmp, 'state.json'), JSON.stringify(ckpt.state, null, 2) + '\n');
    if (ckpt.vocab) writeFileSync(join(tmp, 'vocab.json'), JSON.stringify(ckpt.vocab) + '\n');
  });
}

export function isCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'model.json')) && existsSync(join(dir, 'weights.safetensors'));
}

/** Loads and validates a checkpoint: every tensor's shape is checked against the graph. */
export function loadCheckpoint(dir: string): Checkpoint {
  const modelPath = join(dir, 'model.json');
  if (!existsSync(modelPath)) throw new CheckpointError(`${dir}: not a checkpoint (no model.json)`);
  const graph = parseGraph(readFileSync(modelPath, 'utf8'), modelPath);
  const wPath = join(dir, 'weights.safetensors');
  const { tensors } = readSafetensors(wPath);
  try {
    validateWeights(graph, tensors, wPath);
  } catch (e) {
    throw new CheckpointError((e as Error).message, { cause: e });
  }
  const ckpt: Checkpoint = { graph, weights: tensors };
  const oPath = join(dir, 'optimizer.safetensors');
  if (existsSync(oPath)) {
    const { tensors: flat, metadata } = readSafetensors(oPath);
    if (metadata.kind !== 'adam' && metadata.kind !== 'sgd') throw new CheckpointError(`${oPath}: metadata.kind must be 'adam' or 'sgd', got ${JSON.stringify(metadata.kind)}`);
    const slots: Record<string, Weights> = {};
    for (const [k, t] of Object.entries(flat)) {
      const i = k.indexOf('/');
      const slot = k.slice(0, i), name = k.slice(i + 1);
      const w = tensors[name];
      if (i < 0 || !w) throw new CheckpointError(`${oPath}: tensor '${k}' names no weight of the model`);
      if (w.shape.join(',') !== t.shape.join(',')) throw new CheckpointError(`${oPath}: tensor '${k}' has shape [${t.shape}] but weight '${name}' has [${w.shape}]`);
      (slots[slot] ??= {})[name] = t;
    }
    ckpt.optimizer = { kind: metadata.kind, step: Number(metadata.step ?? 0), slots };
  }
  const sPath = join(dir, 'state.json');
  if (existsSync(sPath)) {
    try { ckpt.state = JSON.parse(readFileSync(sPath, 'utf8')); } catch (e) { throw new CheckpointError(`${sPath}: not valid JSON (${(e as Error).message})`); }
  }
  const vPath = join(dir, 'vocab.json');
  if (existsSync(vPath)) ckpt.vocab = readVocab(vPath, graph);
  return ckpt;
}

/** vocab.json: distinct strings, as many as the graph's tokenInput vocabulary. */
function readVocab(path: string, graph: Graph): string[] {
  let v: unknown;
  try { v = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`); }
  if (!Array.isArray(v) || !v.every((c) => typeof c === 'string' && c.length > 0)) throw new CheckpointError(`${path}: must be a JSON array of non-empty strings (token id i is entry i)`);
  if (new Set(v).size !== v.length) throw new CheckpointError(`${path}: the vocabulary has repeated entries`);
  const input = graph.nodes.find((n) => n.kind === 'tokenInput');
  if (!input || input.kind !== 'tokenInput') throw new CheckpointError(`${path}: the checkpoint's graph has no tokenInput, so a vocabulary means nothing`);
  if (v.length !== input.vocab) throw new CheckpointError(`${path}: ${v.length} entries, but tokenInput '${input.name}' has vocab ${input.vocab}`);
  return v as string[];
}
