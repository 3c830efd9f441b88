/**
 * The R2DeeperR "done when" check of issue 8, on a representative subset: the real command
 * `r2r verify --model M --transform deepen --method r2r --seed S --init I --engine E --threads 1`
 * passes for every zoo model (each once, seeds and inits spread over them) on both engines. The
 * full matrix (6 models x seeds 0..4 x 3 inits x 2 engines) is `node scripts/deepen-matrix.mjs`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { torchUnavailable as torchMissing } from '../helpers/torch_available.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const inCI = process.env.CI === 'true' || process.env.CI === '1';
if (torchMissing && !inCI) console.warn(`\n!!! deepen_matrix.test.ts runs tfjs only: ${torchMissing}\n`);
const engines = torchMissing && !inCI ? 'tfjs' : 'tfjs,torch';

// Cases that failed with the single-branch block (issue 8) and one of every other zoo model.
const CASES = ['resnet-cifar18-nores:0:match-std', 'resnet-cifar10-nores:1:match-std', 'resnet-cifar10:0:he', 'resnet-cifar18:3:copy', 'small-conv:2:he', 'mlp:4:copy'];

test(`r2r verify --transform deepen --method r2r passes on every zoo model (${engines})`, (t) => {
  const r = spawnSync(process.execPath, ['scripts/deepen-matrix.mjs', '--engines', engines, '--cases', CASES.join(',')], { cwd: root, encoding: 'utf8' });
  // Indented, so no line reads like the runner's own '# pass N' / '# fail N' summary.
  for (const line of r.stdout.split('\n')) if (line) t.diagnostic(`  ${line}`);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`${CASES.length * engines.split(',').length} runs, 0 failed`));
  for (const e of engines.split(',')) for (const mode of ['inference', 'training']) assert.match(r.stdout, new RegExp(`worst ${e} ${mode}: `));
});
