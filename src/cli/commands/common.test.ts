import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printJson, printJsonLine } from './common.ts';

test('--json output is one document: a second printJson (or mixing in JSON Lines) throws', () => {
  const out: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => { out.push(s); return true; }) as typeof process.stdout.write;
  try {
    printJson({ a: 1 });
    assert.throws(() => printJson({ b: 2 }), /one JSON document/);
    assert.throws(() => printJsonLine({ c: 3 }), /already printed a JSON document/);
  } finally {
    process.stdout.write = write;
  }
  assert.deepEqual(out.map((s) => JSON.parse(s)), [{ a: 1 }]);
});
