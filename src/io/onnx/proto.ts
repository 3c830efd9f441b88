/**
 * ONNX protobuf decoding and encoding with protobufjs over ONNX's official schema (`schema.ts`,
 * generated from the vendored `onnx.proto`). The interfaces below type the subset of
 * ModelProto that r2r reads and writes; field names are protobufjs's camelCase.
 */
import protobuf from 'protobufjs';
import { ModelFormatError } from '../../errors.ts';
import { ONNX_SCHEMA } from './schema.ts';

/** TensorProto.DataType values r2r meets. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, DOUBLE: 11 } as const;
/** AttributeProto.AttributeType values. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface TensorProto {
  name?: string;
  dims?: number[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  rawData?: Uint8Array;
  /** 1 = EXTERNAL (weights in a side file). */
  dataLocation?: number;
}
export interface AttributeProto {
  name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: number[];
}
export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute?: AttributeProto[];
}
export interface DimProto { dimValue?: number; dimParam?: string }
export interface ValueInfoProto {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: DimProto[] } } };
}
export interface GraphProto {
  name?: string;
  node?: NodeProto[];
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
}
export interface OperatorSetIdProto { domain?: string; version?: number }
export interface ModelProto {
  irVersion?: number;
  opsetImport?: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  graph?: GraphProto;
}

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
