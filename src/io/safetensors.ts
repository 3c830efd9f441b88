/**
 * safetensors, the standard format (https://github.com/huggingface/safetensors): an unsigned
 * 64-bit little-endian header length, a JSON header `{name: {dtype, shape, data_offsets}}` (plus
 * optional `__metadata__` of string values) padded with spaces to 8 bytes, then the raw
 * little-endian data. Only F32 is read and written; files from PyTorch/HF tools with F32 load.
 */
import { readFileSync } from 'node:fs';
import { CheckpointError } from '../errors.ts';
import type { Tensor } from '../ir/types.ts';
import { shapeToString, sizeOf } from '../ir/shapes.ts';
import { writeFileAtomic } from './atomic.ts';

export interface SafetensorsContent { tensors: Record<string, Tensor>; metadata: Record<string, string> }

export function encodeSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const name of names) {
    const t = tensors[name];
    const bytes = t.data.length * 4;
    if (t.data.length !== sizeOf(t.shape)) throw new CheckpointError(`safetensors: tensor '${name}' has ${t.data.length} values but shape ${shapeToString(t.shape)}`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hbytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hbytes.length + off);
  out.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(out, 8);
  let pos = 8 + hbytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    // Copy through a Buffer view so the bytes are little-endian on every platform Node runs on.
    Buffer.from(d.buffer, d.byteOffset, d.byteLength).copy(out, pos);
    pos += d.byteLength;
  }
  return out;
}

export function decodeSafetensors(buf: Uint8Array, where = 'safetensors'): SafetensorsContent {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8) throw new CheckpointError(`${where}: file is ${b.length} bytes, too short for a safetensors header (truncated?)`);
  const hlen = b.readBigUInt64LE(0);
  if (hlen > BigInt(b.length - 8)) throw new CheckpointError(`${where}: header length ${hlen} exceeds the file size ${b.length} (truncated or not a safetensors file)`);
  const n = Number(hlen);
  let header: Record<string, any>;
  try {
    header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw new CheckpointError(`${where}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new CheckpointError(`${where}: header must be a JSON object`);
  const dataStart = 8 + n;
  const dataLen = b.length - dataStart;
  // Names come from the file: prototype-free maps, so '__proto__' or 'constructor' is just a name.
  const tensors: Record<string, Tensor> = Object.create(null);
  const metadata: Record<string, string> = Object.create(null);
  const spans: [number, number, string][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!info || typeof info !== 'object' || Array.isArray(info)) throw new CheckpointError(`${where}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw new CheckpointError(`${where}: __metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (!info || typeof info !== 'object') throw new CheckpointError(`${where}: tensor '${name}': header entry must be an object`);
    const { dtype, shape, data_offsets: offs } = info as { dtype: unknown; shape: unknown; data_offsets: unknown };
    if (dtype !== 'F32') throw new CheckpointError(`${where}: tensor '${name}': dtype ${JSON.stringify(dtype)} is not supported (only F32)`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new CheckpointError(`${where}: tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0) || offs[1] < offs[0]) {
      throw new CheckpointError(`${where}: tensor '${name}': data_offsets ${JSON.stringify(offs)} must be [begin, end] with begin <= end`);
    }
    const [s, e] = offs as [number, number];
    if (e - s !== sizeOf(shape) * 4) throw new CheckpointError(`${where}: tensor '${name}': data_offsets span ${e - s} bytes but shape ${shapeToString(shape)} needs ${sizeOf(shape) * 4}`);
    if (e > dataLen) throw new CheckpointError(`${where}: tensor '${name}': data ends at byte ${e} but the file has only ${dataLen} data bytes (truncated)`);
    // Copy: the source may sit at an offset that is not a multiple of 4.
    const bytes = new Uint8Array(e - s);
    bytes.set(b.subarray(dataStart + s, dataStart + e));
    tensors[name] = { shape: shape as number[], data: new Float32Array(bytes.buffer) };
    spans.push([s, e, name]);
  }
  spans.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw new CheckpointError(`${where}: tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap in the data section`);
  }
  return { tensors, metadata };
}

export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export function readSafetensors(path: string): SafetensorsContent {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  return decodeSafetensors(buf, path);
}
