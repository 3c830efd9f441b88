import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { R2RError } from '../errors.ts';
import { initWeights } from '../ir/weights.ts';
import { gpt } from '../models/gpt.ts';
import { zooModel } from '../models/zoo.ts';
import { Rng } from '../rng.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-ckpt-vocab-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const bad = (msg: RegExp) => (e: unknown) => e instanceof R2RError && e.code === 'R2R_CHECKPOINT' && msg.test(e.message);

it('checkpoints: a token model\'s vocabulary round-trips in vocab.json and is checked on load', () => {
  const g = gpt({ layers: 1, heads: 1, dim: 4, block: 3, vocab: 4 });
  const dir = join(tmp, 'a');
  saveCheckpoint(dir, { graph: g, weights: initWeights(g, new Rng(1)), vocab: ['\n', ' ', 'a', '😀'] });
  assert.deepEqual(loadCheckpoint(dir).vocab, ['\n', ' ', 'a', '😀']);
  writeFileSync(join(dir, 'vocab.json'), '["a", "a", "b", "c"]');
  assert.throws(() => loadCheckpoint(dir), bad(/vocab\.json: the vocabulary has repeated entries/));
  writeFileSync(join(dir, 'vocab.json'), '["a", "b"]');
  assert.throws(() => loadCheckpoint(dir), bad(/vocab\.json: 2 entries, but tokenInput 'tokens' has vocab 4/));
  writeFileSync(join(dir, 'vocab.json'), '{"__proto__": 1}');
  assert.throws(() => loadCheckpoint(dir), bad(/vocab\.json: must be a JSON array of non-empty strings/));
  const m = zooModel('mlp', { width: 0.05 });
  const d2 = join(tmp, 'b');
  saveCheckpoint(d2, { graph: m, weights: initWeights(m, new Rng(1)) });
  assert.equal(loadCheckpoint(d2).vocab, undefined);
  writeFileSync(join(d2, 'vocab.json'), '["a"]');
  assert.throws(() => loadCheckpoint(d2), bad(/graph has no tokenInput/));
});
