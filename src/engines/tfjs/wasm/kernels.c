/*
 * r2r's WebAssembly SIMD kernels for the tfjs engine's transformer layers (wasm backend).
 *
 * tfjs-backend-wasm 4.22 runs every batched or transposed matmul in a scalar loop (~1.2 GMAC/s,
 * its slow_batch_matmul) and has only per-element ops for the rest of attention, GELU and layer
 * norm. These kernels do each of those layers in one pass, forward and backward:
 *   - causal (or full) multi-head attention from a fused q/k/v projection, softmax probabilities
 *     kept for the backward pass, causal products restricted to the lower triangle;
 *   - exact GELU x * Phi(x) and its derivative Phi(x) + x * phi(x);
 *   - layer norm over the last axis (biased variance) and its gradients;
 *   - a dense layer's bias gradient (column sums) and the 2-D transposes of its other gradients;
 *   - Adam over all weights in one pass.
 * No libc, no allocation, no static data and no shadow stack: the module imports its memory, which
 * is tfjs's own heap where that is reachable (kernels.ts passes tensors' addresses, no copies).
 * Build: `npm run build:wasm` (scripts/build-wasm-kernels.mjs, clang --target=wasm32 -msimd128).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

/* ---- matrix products ---------------------------------------------------------------------- */

/* Causal structure a product may skip (the skipped terms are exact zeros, the skipped outputs are
 * never read), per block of rows starting at row i:
 *   K_LOWER: sum only over p < i + rows (A is lower triangular: A[i][p] = 0 for p > i);
 *   K_UPPER: sum only over p >= i (A[i][p] = 0 for p < i);
 *   N_LOWER: compute only columns j < i + rows (the caller reads only j <= i). */
enum { K_LOWER = 1, K_UPPER = 2, N_LOWER = 4 };

static inline int imin(int a, int b) { return a < b ? a : b; }

/* C[m x n] = A[m x k] * B[k x n]; row strides lda, ldb, ldc (row-major). Register tiles of 4 rows
 * by 8 columns (8 accumulators, 2 loads of B and 4 broadcasts of A per p). */
static void gemm(int m, int n, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int tri) {
  int i = 0;
  for (; i + 4 <= m; i += 4) {
    const int p0 = (tri & K_UPPER) ? i : 0;
    const int p1 = (tri & K_LOWER) ? imin(k, i + 4) : k;
    const int ne = (tri & N_LOWER) ? imin(n, i + 4) : n;
    const float *a0 = A + (long)i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    float *c0 = C + (long)i * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
    int j = 0;
    for (; j + 8 <= ne; j += 8) {
      v128_t s00 = wasm_f32x4_splat(0), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
      for (int p = p0; p < p1; p++) {
        const float *b = B + (long)p * ldb + j;
        const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        v128_t x = wasm_f32x4_splat(a0[p]);
        s00 = wasm_f32x4_add(s00, wasm_f32x4_mul(x, b0)); s01 = wasm_f32x4_add(s01, wasm_f32x4_mul(x, b1));
        x = wasm_f32x4_splat(a1[p]);
        s10 = wasm_f32x4_add(s10, wasm_f32x4_mul(x, b0)); s11 = wasm_f32x4_add(s11, wasm_f32x4_mul(x, b1));
        x = wasm_f32x4_splat(a2[p]);
        s20 = wasm_f32x4_add(s20, wasm_f32x4_mul(x, b0)); s21 = wasm_f32x4_add(s21, wasm_f32x4_mul(x, b1));
        x = wasm_f32x4_splat(a3[p]);
        s30 = wasm_f32x4_add(s30, wasm_f32x4_mul(x, b0)); s31 = wasm_f32x4_add(s31, wasm_f32x4_mul(x, b1));
      }
      wasm_v128_store(c0 + j, s00); wasm_v128_store(c0 + j + 4, s01);
      wasm_v128_store(c1 + j, s10); wasm_v128_store(c1 + j + 4, s11);
      wasm_v128_store(c2 + j, s20); wasm_v128_store(c2 + j + 4, s21);
      wasm_v128_store(c3 + j, s30); wasm_v128_store(c3 + j + 4, s31);
    }
    for (; j + 4 <= ne; j += 4) {
      v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
      for (int p = p0; p < p1; p++) {
        const v128_t b0 = wasm_v128_load(B + (long)p * ldb + j);
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_f32x4_splat(a0[p]), b0));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_f32x4_splat(a1[p]), b0));
        s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(wasm_f32x4_splat(a2[p]), b0));
        s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(wasm_f32x4_splat(a3[p]), b0));
      }
      wasm_v128_store(c0 + j, s0); wasm_v128_store(c1 + j, s1); wasm_v128_store(c2 + j, s2); wasm_v128_store(c3 + j, s3);
    }
    for (; j < ne; j++) {
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int p = p0; p < p1; p++) {
        const float b = B[(long)p * ldb + j];
        s0 += a0[p] * b; s1 += a1[p] * b; s2 += a2[p] * b; s3 += a3[p] * b;
      }
      c0[j] = s0; c1[j] = s1; c2[j] = s2; c3[j] = s3;
    }
  }
  for (; i < m; i++) {
    const int p0 = (tri & K_UPPER) ? i : 0;
    const int p1 = (tri & K_LOWER) ? imin(k, i + 1) : k;
    const int ne = (tri & N_LOWER) ? imin(n, i + 1) : n;
    const float *a = A + (long)i * lda;
    float *c = C + (long)i * ldc;
    int j = 0;
    for (; j + 4 <= ne; j += 4) {
      v128_t s = wasm_f32x4_splat(0);
      for (int p = p0; p < p1; p++) s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_f32x4_splat(a[p]), wasm_v128_load(B + (long)p * ldb + j)));
      wasm_v128_store(c + j, s);
    }
    for (; j < ne; j++) {
      float s = 0;
      for (int p = p0; p < p1; p++) s += a[p] * B[(long)p * ldb + j];
      c[j] = s;
    }
  }
}

