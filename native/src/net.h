// A network built once from the r2r graph IR and run by a small interpreter over libtorch ops.
//
// Layout: the IR is NHWC with conv kernels [kh, kw, cin, cout] and dense kernels [in, out].
// Internally spatial activations are NCHW (optionally channels_last strides), conv weights
// [cout, cin, kh, kw] and dense weights [out, in] (attention projections too, as nn.Linear);
// token activations [N, T, D] keep the IR's order. Conversion happens only in
// importParam/exportParam and toInternal (inputs). Autograd, batch norm, layer norm, losses and
// the optimizers are libtorch's own.
#pragma once

#include <torch/torch.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "onednn_dense.h"

namespace r2r {

enum class OpKind {
  Input, Conv, Dense, BatchNorm, Activation, MaxPool, AvgPool, GlobalAvgPool, Flatten, Add, Concat, Dropout,
  TokenInput, Embedding, PositionEmbedding, LayerNorm, Attention
};
enum class Act { Relu, Relu6, LeakyRelu, Elu, Tanh, Sigmoid, Gelu };
// Infer: running stats, no dropout. Train: batch stats, running stats untouched.
// TrainUpdate: batch stats and running-stat update (a training step).
enum class Mode { Infer, Train, TrainUpdate };

// OpenBLAS's openblas_set_num_threads when the libblas.so.3 that libtorch calls is OpenBLAS (found
// at run time in the already loaded library), else nullptr.
using BlasSetThreads = void (*)(int);
BlasSetThreads openblasSetThreads();

/** One node, with everything resolved on the JS side (explicit pads, channel counts). */
struct OpSpec {
  std::string name;
  OpKind kind = OpKind::Input;
  std::vector<int> inputs;
  std::vector<int64_t> shape;       // input: [H, W, C] or [F]; tokenInput: [T]
  // conv/dense/bn channels (cout = units for dense, C for bn and layer norm); embedding: cin =
  // vocab, cout = dim; position embedding: cin = max length, cout = D; attention: cin = D.
  int64_t cin = 0, cout = 0;
  int64_t heads = 0, keyDim = 0;    // attention
  bool causal = false;              // attention
  int64_t kh = 1, kw = 1, sh = 1, sw = 1;
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;
  bool useBias = false;
  double eps = 1e-3, momentum = 0.9;  // batch norm, Keras momentum
  Act act = Act::Relu;
  double alpha = 0.01;
  double rate = 0;
  bool spatialIn = false;  // flatten/dense/bn/concat/layerNorm: the input is [N, C, H, W]
  bool seqIn = false;      // bn/dense: the input is [N, T, C] (channels last)
};

struct NetOptions {
  torch::Device device = torch::kCPU;
  bool channelsLast = false;
  uint64_t seed = 0;  // the model's own dropout generator (as the tfjs engine's)
  bool onednn = true;  // dense layers in inference through oneDNN when it is built in (tests turn it off)
};

// DenseKernel: the project tensor, viewed as a matrix [rows, numel / rows], is the transpose of
// the internal one (dense [in, out]; attention [D, H, K] with rows = D, [H, K, D] with rows = H*K).
enum class ParamLayout { Plain, ConvKernel, DenseKernel };

struct Param {
  std::string name;  // "<node>/<param>"
  torch::Tensor tensor;
  ParamLayout layout;
  std::vector<int64_t> shape;  // project layout
  bool trainable;
  int64_t rows = 0;  // DenseKernel: rows of the project matrix
};

struct OptimizerConfig {
  std::string kind;  // "adam" | "sgd"
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, momentum = 0;
  bool nesterov = false;
};

/** Optimizer slots in project layout: slot name -> param name -> tensor. */
struct OptimizerStateData {
  std::string kind;
  int64_t step = 0;
  std::map<std::string, std::map<std::string, torch::Tensor>> slots;
};

struct StepStats { double loss; int64_t correct; };
struct EpochStats { double loss; int64_t correct, examples, steps; };

struct Dataset {
  torch::Tensor x;  // as uploaded: [N, H, W, C] or [N, F] (float), [N, T] (int64 ids), on the model's device
  torch::Tensor y;  // int64 [N], or [N, T] for a sequence model
  int64_t n;
};

class Net {
 public:
  Net(std::vector<OpSpec> ops, int output, NetOptions opts);

