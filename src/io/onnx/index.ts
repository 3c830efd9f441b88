/**
 * ONNX models in and out of r2r: `readOnnx(bytes) -> {graph, weights}` and
 * `writeOnnx(graph, weights) -> bytes`, plus file helpers. See import.ts and export.ts for what
 * maps onto what.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ModelFormatError } from '../../errors.ts';
import type { Graph, Weights } from '../../ir/types.ts';
import { writeFileAtomic } from '../atomic.ts';
import { irToOnnx, type OnnxExportOptions } from './export.ts';
import { onnxToIR, type ImportedModel, type OnnxImportOptions } from './import.ts';
import { decodeModel, encodeModel } from './proto.ts';

export { ONNX_IMPORT_OPS } from './import.ts';
export type { ImportedModel, OnnxImportOptions } from './import.ts';
export { ONNX_EXPORT_OPSET, onnxExportProblems } from './export.ts';
export type { OnnxExportOptions } from './export.ts';

/** Imports a serialized ONNX model (NCHW, as PyTorch exports it) into the IR (NHWC). */
export function readOnnx(bytes: Uint8Array, opts: OnnxImportOptions = {}): ImportedModel {
  return onnxToIR(decodeModel(bytes, opts.where), opts);
}

/**
 * Serializes an IR graph and its weights as an ONNX model (opset 13, NCHW input). Pass
 * `{outputActivation: 'softmax'}` to end in a Softmax, as `readOnnx` reports the source did.
 */
export function writeOnnx(graph: Graph, weights: Weights, opts: OnnxExportOptions = {}): Uint8Array {
  return encodeModel(irToOnnx(graph, weights, opts));
}

/** Reads an `.onnx` file; the graph is named after the file unless `opts.name` says otherwise. */
export function readOnnxFile(path: string, opts: OnnxImportOptions = {}): ImportedModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ModelFormatError(`${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
  return readOnnx(bytes, { where: path, name: basename(path).replace(/\.onnx$/i, ''), ...opts });
}

/** Writes an `.onnx` file atomically; the whole model is converted before anything is written. */
export function writeOnnxFile(path: string, graph: Graph, weights: Weights, opts: OnnxExportOptions = {}): void {
  const bytes = writeOnnx(graph, weights, { where: path, ...opts });
  writeFileAtomic(path, bytes);
}

/** True for a path r2r reads and writes as ONNX (by its extension). */
export function isOnnxPath(path: string): boolean {
  return /\.onnx$/i.test(path);
}
