#include "onednn_dense.h"

#include <cstdlib>
#include <string>
#include <vector>

#ifdef R2R_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace r2r {

#ifdef R2R_ONEDNN

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

dnnl::engine& cpuEngine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Primitives run on the calling thread's stream (in r2r: the engine thread), waited for at once.
dnnl::stream& cpuStream() {
  static thread_local dnnl::stream s(cpuEngine());
  return s;
}

}  // namespace

struct OneDnnDense::Impl {
  // One primitive per batch size and thread count (oneDNN's GEMM fixes its thread split when the
  // primitive is made), each with the kernel in the layout it asked for.
  struct Entry {
    int64_t rows;
    int threads;
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
    memory weights;
  };
  const void* of = nullptr;  // the kernel's TensorImpl and version the entries were made from
  int64_t version = -1;
  std::vector<Entry> entries;
  bool unsupported = false;  // oneDNN refused a shape: BLAS from then on
};

OneDnnDense::OneDnnDense() : impl_(std::make_unique<Impl>()) {}
OneDnnDense::~OneDnnDense() = default;
OneDnnDense::OneDnnDense(OneDnnDense&&) noexcept = default;
OneDnnDense& OneDnnDense::operator=(OneDnnDense&&) noexcept = default;

bool OneDnnDense::available() {
  static const bool on = [] {
    const char* e = std::getenv("R2R_TORCH_ONEDNN");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

torch::Tensor OneDnnDense::forward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  Impl& s = *impl_;
  auto plainCpuFloat = [](const torch::Tensor& t) { return t.is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous(); };
  if (!available() || s.unsupported || at::in_parallel_region() || x.dim() != 2 || w.dim() != 2 || !plainCpuFloat(x) ||
      !w.is_cpu() || w.scalar_type() != torch::kFloat || (b.defined() && !plainCpuFloat(b))) {
    return {};
  }
  const int64_t rows = x.size(0), k = x.size(1), units = w.size(0);
  if (rows == 0 || k == 0 || units == 0 || w.size(1) != k) return {};
  // The version counter moves with every in-place write (copy_, optimizer steps; net.cc's
  // one-pass Adam bumps it by hand), so a reordered kernel is never served stale.
  const int64_t version = static_cast<int64_t>(w._version());
  if (s.of != w.unsafeGetTensorImpl() || s.version != version) {
    s.entries.clear();
    s.of = w.unsafeGetTensorImpl();
    s.version = version;
  }
  const int threads = at::get_num_threads();
  Impl::Entry* e = nullptr;
  for (auto& it : s.entries) {
    if (it.rows == rows && it.threads == threads) e = &it;
  }
  dnnl::stream& stream = cpuStream();
  if (e == nullptr) {
    try {
      const memory::desc src({rows, k}, kF32, Tag::ab), weightsAny({k, units}, kF32, Tag::any), dst({rows, units}, kF32, Tag::ab);
      const dnnl::matmul::desc d = b.defined() ? dnnl::matmul::desc(src, weightsAny, memory::desc({1, units}, kF32, Tag::ab), dst)
                                               : dnnl::matmul::desc(src, weightsAny, dst);
      dnnl::matmul::primitive_desc pd(d, cpuEngine());
      // Primitives for other batch sizes often ask for the same layout: share that copy.
      memory reordered;
      for (const auto& it : s.entries) {
        if (it.pd.weights_desc() == pd.weights_desc()) reordered = it.weights;
      }
      if (!reordered) {
        // w [units, k] row-major is the [k, units] matrix in column-major ('ba') order.
        const torch::Tensor wc = w.contiguous();
        memory plain({{k, units}, kF32, Tag::ba}, cpuEngine(), wc.data_ptr<float>());
        reordered = memory(pd.weights_desc(), cpuEngine());
        dnnl::reorder(plain, reordered).execute(stream, plain, reordered);
        stream.wait();
      }
      if (s.entries.size() >= 8) s.entries.erase(s.entries.begin());  // batch sizes seen: a few
      s.entries.push_back({rows, threads, pd, dnnl::matmul(pd), reordered});
      e = &s.entries.back();
    } catch (const dnnl::error&) {
      s.unsupported = true;
      return {};
    }
  }
  torch::Tensor out = at::empty({rows, units}, x.options());
  memory srcMem(e->pd.src_desc(), cpuEngine(), x.data_ptr<float>());
  memory dstMem(e->pd.dst_desc(), cpuEngine(), out.data_ptr<float>());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, srcMem}, {DNNL_ARG_WEIGHTS, e->weights}, {DNNL_ARG_DST, dstMem}};
  if (b.defined()) args.insert({DNNL_ARG_BIAS, memory(e->pd.bias_desc(), cpuEngine(), b.data_ptr<float>())});
  e->prim.execute(stream, args);
  stream.wait();
  return out;
}

#else  // built without oneDNN: every call falls back to BLAS

struct OneDnnDense::Impl {};
OneDnnDense::OneDnnDense() = default;
OneDnnDense::~OneDnnDense() = default;
OneDnnDense::OneDnnDense(OneDnnDense&&) noexcept = default;
OneDnnDense& OneDnnDense::operator=(OneDnnDense&&) noexcept = default;
bool OneDnnDense::available() { return false; }
torch::Tensor OneDnnDense::forward(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) { return {}; }

#endif

}  // namespace r2r
