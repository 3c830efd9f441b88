// N-API binding of r2r::Net. Every call that touches libtorch runs as a job on ONE engine thread,
// in the order the JS main thread posted it, and settles a Promise through a thread-safe function.
// One thread (not libuv's pool) so OpenMP keeps a single team of workers, as in a PyTorch
// process, and so synchronous setters (setOptimizer, setLearningRate) stay ordered with steps.
#include <napi.h>
#include <torch/torch.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/version.h>

#include <malloc.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "net.h"

namespace {

using r2r::Net;

class EngineThread {
 public:
  EngineThread() { std::thread([this] { loop(); }).detach(); }
  void post(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      q_.push_back(std::move(f));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    // Flush denormals to zero (FTZ/DAZ) on the engine thread, as TensorFlow does on CPUs: weights
    // that weight decay drives toward zero (NetMorph's zero channels, say) and their Adam moments
    // turn denormal, and every multiply-add on a denormal takes a slow microcode path (measured:
    // a NetMorph student's training step 279 ms with a third of its weights denormal, 27 ms with
    // them flushed). Values below 1.2e-38 become 0, far below any tolerance here.
    at::globalContext().setFlushDenormal(true);
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [this] { return !q_.empty(); });
        f = std::move(q_.front());
        q_.pop_front();
      }
      f();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
};

// Leaked on purpose: a detached thread must not outlive a destroyed queue at process exit.
EngineThread& engine() {
  static EngineThread* e = new EngineThread();
  return *e;
}

int currentThreads = -1;  // engine thread only

void useThreads(int n) {
  if (n > 0 && n != currentThreads) {
    at::set_num_threads(n);
    if (auto f = r2r::openblasSetThreads()) f(n);
    currentThreads = n;
    // The same denormal flushing on every intra-op worker (one chunk per thread). OpenBLAS' own
    // threads are not reached: dense layers on large batches may still meet denormals there.
    at::parallel_for(0, n, 1, [](int64_t, int64_t) { at::globalContext().setFlushDenormal(true); });
  }
}

