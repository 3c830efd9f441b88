import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress, eta } from './progress.ts';

test('eta: the remaining time at the rate so far', () => {
  assert.equal(eta(10_000, 10, 20), '10 s');
  assert.equal(eta(60_000, 1, 4), '3.0 min');
  assert.equal(eta(1000, 0, 4), '?');
});

test('plain progress lines (no terminal) carry an ETA until the last one', () => {
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => { lines.push(s); return true; }) as typeof process.stderr.write;
  const tty = process.stderr.isTTY;
  process.stderr.isTTY = false;
  try {
    const p = createProgress('run epoch 1/4', 4, { intervalMs: 0 });
    p.update(1, 'loss 2.3');
    p.update(4, 'loss 2.1');
    p.stop();
  } finally {
    process.stderr.write = write;
    process.stderr.isTTY = tty;
  }
  assert.match(lines[0], /^run epoch 1\/4: 1\/4 loss 2\.3, eta \d+ s\n$/);
  assert.equal(lines[1], 'run epoch 1/4: 4/4 loss 2.1\n');
});
