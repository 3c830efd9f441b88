#include "net.h"

#include <cmath>
#include <dlfcn.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace r2r {

namespace F = torch::nn::functional;

// OpenBLAS (when it is the libblas.so.3 that libtorch's dense layers call) keeps its own thread
// pool, sized to every core and unaware of at::set_num_threads in a libtorch built against the
// generic BLAS. Looked up at run time in the already loaded libopenblas (RTLD_NOLOAD: never
// loads it), so other BLAS builds need nothing.
BlasSetThreads openblasSetThreads() {
  static BlasSetThreads f = [] {
    void* h = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
    void* sym = h ? dlsym(h, "openblas_set_num_threads") : dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    return reinterpret_cast<BlasSetThreads>(sym);
  }();
  return f;
}

namespace {

// Outputs that a single consumer may overwrite in place: their producers' backward passes do not
// read their own outputs (conv, batch norm, add, linear, cat, pooling and mean save inputs or
// indices only). Activations are excluded because relu/tanh/sigmoid backward read the output.
bool inplaceProducer(OpKind k) {
  switch (k) {
    case OpKind::Conv: case OpKind::BatchNorm: case OpKind::Add: case OpKind::Dense:
    case OpKind::Concat: case OpKind::MaxPool: case OpKind::AvgPool: case OpKind::GlobalAvgPool:
    case OpKind::Embedding: case OpKind::PositionEmbedding:
      return true;
    default:
      return false;
  }
}

std::string paramKey(const torch::Tensor& t) { return c10::guts::to_string(t.unsafeGetTensorImpl()); }

/** Logits [N, K] or [N, T, V] and labels [N] or [N, T] as the rows of one classification. */
torch::Tensor flatLogits(const torch::Tensor& logits) { return logits.reshape({-1, logits.size(-1)}); }
torch::Tensor flatLabels(const torch::Tensor& y) { return y.reshape({-1}); }
torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& y) {
  return F::cross_entropy(flatLogits(logits), flatLabels(y));
}
int64_t countCorrect(const torch::Tensor& logits, const torch::Tensor& y) {
  return flatLogits(logits).argmax(1).eq(flatLabels(y)).sum().item<int64_t>();
}

/**
 * Inference batch norm over a CPU float tensor whose channels are its innermost, contiguous axis
 * (channels_last [N, C, H, W], or [N, C]); undefined when the tensor is not one. libtorch 1.13's
 * channels_last batch-norm kernel walks one C-long row at a time, and with this zoo's 12-48
 * channels that cost 6 ms of a 19 ms ResNetCifar-18(3/16) inference batch on one thread
 * (PyTorch's NCHW kernel: 1 ms). Same arithmetic as libtorch's eval kernel
 * (batch_norm_cpu_collect_linear_and_constant_terms): alpha = gamma / sqrt(var + eps),
 * beta' = beta - mean * alpha, y = x * alpha + beta', in float; here over the flat tensor against
 * alpha and beta' repeated 8 times, so the loop is long and vectorises for any C.
 */
torch::Tensor batchNormInferChannelsInner(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta,
                                          const torch::Tensor& mean, const torch::Tensor& var, double eps) {
  const bool inner = (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast)) || (x.dim() == 2 && x.is_contiguous());
  if (!inner || !x.device().is_cpu() || x.scalar_type() != torch::kFloat || x.numel() == 0) return {};
  for (const torch::Tensor* t : {&gamma, &beta, &mean, &var}) {
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != torch::kFloat || !t->is_contiguous()) return {};
  }
  const int64_t c = x.size(1), reps = 8, period = c * reps, total = x.numel();
  std::vector<float> alpha(period), shift(period);
  const float* g = gamma.data_ptr<float>();
  const float* b = beta.data_ptr<float>();
  const float* m = mean.data_ptr<float>();
  const float* v = var.data_ptr<float>();
  for (int64_t k = 0; k < c; k++) {
    const float invstd = 1 / std::sqrt(v[k] + static_cast<float>(eps));
    alpha[k] = invstd * g[k];
    shift[k] = b[k] - m[k] * alpha[k];
  }
  for (int64_t r = 1; r < reps; r++) {
    std::copy(alpha.begin(), alpha.begin() + c, alpha.begin() + r * c);
    std::copy(shift.begin(), shift.begin() + c, shift.begin() + r * c);
  }
  torch::Tensor out = at::empty_like(x);  // keeps x's memory format, so the flat orders agree
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float* ap = alpha.data();
  const float* sp = shift.data();
  at::parallel_for(0, (total + period - 1) / period, std::max<int64_t>(1, 32768 / period), [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; k++) {
      const int64_t base = k * period, len = std::min(period, total - base);
      const float* xi = xp + base;
      float* oi = op + base;
#pragma omp simd
      for (int64_t j = 0; j < len; j++) oi[j] = xi[j] * ap[j] + sp[j];
    }
  });
  return out;
}


