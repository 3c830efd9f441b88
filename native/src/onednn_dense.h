// Inference dense layers through oneDNN's matmul, with each kernel reordered once into the blocked
// layout oneDNN's AVX-512/AVX2 GEMM kernels read (brgemm), instead of packed anew on every call.
//
// Why: libtorch 1.13 runs a float32 dense layer as a BLAS GEMM, which packs both operands on every
// call (15% of an MLP's inference time on OpenBLAS) and, split over threads, packs the activations
// once per thread. Measured on 2 idle cores (Intel Xeon with AVX-512, OpenBLAS 0.3.21, oneDNN
// 2.6): mlp:1 inference on 256 images 176,000-188,000 img/s against 128,000-131,000 for the
// OpenBLAS split (native/src/net.cc linearSplit), in one probe run.
//
// Built only against Debian's libtorch, whose libtorch_cpu links the system libdnnl.so.2 (the
// same library, so one oneDNN and one OpenMP team per process); elsewhere `available()` is false
// and dense layers take the BLAS path. R2R_TORCH_ONEDNN=0 turns it off at run time.
#pragma once

#include <torch/torch.h>

#include <memory>

namespace r2r {

class OneDnnDense {
 public:
  OneDnnDense();
  ~OneDnnDense();
  OneDnnDense(OneDnnDense&&) noexcept;
  OneDnnDense& operator=(OneDnnDense&&) noexcept;

  /** Compiled in, and not turned off by R2R_TORCH_ONEDNN=0. */
  static bool available();

  /**
   * x [M, K] · wᵀ + b with w [units, K] (torch's Linear layout), for CPU float32 contiguous
   * tensors; an undefined tensor when this path does not apply (the caller falls back). The
   * reordered kernel is cached until w changes (its TensorImpl or version counter), so it must be
   * called with the same op's kernel and bias (or none) every time.
   */
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace r2r
