/**
 * TensorFlow.js layers models: a `model.json` (a Keras topology plus a weights manifest) and its
 * binary weight shards, as `model.save('file://dir')` writes them in tfjs-node.
 *
 * Import reads the topology JSON itself (Sequential and functional models) and decodes the shards
 * with tfjs's own `tf.io.decodeWeights`, so quantised and float16 weights decode as tfjs would.
 * Export builds a real `tf.LayersModel` with `tf.layers` and serialises it with `model.save`, so
 * what is written is exactly what tfjs itself writes. The IR is NHWC with Keras kernel layouts
 * (conv `[kh, kw, cin, cout]`, dense `[in, out]`), so weights carry over without transposes.
 *
 * A fused activation (`Dense({activation: 'relu'})`) becomes a separate activation node; a softmax
 * on the output is not part of the IR (whose output is the logits): it is reported as
 * `outputActivation: 'softmax'` and put back by {@link writeTfjs}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError, R2RError, UnsupportedLayerError } from '../errors.ts';
import { initBackend } from '../engines/tfjs/backend.ts';
import { analyzeGraph } from '../ir/graph.ts';
import type { ActivationFn, Graph, Node, Padding, Tensor, Weights } from '../ir/types.ts';
import { validateWeights } from '../ir/weights.ts';
import { writeFileAtomic } from './atomic.ts';
import { tfjsShardName, uniqueNamer, type TfjsExportOptions } from './tfjs_support.ts';
import { modelJson, readShards, specBytes, toLayersModel } from './tfjs_layers.ts';

export { tfjsExportProblems, tfjsOutputs } from './tfjs_support.ts';
export type { TfjsExportOptions } from './tfjs_support.ts';

/** A model read from a file: the IR graph, its weights, and what the IR leaves out. */
export interface ImportedModel {
  graph: Graph;
  weights: Weights;
  /** The file applied a softmax after the logits; writers of formats that can hold it put it back. */
  outputActivation?: 'softmax';
}

// ---------------------------------------------------------------------------------------------
// Import

type Json = Record<string, unknown>;

/** Keras activation names the IR has; 'linear' is none. */
const ACTIVATIONS: Record<string, ActivationFn | null> = {
  linear: null, relu: 'relu', relu6: 'relu6', elu: 'elu', tanh: 'tanh', sigmoid: 'sigmoid', gelu: 'gelu',
};

const SUPPORTED = [
  'InputLayer', 'Conv2D', 'Dense', 'BatchNormalization', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'Softmax',
  'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'Flatten', 'Add', 'Concatenate', 'Dropout',
  'ZeroPadding2D', // only in front of a 'valid' Conv2D: the pair is one conv with explicit padding
];

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: Json, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);

/** One layer of the topology, with the inputs it is called on (layer names). */
interface RawLayer { className: string; name: string; config: Json; inputs: string[] }

