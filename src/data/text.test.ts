import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { R2RError } from '../errors.ts';
import { Rng } from '../rng.ts';
import { decodeTokens, encodeText, locateText, readTextDataset, sampleWindows } from './text.ts';

const tmp = mkdtempSync(join(tmpdir(), 'r2r-text-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, content: string | Buffer) => { const p = join(tmp, name); writeFileSync(p, content); return p; };
const dataError = (msg: RegExp) => (e: unknown) => e instanceof R2RError && e.code === 'R2R_DATA' && msg.test(e.message);

describe('character-level text data', () => {
  it('vocabulary = sorted distinct characters; first 90% train, last 10% validation; round trip', () => {
    const text = 'hello world, ünïcode 😀!\n'.repeat(10); // 240 code points
    const d = readTextDataset(file('a.txt', text), 8);
    const chars = [...new Set(Array.from(text))].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    assert.deepEqual(d.vocab, chars);
    assert.equal(d.vocab[0], '\n');
    assert.equal(d.vocab[d.vocab.length - 1], '😀', 'sorted by code point, one token for a surrogate pair');
    assert.equal(d.train.length + d.val.length, 240);
    assert.equal(d.train.length, 216);
    assert.equal(decodeTokens(d.vocab, d.train) + decodeTokens(d.vocab, d.val), text);
    assert.equal(d.info.vocab, d.vocab.length);
  });

  it('windows: seeded, next-character targets, inside the split', () => {
    const split = Int32Array.from({ length: 50 }, (_, i) => i);
    const a = sampleWindows(split, 6, 8, new Rng(3)), b = sampleWindows(split, 6, 8, new Rng(3));
    assert.deepEqual(a, b);
    assert.notDeepEqual(sampleWindows(split, 6, 8, new Rng(4)).tokens, a.tokens);
    for (let i = 0; i < 6; i++) {
      const s = a.tokens[i * 8];
      for (let t = 0; t < 8; t++) {
        assert.equal(a.tokens[i * 8 + t], s + t);
        assert.equal(a.labels[i * 8 + t], s + t + 1);
      }
      assert.ok(s + 8 <= 49);
    }
    // Every start 0..len-block-1 is reachable.
    const starts = new Set<number>();
    const r = new Rng(1);
    for (let k = 0; k < 200; k++) starts.add(sampleWindows(Int32Array.from({ length: 11 }, (_, i) => i), 1, 8, r).tokens[0]);
    assert.deepEqual([...starts].sort(), [0, 1, 2]);
  });

  it('clear errors: missing, empty, not UTF-8, shorter than a block, unknown character', () => {
    assert.throws(() => readTextDataset(join(tmp, 'nope.txt'), 8), dataError(/nope\.txt: file not found/));
    assert.throws(() => readTextDataset(file('empty.txt', ''), 8), dataError(/empty\.txt: the file is empty/));
    assert.throws(() => readTextDataset(file('latin1.txt', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x61])), 2), dataError(/latin1\.txt: not valid UTF-8/));
    assert.throws(() => readTextDataset(file('short.txt', 'x'.repeat(50)), 8), dataError(/short\.txt: the validation split \(last 10%\) has 5 characters, fewer than block \+ 1 = 9.*at least 90 characters/));
    assert.throws(() => encodeText(['a', 'b'], 'abc', 'prompt'), dataError(/prompt: character "c" \(U\+0063\) at position 2 is not in the model's 2-character vocabulary/));
  });
});

const shakespeare = (() => { try { return locateText('tinyshakespeare').path; } catch { return undefined; } })();
describe('tinyshakespeare', { skip: !shakespeare && !process.env.CI ? 'tinyshakespeare not found (set R2R_DATA_TEXT)' : false }, () => {
  it('1,115,394 characters, 65 distinct; 1,003,854 train / 111,540 validation', () => {
    const d = readTextDataset('tinyshakespeare', 64);
    assert.ok(existsSync(d.source));
    assert.equal(d.train.length + d.val.length, 1_115_394);
    assert.equal(d.vocab.length, 65);
    assert.equal(d.train.length, 1_003_854);
    assert.equal(d.vocab.join(''), "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    assert.equal(decodeTokens(d.vocab, d.train.subarray(0, 14)), 'First Citizen:');
  });
  it('R2R_DATA_TEXT overrides the location', () => {
    assert.equal(locateText('tinyshakespeare', { R2R_DATA_TEXT: shakespeare }).path, resolve(shakespeare!));
    assert.throws(() => locateText('tinyshakespeare', { R2R_DATA_TEXT: join(tmp, 'missing.txt') }), dataError(/tinyshakespeare not found at .*missing\.txt; set R2R_DATA_TEXT/));
  });
});