// Inference dense layer on [N, F], split over the intra-op (OpenMP) threads, each chunk one
// single-threaded BLAS call. Why: OpenBLAS runs a GEMM on its own thread pool while the OpenMP
// workers still spin after the previous op (GOMP_SPINCOUNT), so on two cores three busy threads
// share two (MLP inference 0.5x PyTorch); on the OpenMP workers themselves nothing competes.
// Split by output features when there are enough of them (each thread then packs only its part of
// the weights: 256x3072x256 took 1.37 ms against 1.46-1.52 ms split by rows, 1.73-1.81 ms on
// OpenBLAS's two threads, on an AMD EPYC), else by rows. The fallback of Net::denseInfer where
// oneDNN is not built in. Training keeps at::linear (autograd records it).
torch::Tensor linearSplit(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int threads = at::get_num_threads();
  const BlasSetThreads setBlas = openblasSetThreads();
  const int64_t n = x.dim() == 2 ? x.size(0) : 0, units = w.size(0);
  if (threads < 2 || setBlas == nullptr || n < 32 || !x.is_cpu() || at::in_parallel_region() || at::GradMode::is_enabled()) return at::linear(x, w, b);
  const torch::Tensor xc = x.contiguous(), wt = w.t();
  torch::Tensor out = at::empty({n, units}, x.options());
  const bool byUnits = units >= 64;
  const int64_t total = byUnits ? units : n;
  // Autograd modes are thread-local: the workers take the caller's.
  const bool inference = c10::InferenceMode::is_enabled();
  setBlas(1);
  at::parallel_for(0, total, (total + threads - 1) / threads, [&](int64_t s, int64_t e) {
    c10::InferenceMode im(inference);
    torch::NoGradGuard ng;
    if (byUnits) {
      torch::Tensor o = out.narrow(1, s, e - s);
      if (b.defined()) at::addmm_out(o, b.narrow(0, s, e - s), xc, wt.narrow(1, s, e - s));
      else at::mm_out(o, xc, wt.narrow(1, s, e - s));
    } else {
      torch::Tensor o = out.narrow(0, s, e - s);
      if (b.defined()) at::addmm_out(o, b, xc.narrow(0, s, e - s), wt);
      else at::mm_out(o, xc.narrow(0, s, e - s), wt);
    }
  });
  setBlas(threads);
  return out;
}

}  // namespace