  const std::vector<Param>& params() const { return params_; }
  const std::vector<int64_t>& inputShape() const { return ops_[inputIndex_].shape; }
  /** The input is token ids (int64 [N, T]) rather than float values. */
  bool tokenInput() const { return ops_[inputIndex_].kind == OpKind::TokenInput; }
  const NetOptions& options() const { return opts_; }

  /** Copies a project-layout tensor (CPU, contiguous) into the named parameter. */
  void importParam(const std::string& name, const torch::Tensor& value);
  /** A parameter (or any tensor of its internal layout) in project layout, CPU contiguous. */
  torch::Tensor exportParam(const Param& p, const torch::Tensor& internal) const;

  /** NHWC/[N, F] batch from JS (CPU) to the internal layout on the device. */
  torch::Tensor toInternal(const torch::Tensor& xNhwc, Mode mode) const;
  torch::Tensor forward(const torch::Tensor& x, Mode mode);
  /** Logits for a JS batch, CPU contiguous [N, K] (or [N, T, V]). */
  torch::Tensor logits(const torch::Tensor& xNhwc, Mode mode);
  /** Mean loss and gradients (project layout) in training mode, no update. */
  std::pair<double, std::vector<torch::Tensor>> gradients(const torch::Tensor& xNhwc, const torch::Tensor& y);

  void setOptimizer(const OptimizerConfig& cfg, const OptimizerStateData* state);
  void setLearningRate(double lr);
  OptimizerStateData optimizerState() const;
  bool hasOptimizer() const { return optimizer_ != nullptr; }

  StepStats trainStep(const torch::Tensor& xNhwc, const torch::Tensor& y);
  StepStats evaluate(const torch::Tensor& xNhwc, const torch::Tensor& y);
  EpochStats trainEpoch(const Dataset& data, const torch::Tensor& order, int64_t batchSize,
                        const std::function<void(int64_t, double)>& progress);
  EpochStats evaluateDataset(const Dataset& data, int64_t batchSize);

 private:
  torch::Tensor conv(const OpSpec& op, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) const;
  torch::Tensor pool(const OpSpec& op, const torch::Tensor& x) const;
  torch::Tensor attention(size_t i, const torch::Tensor& x);
  /** Dense op `op` in inference: oneDNN with a cached reordered kernel, else BLAS. */
  torch::Tensor denseInfer(size_t op, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
  StepStats trainStepInternal(const torch::Tensor& x, const torch::Tensor& y);
  void adamStep();
  Param& param(const std::string& name);

  std::vector<OpSpec> ops_;
  int output_;
  int inputIndex_ = 0;
  NetOptions opts_;
  // Dropout masks come from the model's own generator, so two models built with one seed draw the
  // same masks whatever other models draw in between (libtorch's global generator is shared).
  at::Generator dropoutGen_;
  std::vector<Param> params_;
  // Per op: indices into params_ (kernel/gamma first), -1 when absent.
  std::vector<std::array<int, 8>> opParams_;
  std::vector<torch::Tensor> masks_;  // causal attention: [T, T] additive mask (0 / -inf)
  std::vector<int> lastUse_;     // last op index reading each op's output
  std::vector<bool> inplaceOk_;  // the op's output may be overwritten by its single consumer
  std::vector<OneDnnDense> dense_;  // per op; used by dense ops in inference
  std::vector<torch::Tensor> trainable_;
  std::vector<int> trainableIndex_;  // params_ index of each trainable tensor
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  OptimizerConfig optCfg_;
  int64_t step_ = 0;
};

}  // namespace r2r