std::string describe(const std::exception& e) {
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

/** Native state of one model, shared by the JS wrapper and its in-flight jobs. */
struct ModelState {
  std::unique_ptr<Net> net;
  int threads = 0;
  int64_t labelsPerExample = 1;  // T for a sequence model (logits [N, T, V])
  std::string deferredError;  // from a fire-and-forget setter, reported by the next call
};

using Reporter = std::function<void(int64_t, double)>;

/**
 * Keeps a JS value (a borrowed input array) alive until its job settles. Created and reset on the
 * main thread only; its destructor never deletes the reference (it may run on the engine thread).
 */
struct Keep {
  Napi::Reference<Napi::Value> ref;
  explicit Keep(const Napi::Value& v) : ref(Napi::Persistent(v)) { ref.SuppressDestruct(); }
};

struct JobState {
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;  // jobs with a progress callback only
  bool failed = false;
  std::string error;
  explicit JobState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

/** Settles a finished job's promise on the main thread. */
void settle(Napi::Env env, JobState& st, const std::function<Napi::Value(Napi::Env)>& done, const std::shared_ptr<Keep>& keep) {
  if (st.failed) {
    st.deferred.Reject(Napi::Error::New(env, st.error).Value());
  } else {
    try {
      st.deferred.Resolve(done(env));  // done may read a borrowed input: release it after
    } catch (const Napi::Error& e) {
      st.deferred.Reject(e.Value());
    } catch (const std::exception& e) {
      st.deferred.Reject(Napi::Error::New(env, describe(e)).Value());
    }
  }
  if (keep) keep->ref.Reset();
}

/**
 * The main thread's side of finished jobs without progress: one thread-safe function for the
 * addon's lifetime, referenced (keeping the event loop alive) only while jobs are in flight.
 * Why not one per job: creating and releasing a thread-safe function opens and closes a libuv
 * handle, waking the main thread about four times per job; on 2 cores every wake preempts one of
 * the two compute threads (an MLP's inference passes were preempted ~2,000 times a second).
 */
using Finished = std::function<void(Napi::Env)>;
struct AddonData;
void runFinished(Napi::Env env, Napi::Function, AddonData* ad, Finished* f);
using DoneChannel = Napi::TypedThreadSafeFunction<AddonData, Finished, runFinished>;

struct AddonData {
  Napi::FunctionReference datasetCtor;
  DoneChannel done;
  int64_t inFlight = 0;  // main thread only
};

void runFinished(Napi::Env env, Napi::Function, AddonData* ad, Finished* f) {
  std::unique_ptr<Finished> owned(f);
  if (env == nullptr) return;  // the environment is shutting down
  if (--ad->inFlight == 0) ad->done.Unref(env);
  (*f)(env);
}

/**
 * Posts `work` to the engine thread; `done` builds the resolved value on the main thread.
 * `progress` (optional JS function) receives (batchesDone, meanLoss) from the reporter; such a
 * job settles through its own thread-safe function, so its progress calls arrive before it settles.
 */
Napi::Promise schedule(Napi::Env env, std::shared_ptr<ModelState> model, std::function<void(const Reporter&)> work,
                       std::function<Napi::Value(Napi::Env)> done, Napi::Function progress = Napi::Function(),
                       std::shared_ptr<Keep> keep = nullptr) {
  auto st = std::make_shared<JobState>(env);
  const bool hasProgress = !progress.IsEmpty();
  AddonData* ad = env.GetInstanceData<AddonData>();
  if (hasProgress) {
    st->tsfn = Napi::ThreadSafeFunction::New(env, progress, "r2r-torch-job", 0, 1);
  } else if (ad->inFlight++ == 0) {
    ad->done.Ref(env);
  }
  engine().post([st, model, work = std::move(work), done = std::move(done), hasProgress, keep, ad]() {
    Reporter report;
    if (hasProgress) {
      report = [st](int64_t batches, double loss) {
        st->tsfn.NonBlockingCall([batches, loss](Napi::Env env, Napi::Function cb) {
          try {
            cb.Call({Napi::Number::New(env, static_cast<double>(batches)), Napi::Number::New(env, loss)});
          } catch (const Napi::Error&) {
            // A throwing progress callback must not abort the epoch.
          }
        });
      };
    }
    try {
      if (model) {
        if (!model->net) throw std::runtime_error("the model was disposed");
        if (!model->deferredError.empty()) {
          std::string e = model->deferredError;
          model->deferredError.clear();
          throw std::runtime_error(e);
        }
        useThreads(model->threads);
      }
      work(report);
    } catch (const std::exception& e) {
      st->failed = true;
      st->error = describe(e);
    }
    if (hasProgress) {
      st->tsfn.BlockingCall([st, done, keep](Napi::Env env, Napi::Function) { settle(env, *st, done, keep); });
      st->tsfn.Release();
    } else {
      auto* f = new Finished([st, done, keep](Napi::Env env) { settle(env, *st, done, keep); });
      if (ad->done.BlockingCall(f) != napi_ok) delete f;  // closing: the environment is gone
    }
  });
  return st->deferred.Promise();
}

/** Fire-and-forget job; a failure is reported by the model's next scheduled call. */
void post(std::shared_ptr<ModelState> model, std::function<void()> work) {
  engine().post([model, work = std::move(work)]() {
    try {
      if (!model->net) return;
      useThreads(model->threads);
      work();
    } catch (const std::exception& e) {
      if (model->deferredError.empty()) model->deferredError = describe(e);
    }
  });
}

// ---- conversions (main thread) ----

torch::Tensor copyFloat32(const Napi::Value& v, std::vector<int64_t> shape, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Float32Array");
  }
  auto a = v.As<Napi::Float32Array>();
  int64_t numel = 1;
  for (auto d : shape) numel *= d;
  if (static_cast<int64_t>(a.ElementLength()) != numel) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " holds " + std::to_string(a.ElementLength()) + " values, expected " + std::to_string(numel));
  }
  torch::Tensor t = torch::empty(shape, torch::kFloat);
  std::memcpy(t.data_ptr<float>(), a.Data(), numel * sizeof(float));
  return t;
}

