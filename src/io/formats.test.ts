// The model-format registry: choosing formats by content, name and flag, and plugging in a format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGraph, serializeGraph } from '../ir/json.ts';
import { initWeights } from '../ir/weights.ts';
import { mlp } from '../models/mlp.ts';
import { Rng } from '../rng.ts';
import { decodeSafetensors, encodeSafetensors } from './safetensors.ts';
import { saveCheckpoint } from './checkpoint.ts';
import { formatOfInput, formatOfOutput, getFormat, registerFormat, singleFileFormat, type ModelFile } from './formats.ts';

test('formats by name: .json is tfjs, no extension an r2r checkpoint, an unknown extension needs --to', () => {
  assert.equal(formatOfOutput('out/model.json').name, 'tfjs');
  assert.equal(formatOfOutput('out/wide').name, 'r2r');
  assert.equal(formatOfOutput('out/wide/').name, 'r2r');
  assert.equal(formatOfOutput('out/thing.bin', 'r2r').name, 'r2r');
  assert.throws(() => formatOfOutput('out/x.weird'), /cannot tell the output format from the name; give --to/);
  assert.throws(() => getFormat('caffe'), (e: Error & { code?: string }) => e.code === 'R2R_USAGE' && /unknown model format 'caffe'/.test(e.message));
});

test('formats by content: a checkpoint directory and its model.json are r2r; a missing path is a usage error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'r2r-formats-'));
  const graph = mlp({ hidden: [4], classes: 2, inputShape: [3] });
  saveCheckpoint(join(dir, 'ckpt'), { graph, weights: initWeights(graph, new Rng(0)) });
  assert.equal(formatOfInput(join(dir, 'ckpt')).name, 'r2r');
  assert.equal(formatOfInput(join(dir, 'ckpt', 'model.json')).name, 'r2r');
  writeFileSync(join(dir, 'other.json'), '{"modelTopology": {}}');
  assert.equal(formatOfInput(join(dir, 'other.json')).name, 'tfjs');
  assert.throws(() => formatOfInput(join(dir, 'nope')), /no such file or directory/);
});

test('a single-file format plugs in with one registration and round-trips through read/write', async () => {
  let loads = 0;
  // A toy codec: the graph JSON, a newline, then the weights as safetensors.
  registerFormat(singleFileFormat({
    name: 'toy', extension: '.toy', description: 'toy test format',
    load: async () => {
      loads++;
      return {
        encode: (m: ModelFile) => Buffer.concat([Buffer.from(serializeGraph(m.graph).replace(/\n/g, ' ') + '\n'), encodeSafetensors(m.weights)]),
        decode: (bytes: Uint8Array, path: string) => {
          const nl = bytes.indexOf(10);
          return { graph: parseGraph(Buffer.from(bytes.subarray(0, nl)).toString('utf8'), path), weights: decodeSafetensors(bytes.subarray(nl + 1)).tensors };
        },
      };
    },
  }));
  assert.equal(loads, 0, 'the codec loads on first use only');
  const dir = mkdtempSync(join(tmpdir(), 'r2r-formats-'));
  const graph = mlp({ hidden: [4], classes: 2, inputShape: [3] });
  const weights = initWeights(graph, new Rng(1));
  const fmt = formatOfOutput(join(dir, 'm.toy'));
  assert.equal(fmt.name, 'toy');
  assert.deepEqual(fmt.outputs(join(dir, 'm.toy')), [join(dir, 'm.toy')]);
  await fmt.write(join(dir, 'm.toy'), { graph, weights });
  const back = await formatOfInput(join(dir, 'm.toy')).read(join(dir, 'm.toy'));
  assert.deepEqual(back.graph, graph);
  for (const [k, t] of Object.entries(weights)) assert.deepEqual(back.weights[k]!.data, t.data, k);
  assert.equal(loads, 2);
});