/* dst[c x r] = src[r x c]^T, src row stride lds, dst contiguous. */
static void transpose(int r, int c, const float *src, int lds, float *dst) {
  for (int i = 0; i < r; i++)
    for (int j = 0; j < c; j++) dst[(long)j * r + i] = src[(long)i * lds + j];
}

/* ---- exp, erf ------------------------------------------------------------------------------- */

/* e^x for x <= 0 (x clamped at -87, where e^x ~ 1.6e-38): x = n ln2 + r, |r| <= ln2 / 2,
 * e^r by its degree-7 Taylor polynomial (relative error < 2e-8 there), 2^n from the exponent bits. */
static inline v128_t exp_neg(v128_t x) {
  x = wasm_f32x4_max(x, wasm_f32x4_splat(-87.0f));
  const v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693145751953125f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(1.428606765330187e-06f)));
  v128_t p = wasm_f32x4_splat(1.0f / 5040);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 720));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  const v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(p, scale);
}

/* Phi(x) (standard normal CDF) and e^(-x^2/2) for four values. Phi through erfc(|x|/sqrt2) by
 * Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7; the formula tfjs's own Erf kernels use),
 * without the cancellation of 1 + erf(x) for negative x. */
static inline v128_t normal_cdf(v128_t x, v128_t *gauss) {
  const v128_t z = wasm_f32x4_mul(wasm_f32x4_abs(x), wasm_f32x4_splat(0.70710678118654752f));
  const v128_t t = wasm_f32x4_div(wasm_f32x4_splat(1.0f), wasm_f32x4_add(wasm_f32x4_splat(1.0f), wasm_f32x4_mul(z, wasm_f32x4_splat(0.3275911f))));
  v128_t q = wasm_f32x4_splat(1.061405429f);
  q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(-1.453152027f));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(1.421413741f));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(-0.284496736f));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(0.254829592f));
  q = wasm_f32x4_mul(q, t);
  const v128_t e = exp_neg(wasm_f32x4_neg(wasm_f32x4_mul(z, z)));
  *gauss = e;
  const v128_t half_erfc = wasm_f32x4_mul(wasm_f32x4_mul(q, e), wasm_f32x4_splat(0.5f));
  const v128_t neg = wasm_f32x4_lt(x, wasm_f32x4_splat(0.0f));
  return wasm_v128_bitselect(half_erfc, wasm_f32x4_sub(wasm_f32x4_splat(1.0f), half_erfc), neg);
}

/* ---- GELU ----------------------------------------------------------------------------------- */

/* Loads up to 4 values (the tail of an array padded with zeros), and stores them. No arrays on
 * the stack: the module runs in tfjs's own memory and must not have a shadow stack there. */