torch::Tensor copyLabels(const Napi::Value& v, int64_t n, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an Int32Array");
  }
  auto a = v.As<Napi::Int32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != n) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " holds " + std::to_string(a.ElementLength()) + " values, expected " + std::to_string(n));
  }
  return torch::from_blob(a.Data(), {n}, torch::kInt).to(torch::kLong);  // .to copies
}

Napi::Float32Array toFloat32(Napi::Env env, const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU).to(torch::kFloat).contiguous();
  auto a = Napi::Float32Array::New(env, static_cast<size_t>(c.numel()));
  if (c.numel() > 0) std::memcpy(a.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return a;
}

std::vector<int64_t> batchShape(const Net& net, int64_t n) {
  std::vector<int64_t> s{n};
  for (auto d : net.inputShape()) s.push_back(d);
  return s;
}

/** A JS batch's inputs: Float32Array values, or Int32Array token ids for a tokenInput graph. */
torch::Tensor copyInput(const Net& net, const Napi::Value& v, int64_t n, const char* what) {
  if (!net.tokenInput()) return copyFloat32(v, batchShape(net, n), what);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an Int32Array of token ids");
  }
  auto a = v.As<Napi::Int32Array>();
  const std::vector<int64_t> shape = batchShape(net, n);
  const int64_t numel = n * shape[1];
  if (static_cast<int64_t>(a.ElementLength()) != numel) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " holds " + std::to_string(a.ElementLength()) + " ids, expected " + std::to_string(numel));
  }
  return torch::from_blob(a.Data(), shape, torch::kInt).to(torch::kLong);  // .to copies
}

/** A call's input and what keeps its memory alive while the engine thread reads it. */
struct Input {
  torch::Tensor x;
  std::shared_ptr<Keep> keep;
};

/**
 * A call's batch inputs. Float values are borrowed, not copied: the tensor reads the JS array's
 * memory, which `keep` holds until the job settles (engine.ts: callers leave a batch unchanged
 * until its promise settles; the net never writes its input). A 256-image CIFAR batch is 3 MB,
 * and copying it cost ~0.2-0.3 ms per call, as long as the whole MLP forward pass took on one
 * thread beyond PyTorch's. Token ids are converted to int64 (a copy).
 */
Input borrowInput(const Net& net, const Napi::Value& v, int64_t n, const char* what) {
  if (net.tokenInput()) return {copyInput(net, v, n, what), nullptr};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Float32Array");
  }
  auto a = v.As<Napi::Float32Array>();
  const std::vector<int64_t> shape = batchShape(net, n);
  int64_t numel = 1;
  for (auto d : shape) numel *= d;
  if (static_cast<int64_t>(a.ElementLength()) != numel) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " holds " + std::to_string(a.ElementLength()) + " values, expected " + std::to_string(numel));
  }
  return {torch::from_blob(a.Data(), shape, torch::kFloat), std::make_shared<Keep>(v)};
}

double num(const Napi::Object& o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}
bool flag(const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}
std::string str(const Napi::Object& o, const char* key, const std::string& def) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : def;
}
std::vector<int64_t> ints(const Napi::Object& o, const char* key) {
  std::vector<int64_t> out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return out;
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(static_cast<int64_t>(a.Get(i).As<Napi::Number>().Int64Value()));
  return out;
}