Net::Net(std::vector<OpSpec> ops, int output, NetOptions opts)
    : ops_(std::move(ops)), output_(output), opts_(opts), dropoutGen_(at::make_generator<at::CPUGeneratorImpl>(opts.seed)) {
  const auto fopt = torch::TensorOptions().dtype(torch::kFloat).device(opts_.device);
  const size_t n = ops_.size();
  opParams_.assign(n, {-1, -1, -1, -1, -1, -1, -1, -1});
  masks_.assign(n, torch::Tensor());
  lastUse_.assign(n, -1);
  std::vector<int> consumers(n, 0);
  auto add = [&](size_t op, int slot, const std::string& pname, std::vector<int64_t> internal,
                 std::vector<int64_t> project, ParamLayout layout, bool trainable, int64_t rows = 0) {
    torch::Tensor t = torch::zeros(internal, fopt);
    if (layout == ParamLayout::ConvKernel && opts_.channelsLast) t = t.contiguous(at::MemoryFormat::ChannelsLast);
    if (trainable) t.requires_grad_(true);
    opParams_[op][slot] = static_cast<int>(params_.size());
    if (layout == ParamLayout::DenseKernel && rows == 0) rows = project[0];
    params_.push_back({ops_[op].name + "/" + pname, t, layout, std::move(project), trainable, rows});
    if (trainable) {
      trainable_.push_back(t);
      trainableIndex_.push_back(static_cast<int>(params_.size()) - 1);
    }
  };
  bool haveInput = false;
  for (size_t i = 0; i < n; i++) {
    OpSpec& op = ops_[i];
    for (int j : op.inputs) {
      if (j < 0 || static_cast<size_t>(j) >= i) throw std::invalid_argument("node '" + op.name + "': input index out of order");
      lastUse_[j] = static_cast<int>(i);
      consumers[j]++;
    }
    switch (op.kind) {
      case OpKind::Input: case OpKind::TokenInput:
        if (haveInput) throw std::invalid_argument("a second input node '" + op.name + "'");
        haveInput = true;
        inputIndex_ = static_cast<int>(i);
        break;
      case OpKind::Conv:
        add(i, 0, "kernel", {op.cout, op.cin, op.kh, op.kw}, {op.kh, op.kw, op.cin, op.cout}, ParamLayout::ConvKernel, true);
        if (op.useBias) add(i, 1, "bias", {op.cout}, {op.cout}, ParamLayout::Plain, true);
        break;
      case OpKind::Dense:
        add(i, 0, "kernel", {op.cout, op.cin}, {op.cin, op.cout}, ParamLayout::DenseKernel, true);
        if (op.useBias) add(i, 1, "bias", {op.cout}, {op.cout}, ParamLayout::Plain, true);
        break;
      case OpKind::BatchNorm:
        add(i, 0, "gamma", {op.cout}, {op.cout}, ParamLayout::Plain, true);
        add(i, 1, "beta", {op.cout}, {op.cout}, ParamLayout::Plain, true);
        add(i, 2, "movingMean", {op.cout}, {op.cout}, ParamLayout::Plain, false);
        add(i, 3, "movingVariance", {op.cout}, {op.cout}, ParamLayout::Plain, false);
        break;
      case OpKind::Embedding: case OpKind::PositionEmbedding:
        // Keras Embedding's [vocab, dim] is nn.Embedding's weight as it is.
        add(i, 0, "embeddings", {op.cin, op.cout}, {op.cin, op.cout}, ParamLayout::Plain, true);
        break;
      case OpKind::LayerNorm:
        add(i, 0, "gamma", {op.cout}, {op.cout}, ParamLayout::Plain, true);
        add(i, 1, "beta", {op.cout}, {op.cout}, ParamLayout::Plain, true);
        break;
      case OpKind::Attention: {
        // Keras MultiHeadAttention's [D, H, K] projections as nn.Linear weights [H*K, D], and its
        // [H, K, D] output projection as [D, H*K] (docs/design/transformer-ir.md).
        const int64_t d = op.cin, h = op.heads, k = op.keyDim, hk = h * k;
        if (d < 1 || h < 1 || k < 1) throw std::invalid_argument("node '" + op.name + "': attention needs dim, heads and keyDim >= 1");
        const char* names[3] = {"query", "key", "value"};
        for (int j = 0; j < 3; j++) {
          add(i, 2 * j, std::string(names[j]) + "Kernel", {hk, d}, {d, h, k}, ParamLayout::DenseKernel, true, d);
          if (op.useBias) add(i, 2 * j + 1, std::string(names[j]) + "Bias", {hk}, {h, k}, ParamLayout::Plain, true);
        }
        add(i, 6, "outputKernel", {d, hk}, {h, k, d}, ParamLayout::DenseKernel, true, hk);
        if (op.useBias) add(i, 7, "outputBias", {d}, {d}, ParamLayout::Plain, true);
        if (op.causal) {
          // Additive mask: 0 where position t may attend to s <= t, -inf above the diagonal.
          if (op.shape.size() != 2) throw std::invalid_argument("node '" + op.name + "': causal attention needs its input shape [T, D]");
          const int64_t t = op.shape[0];
          masks_[i] = torch::full({t, t}, -std::numeric_limits<float>::infinity(), fopt).triu(1);
        }
        break;
      }
      default:
        break;
    }
  }
  if (!haveInput) throw std::invalid_argument("graph has no input node");
  if (output_ < 0 || static_cast<size_t>(output_) >= n) throw std::invalid_argument("output index out of range");
  dense_.resize(n);
  inplaceOk_.assign(n, false);
  const char* ip = std::getenv("R2R_TORCH_INPLACE");  // 0: never reuse a buffer (for profiling)
  if (ip && std::string(ip) == "0") return;
  for (size_t i = 0; i < n; i++) {
    // A linear on [N, T, F] returns a view of a 2-D matmul: an in-place add on it would cost
    // autograd a CopySlices (clone and zero fill) in the backward pass.
    const bool view = ops_[i].kind == OpKind::Dense && (ops_[i].seqIn || ops_[i].spatialIn);
    inplaceOk_[i] = consumers[i] == 1 && inplaceProducer(ops_[i].kind) && !view && static_cast<int>(i) != output_;
  }
}

Param& Net::param(const std::string& name) {
  for (auto& p : params_) if (p.name == name) return p;
  throw std::invalid_argument("no parameter named '" + name + "'");
}

static torch::Tensor projectToInternal(const Param& p, const torch::Tensor& value) {
  switch (p.layout) {
    case ParamLayout::ConvKernel: return value.view(p.shape).permute({3, 2, 0, 1});
    case ParamLayout::DenseKernel: return value.view({p.rows, -1}).t();
    default: return value.view(p.tensor.sizes());
  }
}

void Net::importParam(const std::string& name, const torch::Tensor& value) {
  Param& p = param(name);
  if (value.numel() != p.tensor.numel()) {
    throw std::invalid_argument("tensor '" + name + "' has " + std::to_string(value.numel()) + " values, expected " + std::to_string(p.tensor.numel()));
  }
  torch::NoGradGuard ng;
  p.tensor.copy_(projectToInternal(p, value));
}

torch::Tensor Net::exportParam(const Param& p, const torch::Tensor& internal) const {
  torch::Tensor t = internal.detach();
  switch (p.layout) {
    case ParamLayout::ConvKernel: t = t.permute({2, 3, 1, 0}); break;
    case ParamLayout::DenseKernel: t = t.t(); break;
    default: break;
  }
  return t.to(torch::kCPU).contiguous().view(p.shape);
}

