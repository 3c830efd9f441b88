/**
 * The TensorFlow.js side of the tfjs format, typed with tfjs's own types: building a
 * `tf.LayersModel` from the IR, and an IO handler over Node's file system. Public as the
 * `r2r/tfjs` entry point, apart from the main one, because tfjs-layers' declaration files do not
 * pass a consumer's strict `tsc` with `skipLibCheck: false`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError, UnsupportedLayerError } from '../errors.ts';
import { initBackend } from '../engines/tfjs/backend.ts';
import { analyzeGraph } from '../ir/graph.ts';
import type { Graph, Node, Weights } from '../ir/types.ts';
import { validateWeights } from '../ir/weights.ts';
import { writeFileAtomic } from './atomic.ts';
import { tfjsExportProblems, tfjsShardName, uniqueNamer, type TfjsExportOptions } from './tfjs_support.ts';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: Record<string, unknown>, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);

/** Reads the shards a weights manifest names, relative to the model.json's folder. */
export function readShards(manifest: unknown, dir: string, file: string): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  if (!Array.isArray(manifest)) throw new CheckpointError(`${file}: weightsManifest must be a list of {paths, weights}`);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  for (const group of manifest) {
    if (!isObj(group) || !Array.isArray(own(group, 'paths')) || !Array.isArray(own(group, 'weights'))) {
      throw new CheckpointError(`${file}: a weightsManifest entry is not {paths, weights}`);
    }
    for (const p of own(group, 'paths') as unknown[]) {
      // Shards live beside model.json; a path that leaves the folder is refused.
      if (typeof p !== 'string' || isAbsolute(p) || normalize(p).split(sep).includes('..')) {
        throw new CheckpointError(`${file}: weight shard path ${JSON.stringify(p)} must be a relative path inside ${dir}`);
      }
      const full = join(dir, p);
      if (!existsSync(full)) throw new CheckpointError(`${file}: weight shard ${full} does not exist`);
      const b = readFileSync(full);
      buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
    }
    specs.push(...(own(group, 'weights') as tf.io.WeightsManifestEntry[]));
  }
  return { specs, data: tf.io.CompositeArrayBuffer.join(buffers) };
}

/** Bytes a manifest entry takes in its shard (float32/int32: 4, float16: 2, quantised: 1 or 2). */
export function specBytes(s: tf.io.WeightsManifestEntry): number {
  const n = s.shape.reduce((a, b) => a * b, 1);
  if (s.quantization) return n * (s.quantization.dtype === 'float16' || s.quantization.dtype === 'uint16' ? 2 : 1);
  return n * (s.dtype === 'bool' ? 1 : 4);
}

/** Layer names tfjs accepts in weight names (it refuses others). */
function tfjsName(name: string, taken: Set<string>): string {
  let base = name.replace(/[^A-Za-z0-9._/-]/g, '_');
  if (!/^[A-Za-z0-9]/.test(base)) base = `l${base}`;
  return uniqueNamer(taken)(base);
}

/**
 * Builds a `tf.LayersModel` computing the same function as `graph` with `weights`: conv2d with
 * explicit padding becomes ZeroPadding2D + a 'valid' Conv2D; every other node is one layer.
 * The caller owns (and disposes) the model.
 * @throws UnsupportedLayerError listing every node tfjs layers cannot express.
 */