r2r::OpSpec parseOp(Napi::Env env, const Napi::Object& o) {
  using r2r::OpKind;
  using r2r::Act;
  static const std::map<std::string, OpKind> kinds{
      {"input", OpKind::Input}, {"conv2d", OpKind::Conv}, {"dense", OpKind::Dense}, {"batchNorm", OpKind::BatchNorm},
      {"activation", OpKind::Activation}, {"maxPool", OpKind::MaxPool}, {"avgPool", OpKind::AvgPool},
      {"globalAvgPool", OpKind::GlobalAvgPool}, {"flatten", OpKind::Flatten}, {"add", OpKind::Add},
      {"concat", OpKind::Concat}, {"dropout", OpKind::Dropout}, {"tokenInput", OpKind::TokenInput},
      {"embedding", OpKind::Embedding}, {"positionEmbedding", OpKind::PositionEmbedding},
      {"layerNorm", OpKind::LayerNorm}, {"attention", OpKind::Attention}};
  static const std::map<std::string, Act> acts{{"relu", Act::Relu}, {"relu6", Act::Relu6}, {"leakyRelu", Act::LeakyRelu},
                                               {"elu", Act::Elu}, {"tanh", Act::Tanh}, {"sigmoid", Act::Sigmoid},
                                               {"gelu", Act::Gelu}};
  r2r::OpSpec op;
  op.name = str(o, "name", "");
  const std::string kind = str(o, "kind", "");
  auto k = kinds.find(kind);
  if (k == kinds.end()) throw Napi::TypeError::New(env, "node '" + op.name + "': unsupported kind '" + kind + "'");
  op.kind = k->second;
  for (auto i : ints(o, "inputs")) op.inputs.push_back(static_cast<int>(i));
  op.shape = ints(o, "shape");
  op.cin = static_cast<int64_t>(num(o, "cin", 0));
  op.cout = static_cast<int64_t>(num(o, "cout", 0));
  op.kh = static_cast<int64_t>(num(o, "kh", 1));
  op.kw = static_cast<int64_t>(num(o, "kw", 1));
  op.sh = static_cast<int64_t>(num(o, "sh", 1));
  op.sw = static_cast<int64_t>(num(o, "sw", 1));
  auto pads = ints(o, "pads");
  if (pads.size() == 4) { op.pt = pads[0]; op.pb = pads[1]; op.pl = pads[2]; op.pr = pads[3]; }
  op.useBias = flag(o, "useBias", false);
  op.eps = num(o, "eps", 1e-3);
  op.momentum = num(o, "momentum", 0.9);
  op.alpha = num(o, "alpha", 0.01);
  op.rate = num(o, "rate", 0);
  op.spatialIn = flag(o, "spatialIn", false);
  op.seqIn = flag(o, "seqIn", false);
  op.heads = static_cast<int64_t>(num(o, "heads", 0));
  op.keyDim = static_cast<int64_t>(num(o, "keyDim", 0));
  op.causal = flag(o, "causal", false);
  if (op.kind == OpKind::Activation) {
    auto a = acts.find(str(o, "fn", ""));
    if (a == acts.end()) throw Napi::TypeError::New(env, "node '" + op.name + "': unsupported activation '" + str(o, "fn", "") + "'");
    op.act = a->second;
  }
  return op;
}

// ---- Dataset ----

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeDataset", {InstanceMethod("release", &DatasetWrap::Release)});
  }
  explicit DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {}
  std::shared_ptr<r2r::Dataset> data;

 private:
  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (data) {
      auto d = std::move(data);
      // Freed on the engine thread after any epoch still queued on it.
      engine().post([d]() mutable { d.reset(); });
    }
    return info.Env().Undefined();
  }
};

