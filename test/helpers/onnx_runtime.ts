/**
 * Runs ONNX models in ONNX Runtime (onnxruntime-node, CPU, one thread), the real runtime r2r's
 * ONNX export is checked against, and converts batches between the IR's NHWC and ONNX's NCHW.
 */
import ort from 'onnxruntime-node';

/** Output of a one-input, one-output model for an NCHW (or [N, F]) batch; names are checked. */
export async function runOnnx(model: Uint8Array | string, x: Float32Array, dims: number[], names?: { input: string; output: string }): Promise<Float32Array> {
  // Two calls because create() is overloaded per argument type.
  const session = typeof model === 'string'
    ? await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 })
    : await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    if (names && (session.inputNames.join() !== names.input || session.outputNames.join() !== names.output)) {
      throw new Error(`ONNX Runtime sees inputs [${session.inputNames}] and outputs [${session.outputNames}], expected '${names.input}' and '${names.output}'`);
    }
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, dims) });
    return out[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

/** NCHW -> NHWC for a batch of n examples [C, H, W]. */
export function nchwToNhwc(x: ArrayLike<number>, n: number, [c, h, w]: number[]): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) out[(b * h * w + p) * c + ch] = x[(b * c + ch) * h * w + p];
  return out;
}

/** NHWC -> NCHW for a batch of n examples [H, W, C]. */
export function nhwcToNchw(x: ArrayLike<number>, n: number, [h, w, c]: number[]): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) out[(b * c + ch) * h * w + p] = x[(b * h * w + p) * c + ch];
  return out;
}