static inline v128_t load_part(const float *p, int n) {
  if (n >= 4) return wasm_v128_load(p);
  return wasm_f32x4_make(p[0], n > 1 ? p[1] : 0.0f, n > 2 ? p[2] : 0.0f, 0.0f);
}
static inline void store_part(float *p, v128_t v, int n) {
  if (n >= 4) { wasm_v128_store(p, v); return; }
  p[0] = wasm_f32x4_extract_lane(v, 0);
  if (n > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (n > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}

/* y = x Phi(x), exact (erf) GELU. */
EXPORT(gelu_forward) void gelu_forward(int n, const float *x, float *y) {
  for (int i = 0; i < n; i += 4) {
    v128_t g;
    const v128_t v = load_part(x + i, n - i);
    store_part(y + i, wasm_f32x4_mul(v, normal_cdf(v, &g)), n - i);
  }
}

/* dx = dy (Phi(x) + x phi(x)), phi(x) = e^(-x^2/2) / sqrt(2 pi). */
EXPORT(gelu_backward) void gelu_backward(int n, const float *x, const float *dy, float *dx) {
  for (int i = 0; i < n; i += 4) {
    v128_t g;
    const v128_t v = load_part(x + i, n - i);
    const v128_t cdf = normal_cdf(v, &g);
    const v128_t pdf = wasm_f32x4_mul(g, wasm_f32x4_splat(0.39894228040143268f));
    const v128_t d = wasm_f32x4_add(cdf, wasm_f32x4_mul(v, pdf));
    store_part(dx + i, wasm_f32x4_mul(load_part(dy + i, n - i), d), n - i);
  }
}

/* ---- attention ------------------------------------------------------------------------------ */

/* Row softmax of scale * s over columns j < len, zeros after; in place on a row of t values. */
static void softmax_row(float *s, int len, int t, float scale) {
  float mx = s[0];
  for (int j = 1; j < len; j++) mx = s[j] > mx ? s[j] : mx;
  const v128_t vm = wasm_f32x4_splat(mx), vs = wasm_f32x4_splat(scale);
  float sum = 0;
  for (int j = 0; j < len; j += 4) {
    const int c = len - j;
    store_part(s + j, exp_neg(wasm_f32x4_mul(wasm_f32x4_sub(load_part(s + j, c), vm), vs)), c);
    for (int q = 0; q < 4 && q < c; q++) sum += s[j + q];
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j < len; j++) s[j] *= inv;
  for (int j = len; j < t; j++) s[j] = 0;
}

/*
 * Self-attention of N sequences of T tokens, H heads of size K, from qkv [N, T, 3, H, K] (the
 * fused projection's output: queries, keys, values): per sequence and head
 *   P = softmax(scale * Q K^T + mask),  O = P V,
 * with out [N, T, H, K] and probs [N, H, T, T] (P, masked entries exactly 0). scratch: K * T floats.
 */
EXPORT(attention_forward) void attention_forward(int n, int t, int h, int k, int causal, float scale,
                                                const float *qkv, float *out, float *probs, float *scratch) {
  const int hk = h * k, row = 3 * hk;
  float *kt = scratch;
  for (int b = 0; b < n; b++) {
    for (int hd = 0; hd < h; hd++) {
      const float *q = qkv + (long)b * t * row + hd * k, *kk = q + hk, *v = q + 2 * hk;
      float *p = probs + ((long)b * h + hd) * t * t;
      transpose(t, k, kk, row, kt);
      gemm(t, t, k, q, row, kt, t, p, t, causal ? N_LOWER : 0);
      for (int i = 0; i < t; i++) softmax_row(p + (long)i * t, causal ? i + 1 : t, t, scale);
      gemm(t, k, t, p, t, v, row, out + (long)b * t * hk + hd * k, hk, causal ? K_LOWER : 0);
    }
  }
}

/*
 * Gradient of attention_forward: dout [N, T, H, K] -> dqkv [N, T, 3, H, K], from qkv and probs:
 *   dV = P^T dO,  dP = dO V^T,  dS = scale * P o (dP - rowsum(dP o P)),  dQ = dS K,  dK = dS^T Q.
 * scratch: 2 T^2 + K T floats.
 */
EXPORT(attention_backward) void attention_backward(int n, int t, int h, int k, int causal, float scale,
                                                  const float *qkv, const float *probs, const float *dout, float *dqkv, float *scratch) {
  const int hk = h * k, row = 3 * hk;
  float *tr = scratch, *ds = scratch + (long)t * t, *vt = ds + (long)t * t;
  for (int b = 0; b < n; b++) {
    for (int hd = 0; hd < h; hd++) {
      const float *q = qkv + (long)b * t * row + hd * k, *kk = q + hk, *v = q + 2 * hk;
      const float *p = probs + ((long)b * h + hd) * t * t;
      const float *dout_h = dout + (long)b * t * hk + hd * k;
      float *dq = dqkv + (long)b * t * row + hd * k, *dk = dq + hk, *dv = dq + 2 * hk;
      transpose(t, t, p, t, tr);
      gemm(t, k, t, tr, t, dout_h, hk, dv, row, causal ? K_UPPER : 0);
      transpose(t, k, v, row, vt);
      gemm(t, t, k, dout_h, hk, vt, t, ds, t, causal ? N_LOWER : 0);
      for (int i = 0; i < t; i++) {
        const int len = causal ? i + 1 : t;
        const float *pi = p + (long)i * t;
        float *di = ds + (long)i * t;
        float dot = 0;
        for (int j = 0; j < len; j++) dot += pi[j] * di[j];
        for (int j = 0; j < len; j++) di[j] = scale * pi[j] * (di[j] - dot);
        for (int j = len; j < t; j++) di[j] = 0;
      }
      gemm(t, k, t, ds, t, kk, row, dq, row, causal ? K_LOWER : 0);
      transpose(t, t, ds, t, tr);
      gemm(t, k, t, tr, t, q, row, dk, row, causal ? K_UPPER : 0);
    }
  }
}

/* ---- layer norm ----------------------------------------------------------------------------- */

/* y = (x - mean) / sqrt(var + eps) * gamma + beta per row of d values (biased variance, in double);
 * stats [rows, 2] gets each row's mean and 1 / sqrt(var + eps) for the backward pass. */
EXPORT(layernorm_forward) void layernorm_forward(int rows, int d, float eps, const float *x, const float *gamma,
                                                const float *beta, float *y, float *stats) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (long)r * d;
    float *yr = y + (long)r * d;
    double s = 0;
    for (int j = 0; j < d; j++) s += xr[j];
    const double mean = s / d;
    double ss = 0;
    for (int j = 0; j < d; j++) { const double c = xr[j] - mean; ss += c * c; }
    const float m = (float)mean;
    const float rstd = (float)(1.0 / __builtin_sqrt(ss / d + eps));
    for (int j = 0; j < d; j++) yr[j] = (xr[j] - m) * rstd * gamma[j] + beta[j];
    stats[2 * r] = m;
    stats[2 * r + 1] = rstd;
  }
}