// ---- Model ----

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeModel", {
        InstanceMethod("setWeights", &ModelWrap::SetWeights),
        InstanceMethod("getWeights", &ModelWrap::GetWeights),
        InstanceMethod("forward", &ModelWrap::Forward),
        InstanceMethod("gradients", &ModelWrap::Gradients),
        InstanceMethod("setOptimizer", &ModelWrap::SetOptimizer),
        InstanceMethod("setLearningRate", &ModelWrap::SetLearningRate),
        InstanceMethod("setThreads", &ModelWrap::SetThreads),
        InstanceMethod("getOptimizerState", &ModelWrap::GetOptimizerState),
        InstanceMethod("trainStep", &ModelWrap::TrainStep),
        InstanceMethod("evaluate", &ModelWrap::Evaluate),
        InstanceMethod("uploadDataset", &ModelWrap::UploadDataset),
        InstanceMethod("trainEpoch", &ModelWrap::TrainEpoch),
        InstanceMethod("evaluateDataset", &ModelWrap::EvaluateDataset),
        InstanceMethod("sync", &ModelWrap::Sync),
        InstanceMethod("dispose", &ModelWrap::Dispose),
    });
  }

  // new NativeModel(ops, outputIndex, {device, channelsLast, threads, seed})
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    auto arr = info[0].As<Napi::Array>();
    std::vector<r2r::OpSpec> ops;
    for (uint32_t i = 0; i < arr.Length(); i++) ops.push_back(parseOp(env, arr.Get(i).As<Napi::Object>()));
    const int output = info[1].As<Napi::Number>().Int32Value();
    Napi::Object o = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
    r2r::NetOptions opts;
    try {
      opts.device = torch::Device(str(o, "device", "cpu"));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, "device '" + str(o, "device", "cpu") + "': " + describe(e));
    }
    if (opts.device.is_cuda() && !torch::cuda::is_available()) {
      throw Napi::Error::New(env, "device 'cuda' requested, but this libtorch build has no CUDA or no GPU is visible");
    }
    opts.channelsLast = flag(o, "channelsLast", false);
    opts.onednn = flag(o, "onednn", true);
    state_ = std::make_shared<ModelState>();
    state_->threads = static_cast<int>(num(o, "threads", 0));
    state_->labelsPerExample = std::max<int64_t>(1, static_cast<int64_t>(num(o, "labelsPerExample", 1)));
    opts.seed = static_cast<uint64_t>(num(o, "seed", 0));
    try {
      state_->net = std::make_unique<Net>(std::move(ops), output, opts);
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, describe(e));
    }
  }

 private:
  std::shared_ptr<ModelState> state_;

  Net& net(Napi::Env env) {
    if (!state_ || !state_->net) throw Napi::Error::New(env, "the model was disposed");
    return *state_->net;
  }

  // setWeights({name: Float32Array}) -> Promise<void>
  Napi::Value SetWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Net& n = net(env);
    auto obj = info[0].As<Napi::Object>();
    auto values = std::make_shared<std::vector<std::pair<std::string, torch::Tensor>>>();
    for (const auto& p : n.params()) {
      Napi::Value v = obj.Get(p.name);
      if (v.IsUndefined()) throw Napi::Error::New(env, "setWeights: missing tensor '" + p.name + "'");
      values->push_back({p.name, copyFloat32(v, p.shape, p.name.c_str())});
    }
    auto st = state_;
    return schedule(env, st, [st, values](const Reporter&) {
      for (auto& [name, t] : *values) st->net->importParam(name, t);
    }, [](Napi::Env e) { return e.Undefined(); });
  }

  // getWeights() -> Promise<{name: Float32Array}>
  Napi::Value GetWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    net(env);
    auto st = state_;
    auto out = std::make_shared<std::vector<std::pair<std::string, torch::Tensor>>>();
    return schedule(env, st, [st, out](const Reporter&) {
      for (const auto& p : st->net->params()) out->push_back({p.name, st->net->exportParam(p, p.tensor)});
    }, [out](Napi::Env e) {
      auto o = Napi::Object::New(e);
      for (auto& [name, t] : *out) o.Set(name, toFloat32(e, t));
      return o;
    });
  }

  // forward(x, n, training) -> Promise<Float32Array>
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Net& n = net(env);
    const int64_t bn = info[1].As<Napi::Number>().Int64Value();
    Input in = borrowInput(n, info[0], bn, "batch.x");
    const bool training = info[2].ToBoolean().Value();
    auto st = state_;
    auto out = std::make_shared<torch::Tensor>();
    return schedule(env, st, [st, x = in.x, training, out](const Reporter&) {
      *out = st->net->logits(x, training ? r2r::Mode::Train : r2r::Mode::Infer);
    }, [out](Napi::Env e) { return toFloat32(e, *out); }, Napi::Function(), in.keep);
  }

  // gradients(x, labels, n) -> Promise<{loss, grads: {name: Float32Array}}>
  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Net& n = net(env);
    const int64_t bn = info[2].As<Napi::Number>().Int64Value();
    Input in = borrowInput(n, info[0], bn, "batch.x");
    auto y = copyLabels(info[1], bn * state_->labelsPerExample, "batch.labels");
    auto st = state_;
    auto res = std::make_shared<std::pair<double, std::vector<torch::Tensor>>>();
    return schedule(env, st, [st, x = in.x, y, res](const Reporter&) { *res = st->net->gradients(x, y); },
                    [st, res](Napi::Env e) {
      auto o = Napi::Object::New(e);
      o.Set("loss", Napi::Number::New(e, res->first));
      auto g = Napi::Object::New(e);
      size_t k = 0;
      for (const auto& p : st->net->params()) if (p.trainable) g.Set(p.name, toFloat32(e, res->second[k++]));
      o.Set("grads", g);
      return o;
    }, Napi::Function(), in.keep);
  }

  // setOptimizer(config, state?) — ordered with other calls, errors surface on the next call.
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Net& n = net(env);
    auto c = info[0].As<Napi::Object>();
    r2r::OptimizerConfig cfg;
    cfg.kind = str(c, "kind", "");
    if (cfg.kind != "adam" && cfg.kind != "sgd") throw Napi::Error::New(env, "unknown optimizer kind '" + cfg.kind + "'");
    cfg.lr = num(c, "lr", 1e-3);
    cfg.beta1 = num(c, "beta1", 0.9);
    cfg.beta2 = num(c, "beta2", 0.999);
    cfg.eps = num(c, "epsilon", 1e-8);
    cfg.weightDecay = num(c, "weightDecay", 0);
    cfg.momentum = num(c, "momentum", 0);
    cfg.nesterov = flag(c, "nesterov", false);
    std::shared_ptr<r2r::OptimizerStateData> state;
    if (info.Length() > 1 && info[1].IsObject()) {
      auto so = info[1].As<Napi::Object>();
      state = std::make_shared<r2r::OptimizerStateData>();
      state->kind = str(so, "kind", cfg.kind);
      state->step = static_cast<int64_t>(num(so, "step", 0));
      Napi::Value slots = so.Get("slots");
      if (slots.IsObject()) {
        auto sl = slots.As<Napi::Object>();
        auto names = sl.GetPropertyNames();
        for (uint32_t i = 0; i < names.Length(); i++) {
          const std::string slot = names.Get(i).As<Napi::String>().Utf8Value();
          auto w = sl.Get(slot).As<Napi::Object>();
          for (const auto& p : n.params()) {
            if (!p.trainable) continue;
            Napi::Value v = w.Get(p.name);
            if (v.IsUndefined()) continue;
            state->slots[slot][p.name] = copyFloat32(v, p.shape, (slot + "/" + p.name).c_str());
          }
        }
      }
    }
    auto st = state_;
    post(st, [st, cfg, state]() { st->net->setOptimizer(cfg, state.get()); });
    return env.Undefined();
  }

  Napi::Value SetLearningRate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    net(env);
    const double lr = info[0].As<Napi::Number>().DoubleValue();
    auto st = state_;
    post(st, [st, lr]() { st->net->setLearningRate(lr); });
    return env.Undefined();
  }

  // setThreads(n): intra-op threads for this model's later calls (set on the engine thread, in
  // call order, so a running epoch keeps its count).
  Napi::Value SetThreads(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    net(env);
    const int n = info[0].As<Napi::Number>().Int32Value();
    if (n < 1) throw Napi::Error::New(env, "setThreads: threads must be a positive integer");
    auto st = state_;
    post(st, [st, n]() { st->threads = n; });
    return env.Undefined();
  }

  // getOptimizerState() -> Promise<{kind, step, slots} | undefined>
  Napi::Value GetOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    net(env);
    auto st = state_;
    auto res = std::make_shared<r2r::OptimizerStateData>();
    auto has = std::make_shared<bool>(false);
    return schedule(env, st, [st, res, has](const Reporter&) {
      *has = st->net->hasOptimizer();
      if (*has) *res = st->net->optimizerState();
    }, [res, has](Napi::Env e) -> Napi::Value {
      if (!*has) return e.Undefined();
      auto o = Napi::Object::New(e);
      o.Set("kind", res->kind);
      o.Set("step", Napi::Number::New(e, static_cast<double>(res->step)));
      auto slots = Napi::Object::New(e);
      for (auto& [slot, ws] : res->slots) {
        auto w = Napi::Object::New(e);
        for (auto& [name, t] : ws) w.Set(name, toFloat32(e, t));
        slots.Set(slot, w);
      }
      o.Set("slots", slots);
      return o;
    });
  }

  Napi::Value StepLike(const Napi::CallbackInfo& info, bool train) {
    Napi::Env env = info.Env();
    Net& n = net(env);
    const int64_t bn = info[2].As<Napi::Number>().Int64Value();
    Input in = borrowInput(n, info[0], bn, "batch.x");
    auto y = copyLabels(info[1], bn * state_->labelsPerExample, "batch.labels");
    auto st = state_;
    auto res = std::make_shared<r2r::StepStats>();
    return schedule(env, st, [st, x = in.x, y, res, train](const Reporter&) {
      *res = train ? st->net->trainStep(x, y) : st->net->evaluate(x, y);
    }, [res](Napi::Env e) {
      auto o = Napi::Object::New(e);
      o.Set("loss", Napi::Number::New(e, res->loss));
      o.Set("correct", Napi::Number::New(e, static_cast<double>(res->correct)));
      return o;
    }, Napi::Function(), in.keep);
  }
  Napi::Value TrainStep(const Napi::CallbackInfo& info) { return StepLike(info, true); }
  Napi::Value Evaluate(const Napi::CallbackInfo& info) { return StepLike(info, false); }

  // uploadDataset(x, labels, n) -> NativeDataset (data moves to the device on the engine thread)
  Napi::Value UploadDataset(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Net& n = net(env);
    const int64_t bn = info[2].As<Napi::Number>().Int64Value();
    auto d = std::make_shared<r2r::Dataset>();
    d->x = copyInput(n, info[0], bn, "dataset x");
    d->y = copyLabels(info[1], bn * state_->labelsPerExample, "dataset labels");
    if (state_->labelsPerExample > 1) d->y = d->y.view({bn, state_->labelsPerExample});
    d->n = bn;
    const torch::Device dev = n.options().device;
    if (!dev.is_cpu()) {
      engine().post([d, dev]() {
        d->x = d->x.to(dev);
        d->y = d->y.to(dev);
      });
    }
    auto* ad = env.GetInstanceData<AddonData>();
    Napi::Object obj = ad->datasetCtor.New({});
    DatasetWrap::Unwrap(obj)->data = d;
    return obj;
  }

  std::shared_ptr<r2r::Dataset> dataset(Napi::Env env, const Napi::Value& v) {
    auto* ad = env.GetInstanceData<AddonData>();
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ad->datasetCtor.Value())) {
      throw Napi::TypeError::New(env, "expected a dataset from uploadDataset");
    }
    auto d = DatasetWrap::Unwrap(v.As<Napi::Object>())->data;
    if (!d) throw Napi::Error::New(env, "the dataset was released");
    return d;
  }

  static Napi::Object epochResult(Napi::Env e, const r2r::EpochStats& r) {
    auto o = Napi::Object::New(e);
    o.Set("loss", Napi::Number::New(e, r.loss));
    o.Set("correct", Napi::Number::New(e, static_cast<double>(r.correct)));
    o.Set("examples", Napi::Number::New(e, static_cast<double>(r.examples)));
    o.Set("steps", Napi::Number::New(e, static_cast<double>(r.steps)));
    return o;
  }

  // trainEpoch(dataset, order: Int32Array, batchSize, onProgress?) -> Promise<EpochResult>
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    net(env);
    auto d = dataset(env, info[0]);
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw Napi::TypeError::New(env, "order must be an Int32Array");
    }
    auto oa = info[1].As<Napi::Int32Array>();
    const int64_t m = static_cast<int64_t>(oa.ElementLength());
    const int32_t* od = oa.Data();
    for (int64_t i = 0; i < m; i++) {
      if (od[i] < 0 || od[i] >= d->n) throw Napi::RangeError::New(env, "order[" + std::to_string(i) + "] = " + std::to_string(od[i]) + " is outside the dataset of " + std::to_string(d->n));
    }
    torch::Tensor order = torch::from_blob(oa.Data(), {m}, torch::kInt).to(torch::kLong);
    const int64_t bs = info[2].As<Napi::Number>().Int64Value();
    if (bs < 1) throw Napi::RangeError::New(env, "batchSize must be >= 1");
    Napi::Function progress = info.Length() > 3 && info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
    auto st = state_;
    auto res = std::make_shared<r2r::EpochStats>();
    return schedule(env, st, [st, d, order, bs, res](const Reporter& report) {
      *res = st->net->trainEpoch(*d, order, bs, report);
    }, [res](Napi::Env e) { return epochResult(e, *res); }, progress);
  }

  Napi::Value EvaluateDataset(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    net(env);
    auto d = dataset(env, info[0]);
    const int64_t bs = info[1].As<Napi::Number>().Int64Value();
    if (bs < 1) throw Napi::RangeError::New(env, "batchSize must be >= 1");
    auto st = state_;
    auto res = std::make_shared<r2r::EpochStats>();
    return schedule(env, st, [st, d, bs, res](const Reporter&) { *res = st->net->evaluateDataset(*d, bs); },
                    [res](Napi::Env e) { return epochResult(e, *res); });
  }

  // sync() -> Promise<void>: settles after every earlier call (and reports a deferred error).
  Napi::Value Sync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    net(env);
    return schedule(env, state_, [](const Reporter&) {}, [](Napi::Env e) { return e.Undefined(); });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (state_) {
      auto st = std::move(state_);
      engine().post([st]() { st->net.reset(); });
    }
    return info.Env().Undefined();
  }
};

