/**
 * Layout conversions between ONNX (PyTorch: NCHW, conv weight `[O, I, kh, kw]`, Gemm weight
 * `[out, in]` with transB) and the IR (NHWC, conv kernel `[kh, kw, I, O]`, dense `[in, out]`),
 * and TensorProto <-> typed arrays. All functions return new arrays.
 */
import { ModelFormatError } from '../../errors.ts';
import { sizeOf, shapeToString } from '../../ir/shapes.ts';
import { DataType, type TensorProto } from './onnx_types.ts';

/** ONNX conv weight `[O, I, kh, kw]` to the IR's `[kh, kw, I, O]`. */
export function oihwToHwio(w: Float32Array, [o, i, kh, kw]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    out[((y * kw + x) * i + b) * o + a] = w[((a * i + b) * kh + y) * kw + x];
  }
  return out;
}

/** The IR's conv kernel `[kh, kw, I, O]` to ONNX's `[O, I, kh, kw]`. */
export function hwioToOihw(k: Float32Array, [kh, kw, i, o]: number[]): Float32Array {
  const out = new Float32Array(k.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    out[((a * i + b) * kh + y) * kw + x] = k[((y * kw + x) * i + b) * o + a];
  }
  return out;
}

/** Transposes a row-major `[rows, cols]` matrix. */
export function transpose2d(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}

/**
 * Where each element of an NCHW-flattened `[C, H, W]` volume sits in the IR's NHWC flattening:
 * `order[c*H*W + h*W + w] = (h*W + w)*C + c`. A flat volume's order travels with it to the dense
 * layer that reads it, whose kernel rows are then permuted (`permuteRows`). Null when H*W = 1.
 */
export function flattenOrder(h: number, w: number, c: number): Int32Array | null {
  if (h * w === 1) return null;
  const order = new Int32Array(h * w * c);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) order[ch * h * w + p] = p * c + ch;
  return order;
}

/** Concatenation of flat volumes' orders (null = identity), shifted by the running offset. */
export function concatOrders(parts: { order: Int32Array | null; size: number }[]): Int32Array | null {
  if (parts.every((p) => p.order === null)) return null;
  const out = new Int32Array(parts.reduce((s, p) => s + p.size, 0));
  let off = 0;
  for (const p of parts) {
    for (let i = 0; i < p.size; i++) out[off + i] = off + (p.order ? p.order[i] : i);
    off += p.size;
  }
  return out;
}

export function sameOrder(a: Int32Array | null, b: Int32Array | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  return a.every((v, i) => v === b[i]);
}

/**
 * Rows of a `[rows, cols]` matrix moved from ONNX order to IR order: ONNX row j becomes IR row
 * `order[j]` (import). `inverse` moves IR row `order[j]` back to ONNX row j (export).
 */
export function permuteRows(m: Float32Array, cols: number, order: Int32Array | null, inverse = false): Float32Array {
  if (!order) return new Float32Array(m);
  const out = new Float32Array(m.length);
  for (let j = 0; j < order.length; j++) {
    const [to, from] = inverse ? [j, order[j]] : [order[j], j];
    out.set(m.subarray(from * cols, (from + 1) * cols), to * cols);
  }
  return out;
}

const BYTES: Partial<Record<number, number>> = { [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT32]: 4, [DataType.INT64]: 8, 9: 1 };

/** A constant tensor's values as numbers (float32, float64, int32, int64 or bool). */
export function tensorValues(t: TensorProto, where: string): { dims: number[]; values: Float32Array | Float64Array } {
  const dims = (t.dims ?? []).map(Number);
  const n = sizeOf(dims);
  const name = `${where}: tensor '${t.name ?? ''}'`;
  if (t.dataLocation === 1) throw new ModelFormatError(`${name} keeps its data in an external file, which r2r does not read; export the model as one file (PyTorch: a model under 2 GB, without external_data)`);
  const type = t.dataType ?? 0;
  const width = BYTES[type];
  if (width === undefined) throw new ModelFormatError(`${name} has data type ${type}; r2r reads float32, float64, int32, int64 and bool tensors`);
  let values: Float32Array | Float64Array;
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    if (raw.length !== n * width) throw new ModelFormatError(`${name}: shape ${shapeToString(dims)} needs ${n * width} bytes of data, got ${raw.length}`);
    // DataView reads little-endian (the ONNX byte order) whatever the host, and any alignment.
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    values = type === DataType.FLOAT ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * width;
      values[i] = type === DataType.FLOAT ? dv.getFloat32(o, true)
        : type === DataType.DOUBLE ? dv.getFloat64(o, true)
        : type === DataType.INT32 ? dv.getInt32(o, true)
        : type === DataType.INT64 ? Number(dv.getBigInt64(o, true))
        : dv.getUint8(o);
    }
  } else {
    const list = type === DataType.FLOAT ? t.floatData : type === DataType.DOUBLE ? t.doubleData : type === DataType.INT64 ? t.int64Data : t.int32Data;
    const src = list ?? [];
    if (src.length !== n) throw new ModelFormatError(`${name}: shape ${shapeToString(dims)} needs ${n} values, got ${src.length}`);
    values = type === DataType.FLOAT ? Float32Array.from(src) : Float64Array.from(src);
  }
  return { dims, values };
}

/** A float32 TensorProto with little-endian raw data. */
export function floatTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  const raw = new Uint8Array(data.length * 4);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
  return { name, dims, dataType: DataType.FLOAT, rawData: raw };
}
