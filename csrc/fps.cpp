// Farthest point sampling for airnets: the CPU kernel and the dispatch to the CUDA kernel (fps_cuda.cu).
//
// Semantics are those of the pointnet2_ops CUDA kernel that the AIR-Nets reference uses (see nbs/10_fps.ipynb):
//   * the first pick is index 0; every point keeps a running minimum squared distance, starting at 1e10;
//   * distances are float32, summed as (dx*dx + dy*dy) + dz*dz, with no fused multiply-add;
//   * optionally, points whose float32 squared norm is <= 1e-3 (compared as a double) are never updated or picked;
//   * ties go to the point whose (bit-reversed thread id, index) is smallest, where point k belongs to
//     thread k mod T and T = 2^floor(log2 N) capped at 512: the order the reference's reduction tree produces.
// The CPU kernel turns the tie rule into memory order: points are laid out in tie-break order once, so a plain
// "first strict maximum" scan over the laid-out points picks the same point the reference picks.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr float kInitialDistance = 1e10f;
constexpr double kNearOriginSquaredNorm = 1e-3;  // the reference compares a float against this double
constexpr int64_t kMaxThreads = 512;             // the reference's TOTAL_THREADS
constexpr int64_t kBlock = 256;                  // points per block of the vectorised max scan
constexpr int64_t kInnerParallelMin = 65536;     // below this, splitting a step across threads gains little

// Threads the reference launches for n points: 2^floor(log2 n) (log taken in double, truncated), capped at 512.
int64_t reference_threads(int64_t n) {
  TORCH_CHECK(n >= 1, "reference_threads: n must be >= 1");
  const int p = static_cast<int>(std::log(static_cast<double>(n)) / std::log(2.0));
  return std::max<int64_t>(std::min<int64_t>(int64_t(1) << p, kMaxThreads), 1);
}

int64_t bit_reverse(int64_t v, int bits) {
  int64_t r = 0;
  for (int i = 0; i < bits; ++i) r |= ((v >> i) & 1) << (bits - 1 - i);
  return r;
}

// Point indices in tie-break order: threads by bit-reversed id, then each thread's points in increasing index.
std::vector<int64_t> tie_break_order(int64_t n) {
  const int64_t T = reference_threads(n);
  int bits = 0;
  while ((int64_t(1) << bits) < T) ++bits;
  std::vector<int64_t> order;
  order.reserve(n);
  for (int64_t r = 0; r < T; ++r)
    for (int64_t k = bit_reverse(r, bits); k < n; k += T) order.push_back(k);
  return order;
}

inline float squared_norm(float x, float y, float z) { return (x * x + y * y) + z * z; }

// One cloud, laid out structure-of-arrays in tie-break order, eligible points only, padded to whole blocks.
// Padding slots hold a running minimum of -1, which no squared distance lowers and no real slot loses to.
struct Cloud {
  std::vector<float> x, y, z, dist;
  std::vector<int64_t> index;  // original point index of each slot
  int64_t size = 0;            // eligible points (slots past it are padding)

  Cloud(const float* p, int64_t n, const std::vector<int64_t>& order, bool skip_near_origin) {
    index.reserve(n);
    for (int64_t k : order) {
      const float* q = p + 3 * k;
      if (skip_near_origin && static_cast<double>(squared_norm(q[0], q[1], q[2])) <= kNearOriginSquaredNorm) continue;
      index.push_back(k);
    }
    size = static_cast<int64_t>(index.size());
    const int64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    x.assign(padded, 0.f); y.assign(padded, 0.f); z.assign(padded, 0.f);
    dist.assign(padded, -1.f);
    for (int64_t s = 0; s < size; ++s) {
      const float* q = p + 3 * index[s];
      x[s] = q[0]; y[s] = q[1]; z[s] = q[2]; dist[s] = kInitialDistance;
    }
  }
};

struct Best {
  float value;
  int64_t slot;
};

// Lower the running minimum of the blocks in slots [lo, hi) by the squared distance to (px, py, pz) and return the
// largest running minimum with its first slot. The inner loop works on W floats at a time with GCC/Clang vector
// types (SSE/NEON registers for W = 4, AVX2 for W = 8); `a < b ? a : b` on them is exactly minps/maxps, which
// the compiler does not emit for std::min on floats without -ffast-math. Only the winning block is scanned a
// second time to find the first slot that holds the maximum.
#if defined(__GNUC__) || defined(__clang__)
typedef float float4v __attribute__((vector_size(16)));
typedef float float8v __attribute__((vector_size(32)));