function pair(v: unknown, what: string, where: string): [number, number] {
  const a = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(a) || a.length !== 2 || !a.every((x) => Number.isInteger(x) && x > 0)) {
    throw new CheckpointError(`${where}: ${what} must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  }
  return [a[0], a[1]];
}

/** The layers of a Sequential or functional topology in order, each with its input layer names. */
function topologyLayers(topology: Json, file: string): { layers: RawLayer[]; output: string; problems: string[] } {
  const cls = own(topology, 'class_name');
  const config = own(topology, 'config');
  const problems: string[] = [];
  const asLayer = (l: unknown, i: number): { className: string; name: string; config: Json; raw: Json } => {
    if (!isObj(l) || typeof own(l, 'class_name') !== 'string' || !isObj(own(l, 'config'))) {
      throw new CheckpointError(`${file}: modelTopology layer ${i} is not {class_name, config}`);
    }
    const c = own(l, 'config') as Json;
    const name = typeof own(l, 'name') === 'string' ? (own(l, 'name') as string) : own(c, 'name');
    if (typeof name !== 'string' || name === '') throw new CheckpointError(`${file}: modelTopology layer ${i} (${String(own(l, 'class_name'))}) has no name`);
    return { className: own(l, 'class_name') as string, name, config: c, raw: l };
  };

  if (cls === 'Sequential') {
    // tfjs writes {name, layers}; old Keras wrote the layer list itself.
    const list = Array.isArray(config) ? config : isObj(config) ? own(config, 'layers') : undefined;
    if (!Array.isArray(list) || list.length === 0) throw new CheckpointError(`${file}: Sequential model has no layers`);
    const ls = list.map(asLayer);
    const layers: RawLayer[] = [];
    let prev: string;
    const first = ls[0];
    if (first.className === 'InputLayer') {
      layers.push({ className: 'InputLayer', name: first.name, config: first.config, inputs: [] });
      prev = first.name;
      ls.shift();
    } else {
      const shape = own(first.config, 'batch_input_shape') ?? own(first.config, 'batch_shape');
      if (!Array.isArray(shape)) throw new CheckpointError(`${file}: the first layer '${first.name}' of the Sequential model has no batch_input_shape, so the input shape is unknown`);
      prev = `${first.name}_input`; // the name tfjs gives the implicit input layer
      layers.push({ className: 'InputLayer', name: prev, config: { batch_input_shape: shape }, inputs: [] });
    }
    for (const l of ls) {
      layers.push({ className: l.className, name: l.name, config: l.config, inputs: [prev] });
      prev = l.name;
    }
    return { layers, output: prev, problems };
  }

  if (cls === 'Model' || cls === 'Functional') {
    if (!isObj(config) || !Array.isArray(own(config, 'layers'))) throw new CheckpointError(`${file}: functional model has no config.layers`);
    const ls = (own(config, 'layers') as unknown[]).map(asLayer);
    const ins = own(config, 'input_layers'), outs = own(config, 'output_layers');
    if (!Array.isArray(ins) || ins.length !== 1) problems.push(`the model has ${Array.isArray(ins) ? ins.length : 0} inputs (r2r takes exactly one)`);
    if (!Array.isArray(outs) || outs.length !== 1 || !Array.isArray(outs[0]) || typeof outs[0][0] !== 'string') {
      problems.push(`the model has ${Array.isArray(outs) ? outs.length : 0} outputs (r2r takes exactly one)`);
    }
    const layers: RawLayer[] = [];
    for (const l of ls) {
      const nodes = own(l.raw, 'inbound_nodes');
      const inputs: string[] = [];
      if (Array.isArray(nodes) && nodes.length > 1) {
        problems.push(`${l.className} '${l.name}' is called ${nodes.length} times (shared layers are not supported)`);
      } else if (Array.isArray(nodes) && nodes.length === 1) {
        const call = nodes[0];
        if (!Array.isArray(call)) throw new CheckpointError(`${file}: layer '${l.name}': inbound_nodes[0] is not a list`);
        for (const t of call) {
          if (!Array.isArray(t) || typeof t[0] !== 'string') throw new CheckpointError(`${file}: layer '${l.name}': an inbound tensor is not [layer, node, tensor, kwargs]`);
          if (t[1] !== 0 || t[2] !== 0) problems.push(`${l.className} '${l.name}' reads output ${t[2]} of call ${t[1]} of '${t[0]}' (only single-output, single-call layers are supported)`);
          inputs.push(t[0]);
        }
      }
      layers.push({ className: l.className, name: l.name, config: l.config, inputs });
    }
    const output = Array.isArray(outs) && Array.isArray(outs[0]) && typeof outs[0][0] === 'string' ? outs[0][0] : '';
    return { layers, output, problems };
  }
  throw new CheckpointError(`${file}: modelTopology.class_name is ${JSON.stringify(cls)}; expected 'Sequential', 'Model' or 'Functional'`);
}

/** Why a layer cannot become IR nodes, or undefined when it can. */
function unsupportedReason(l: RawLayer, isOutput: boolean): string | undefined {
  const c = l.config;
  if (!SUPPORTED.includes(l.className)) return 'layer class not supported';
  const df = own(c, 'data_format');
  if (df !== undefined && df !== null && df !== 'channels_last') return `data_format ${JSON.stringify(df)} (only channels_last)`;
  const act = own(c, 'activation');
  if ((l.className === 'Conv2D' || l.className === 'Dense' || l.className === 'Activation') && act !== undefined && act !== null) {
    if (typeof act !== 'string') return `activation ${JSON.stringify(act)}`;
    if (act === 'softmax') { if (!isOutput) return 'softmax before the output'; }
    else if (!Object.hasOwn(ACTIVATIONS, act)) return `activation '${act}' (supported: ${Object.keys(ACTIVATIONS).join(', ')}, and softmax on the output)`;
  }
  switch (l.className) {
    case 'Conv2D': {
      const d = own(c, 'dilation_rate');
      if (d !== undefined && d !== 1 && !(Array.isArray(d) && d.every((x) => x === 1))) return `dilation_rate ${JSON.stringify(d)} (only 1)`;
      if (own(c, 'groups') !== undefined && own(c, 'groups') !== 1) return `groups ${JSON.stringify(own(c, 'groups'))} (only 1)`;
      if (own(c, 'padding') !== 'same' && own(c, 'padding') !== 'valid') return `padding ${JSON.stringify(own(c, 'padding'))}`;
      return undefined;
    }
    case 'MaxPooling2D': case 'AveragePooling2D':
      if (own(c, 'padding') !== 'same' && own(c, 'padding') !== 'valid') return `padding ${JSON.stringify(own(c, 'padding'))}`;
      return undefined;
    case 'ReLU': {
      const m = own(c, 'max_value'), s = own(c, 'negative_slope'), t = own(c, 'threshold');
      if ((s ?? 0) !== 0 || (t ?? 0) !== 0) return 'negative_slope/threshold other than 0';
      if (m !== undefined && m !== null && m !== 6) return `max_value ${JSON.stringify(m)} (only none or 6)`;
      return undefined;
    }
    case 'ELU': return (own(c, 'alpha') ?? 1) === 1 ? undefined : `alpha ${JSON.stringify(own(c, 'alpha'))} (only 1)`;
    case 'Softmax': return isOutput ? undefined : 'softmax before the output';
    case 'BatchNormalization': case 'Concatenate': {
      const a = own(c, 'axis');
      return a === -1 || typeof a === 'number' ? undefined : `axis ${JSON.stringify(a)}`; // positive axes are checked against the shape below
    }
    case 'Dropout':
      return own(c, 'noise_shape') == null ? undefined : 'noise_shape';
    case 'GlobalAveragePooling2D':
      return own(c, 'keepdims') ? 'keepdims' : undefined;
    case 'ZeroPadding2D':
      return zeroPads(own(c, 'padding')) ? undefined : `padding ${JSON.stringify(own(c, 'padding'))}`;
  }
  return undefined;
}

/** ZeroPadding2D's padding as [top, bottom, left, right], or undefined when malformed. */
function zeroPads(p: unknown): [number, number, number, number] | undefined {
  const nat = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0;
  if (nat(p)) return [p, p, p, p];
  if (Array.isArray(p) && p.length === 2 && nat(p[0]) && nat(p[1])) return [p[0], p[0], p[1], p[1]];
  if (Array.isArray(p) && p.length === 2 && p.every((q) => Array.isArray(q) && q.length === 2 && q.every(nat))) {
    return [p[0][0], p[0][1], p[1][0], p[1][1]];
  }
  return undefined;
}

/**
 * Converts a parsed layers-model topology (`modelTopology` of a model.json) to the IR. Every layer
 * r2r cannot represent is collected first, and all of them are reported in one
 * {@link UnsupportedLayerError}.
 */
function topologyToGraph(topology: unknown, file = 'model.json'): { graph: Graph; outputActivation?: 'softmax'; params: Map<string, { layer: string; param: string; transform?: 'ones' | 'zeros' }[]> } {
  if (!isObj(topology)) throw new CheckpointError(`${file}: modelTopology is missing or not an object`);
  // Keras (Python) nests the model under model_config.
  const topo = isObj(own(topology, 'model_config')) ? (own(topology, 'model_config') as Json) : topology;
  const { layers, output, problems } = topologyLayers(topo, file);
  const byName = new Map(layers.map((l) => [l.name, l]));
  const consumers = new Map<string, number>();
  for (const l of layers) for (const i of l.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);

  // The softmax at the end (fused or a layer of its own) is dropped from the IR and reported.
  let outputActivation: 'softmax' | undefined;
  let irOutput = output;
  const outLayer = byName.get(output);
  if (outLayer && (outLayer.className === 'Softmax' || (outLayer.className === 'Activation' && own(outLayer.config, 'activation') === 'softmax'))) {
    outputActivation = 'softmax';
    irOutput = outLayer.inputs[0] ?? output;
  } else if (outLayer && own(outLayer.config, 'activation') === 'softmax') {
    outputActivation = 'softmax';
  }

  for (const l of layers) {
    let why = unsupportedReason(l, l.name === output);
    if (!why && l.className === 'ZeroPadding2D') {
      const users = layers.filter((u) => u.inputs.includes(l.name));
      if (l.name === output || users.length !== 1 || users[0].className !== 'Conv2D' || own(users[0].config, 'padding') !== 'valid') {
        why = "only supported as the sole input of a Conv2D with padding 'valid'";
      }
    }
    if (why) problems.push(`${l.className} '${l.name}': ${why}`);
    for (const i of l.inputs) if (!byName.has(i)) problems.push(`${l.className} '${l.name}' reads '${i}', which is not a layer of the model`);
  }
  if (problems.length) {
    throw new UnsupportedLayerError(`${file}: cannot import ${problems.length} layer${problems.length > 1 ? 's' : ''}:\n  ${problems.join('\n  ')}\n(r2r imports ${SUPPORTED.join(', ')})`);
  }

  const nodes: Node[] = [];
  const fresh = uniqueNamer(new Set(layers.map((l) => l.name)));
  /** The IR node holding each layer's output (a fused activation moves it). */
  const outNode = new Map<string, string>();
  const params = new Map<string, { layer: string; param: string; transform?: 'ones' | 'zeros' }[]>();
  const pending: { layer: RawLayer; axis: number; node: string }[] = [];
  const pads = new Map<string, { pads: [number, number, number, number]; input: string }>();
  const num = (l: RawLayer, k: string, dflt: number): number => {
    const v = own(l.config, k) ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(`${file}: ${l.className} '${l.name}': ${k} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (l: RawLayer, k: string, dflt: boolean): boolean => {
    const v = own(l.config, k) ?? dflt;
    if (typeof v !== 'boolean') throw new CheckpointError(`${file}: ${l.className} '${l.name}': ${k} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };

  for (const l of layers) {
    if (outputActivation && l.name === output && irOutput !== output) continue; // the dropped softmax layer
    const inputs = l.inputs.map((i) => outNode.get(i) ?? i);
    const where = `${file}: ${l.className} '${l.name}'`;
    let fused: string | null = null;
    switch (l.className) {
      case 'InputLayer': {
        const s = own(l.config, 'batch_input_shape') ?? own(l.config, 'batch_shape');
        if (!Array.isArray(s) || s.length < 2 || !s.slice(1).every((x) => Number.isInteger(x) && x > 0)) {
          throw new CheckpointError(`${where}: batch_input_shape must be [null, ...positive sizes], got ${JSON.stringify(s)}`);
        }
        nodes.push({ kind: 'input', name: l.name, inputs: [], shape: s.slice(1) as number[] });
        break;
      }
      case 'ZeroPadding2D':
        pads.set(l.name, { pads: zeroPads(own(l.config, 'padding'))!, input: inputs[0] });
        break;
      case 'Conv2D': {
        const filters = num(l, 'filters', NaN);
        const useBias = bool(l, 'use_bias', true);
        const pad = pads.get(l.inputs[0]);
        nodes.push({
          kind: 'conv2d', name: l.name, inputs: pad ? [pad.input] : inputs, filters, kernelSize: pair(own(l.config, 'kernel_size'), 'kernel_size', where),
          strides: pair(own(l.config, 'strides') ?? 1, 'strides', where), padding: pad ? pad.pads : own(l.config, 'padding') as Padding, useBias,
        });
        params.set(l.name, [{ layer: l.name, param: 'kernel' }, ...(useBias ? [{ layer: l.name, param: 'bias' }] : [])]);
        fused = (own(l.config, 'activation') as string | null | undefined) ?? null;
        break;
      }
      case 'Dense': {
        const useBias = bool(l, 'use_bias', true);
        nodes.push({ kind: 'dense', name: l.name, inputs, units: num(l, 'units', NaN), useBias });
        params.set(l.name, [{ layer: l.name, param: 'kernel' }, ...(useBias ? [{ layer: l.name, param: 'bias' }] : [])]);
        fused = (own(l.config, 'activation') as string | null | undefined) ?? null;
        break;
      }
      case 'BatchNormalization': {
        nodes.push({ kind: 'batchNorm', name: l.name, inputs, epsilon: num(l, 'epsilon', 1e-3), momentum: num(l, 'momentum', 0.99) });
        const center = bool(l, 'center', true), scale = bool(l, 'scale', true);
        params.set(l.name, [
          scale ? { layer: l.name, param: 'gamma' } : { layer: l.name, param: 'gamma', transform: 'ones' },
          center ? { layer: l.name, param: 'beta' } : { layer: l.name, param: 'beta', transform: 'zeros' },
          { layer: l.name, param: 'moving_mean' }, { layer: l.name, param: 'moving_variance' },
        ]);
        pending.push({ layer: l, axis: own(l.config, 'axis') as number, node: l.name });
        break;
      }
      case 'Activation': {
        const a = own(l.config, 'activation') as string;
        const fn = ACTIVATIONS[a];
        if (fn) nodes.push({ kind: 'activation', name: l.name, inputs, fn });
        else outNode.set(l.name, inputs[0]); // linear: an identity
        break;
      }
      case 'ReLU':
        nodes.push({ kind: 'activation', name: l.name, inputs, fn: own(l.config, 'max_value') === 6 ? 'relu6' : 'relu' });
        break;
      case 'LeakyReLU':
        nodes.push({ kind: 'activation', name: l.name, inputs, fn: 'leakyRelu', alpha: num(l, 'alpha', 0.3) });
        break;
      case 'ELU':
        nodes.push({ kind: 'activation', name: l.name, inputs, fn: 'elu' });
        break;
      case 'MaxPooling2D': case 'AveragePooling2D': {
        const poolSize = pair(own(l.config, 'pool_size') ?? 2, 'pool_size', where);
        nodes.push({
          kind: l.className === 'MaxPooling2D' ? 'maxPool' : 'avgPool', name: l.name, inputs, poolSize,
          strides: own(l.config, 'strides') == null ? poolSize : pair(own(l.config, 'strides'), 'strides', where), padding: own(l.config, 'padding') as Padding,
        });
        break;
      }
      case 'GlobalAveragePooling2D': nodes.push({ kind: 'globalAvgPool', name: l.name, inputs }); break;
      case 'Flatten': nodes.push({ kind: 'flatten', name: l.name, inputs }); break;
      case 'Add': nodes.push({ kind: 'add', name: l.name, inputs }); break;
      case 'Concatenate':
        nodes.push({ kind: 'concat', name: l.name, inputs });
        pending.push({ layer: l, axis: own(l.config, 'axis') as number, node: l.name });
        break;
      case 'Dropout': nodes.push({ kind: 'dropout', name: l.name, inputs, rate: num(l, 'rate', 0) }); break;
    }
    if (fused && fused !== 'linear' && !(fused === 'softmax' && l.name === output)) {
      const name = fresh(`${l.name}_${fused}`);
      nodes.push({ kind: 'activation', name, inputs: [l.name], fn: ACTIVATIONS[fused] as ActivationFn });
      outNode.set(l.name, name);
    }
  }
  const graph: Graph = { format: 'r2r-graph', version: 1, nodes, output: outNode.get(irOutput) ?? irOutput };
  const info = analyzeGraph(graph);
  // Keras counts the batch axis: the channel axis of an [H, W, C] example is 3 (or -1).
  const bad = pending.filter(({ axis, node }) => {
    const rank = info.nodes.get(node)!.outputShape.length;
    return axis !== -1 && axis !== rank;
  });
  if (bad.length) {
    throw new UnsupportedLayerError(`${file}: cannot import ${bad.length} layer${bad.length > 1 ? 's' : ''}:\n  ${bad.map(({ layer, axis }) => `${layer.className} '${layer.name}': axis ${axis} is not the channel (last) axis`).join('\n  ')}`);
  }
  return { graph, ...(outputActivation ? { outputActivation } : {}), params };
}

/**
 * Reads a TensorFlow.js layers model (`model.json` and its weight shards) into the IR.
 * @throws UnsupportedLayerError listing every layer r2r cannot represent (nothing is read further).
 * @throws CheckpointError when the file or a shard is missing, malformed or too short.
 */
export async function readTfjs(path: string): Promise<ImportedModel> {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such file`);
  let json: unknown;
  try { json = JSON.parse(readFileSync(path, 'utf8')); } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (!isObj(json)) throw new CheckpointError(`${path}: not a TensorFlow.js model.json (expected an object)`);
  const format = own(json, 'format');
  if (format === 'graph-model') throw new CheckpointError(`${path}: a TensorFlow.js graph model (from tfjs-converter); r2r reads layers models (tf.LayersModel, format 'layers-model')`);
  if (format !== undefined && format !== 'layers-model') throw new CheckpointError(`${path}: format ${JSON.stringify(format)}; expected 'layers-model'`);
  const { graph, outputActivation, params } = topologyToGraph(own(json, 'modelTopology'), path);

  const { specs, data } = readShards(own(json, 'weightsManifest') ?? [], dirname(path), path);
  const need = specs.reduce((a, s) => a + specBytes(s), 0);
  if (data.byteLength < need) throw new CheckpointError(`${path}: the weight shards hold ${data.byteLength} bytes but the manifest needs ${need}`);
  await initBackend('cpu');
  const byName = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  let decoded: tf.NamedTensorMap;
  try { decoded = tf.io.decodeWeights(data, specs); } catch (e) {
    throw new CheckpointError(`${path}: cannot decode the weights: ${(e as Error).message}`, { cause: e });
  }
  for (const [k, t] of Object.entries(decoded)) {
    // Keras (Python) names end in ':0'; tfjs names do not.
    const name = k.replace(/:0$/, '');
    byName.set(name, t.dtype === 'float32' ? (t.dataSync() as Float32Array) : Float32Array.from(t.dataSync()));
    shapes.set(name, t.shape);
    t.dispose();
  }

  const info = analyzeGraph(graph);
  const weights = Object.create(null) as Weights;
  const missing: string[] = [];
  for (const [node, list] of params) {
    const specsOf = info.nodes.get(node)!.params;
    list.forEach((p, i) => {
      const spec = specsOf[i];
      const key = `${p.layer}/${p.param}`;
      let t: Tensor | undefined;
      if (p.transform) t = { shape: spec.shape, data: new Float32Array(spec.shape.reduce((a, b) => a * b, 1)).fill(p.transform === 'ones' ? 1 : 0) };
      else {
        const d = byName.get(key);
        if (d) t = { shape: shapes.get(key)!, data: d };
      }
      if (!t) missing.push(key);
      else weights[`${node}/${spec.name}`] = t;
    });
  }
  if (missing.length) throw new CheckpointError(`${path}: the weights manifest lacks ${missing.join(', ')}`);
  try { validateWeights(graph, weights, path, info); } catch (e) {
    throw new CheckpointError((e as Error).message, { cause: e });
  }
  return { graph: { ...graph, name: basename(dirname(path)) === '.' ? basename(path) : `${basename(dirname(path))}/${basename(path)}` }, weights, ...(outputActivation ? { outputActivation } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Export

/**
 * Writes `graph` and `weights` as a TensorFlow.js layers model: `path` (a .json file) and one
 * weight shard beside it, each written atomically, shard first, so a reader never finds a
 * model.json whose shard is missing. `tf.loadLayersModel` loads the result.
 */
export async function writeTfjs(path: string, model: { graph: Graph; weights: Weights } & TfjsExportOptions): Promise<void> {
  const m = await toLayersModel(model.graph, model.weights, model);
  let artifacts: tf.io.ModelArtifacts | undefined;
  try {
    await m.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
  } finally {
    m.dispose();
  }
  if (!artifacts?.weightSpecs || !artifacts.weightData) throw new R2RError('R2R_CHECKPOINT', `${path}: tfjs produced no weights`);
  const shard = tfjsShardName(path);
  const data = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  const json = modelJson(artifacts, [{ paths: [shard], weights: artifacts.weightSpecs }]);
  writeFileAtomic(join(dirname(path), shard), new Uint8Array(data));
  writeFileAtomic(path, JSON.stringify(json));
}