/* With xhat = (x - mean) * rstd and g = dy * gamma: dbeta = sum_rows dy, dgamma = sum_rows dy xhat,
 * dx = rstd (g - mean(g) - xhat mean(g xhat)). dgamma and dbeta are overwritten. */
EXPORT(layernorm_backward) void layernorm_backward(int rows, int d, const float *x, const float *gamma, const float *stats,
                                                  const float *dy, float *dx, float *dgamma, float *dbeta) {
  for (int j = 0; j < d; j++) { dgamma[j] = 0; dbeta[j] = 0; }
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (long)r * d, *dyr = dy + (long)r * d;
    float *dxr = dx + (long)r * d;
    const float m = stats[2 * r], rstd = stats[2 * r + 1];
    double sg = 0, sgx = 0;
    for (int j = 0; j < d; j++) {
      const float xhat = (xr[j] - m) * rstd, g = dyr[j] * gamma[j];
      sg += g;
      sgx += g * xhat;
      dgamma[j] += dyr[j] * xhat;
      dbeta[j] += dyr[j];
    }
    const float mg = (float)(sg / d), mgx = (float)(sgx / d);
    for (int j = 0; j < d; j++) {
      const float xhat = (xr[j] - m) * rstd;
      dxr[j] = rstd * (dyr[j] * gamma[j] - mg - xhat * mgx);
    }
  }
}

/* ---- dense layers' gradients ----------------------------------------------------------------- */

/* out[j] = sum_r x[r][j]: a bias's gradient (tfjs's Sum over axis 0 transposes first). */
EXPORT(column_sum) void column_sum(int rows, int cols, const float *x, float *out) {
  int j = 0;
  for (; j + 4 <= cols; j += 4) {
    v128_t s = wasm_f32x4_splat(0);
    for (int r = 0; r < rows; r++) s = wasm_f32x4_add(s, wasm_v128_load(x + (long)r * cols + j));
    wasm_v128_store(out + j, s);
  }
  for (; j < cols; j++) {
    float s = 0;
    for (int r = 0; r < rows; r++) s += x[(long)r * cols + j];
    out[j] = s;
  }
}