torch::Tensor Net::toInternal(const torch::Tensor& xNhwc, Mode mode) const {
  torch::Tensor x = xNhwc.to(opts_.device);
  if (x.dim() != 4) return x.contiguous();
  x = x.permute({0, 3, 1, 2});
  // Inference always runs channels_last: oneDNN's forward convolutions are faster there and
  // conv2d follows the input's memory format (the small weights are reordered per call).
  // Training follows the option: measured on 2 cores, NCHW trains faster at these widths.
  const bool cl = opts_.channelsLast || mode == Mode::Infer;
  return cl ? x.contiguous(at::MemoryFormat::ChannelsLast) : x.contiguous();
}

torch::Tensor Net::conv(const OpSpec& op, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) const {
  const std::array<int64_t, 2> stride{op.sh, op.sw};
  if (opts_.channelsLast && op.kh == 1 && op.kw == 1 && (op.sh > 1 || op.sw > 1)) {
    // oneDNN 2.6 (libtorch 1.13) computes the weight gradient of a strided 1x1 convolution in
    // channels_last with a race when it runs on 2+ threads: results vary run to run by up to
    // 60% (reproduced in PyTorch itself, e.g. x [64, 4, 8, 8] -> 8 channels, stride 2). These
    // shortcut convs are cheap, so they run in NCHW and hand channels_last back.
    const std::array<int64_t, 2> pad{op.pt, op.pl};
    const torch::Tensor xin = op.pt == op.pb && op.pl == op.pr ? x : at::constant_pad_nd(x, {op.pl, op.pr, op.pt, op.pb}, 0);
    const std::array<int64_t, 2> p2 = op.pt == op.pb && op.pl == op.pr ? pad : std::array<int64_t, 2>{0, 0};
    return at::conv2d(xin.contiguous(), w.contiguous(), b, at::IntArrayRef(stride), at::IntArrayRef(p2))
        .contiguous(at::MemoryFormat::ChannelsLast);
  }
  if (op.pt == op.pb && op.pl == op.pr) {
    const std::array<int64_t, 2> pad{op.pt, op.pl};
    return at::conv2d(x, w, b, at::IntArrayRef(stride), at::IntArrayRef(pad));
  }
  // Asymmetric 'same' padding (TensorFlow puts the extra row/column at the bottom/right).
  const std::array<int64_t, 2> zero{0, 0};
  return at::conv2d(at::constant_pad_nd(x, {op.pl, op.pr, op.pt, op.pb}, 0), w, b, at::IntArrayRef(stride), at::IntArrayRef(zero));
}

torch::Tensor Net::pool(const OpSpec& op, const torch::Tensor& x) const {
  const bool sym = op.pt == op.pb && op.pl == op.pr;
  const bool native = sym && op.pt <= op.kh / 2 && op.pl <= op.kw / 2;  // torch's pooling pad limit
  const bool noPad = op.pt == 0 && op.pb == 0 && op.pl == 0 && op.pr == 0;
  if (op.kind == OpKind::MaxPool) {
    if (native) return at::max_pool2d(x, {op.kh, op.kw}, {op.sh, op.sw}, {op.pt, op.pl});
    const double ninf = -std::numeric_limits<double>::infinity();
    return at::max_pool2d(at::constant_pad_nd(x, {op.pl, op.pr, op.pt, op.pb}, ninf), {op.kh, op.kw}, {op.sh, op.sw}, {0, 0});
  }
  if (native || noPad) return at::avg_pool2d(x, {op.kh, op.kw}, {op.sh, op.sw}, {op.pt, op.pl}, false, /*count_include_pad=*/false);
  // Average over real cells only: window sum over a zero-padded input / window count of a mask.
  const std::vector<int64_t> pads{op.pl, op.pr, op.pt, op.pb};
  const torch::Tensor num = at::avg_pool2d(at::constant_pad_nd(x, pads, 0), {op.kh, op.kw}, {op.sh, op.sw}, {0, 0}, false, true);
  const torch::Tensor ones = torch::ones({1, 1, x.size(2), x.size(3)}, x.options().requires_grad(false));
  const torch::Tensor den = at::avg_pool2d(at::constant_pad_nd(ones, pads, 0), {op.kh, op.kw}, {op.sh, op.sw}, {0, 0}, false, true);
  return num / den;
}

torch::Tensor Net::denseInfer(size_t op, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  // [N, F] or [N, T, F] (Keras Dense acts on the last axis): oneDNN on the rows when it can.
  if (opts_.onednn && x.is_contiguous()) {
    const torch::Tensor rows = x.dim() == 2 ? x : x.view({-1, x.size(-1)});
    const torch::Tensor y = dense_[op].forward(rows, w, b);
    if (y.defined()) {
      if (x.dim() == 2) return y;
      std::vector<int64_t> shape = x.sizes().vec();
      shape.back() = w.size(0);
      return y.view(shape);
    }
  }
  return linearSplit(x, w, b);
}