template <typename vec, int W>
__attribute__((always_inline)) inline Best update_blocks(Cloud& c, int64_t lo, int64_t hi, float px, float py, float pz) {
  const float* __restrict x = c.x.data();
  const float* __restrict y = c.y.data();
  const float* __restrict z = c.z.data();
  float* __restrict d = c.dist.data();
  vec vx, vy, vz;
  for (int l = 0; l < W; ++l) { vx[l] = px; vy[l] = py; vz[l] = pz; }
  float best = -1.f;
  int64_t best_block = -1;
  for (int64_t b = lo; b < hi; b += kBlock) {
    vec m = vx - vx - 1.f;
    for (int64_t i = b; i < b + kBlock; i += W) {
      vec a, bb, cc, dd;
      std::memcpy(&a, x + i, sizeof(vec)); std::memcpy(&bb, y + i, sizeof(vec));
      std::memcpy(&cc, z + i, sizeof(vec)); std::memcpy(&dd, d + i, sizeof(vec));
      const vec dx = a - vx, dy = bb - vy, dz = cc - vz;
      const vec s = (dx * dx + dy * dy) + dz * dz;
      const vec v = dd < s ? dd : s;
      std::memcpy(d + i, &v, sizeof(vec));
      m = v > m ? v : m;
    }
    float mm = m[0];
    for (int l = 1; l < W; ++l) mm = m[l] > mm ? m[l] : mm;
    if (mm > best) { best = mm; best_block = b; }
  }
  if (best_block < 0) return {best, -1};
  int64_t s = best_block;
  while (d[s] != best) ++s;
  return {best, s};
}

Best update_blocks_generic(Cloud& c, int64_t lo, int64_t hi, float px, float py, float pz) {
  return update_blocks<float4v, 4>(c, lo, hi, px, py, pz);
}
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) Best update_blocks_avx2(Cloud& c, int64_t lo, int64_t hi, float px, float py, float pz) {
  return update_blocks<float8v, 8>(c, lo, hi, px, py, pz);
}
bool has_avx2() {
  static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
  return yes;
}
#endif

Best update_and_argmax(Cloud& c, int64_t lo, int64_t hi, float px, float py, float pz) {
#if defined(__x86_64__) || defined(__i386__)
  if (has_avx2()) return update_blocks_avx2(c, lo, hi, px, py, pz);
#endif
  return update_blocks_generic(c, lo, hi, px, py, pz);
}
#else  // other compilers (MSVC): plain loops, same arithmetic
Best update_and_argmax(Cloud& c, int64_t lo, int64_t hi, float px, float py, float pz) {
  float best = -1.f;
  int64_t slot = -1;
  for (int64_t i = lo; i < hi; ++i) {
    const float dx = c.x[i] - px, dy = c.y[i] - py, dz = c.z[i] - pz;
    const float s = (dx * dx + dy * dy) + dz * dz;
    const float v = c.dist[i] < s ? c.dist[i] : s;
    c.dist[i] = v;
    if (v > best) { best = v; slot = i; }
  }
  return {best, slot};
}
#endif

// Farthest point sampling of one cloud p[n][3] into out[m]. `chunks` > 1 splits every step across threads.
void sample_cloud(const float* p, int64_t n, int64_t m, bool skip_near_origin, const std::vector<int64_t>& order,
                  int64_t chunks, int64_t* out) {
  Cloud c(p, n, order, skip_near_origin);
  const int64_t size = static_cast<int64_t>(c.dist.size());  // padded: whole blocks
  chunks = std::max<int64_t>(1, std::min<int64_t>(chunks, size / kBlock));
  std::vector<Best> part(chunks);
  int64_t last = 0;
  out[0] = 0;
  for (int64_t j = 1; j < m; ++j) {
    const float px = p[3 * last], py = p[3 * last + 1], pz = p[3 * last + 2];
    Best best{-1.f, -1};
    if (chunks == 1) {
      best = update_and_argmax(c, 0, size, px, py, pz);
    } else {
      // chunk boundaries are multiples of kBlock; combining chunks in order keeps "first strict maximum"
      const int64_t per = (size / kBlock + chunks - 1) / chunks * kBlock;
      at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t)
          part[t] = update_and_argmax(c, std::min(size, t * per), std::min(size, (t + 1) * per), px, py, pz);
      });
      for (const Best& q : part)
        if (q.slot >= 0 && q.value > best.value) best = q;
    }
    last = best.slot < 0 ? 0 : c.index[best.slot];  // no eligible point at all: the reference returns 0
    out[j] = last;
  }
}