// profile(path): record every op the engine thread runs into a chrome trace at `path` until
// profile('') (for `bench/profile.ts`). Engine-thread state, so it is set by posted jobs.
std::unique_ptr<torch::autograd::profiler::RecordProfile> profiler;

Napi::Value Profile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  return schedule(env, nullptr, [path](const Reporter&) {
    profiler.reset();
    if (!path.empty()) profiler = std::make_unique<torch::autograd::profiler::RecordProfile>(path);
  }, [](Napi::Env e) { return e.Undefined(); });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", TORCH_VERSION);
  o.Set("cuda", torch::cuda::is_available());
  o.Set("cudaDevices", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
  o.Set("defaultThreads", Napi::Number::New(env, at::get_num_threads()));
  o.Set("parallelInfo", at::get_parallel_info());
  o.Set("openblasThreads", Napi::Boolean::New(env, r2r::openblasSetThreads() != nullptr));
  o.Set("onednn", Napi::Boolean::New(env, r2r::OneDnnDense::available()));  // inference dense layers
#ifdef _OPENMP
  o.Set("openmp", true);  // the addon's own at::parallel_for loops run on the OpenMP team
#else
  o.Set("openmp", false);
#endif
  return o;
}

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
#ifdef __GLIBC__
  // libtorch frees and reallocates every activation each step. Two glibc defaults turn that into
  // page faults that cost as much as the convolutions: tensors over the (dynamic) mmap threshold
  // are mmapped and unmapped each time, and a thread's own arena releases whole 64 MB heaps as
  // soon as they empty. So: one arena (the engine thread shares the main heap, as PyTorch's
  // Python thread does), a 32 MB mmap threshold (glibc's maximum) and a high trim threshold.
  // R2R_TORCH_MALLOPT=0 keeps glibc's defaults.
  const char* mo = std::getenv("R2R_TORCH_MALLOPT");
  if (!mo || std::string(mo) != "0") {
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  }
#endif
  auto* ad = new AddonData();
  ad->done = DoneChannel::New(env, "r2r-torch-done", 0, 1, ad);
  ad->done.Unref(env);  // referenced only while jobs are in flight (schedule, runFinished)
  Napi::Function ds = DatasetWrap::Init(env);
  ad->datasetCtor = Napi::Persistent(ds);
  env.SetInstanceData<AddonData>(ad);
  exports.Set("NativeModel", ModelWrap::Init(env));
  exports.Set("NativeDataset", ds);
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("profile", Napi::Function::New(env, Profile));
  return exports;
}

}  // namespace

NODE_API_MODULE(r2r_torch, InitAll)
