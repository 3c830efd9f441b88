#include "net.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace r2r {

namespace F = torch::nn::functional;

namespace {

// Outputs that a single consumer may overwrite in place: their producers' backward passes do not
// read their own outputs (conv, batch norm, add, linear, cat, pooling and mean save inputs or
// indices only). Activations are excluded because relu/tanh/sigmoid backward read the output.
bool inplaceProducer(OpKind k) {
  switch (k) {
    case OpKind::Conv: case OpKind::BatchNorm: case OpKind::Add: case OpKind::Dense:
    case OpKind::Concat: case OpKind::MaxPool: case OpKind::AvgPool: case OpKind::GlobalAvgPool:
      return true;
    default:
      return false;
  }
}

std::string paramKey(const torch::Tensor& t) { return c10::guts::to_string(t.unsafeGetTensorImpl()); }

}  // namespace

Net::Net(std::vector<OpSpec> ops, int output, NetOptions opts)
    : ops_(std::move(ops)), output_(output), opts_(opts), dropoutGen_(at::make_generator<at::CPUGeneratorImpl>(opts.seed)) {
  const auto fopt = torch::TensorOptions().dtype(torch::kFloat).device(opts_.device);
  const size_t n = ops_.size();
  opParams_.assign(n, {-1, -1, -1, -1});
  lastUse_.assign(n, -1);
  std::vector<int> consumers(n, 0);
  auto add = [&](size_t op, int slot, const std::string& pname, std::vector<int64_t> internal,
                 std::vector<int64_t> project, ParamLayout layout, bool trainable) {
    torch::Tensor t = torch::zeros(internal, fopt);
    if (layout == ParamLayout::ConvKernel && opts_.channelsLast) t = t.contiguous(at::MemoryFormat::ChannelsLast);
    if (trainable) t.requires_grad_(true);
    opParams_[op][slot] = static_cast<int>(params_.size());
    params_.push_back({ops_[op].name + "/" + pname, t, layout, std::move(project), trainable});
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
      case OpKind::Input:
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
      default:
        break;
    }
  }
  if (!haveInput) throw std::invalid_argument("graph has no input node");
  if (output_ < 0 || static_cast<size_t>(output_) >= n) throw std::invalid_argument("output index out of range");
  inplaceOk_.assign(n, false);
  const char* ip = std::getenv("R2R_TORCH_INPLACE");  // 0: never reuse a buffer (for profiling)
  if (ip && std::string(ip) == "0") return;
  for (size_t i = 0; i < n; i++) inplaceOk_[i] = consumers[i] == 1 && inplaceProducer(ops_[i].kind) && static_cast<int>(i) != output_;
}

Param& Net::param(const std::string& name) {
  for (auto& p : params_) if (p.name == name) return p;
  throw std::invalid_argument("no parameter named '" + name + "'");
}

static torch::Tensor projectToInternal(const Param& p, const torch::Tensor& value) {
  const torch::Tensor v = value.view(p.shape);
  switch (p.layout) {
    case ParamLayout::ConvKernel: return v.permute({3, 2, 0, 1});
    case ParamLayout::DenseKernel: return v.t();
    default: return v;
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
  return t.to(torch::kCPU).contiguous();
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
      case OpKind::Input:
        out = x;
        break;
      case OpKind::Conv:
        out = conv(op, v[op.inputs[0]], P(0), P(1));
        break;
      case OpKind::Dense:
        out = at::linear(v[op.inputs[0]], P(0), P(1));
        break;
      case OpKind::BatchNorm: {
        // Keras momentum m keeps m of the old statistic; torch's momentum is the new share.
        const bool useRunning = mode != Mode::Train;
        out = at::batch_norm(v[op.inputs[0]], P(0), P(1), useRunning ? P(2) : none, useRunning ? P(3) : none,
                             train, 1.0 - op.momentum, op.eps, cudnn);
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
        out = op.spatialIn ? a.permute({0, 2, 3, 1}).reshape({a.size(0), -1}) : a;
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
        out = at::cat(parts, 1);
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
  const torch::Tensor loss = F::cross_entropy(logits, y.to(opts_.device));
  loss.backward();
  std::vector<torch::Tensor> grads;
  for (size_t k = 0; k < trainable_.size(); k++) {
    const Param& p = params_[trainableIndex_[k]];
    const torch::Tensor g = trainable_[k].grad();
    grads.push_back(g.defined() ? exportParam(p, g) : torch::zeros(p.shape));
    trainable_[k].mutable_grad().reset();
  }
  return {loss.item<double>(), grads};
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

StepStats Net::trainStepInternal(const torch::Tensor& x, const torch::Tensor& y) {
  if (!optimizer_) throw std::invalid_argument("trainStep before setOptimizer");
  // set_to_none: backward then writes fresh gradients instead of accumulating into zeros.
  for (auto& t : trainable_) t.mutable_grad().reset();
  const torch::Tensor logits = forward(x, Mode::TrainUpdate);
  const torch::Tensor loss = F::cross_entropy(logits, y);
  int64_t correct;
  {
    torch::NoGradGuard ng;
    correct = logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  loss.backward();
  optimizer_->step();
  step_++;
  return {loss.item<double>(), correct};
}

StepStats Net::trainStep(const torch::Tensor& xNhwc, const torch::Tensor& y) {
  return trainStepInternal(toInternal(xNhwc, Mode::Train), y.to(opts_.device));
}

StepStats Net::evaluate(const torch::Tensor& xNhwc, const torch::Tensor& y) {
  c10::InferenceMode im;
  const torch::Tensor yd = y.to(opts_.device);
  const torch::Tensor logits = forward(toInternal(xNhwc, Mode::Infer), Mode::Infer);
  const double loss = F::cross_entropy(logits, yd).item<double>();
  return {loss, logits.argmax(1).eq(yd).sum().item<int64_t>()};
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
    lossSum += F::cross_entropy(logits, y).item<double>() * static_cast<double>(len);
    r.correct += logits.argmax(1).eq(y).sum().item<int64_t>();
    r.examples += len;
    r.steps++;
  }
  r.loss = r.examples ? lossSum / static_cast<double>(r.examples) : 0;
  return r;
}

}  // namespace r2r
