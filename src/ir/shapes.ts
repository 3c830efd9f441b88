/** Spatial arithmetic shared by shape inference, engines and the reference executor. */
import type { Padding } from './types.ts';

export interface Window2d {
  outH: number; outW: number;
  /** Explicit padding that realises `padding` for this input size. */
  top: number; bottom: number; left: number; right: number;
}

function axis(size: number, k: number, s: number, mode: 'same' | 'valid' | [number, number]): [number, number, number] {
  if (mode === 'valid') return [Math.floor((size - k) / s) + 1, 0, 0];
  if (mode === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + k - size, 0);
    const lo = Math.floor(total / 2);
    return [out, lo, total - lo];
  }
  const [lo, hi] = mode;
  return [Math.floor((size + lo + hi - k) / s) + 1, lo, hi];
}

/** Output size and explicit pads of a 2-D window (conv or pool) over an H x W input. */
export function resolveWindow(
  inH: number, inW: number, kernel: [number, number], strides: [number, number], padding: Padding,
): Window2d {
  const ph = typeof padding === 'string' ? padding : ([padding[0], padding[1]] as [number, number]);
  const pw = typeof padding === 'string' ? padding : ([padding[2], padding[3]] as [number, number]);
  const [outH, top, bottom] = axis(inH, kernel[0], strides[0], ph);
  const [outW, left, right] = axis(inW, kernel[1], strides[1], pw);
  return { outH, outW, top, bottom, left, right };
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeToString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