void check_input(const at::Tensor& xyz, int64_t npoint) {
  TORCH_CHECK(xyz.dim() == 3 && xyz.size(2) == 3, "xyz must have shape [B, N, 3], got ", xyz.sizes());
  TORCH_CHECK(xyz.scalar_type() == at::kFloat, "xyz must be float32, got ", xyz.scalar_type());
  TORCH_CHECK(npoint >= 1, "npoint must be >= 1, got ", npoint);
  TORCH_CHECK(xyz.size(1) >= 1, "xyz has no points (N == 0)");
  TORCH_CHECK(npoint <= xyz.size(1), "npoint (", npoint, ") must not exceed the number of points N (", xyz.size(1), ")");
}

at::Tensor fps_cpu(const at::Tensor& xyz_in, int64_t npoint, bool skip_near_origin) {
  check_input(xyz_in, npoint);
  const at::Tensor xyz = xyz_in.contiguous();
  const int64_t B = xyz.size(0), n = xyz.size(1);
  at::Tensor out = at::empty({B, npoint}, xyz.options().dtype(at::kLong));
  if (B == 0) return out;
  const float* p = xyz.data_ptr<float>();
  int64_t* o = out.data_ptr<int64_t>();
  const std::vector<int64_t> order = tie_break_order(n);
  const int64_t threads = at::get_num_threads();
  if (B < threads && n >= kInnerParallelMin) {
    // few large clouds: one cloud at a time, every step split across the threads
    for (int64_t b = 0; b < B; ++b) sample_cloud(p + b * n * 3, n, npoint, skip_near_origin, order, threads, o + b * npoint);
  } else {
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) sample_cloud(p + b * n * 3, n, npoint, skip_near_origin, order, 1, o + b * npoint);
    });
  }
  return out;
}

}  // namespace

#ifdef WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

// fps_cuda.cu: plain CUDA, no torch headers, so nvcc can compile-check it on machines with a partial toolkit.
cudaError_t airnets_fps_cuda_launch(int64_t batch, int64_t n, int64_t npoint, int threads, bool skip_near_origin,
                                    const float* xyz, float* dist, int64_t* out, cudaStream_t stream);

namespace {
at::Tensor fps_cuda(const at::Tensor& xyz, int64_t npoint, bool skip_near_origin) {
  const c10::cuda::CUDAGuard guard(xyz.device());
  const int64_t B = xyz.size(0), n = xyz.size(1);
  at::Tensor out = at::empty({B, npoint}, xyz.options().dtype(at::kLong));
  if (B == 0) return out;
  at::Tensor dist = at::full({B, n}, kInitialDistance, xyz.options());
  const cudaError_t err = airnets_fps_cuda_launch(B, n, npoint, static_cast<int>(reference_threads(n)), skip_near_origin,
                                                  xyz.data_ptr<float>(), dist.data_ptr<float>(), out.data_ptr<int64_t>(),
                                                  c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, "farthest_point_sample CUDA kernel failed: ", cudaGetErrorString(err));
  return out;
}
}  // namespace
#endif

at::Tensor farthest_point_sample(const at::Tensor& xyz, int64_t npoint, bool skip_near_origin) {
  if (xyz.is_cuda()) {
#ifdef WITH_CUDA
    check_input(xyz, npoint);
    return fps_cuda(xyz.contiguous(), npoint, skip_near_origin);
#else
    TORCH_CHECK(false, "airnets._C was built without CUDA; rebuild on a machine with a CUDA build of torch and nvcc");
#endif
  }
  TORCH_CHECK(xyz.device().is_cpu(), "farthest_point_sample: unsupported device ", xyz.device());
  return fps_cpu(xyz, npoint, skip_near_origin);
}

bool with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "airnets compiled ops";
  m.def("farthest_point_sample", &farthest_point_sample, "farthest point sampling: [B,N,3] float32 -> [B,npoint] int64",
        py::arg("xyz"), py::arg("npoint"), py::arg("skip_near_origin"));
  m.def("reference_threads", &reference_threads, "threads the pointnet2_ops kernel uses for n points", py::arg("n"));
  m.def("tie_break_order", &tie_break_order, "point indices in the reference kernel's tie-break order", py::arg("n"));
  m.def("with_cuda", &with_cuda, "whether this build has the CUDA kernel");
}
