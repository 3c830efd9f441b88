/**
 * ONNX protobuf decoding and encoding with protobufjs over ONNX's official schema (`schema.ts`,
 * generated from the vendored `onnx.proto`); `onnx_types.ts` types the objects.
 */
import protobuf from 'protobufjs';
import { ModelFormatError } from '../../errors.ts';
import type { ModelProto } from './onnx_types.ts';
import { ONNX_SCHEMA } from './schema.ts';

let modelType: protobuf.Type | undefined;
function model(): protobuf.Type {
  modelType ??= protobuf.Root.fromJSON(ONNX_SCHEMA as protobuf.INamespace).lookupType('onnx.ModelProto');
  return modelType;
}

/** Decodes a serialized ModelProto. `where` (a file name) is named in errors. */
export function decodeModel(bytes: Uint8Array, where = 'ONNX model'): ModelProto {
  let msg: protobuf.Message;
  try {
    msg = model().decode(bytes);
  } catch (e) {
    throw new ModelFormatError(`${where}: not a valid ONNX model (protobuf decoding failed: ${(e as Error).message})`, { cause: e });
  }
  // int64 fields as plain numbers: dims and attributes of real models stay far below 2^53.
  const obj = model().toObject(msg, { longs: Number, enums: Number, bytes: Uint8Array, arrays: true }) as ModelProto;
  if (!obj.graph) throw new ModelFormatError(`${where}: not an ONNX model (no graph); is this an .onnx file?`);
  return obj;
}

/** Encodes a ModelProto. */
export function encodeModel(m: ModelProto): Uint8Array {
  const t = model();
  return t.encode(t.fromObject(m)).finish();
}