torch::Tensor Net::forward(const torch::Tensor& x, Mode mode) {
  const bool train = mode != Mode::Infer;
  const bool cudnn = opts_.device.is_cuda();
  std::vector<torch::Tensor> v(ops_.size());
  const torch::Tensor none;
  for (size_t i = 0; i < ops_.size(); i++) {
    const OpSpec& op = ops_[i];
    const auto& pi = opParams_[i];
    auto P = [&](int k) -> const torch::Tensor& { return pi[k] < 0 ? none : params_[pi[k]].tensor; };
    auto ownsInput = [&](int k) { return inplaceOk_[op.inputs[k]]; };
    torch::Tensor out;
    switch (op.kind) {
      case OpKind::Input: case OpKind::TokenInput:
        out = x;
        break;
      case OpKind::Conv:
        out = conv(op, v[op.inputs[0]], P(0), P(1));
        break;
      case OpKind::Dense:
        // Keras Dense acts on the last axis: [N, F] and [N, T, F] directly, NCHW via NHWC.
        out = op.spatialIn ? at::linear(v[op.inputs[0]].permute({0, 2, 3, 1}), P(0), P(1)).permute({0, 3, 1, 2})
                           : mode == Mode::Infer ? denseInfer(i, v[op.inputs[0]], P(0), P(1))
                           : at::linear(v[op.inputs[0]], P(0), P(1));
        break;
      case OpKind::Embedding:
        out = at::embedding(P(0), v[op.inputs[0]]);
        break;
      case OpKind::PositionEmbedding: {
        torch::Tensor& a = v[op.inputs[0]];
        const torch::Tensor pos = P(0).narrow(0, 0, a.size(1));
        out = ownsInput(0) ? a.add_(pos) : a + pos;
        break;
      }
      case OpKind::LayerNorm:
        // Over the IR's last (channel) axis: NCHW runs as NHWC.
        out = op.spatialIn ? at::layer_norm(v[op.inputs[0]].permute({0, 2, 3, 1}), {op.cout}, P(0), P(1), op.eps, cudnn).permute({0, 3, 1, 2})
                           : at::layer_norm(v[op.inputs[0]], {op.cout}, P(0), P(1), op.eps, cudnn);
        break;
      case OpKind::Attention:
        out = attention(i, v[op.inputs[0]]);
        break;
      case OpKind::BatchNorm: {
        // Keras momentum m keeps m of the old statistic; torch's momentum is the new share.
        const bool useRunning = mode != Mode::Train;
        // Channels are dim 1 for batch_norm: [N, T, C] runs as [N, C, T].
        const torch::Tensor a = op.seqIn ? v[op.inputs[0]].transpose(1, 2) : v[op.inputs[0]];
        if (mode == Mode::Infer) out = batchNormInferChannelsInner(a, P(0), P(1), P(2), P(3), op.eps);
        if (!out.defined()) out = at::batch_norm(a, P(0), P(1), useRunning ? P(2) : none, useRunning ? P(3) : none,
                             train, 1.0 - op.momentum, op.eps, cudnn);
        if (op.seqIn) out = out.transpose(1, 2);
        break;
      }
      case OpKind::Activation: {
        torch::Tensor& a = v[op.inputs[0]];
        switch (op.act) {
          case Act::Relu: out = ownsInput(0) ? at::relu_(a) : at::relu(a); break;
          case Act::Relu6: out = at::hardtanh(a, 0, 6); break;
          case Act::LeakyRelu: out = at::leaky_relu(a, op.alpha); break;
          case Act::Elu: out = at::elu(a); break;
          case Act::Tanh: out = at::tanh(a); break;
          case Act::Sigmoid: out = at::sigmoid(a); break;
          case Act::Gelu: out = at::gelu(a); break;  // exact erf form
        }
        break;
      }
      case OpKind::MaxPool: case OpKind::AvgPool:
        out = pool(op, v[op.inputs[0]]);
        break;
      case OpKind::GlobalAvgPool:
        // Not mean({2, 3}): its backward is an expanded (stride-0) gradient, which drags every
        // elementwise backward op upstream off the channels_last fast path.
        out = at::adaptive_avg_pool2d(v[op.inputs[0]], {1, 1}).flatten(1);
        break;
      case OpKind::Flatten: {
        const torch::Tensor& a = v[op.inputs[0]];
        // The IR flattens NHWC: channel c at (h, w) lands at (h*W + w)*C + c.
        out = op.spatialIn ? a.permute({0, 2, 3, 1}).reshape({a.size(0), -1}) : a.reshape({a.size(0), -1});
        break;
      }
      case OpKind::Add: {
        int target = -1;
        for (size_t k = 0; k < op.inputs.size(); k++) if (ownsInput(static_cast<int>(k))) { target = static_cast<int>(k); break; }
        if (target < 0) {
          out = v[op.inputs[0]] + v[op.inputs[1]];
          for (size_t k = 2; k < op.inputs.size(); k++) out.add_(v[op.inputs[k]]);
        } else {
          out = v[op.inputs[target]];
          for (size_t k = 0; k < op.inputs.size(); k++) if (static_cast<int>(k) != target) out.add_(v[op.inputs[k]]);
        }
        break;
      }
      case OpKind::Concat: {
        std::vector<torch::Tensor> parts;
        for (int j : op.inputs) parts.push_back(v[j]);
        out = at::cat(parts, op.spatialIn ? 1 : -1);  // the IR's last (channel) axis
        break;
      }
      case OpKind::Dropout: {
        const torch::Tensor& in = v[op.inputs[0]];
        if (!train || op.rate <= 0) { out = in; break; }
        // Inverted dropout with a mask from the model's generator (drawn on the CPU, then moved).
        auto mask = torch::empty(in.sizes(), torch::TensorOptions().dtype(in.scalar_type()));
        mask.bernoulli_(1 - op.rate, dropoutGen_);
        out = in * mask.div_(1 - op.rate).to(in.device());
        break;
      }
    }
    v[i] = std::move(out);
    // Free intermediate values as soon as their last reader ran (autograd keeps what it needs).
    for (int j : op.inputs) if (lastUse_[j] == static_cast<int>(i)) v[j].reset();
  }
  return v[output_];
}

