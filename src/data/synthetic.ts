/**
 * A small seeded, learnable image dataset for fast tests: each class has a smooth colour pattern
 * (a few random sinusoids per channel); an example is its class pattern, randomly shifted by up
 * to a pixel, with a random brightness offset and pixel noise. A small net learns it in an epoch
 * or two, yet it is not solved at initialisation.
 */
import { Rng } from '../rng.ts';
import type { ImageSet } from './dataset.ts';

export interface SyntheticOptions {
  trainExamples?: number;
  valExamples?: number;
  /** [H, W, C], default [16, 16, 3]. */
  shape?: [number, number, number];
  classes?: number;
  /** Pixel noise std in grey levels (default 40). */
  noise?: number;
  seed?: number;
}

export function syntheticSets(opts: SyntheticOptions = {}): { train: ImageSet; val: ImageSet } {
  const { trainExamples = 1024, valExamples = 256, shape = [16, 16, 3], classes = 10, noise = 40, seed = 0 } = opts;
  const rng = new Rng(`synthetic:${seed}`);
  const [h, w, c] = shape;
  // Patterns are drawn on a canvas one pixel larger each side, so shifted crops stay in range.
  const H = h + 2, W = w + 2;
  const protos: Float32Array[] = [];
  for (let k = 0; k < classes; k++) {
    const p = new Float32Array(H * W * c);
    for (let ch = 0; ch < c; ch++) {
      const waves = Array.from({ length: 3 }, () => ({ fy: rng.uniform(0.2, 1.2), fx: rng.uniform(0.2, 1.2), ph: rng.uniform(0, 2 * Math.PI), a: rng.uniform(20, 45) }));
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        let v = 128;
        for (const s of waves) v += s.a * Math.sin(s.fy * y + s.fx * x + s.ph);
        p[(y * W + x) * c + ch] = v;
      }
    }
    protos.push(p);
  }
  const make = (n: number, r: Rng, tag: string): ImageSet => {
    const pixels = new Uint8Array(n * h * w * c);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const k = r.int(classes);
      labels[i] = k;
      const dy = r.int(3), dx = r.int(3), bright = r.normal() * 15;
      const p = protos[k];
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
        const v = p[((y + dy) * W + x + dx) * c + ch] + bright + r.normal() * noise;
        pixels[((i * h + y) * w + x) * c + ch] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
    return { pixels, labels, n, shape: [h, w, c], classes, source: `synthetic(seed ${seed}, ${tag})` };
  };
  return { train: make(trainExamples, rng.fork(), 'train'), val: make(valExamples, rng.fork(), 'val') };
}