export async function toLayersModel(graph: Graph, weights: Weights, opts: TfjsExportOptions = {}): Promise<tf.LayersModel> {
  const problems = tfjsExportProblems(graph);
  if (problems.length) throw new UnsupportedLayerError(`cannot write a TensorFlow.js layers model:\n  ${problems.join('\n  ')}`);
  const info = analyzeGraph(graph);
  validateWeights(graph, weights, 'weights', info);
  await initBackend('cpu');
  const taken = new Set<string>();
  const sym = new Map<string, tf.SymbolicTensor>();
  const layerOf = new Map<string, tf.layers.Layer>();
  let input: tf.SymbolicTensor | undefined;
  const one = (n: Node) => sym.get(n.inputs[0])!;
  for (const n of graph.nodes) {
    const name = tfjsName(n.name, taken);
    let layer: tf.layers.Layer | undefined;
    let x: tf.SymbolicTensor;
    switch (n.kind) {
      case 'input':
        x = input = tf.input({ shape: n.shape, name });
        break;
      case 'conv2d': {
        let src = one(n);
        if (Array.isArray(n.padding)) {
          const [t, b, l, r] = n.padding;
          src = tf.layers.zeroPadding2d({ padding: [[t, b], [l, r]], name: tfjsName(`${n.name}_pad`, taken) }).apply(src) as tf.SymbolicTensor;
        }
        layer = tf.layers.conv2d({ name, filters: n.filters, kernelSize: n.kernelSize, strides: n.strides, padding: Array.isArray(n.padding) ? 'valid' : n.padding, useBias: n.useBias });
        x = layer.apply(src) as tf.SymbolicTensor;
        break;
      }
      case 'dense': layer = tf.layers.dense({ name, units: n.units, useBias: n.useBias }); x = layer.apply(one(n)) as tf.SymbolicTensor; break;
      case 'batchNorm': layer = tf.layers.batchNormalization({ name, axis: -1, epsilon: n.epsilon, momentum: n.momentum }); x = layer.apply(one(n)) as tf.SymbolicTensor; break;
      case 'activation': {
        const l = n.fn === 'leakyRelu' ? tf.layers.leakyReLU({ name, alpha: n.alpha ?? 0.01 })
          : n.fn === 'relu6' ? tf.layers.reLU({ name, maxValue: 6 })
          : tf.layers.activation({ name, activation: n.fn });
        x = l.apply(one(n)) as tf.SymbolicTensor;
        break;
      }
      case 'maxPool': case 'avgPool': {
        const cfg = { name, poolSize: n.poolSize, strides: n.strides, padding: n.padding as 'same' | 'valid' };
        x = (n.kind === 'maxPool' ? tf.layers.maxPooling2d(cfg) : tf.layers.averagePooling2d(cfg)).apply(one(n)) as tf.SymbolicTensor;
        break;
      }
      case 'globalAvgPool': x = tf.layers.globalAveragePooling2d({ name }).apply(one(n)) as tf.SymbolicTensor; break;
      case 'flatten': x = tf.layers.flatten({ name }).apply(one(n)) as tf.SymbolicTensor; break;
      case 'add': x = tf.layers.add({ name }).apply(n.inputs.map((i) => sym.get(i)!)) as tf.SymbolicTensor; break;
      case 'concat': x = tf.layers.concatenate({ name, axis: -1 }).apply(n.inputs.map((i) => sym.get(i)!)) as tf.SymbolicTensor; break;
      case 'dropout': x = tf.layers.dropout({ name, rate: n.rate }).apply(one(n)) as tf.SymbolicTensor; break;
      default: {
        const k = (n as Node).kind;
        throw new UnsupportedLayerError(`cannot write a TensorFlow.js layers model: node '${(n as Node).name}' of kind '${k}' has no tfjs layer`);
      }
    }
    sym.set(n.name, x);
    if (layer) layerOf.set(n.name, layer);
  }
  let out = sym.get(graph.output)!;
  if (opts.outputActivation === 'softmax') out = tf.layers.softmax({ name: tfjsName(`${graph.output}_softmax`, taken) }).apply(out) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input!, outputs: out, name: tfjsName(graph.name ?? 'r2r_model', new Set()) });
  for (const [node, layer] of layerOf) {
    const ps = info.nodes.get(node)!.params;
    layer.setWeights(ps.map((p) => tf.tensor(weights[`${node}/${p.name}`].data, p.shape)));
  }
  return model;
}

/** model.json's content for saved artifacts (tfjs-core's own helper is not exported). */
export function modelJson(a: tf.io.ModelArtifacts, manifest: tf.io.WeightsManifestConfig): tf.io.ModelJSON {
  return {
    modelTopology: a.modelTopology as object, format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy ?? null, weightsManifest: manifest,
    ...(a.trainingConfig ? { trainingConfig: a.trainingConfig } : {}), ...(a.userDefinedMetadata ? { userDefinedMetadata: a.userDefinedMetadata } : {}),
  };
}

/**
 * A tfjs IO handler that loads a layers model from, or saves one to, a model.json path with Node's
 * file system (what tfjs-node's `file://` handler does), for `tf.loadLayersModel(tfjsFileSystem(p))`
 * and `model.save(tfjsFileSystem(p))`.
 */
export function tfjsFileSystem(path: string): tf.io.IOHandler {
  return {
    async load() {
      const json = JSON.parse(readFileSync(path, 'utf8')) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const { specs, data } = readShards(manifest, dirname(path), path);
        return [specs, data];
      });
    },
    async save(artifacts) {
      const shard = tfjsShardName(path);
      if (artifacts.weightData) writeFileAtomic(join(dirname(path), shard), new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData)));
      const json = modelJson(artifacts, [{ paths: [shard], weights: artifacts.weightSpecs ?? [] }]);
      writeFileAtomic(path, JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  };
}