// Causal multi-head self-attention, x [N, T, D] -> [N, T, D]. One matmul for q, k and v (the
// three kernels concatenated, as nn.Linear(D, 3D)), one copy into per-head [3, N*H, T, K], the
// scale and the causal mask fused into baddbmm, softmax, bmm with v, heads back to [N, T, H*K]
// and the output projection.
torch::Tensor Net::attention(size_t i, const torch::Tensor& x) {
  const OpSpec& op = ops_[i];
  const auto& pi = opParams_[i];
  const torch::Tensor none;
  auto P = [&](int k) -> const torch::Tensor& { return pi[k] < 0 ? none : params_[pi[k]].tensor; };
  const int64_t n = x.size(0), t = x.size(1), h = op.heads, k = op.keyDim;
  const torch::Tensor w = at::cat({P(0), P(2), P(4)}, 0);
  const torch::Tensor b = op.useBias ? at::cat({P(1), P(3), P(5)}, 0) : none;
  const torch::Tensor qkv = at::linear(x, w, b).view({n, t, 3, h, k}).permute({2, 0, 3, 1, 4}).contiguous().view({3, n * h, t, k});
  // unbind, not select: select's backward zero-fills a whole [3, ...] gradient per slice.
  const std::vector<torch::Tensor> parts = qkv.unbind(0);
  const torch::Tensor& q = parts[0];
  const torch::Tensor& key = parts[1];
  const torch::Tensor& val = parts[2];
  const double scale = 1.0 / std::sqrt(static_cast<double>(k));
  const torch::Tensor scores = masks_[i].defined() ? at::baddbmm(masks_[i].narrow(0, 0, t).narrow(1, 0, t), q, key.transpose(1, 2), 1.0, scale)
                                                   : at::bmm(q, key.transpose(1, 2)).mul_(scale);
  const torch::Tensor att = at::softmax(scores, -1);
  const torch::Tensor o = at::bmm(att, val).view({n, h, t, k}).permute({0, 2, 1, 3}).reshape({n, t, h * k});
  return at::linear(o, P(6), P(7));
}

torch::Tensor Net::logits(const torch::Tensor& xNhwc, Mode mode) {
  torch::Tensor out;
  if (mode == Mode::Infer) {
    c10::InferenceMode im;
    out = forward(toInternal(xNhwc, mode), mode).to(torch::kCPU).contiguous();
  } else {
    torch::NoGradGuard ng;
    out = forward(toInternal(xNhwc, mode), mode).to(torch::kCPU).contiguous();
  }
  return out;
}

std::pair<double, std::vector<torch::Tensor>> Net::gradients(const torch::Tensor& xNhwc, const torch::Tensor& y) {
  for (auto& t : trainable_) t.mutable_grad().reset();
  const torch::Tensor logits = forward(toInternal(xNhwc, Mode::Train), Mode::Train);
  const torch::Tensor lossT = loss(logits, y.to(opts_.device));
  lossT.backward();
  std::vector<torch::Tensor> grads;
  for (size_t k = 0; k < trainable_.size(); k++) {
    const Param& p = params_[trainableIndex_[k]];
    const torch::Tensor g = trainable_[k].grad();
    grads.push_back(g.defined() ? exportParam(p, g) : torch::zeros(p.shape));
    trainable_[k].mutable_grad().reset();
  }
  return {lossT.item<double>(), grads};
}

