// Farthest point sampling, CUDA kernel for airnets (semantics: see fps.cpp and nbs/10_fps.ipynb).
// Plain CUDA with no torch headers: fps.cpp allocates the tensors and calls airnets_fps_cuda_launch.
//
// One block per cloud with T = reference_threads(n) threads; point k belongs to thread k mod T. Each step, a thread
// lowers the running minimum of its points and keeps its first strict maximum; a tree reduction that keeps the
// lower slot on ties then picks the winner, exactly the tie rule of the pointnet2_ops kernel. All float arithmetic
// uses explicitly rounded intrinsics, so nvcc cannot contract it into fused multiply-adds: results equal the CPU
// kernel's bit for bit.
#include <cuda_runtime.h>
#include <stdint.h>

namespace {

__device__ __forceinline__ float sq_dist(float ax, float ay, float az, float bx, float by, float bz) {
  const float dx = __fsub_rn(ax, bx), dy = __fsub_rn(ay, by), dz = __fsub_rn(az, bz);
  return __fadd_rn(__fadd_rn(__fmul_rn(dx, dx), __fmul_rn(dy, dy)), __fmul_rn(dz, dz));
}

__device__ __forceinline__ bool near_origin(float x, float y, float z) {
  const float s = __fadd_rn(__fadd_rn(__fmul_rn(x, x), __fmul_rn(y, y)), __fmul_rn(z, z));
  return static_cast<double>(s) <= 1e-3;
}

__global__ void fps_kernel(int64_t n, int64_t npoint, bool skip_near_origin, const float* __restrict__ xyz,
                           float* __restrict__ dist, int64_t* __restrict__ out) {
  extern __shared__ unsigned char shared[];
  const int T = blockDim.x, tid = threadIdx.x;
  float* best_value = reinterpret_cast<float*>(shared);
  int64_t* best_index = reinterpret_cast<int64_t*>(best_value + T + (T & 1));  // keep 8-byte alignment
  const float* p = xyz + blockIdx.x * n * 3;
  float* d = dist + blockIdx.x * n;
  int64_t* o = out + blockIdx.x * npoint;

  int64_t last = 0;
  if (tid == 0) o[0] = 0;
  for (int64_t j = 1; j < npoint; ++j) {
    const float px = p[3 * last], py = p[3 * last + 1], pz = p[3 * last + 2];
    float best = -1.f;
    int64_t besti = 0;
    for (int64_t k = tid; k < n; k += T) {
      const float x = p[3 * k], y = p[3 * k + 1], z = p[3 * k + 2];
      if (skip_near_origin && near_origin(x, y, z)) continue;
      const float v = fminf(sq_dist(x, y, z, px, py, pz), d[k]);
      d[k] = v;
      if (v > best) { best = v; besti = k; }
    }
    best_value[tid] = best;
    best_index[tid] = besti;
    __syncthreads();
    for (int s = T / 2; s > 0; s /= 2) {
      if (tid < s && best_value[tid + s] > best_value[tid]) {  // ties keep the lower slot
        best_value[tid] = best_value[tid + s];
        best_index[tid] = best_index[tid + s];
      }
      __syncthreads();
    }
    last = best_index[0];
    if (tid == 0) o[j] = last;
    __syncthreads();  // everyone has read best_index[0] before the next step overwrites it
  }
}

}  // namespace

cudaError_t airnets_fps_cuda_launch(int64_t batch, int64_t n, int64_t npoint, int threads, bool skip_near_origin,
                                    const float* xyz, float* dist, int64_t* out, cudaStream_t stream) {
  const size_t shared = (threads + (threads & 1)) * sizeof(float) + threads * sizeof(int64_t);
  if (batch > 2147483647LL || threads < 1 || threads > 1024) return cudaErrorInvalidValue;
  fps_kernel<<<static_cast<unsigned>(batch), threads, shared, stream>>>(n, npoint, skip_near_origin, xyz, dist, out);
  return cudaGetLastError();
}
