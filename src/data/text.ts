/**
 * Character-level text data (char-rnn, nanoGPT): the vocabulary is the sorted distinct
 * characters (Unicode code points) of the file; the first 90% of characters are the training
 * split, the last 10% validation; batches are seeded random windows of `block` characters with
 * the next character of each as its target.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError, UsageError } from '../errors.ts';
import type { Rng } from '../rng.ts';

export interface TextDataset {
  /** 'tinyshakespeare' or the file's path. */
  name: string;
  /** The file read. */
  source: string;
  /** Sorted distinct characters; token id i is vocab[i]. */
  vocab: string[];
  train: Int32Array;
  val: Int32Array;
  /** What a run records about the data (run.json, the resume check). */
  info: Record<string, unknown>;
}

/** Named text datasets; `R2R_DATA_TEXT` overrides where tinyshakespeare is read from. */
export const TEXT_DATASETS = ['tinyshakespeare'] as const;
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The file for `--data-text`: an existing path as given, or a dataset name (`tinyshakespeare`:
 * `R2R_DATA_TEXT`, else ./data/tinyshakespeare/input.txt, else ../shared/data/tinyshakespeare/input.txt
 * next to the repository).
 */
export function locateText(spec: string, env: NodeJS.ProcessEnv = process.env): { name: string; path: string } {
  if (spec === 'tinyshakespeare') {
    const candidates = env.R2R_DATA_TEXT
      ? [resolve(env.R2R_DATA_TEXT)]
      : [resolve('data/tinyshakespeare/input.txt'), join(REPO_ROOT, '..', 'shared', 'data', 'tinyshakespeare', 'input.txt')];
    const found = candidates.find((p) => existsSync(p));
    if (!found) throw new DataError(`tinyshakespeare not found at ${candidates.join(' or ')}; set R2R_DATA_TEXT to its input.txt or pass --data-text FILE`);
    return { name: 'tinyshakespeare', path: found };
  }
  return { name: spec, path: resolve(spec) };
}

/** The vocabulary of a text: its distinct characters, sorted by code point. */
export function vocabularyOf(chars: string[]): string[] {
  return [...new Set(chars)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
}

/** Ids of `text` in `vocab`; a character outside the vocabulary is an error naming it. */
export function encodeText(vocab: readonly string[], text: string, where = 'text'): Int32Array {
  const index = new Map(vocab.map((c, i) => [c, i]));
  const chars = Array.from(text);
  const out = new Int32Array(chars.length);
  chars.forEach((c, i) => {
    const id = index.get(c);
    if (id === undefined) throw new DataError(`${where}: character ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) at position ${i} is not in the model's ${vocab.length}-character vocabulary`);
    out[i] = id;
  });
  return out;
}

export function decodeTokens(vocab: readonly string[], ids: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < ids.length; i++) s += vocab[ids[i]];
  return s;
}

/**
 * Reads `spec` (a path or dataset name), checks it and splits it. Each split must hold at least
 * `block + 1` characters (one window and its last target).
 */
export function readTextDataset(spec: string, block: number, env: NodeJS.ProcessEnv = process.env): TextDataset {
  if (!Number.isInteger(block) || block < 1) throw new UsageError(`block must be a positive integer, got ${block}`);
  const { name, path } = locateText(spec, env);
  if (!existsSync(path)) throw new DataError(`${path}: file not found; --data-text takes a UTF-8 text file or the name ${TEXT_DATASETS.join(', ')}`);
  if (!statSync(path).isFile()) throw new DataError(`${path}: not a file; --data-text takes a UTF-8 text file`);
  const bytes = readFileSync(path);
  if (bytes.length === 0) throw new DataError(`${path}: the file is empty; a text dataset needs characters to learn from`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DataError(`${path}: not valid UTF-8 text (${bytes.length} bytes); convert it to UTF-8 first`);
  }
  const chars = Array.from(text);
  const vocab = vocabularyOf(chars);
  const all = encodeText(vocab, text, path);
  const cut = Math.floor(all.length * 0.9);
  const train = all.slice(0, cut), val = all.slice(cut);
  for (const [what, s] of [['training split (first 90%)', train], ['validation split (last 10%)', val]] as const) {
    if (s.length < block + 1) {
      throw new DataError(`${path}: the ${what} has ${s.length} characters, fewer than block + 1 = ${block + 1} (one window and its next-character target); use a longer file (at least ${Math.ceil((block + 1) / 0.1)} characters) or a smaller --block`);
    }
  }
  return {
    name, source: path, vocab, train, val,
    info: { dataset: name, file: path, characters: all.length, bytes: bytes.length, vocab: vocab.length, trainTokens: train.length, valTokens: val.length },
  };
}

/**
 * `n` windows of `block` ids from `split` at seeded random starts, each with its next-character
 * targets: tokens[i, t] = split[s_i + t], labels[i, t] = split[s_i + t + 1].
 */
export function sampleWindows(split: Int32Array, n: number, block: number, rng: Rng): { tokens: Int32Array; labels: Int32Array } {
  const starts = split.length - block; // s in [0, len - block - 1]
  if (starts < 1) throw new DataError(`a split of ${split.length} tokens has no window of ${block} tokens plus a target`);
  const tokens = new Int32Array(n * block), labels = new Int32Array(n * block);
  for (let i = 0; i < n; i++) {
    const s = rng.int(starts);
    tokens.set(split.subarray(s, s + block), i * block);
    labels.set(split.subarray(s + 1, s + block + 1), i * block);
  }
  return { tokens, labels };
}