void Net::setOptimizer(const OptimizerConfig& cfg, const OptimizerStateData* state) {
  optimizer_.reset();
  if (cfg.kind == "adam") {
    auto o = torch::optim::AdamOptions(cfg.lr).betas(std::make_tuple(cfg.beta1, cfg.beta2)).eps(cfg.eps).weight_decay(cfg.weightDecay);
    optimizer_ = std::make_unique<torch::optim::Adam>(trainable_, o);
  } else if (cfg.kind == "sgd") {
    auto o = torch::optim::SGDOptions(cfg.lr).momentum(cfg.momentum).nesterov(cfg.nesterov).weight_decay(cfg.weightDecay);
    optimizer_ = std::make_unique<torch::optim::SGD>(trainable_, o);
  } else {
    throw std::invalid_argument("unknown optimizer kind '" + cfg.kind + "'");
  }
  optCfg_ = cfg;
  step_ = 0;
  if (!state) return;
  step_ = state->step;
  if (step_ <= 0) return;  // torch initialises its state lazily at the first step
  auto slot = [&](const std::string& s, const Param& p) -> torch::Tensor {
    const torch::Tensor internal = torch::zeros_like(p.tensor.detach());
    auto it = state->slots.find(s);
    if (it == state->slots.end()) return internal;
    auto jt = it->second.find(p.name);
    if (jt == it->second.end()) return internal;
    torch::NoGradGuard ng;
    internal.copy_(projectToInternal(p, jt->second));
    return internal;
  };
  auto& st = optimizer_->state();
  for (size_t k = 0; k < trainable_.size(); k++) {
    const Param& p = params_[trainableIndex_[k]];
    if (cfg.kind == "adam") {
      auto s = std::make_unique<torch::optim::AdamParamState>();
      s->step(step_);
      s->exp_avg(slot("m", p));
      s->exp_avg_sq(slot("v", p));
      st[paramKey(trainable_[k])] = std::move(s);
    } else if (cfg.momentum != 0) {
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(slot("momentum", p));
      st[paramKey(trainable_[k])] = std::move(s);
    }
  }
}

void Net::setLearningRate(double lr) {
  if (!optimizer_) throw std::invalid_argument("setLearningRate before setOptimizer");
  for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
  optCfg_.lr = lr;
}

OptimizerStateData Net::optimizerState() const {
  OptimizerStateData out;
  if (!optimizer_) return out;
  out.kind = optCfg_.kind;
  out.step = step_;
  const auto& st = optimizer_->state();
  for (size_t k = 0; k < trainable_.size(); k++) {
    const Param& p = params_[trainableIndex_[k]];
    auto it = st.find(paramKey(trainable_[k]));
    if (optCfg_.kind == "adam") {
      if (it != st.end()) {
        const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
        out.slots["m"][p.name] = exportParam(p, s.exp_avg());
        out.slots["v"][p.name] = exportParam(p, s.exp_avg_sq());
      } else {
        out.slots["m"][p.name] = torch::zeros(p.shape);
        out.slots["v"][p.name] = torch::zeros(p.shape);
      }
    } else if (optCfg_.momentum != 0) {
      if (it != st.end()) {
        const auto& s = static_cast<const torch::optim::SGDParamState&>(*it->second);
        out.slots["momentum"][p.name] = exportParam(p, s.momentum_buffer());
      } else {
        out.slots["momentum"][p.name] = torch::zeros(p.shape);
      }
    }
  }
  return out;
}

// torch::optim::Adam's update (1.13, amsgrad off) in one pass over each parameter instead of
// its seven tensor ops (mul_, add_, mul_, addcmul_, sqrt, div, add_, addcdiv_): the same float
// operations in the same order per element, on the state torch's optimizer holds (so
// optimizerState/setOptimizer are unchanged). A memory-bound step: for the 11M-parameter GPT it
// read and wrote every tensor ~7 times. Tensors it cannot walk flat (other devices, dtypes or
// layouts) take torch's ops.
void Net::adamStep() {
  auto& st = optimizer_->state();
  const double b1 = optCfg_.beta1, b2 = optCfg_.beta2, wd = optCfg_.weightDecay;
  const float b1f = static_cast<float>(b1), b2f = static_cast<float>(b2), eps = static_cast<float>(optCfg_.eps);
  const float a1 = static_cast<float>(1 - b1), a2 = static_cast<float>(1 - b2), wdf = static_cast<float>(wd);
  torch::NoGradGuard ng;
  for (auto& p : trainable_) {
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const std::string key = paramKey(p);
    auto it = st.find(key);
    if (it == st.end()) {
      auto s = std::make_unique<torch::optim::AdamParamState>();
      s->step(0);
      s->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
      s->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
      it = st.emplace(key, std::move(s)).first;
    }
    auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
    s.step(s.step() + 1);
    const double bc1 = 1 - std::pow(b1, static_cast<double>(s.step()));
    const double bc2 = 1 - std::pow(b2, static_cast<double>(s.step()));
    const double stepSize = optCfg_.lr / bc1;
    torch::Tensor& m = s.exp_avg();
    torch::Tensor& v = s.exp_avg_sq();
    const bool flat = p.device().is_cpu() && p.scalar_type() == torch::kFloat && g.scalar_type() == torch::kFloat &&
                      p.is_non_overlapping_and_dense() && g.strides() == p.strides() && m.strides() == p.strides() &&
                      v.strides() == p.strides() && m.scalar_type() == torch::kFloat && v.scalar_type() == torch::kFloat;
    if (!flat) {
      const torch::Tensor grad = wd != 0 ? g.add(p, wd) : g;
      m.mul_(b1).add_(grad, 1 - b1);
      v.mul_(b2).addcmul_(grad, grad, 1 - b2);
      p.addcdiv_(m, (v.sqrt() / std::sqrt(bc2)).add_(optCfg_.eps), -stepSize);
      continue;
    }
    float* pp = p.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* mp = m.data_ptr<float>();
    float* vp = v.data_ptr<float>();
    const float sq2 = static_cast<float>(std::sqrt(bc2)), negStep = static_cast<float>(-stepSize);
    auto kernel = [&](auto withDecay) {
      at::parallel_for(0, p.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        // (binding.gyp: -fopenmp for parallel_for and the pragma, -fno-math-errno so sqrt vectorises.)
#pragma omp simd
        for (int64_t i = begin; i < end; i++) {
          const float gi = decltype(withDecay)::value ? gp[i] + wdf * pp[i] : gp[i];
          const float mi = mp[i] * b1f + a1 * gi;
          const float vi = vp[i] * b2f + a2 * gi * gi;
          mp[i] = mi;
          vp[i] = vi;
          pp[i] = pp[i] + negStep * (mi / (std::sqrt(vi) / sq2 + eps));
        }
      });
    };
    if (wd != 0) kernel(std::true_type{}); else kernel(std::false_type{});
    // Raw writes bypass the version counter; bump it as an in-place op would (OneDnnDense reads it).
    p.unsafeGetTensorImpl()->bump_version();
  }
}

