/**
 * Model file formats by name, for commands that read or write a user's model: an r2r checkpoint
 * directory, a TensorFlow.js layers model (`model.json` + shards), and whatever else registers
 * (ONNX). A format is chosen explicitly (`--from/--to`) or from the path: an existing path by its
 * content, a new one by its name.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { UsageError } from '../errors.ts';
import type { Graph, Weights } from '../ir/types.ts';
import { writeFileAtomic } from './atomic.ts';
import { isCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { onnxExportProblems } from './onnx/export.ts';
import { isTfjsModelJson, tfjsExportProblems, tfjsOutputs } from './tfjs_support.ts';

/** A model as a format reads or writes it. */
export interface ModelFile {
  graph: Graph;
  weights: Weights;
  /** The source applied a softmax after the logits (the IR's output); a writer may put it back. */
  outputActivation?: 'softmax';
}

export interface ModelFormat {
  /** Short name for --from/--to: 'r2r', 'tfjs', 'onnx'. */
  name: string;
  /** One line for help texts. */
  description: string;
  /** Whether a path that does not exist yet names a file of this format (by its name). */
  matchesName(path: string): boolean;
  /** Whether an existing path holds a model of this format (by its content). */
  detect(path: string): boolean;
  read(path: string): Promise<ModelFile>;
  /** What keeps `graph` from being written in this format (empty: nothing). Checked before any work. */
  problems?(graph: Graph): string[];
  /** Writes atomically: a reader finds the old files or the complete new ones, never a mix. */
  write(path: string, model: ModelFile): Promise<void>;
  /** Every path write(path) creates or replaces, in the order it writes them (the overwrite check). */
  outputs(path: string): string[];
}

const registry = new Map<string, ModelFormat>();

export function registerFormat(f: ModelFormat): void {
  registry.set(f.name, f);
}

/** The registered formats, in registration order. */
export function modelFormats(): ModelFormat[] {
  return [...registry.values()];
}

export function getFormat(name: string): ModelFormat {
  const f = registry.get(name);
  if (!f) throw new UsageError(`unknown model format '${name}'; known formats: ${[...registry.keys()].join(', ')}`);
  return f;
}

/** The format of an existing model at `path` (content first, then name), or of `explicit`. */
export function formatOfInput(path: string, explicit?: string): ModelFormat {
  if (explicit) return getFormat(explicit);
  if (!existsSync(path)) throw new UsageError(`${path}: no such file or directory`);
  for (const f of registry.values()) if (f.detect(path)) return f;
  for (const f of registry.values()) if (f.matchesName(path)) return f;
  throw new UsageError(`${path}: not a model r2r can read (${[...registry.values()].map((f) => f.description).join('; ')}); name the format with --from`);
}

/** The format to write `path` in: `explicit`, else by its name (never guessed from the input's). */
export function formatOfOutput(path: string, explicit?: string): ModelFormat {
  if (explicit) return getFormat(explicit);
  for (const f of registry.values()) if (f.matchesName(path)) return f;
  throw new UsageError(`${path}: cannot tell the output format from the name; give --to ${[...registry.keys()].join('|')} (${[...registry.values()].map((f) => `${f.name}: ${f.description}`).join('; ')})`);
}

/**
 * A format stored as one file (e.g. `.onnx`): `load` imports the codec on first use, so a command
 * that never touches the format never loads its dependencies. `decode` and `encode` may be async.
 */
export function singleFileFormat(o: {
  name: string; extension: string; description: string;
  load: () => Promise<{
    decode(bytes: Uint8Array, path: string): ModelFile | Promise<ModelFile>;
    encode(model: ModelFile): Uint8Array | Promise<Uint8Array>;
    problems?(graph: Graph): string[];
  }>;
  /** Checked before the codec is loaded, for the overwrite check and early refusals. */
  problems?(graph: Graph): string[];
}): ModelFormat {
  const ext = o.extension.toLowerCase();
  return {
    name: o.name,
    description: o.description,
    matchesName: (p) => p.toLowerCase().endsWith(ext),
    detect: (p) => p.toLowerCase().endsWith(ext) && existsSync(p) && statSync(p).isFile(),
    read: async (p) => (await o.load()).decode(new Uint8Array(readFileSync(p)), p),
    ...(o.problems ? { problems: o.problems } : {}),
    write: async (p, m) => writeFileAtomic(p, await (await o.load()).encode(m)),
    outputs: (p) => [p],
  };
}

// r2r checkpoint directory (model.json + weights.safetensors). A path to its model.json reads the directory.
registerFormat({
  name: 'r2r',
  description: 'r2r checkpoint directory (model.json + weights.safetensors)',
  matchesName: (p) => !/\.[A-Za-z0-9]+$/.test(basename(p.replace(/\/+$/, ''))),
  detect: (p) => (statSync(p).isDirectory() ? isCheckpoint(p) : basename(p) === 'model.json' && isCheckpoint(dirname(p)) && isR2rGraphJson(p)),
  read: async (p) => {
    const dir = statSync(p).isDirectory() ? p : dirname(p);
    const c = loadCheckpoint(dir);
    return { graph: c.graph, weights: c.weights };
  },
  write: async (p, m) => saveCheckpoint(p, { graph: m.graph, weights: m.weights }),
  outputs: (p) => [p],
});

function isR2rGraphJson(p: string): boolean {
  try { return (JSON.parse(readFileSync(p, 'utf8')) as { format?: unknown }).format === 'r2r-graph'; } catch { return false; }
}

// TensorFlow.js layers model (model.json + weight shards). Loaded lazily: it pulls in tfjs.
registerFormat({
  name: 'tfjs',
  description: 'TensorFlow.js layers model (model.json + weight shards)',
  matchesName: (p) => p.toLowerCase().endsWith('.json'),
  detect: (p) => statSync(p).isFile() && isTfjsModelJson(p),
  read: async (p) => (await import('./tfjs.ts')).readTfjs(p),
  problems: tfjsExportProblems,
  write: async (p, m) => (await import('./tfjs.ts')).writeTfjs(p, m),
  outputs: tfjsOutputs,
});

// ONNX model file, as torch.onnx.export writes it (NCHW). The codec (protobufjs) loads lazily;
// the pre-flight check does not need it.
registerFormat(singleFileFormat({
  name: 'onnx',
  extension: '.onnx',
  description: 'ONNX model (.onnx, NCHW, e.g. from torch.onnx.export)',
  load: async () => {
    const onnx = await import('./onnx/index.ts');
    return {
      decode: (bytes, path) => onnx.readOnnx(bytes, { where: path, name: basename(path).replace(/\.onnx$/i, '') }),
      encode: (m) => onnx.writeOnnx(m.graph, m.weights, m.outputActivation ? { outputActivation: m.outputActivation } : {}),
    };
  },
  problems: onnxExportProblems,
}));