/* 4 x 4 block at (i, j) of src (row stride c) to dst (row stride r), transposed in registers. */
static inline void transpose_block(const float *src, int c, float *dst, int r) {
  const v128_t a0 = wasm_v128_load(src), a1 = wasm_v128_load(src + c), a2 = wasm_v128_load(src + 2L * c), a3 = wasm_v128_load(src + 3L * c);
  const v128_t t0 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7);
  const v128_t t2 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
  wasm_v128_store(dst, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
  wasm_v128_store(dst + r, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
  wasm_v128_store(dst + 2L * r, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
  wasm_v128_store(dst + 3L * r, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
}

/* dst[c x r] = src[r x c]^T: 16 x 16 tiles (whole cache lines of dst) of 4 x 4 register blocks,
 * scalar at the edges. */
EXPORT(transpose_2d) void transpose_2d(int r, int c, const float *src, float *dst) {
  const int r4 = r & ~3, c4 = c & ~3;
  for (int i0 = 0; i0 < r4; i0 += 16) {
    const int i1 = imin(i0 + 16, r4);
    for (int j0 = 0; j0 < c4; j0 += 16) {
      const int j1 = imin(j0 + 16, c4);
      for (int i = i0; i < i1; i += 4)
        for (int j = j0; j < j1; j += 4) transpose_block(src + (long)i * c + j, c, dst + (long)j * r + i, r);
    }
  }
  for (int i = 0; i < r4; i++)
    for (int j = c4; j < c; j++) dst[(long)j * r + i] = src[(long)i * c + j];
  for (int i = r4; i < r; i++)
    for (int j = 0; j < c; j++) dst[(long)j * r + i] = src[(long)i * c + j];
}

/* ---- Adam ----------------------------------------------------------------------------------- */

/*
 * One Adam step over `count` tensors, PyTorch's formulas op by op in float32 exactly as the tfjs
 * engine's ops write them (optimizers.ts), so both give the same bits:
 *   g' = g + wd p (wd != 0),  m' = b1 m + (1 - b1) g',  v' = b2 v + (1 - b2) g'^2,
 *   p' = p - step_size * m' / (sqrt(v') / sqrt_bc2 + eps).
 * table: 4 ints per tensor (size, p, g, p_out addresses); m, v (in) and m_out, v_out (out) hold all
 * tensors' moments back to back in table order.
 */
EXPORT(adam_step) void adam_step(int count, const int *table, const float *m, const float *v, float *m_out, float *v_out,
                                 float wd, float b1, float omb1, float b2, float omb2, float sqrt_bc2, float eps, float step_size) {
  const v128_t vwd = wasm_f32x4_splat(wd), vb1 = wasm_f32x4_splat(b1), vomb1 = wasm_f32x4_splat(omb1), vb2 = wasm_f32x4_splat(b2),
               vomb2 = wasm_f32x4_splat(omb2), vsq = wasm_f32x4_splat(sqrt_bc2), veps = wasm_f32x4_splat(eps), vstep = wasm_f32x4_splat(step_size);
  long off = 0;
  for (int t = 0; t < count; t++) {
    const int n = table[4 * t];
    const float *p = (const float *)table[4 * t + 1], *g = (const float *)table[4 * t + 2];
    float *po = (float *)table[4 * t + 3];
    const float *mi = m + off, *vi = v + off;
    float *mo = m_out + off, *vo = v_out + off;
    for (int i = 0; i < n; i += 4) {
      const int c = n - i;
      const v128_t pv = load_part(p + i, c);
      v128_t gv = load_part(g + i, c);
      if (wd != 0) gv = wasm_f32x4_add(gv, wasm_f32x4_mul(pv, vwd));
      const v128_t mm = wasm_f32x4_add(wasm_f32x4_mul(load_part(mi + i, c), vb1), wasm_f32x4_mul(gv, vomb1));
      const v128_t vv = wasm_f32x4_add(wasm_f32x4_mul(load_part(vi + i, c), vb2), wasm_f32x4_mul(wasm_f32x4_mul(gv, gv), vomb2));
      const v128_t denom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vv), vsq), veps);
      store_part(mo + i, mm, c);
      store_part(vo + i, vv, c);
      store_part(po + i, wasm_f32x4_sub(pv, wasm_f32x4_mul(wasm_f32x4_div(mm, denom), vstep)), c);
    }
    off += n;
  }
}