StepStats Net::trainStepInternal(const torch::Tensor& x, const torch::Tensor& y) {
  if (!optimizer_) throw std::invalid_argument("trainStep before setOptimizer");
  // set_to_none: backward then writes fresh gradients instead of accumulating into zeros.
  for (auto& t : trainable_) t.mutable_grad().reset();
  const torch::Tensor logits = forward(x, Mode::TrainUpdate);
  const torch::Tensor lossT = loss(logits, y);
  int64_t correct;
  {
    torch::NoGradGuard ng;
    correct = countCorrect(logits, y);
  }
  lossT.backward();
  if (optCfg_.kind == "adam") {
    adamStep();
  } else {
    optimizer_->step();
    // libtorch's SGD writes through p.data(), a view with its own version counter: bump the
    // parameters' own, which OneDnnDense's cached kernels are checked against.
    for (auto& p : trainable_) p.unsafeGetTensorImpl()->bump_version();
  }
  step_++;
  return {lossT.item<double>(), correct};
}

StepStats Net::trainStep(const torch::Tensor& xNhwc, const torch::Tensor& y) {
  return trainStepInternal(toInternal(xNhwc, Mode::Train), y.to(opts_.device));
}

StepStats Net::evaluate(const torch::Tensor& xNhwc, const torch::Tensor& y) {
  c10::InferenceMode im;
  const torch::Tensor yd = y.to(opts_.device);
  const torch::Tensor logits = forward(toInternal(xNhwc, Mode::Infer), Mode::Infer);
  return {loss(logits, yd).item<double>(), countCorrect(logits, yd)};
}

EpochStats Net::trainEpoch(const Dataset& data, const torch::Tensor& order, int64_t batchSize,
                           const std::function<void(int64_t, double)>& progress) {
  const torch::Tensor idx = order.to(torch::kLong).to(opts_.device);
  const int64_t m = idx.numel();
  EpochStats r{0, 0, 0, 0};
  double lossSum = 0;
  for (int64_t start = 0; start < m; start += batchSize) {
    const int64_t len = std::min(batchSize, m - start);
    const torch::Tensor b = idx.narrow(0, start, len);
    const StepStats s = trainStepInternal(toInternal(data.x.index_select(0, b), Mode::Train), data.y.index_select(0, b));
    lossSum += s.loss * static_cast<double>(len);
    r.correct += s.correct;
    r.examples += len;
    r.steps++;
    if (progress) progress(r.steps, lossSum / static_cast<double>(r.examples));
  }
  r.loss = r.examples ? lossSum / static_cast<double>(r.examples) : 0;
  return r;
}

EpochStats Net::evaluateDataset(const Dataset& data, int64_t batchSize) {
  c10::InferenceMode im;
  EpochStats r{0, 0, 0, 0};
  double lossSum = 0;
  for (int64_t start = 0; start < data.n; start += batchSize) {
    const int64_t len = std::min(batchSize, data.n - start);
    const torch::Tensor y = data.y.narrow(0, start, len);
    const torch::Tensor logits = forward(toInternal(data.x.narrow(0, start, len), Mode::Infer), Mode::Infer);
    lossSum += loss(logits, y).item<double>() * static_cast<double>(len);
    r.correct += countCorrect(logits, y);
    r.examples += len;
    r.steps++;
  }
  r.loss = r.examples ? lossSum / static_cast<double>(r.examples) : 0;
  return r;
}

}  // namespace r2r
