# The libtorch addon. LIBTORCH=/path/to/libtorch selects a downloaded LibTorch (include/, lib/),
# as tch-rs does; otherwise Debian's libtorch-dev (/usr/include/torch, /usr/lib/<triplet>).
# LIBTORCH_CXX11_ABI=0 builds against a pre-cxx11-ABI LibTorch.
# -fopenmp (compile only): at::parallel_for is a header template; without it the addon's own
# parallel loops (Adam, batch norm, row-split dense) compile to serial code on one thread. Not
# linked: the GOMP_* calls bind to the OpenMP runtime libtorch itself loads (Debian's libgomp, or
# the copy a downloaded LibTorch bundles), so one process never holds two OpenMP thread pools.
# oneDNN (src/onednn_dense.cc): with Debian's libtorch, whose libtorch_cpu links the system
# libdnnl.so.2, when libdnnl-dev's headers are there; a downloaded LibTorch bundles its own copy.
{
  "variables": {
    "libtorch%": "<!(node -p \"process.env.LIBTORCH || ''\")",
    "cxx11_abi%": "<!(node -p \"process.env.LIBTORCH_CXX11_ABI === '0' ? 0 : 1\")",
    "onednn%": "<!(node -p \"!process.env.LIBTORCH && require('fs').existsSync('/usr/include/oneapi/dnnl/dnnl.hpp') ? 1 : 0\")",
    "has_cuda%": "<!(node -p \"const d = process.env.LIBTORCH; d && require('fs').existsSync(d + '/lib/libtorch_cuda.so') ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "r2r_torch",
      "sources": ["src/addon.cc", "src/net.cc", "src/onednn_dense.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-fopenmp", "-fno-math-errno"],
      "conditions": [
        ["libtorch==''", {
          "include_dirs": ["/usr/include/torch/csrc/api/include"],
          "libraries": ["-ltorch", "-ltorch_cpu", "-lc10"]
        }, {
          "include_dirs": ["<(libtorch)/include", "<(libtorch)/include/torch/csrc/api/include"],
          "libraries": ["-L<(libtorch)/lib", "-Wl,-rpath,<(libtorch)/lib", "-ltorch", "-ltorch_cpu", "-lc10"]
        }],
        ["has_cuda==1", {
          "libraries": ["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--as-needed"]
        }],
        ["onednn==1", {
          "defines": ["R2R_ONEDNN"],
          "libraries": ["-ldnnl"]
        }],
        ["cxx11_abi==0", { "defines": ["_GLIBCXX_USE_CXX11_ABI=0"] }]
      ]
    }
  ]
}
