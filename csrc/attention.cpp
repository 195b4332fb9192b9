// airnets: the memory-bound part of vector attention in single passes over [B, N, K, D] rows (CPU, float32).
//
// The matrix products stay in torch (addmm / mm); these kernels replace the elementwise chains around them that
// torch runs as separate passes with a fresh [B, N, K, D] temporary each:
//   relu_sum:      t = relu(a + b + c)                                         (the logits' pre-activation)
//   attn_fwd:      w = softmax over K of the logits (written over them), out = sum_K w * (v1 + v2)
//   attn_bwd:      gV = w * g,  gL = w * g * (v1 + v2 - out), written over w   (softmax + weighted sum, backward)
//   relu_bwd_sumk: g *= (t > 0) in place, and the sum over K of the result     (the pre-activation's backward)
// Every input is a 4-d [B, N, K, D] view with unit stride on D and any strides elsewhere (0 for a broadcast
// dimension). `a` and `v1` may have fewer neighbours than K: the missing ones (a global token appended after the
// local neighbours) count as zeros. The Python side (airnets/attention.py) has the same four functions in torch.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>

namespace {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define AIRNETS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AIRNETS_CLONES
#endif

struct View {                       // one [B, N, K, D] operand: base pointer, strides, neighbours present
  const float* p = nullptr;
  int64_t s0 = 0, s1 = 0, s2 = 0, k = 0;
};

View view_of(const c10::optional<at::Tensor>& t, int64_t B, int64_t N, int64_t K, int64_t D, const char* name) {
  View v;
  if (!t.has_value() || !t->defined()) return v;
  const at::Tensor& x = *t;
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu(), name, ": expected a 4-d float32 CPU tensor");
  TORCH_CHECK(x.size(0) == B && x.size(1) == N && x.size(2) <= K && x.size(3) == D, name, ": shape ", x.sizes(),
              " does not fit [", B, ", ", N, ", ", K, ", ", D, "]");
  TORCH_CHECK(x.stride(3) == 1 || D == 1, name, ": the last dimension must have unit stride");
  v.p = x.data_ptr<float>();
  v.s0 = x.stride(0); v.s1 = x.stride(1); v.s2 = x.stride(2); v.k = x.size(2);
  return v;
}

// the row (b, n) of an operand, neighbour j: a pointer to D floats (the zeros for an absent operand or neighbour)
inline const float* at_row(const View& v, int64_t b, int64_t n, int64_t j, const float* zeros) {
  return (v.p == nullptr || j >= v.k) ? zeros : v.p + b * v.s0 + n * v.s1 + j * v.s2;
}

// exp(x) for x <= 0 (the softmax's shifted logits): 2^n * p(r), r = x - n ln2, |r| <= ln2 / 2, degree-7 Taylor
// polynomial (relative error < 1e-8 before rounding); branch-free so that the compiler vectorises the loops.
inline float exp_nonpos(float x) {
  x = x < -87.0f ? -87.0f : x;                                  // below: underflows to < 2^-125 (as good as 0 here)
  const float fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   // round(x / ln2)
  const float r = (x - fn * 0.693145751953125f) - fn * 1.428606765330187e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f; p = p * r + 1.0f / 120.0f; p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f; p = p * r + 0.5f; p = p * r + 1.0f; p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(fn) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

AIRNETS_CLONES void relu_sum_line(float* o, const float* a, const float* b, const float* c, int64_t D) {
  for (int64_t d = 0; d < D; ++d) { const float s = a[d] + b[d] + c[d]; o[d] = s > 0.0f ? s : 0.0f; }
}

AIRNETS_CLONES void max_line(float* m, const float* l, int64_t D) {
  for (int64_t d = 0; d < D; ++d) m[d] = l[d] > m[d] ? l[d] : m[d];
}

AIRNETS_CLONES void exp_acc_line(float* l, const float* m, const float* v1, const float* v2, float* s, float* acc, int64_t D) {
  for (int64_t d = 0; d < D; ++d) {
    const float e = exp_nonpos(l[d] - m[d]);
    l[d] = e; s[d] += e; acc[d] += e * (v1[d] + v2[d]);
  }
}

AIRNETS_CLONES void scale_line(float* l, const float* inv, int64_t D) {
  for (int64_t d = 0; d < D; ++d) l[d] *= inv[d];
}

AIRNETS_CLONES void attn_bwd_line(float* w, const float* v1, const float* v2, const float* out, const float* g,
                                  float* gv, int64_t D) {
  for (int64_t d = 0; d < D; ++d) { const float x = w[d] * g[d]; gv[d] = x; w[d] = x * (v1[d] + v2[d] - out[d]); }
}

AIRNETS_CLONES void relu_bwd_line(float* g, const float* t, float* gq, int64_t D) {
  for (int64_t d = 0; d < D; ++d) { const float x = t[d] > 0.0f ? g[d] : 0.0f; g[d] = x; gq[d] += x; }
}

void check_dense(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu() && x.is_contiguous(), name,
              ": expected a contiguous 4-d float32 CPU tensor");
}

constexpr int64_t kGrain = 8;  // rows (b, n) per task of at::parallel_for

// t = relu(a + b + c), contiguous [B, N, K, D] (a: [B, N, <=K, D]; b, c: optional, broadcast views)
at::Tensor relu_sum(const at::Tensor& a, const c10::optional<at::Tensor>& b, const c10::optional<at::Tensor>& c) {
  TORCH_CHECK(a.dim() == 4, "relu_sum: a must be 4-d");
  int64_t K = a.size(2);
  if (b.has_value() && b->defined()) K = std::max(K, b->size(2));
  if (c.has_value() && c->defined()) K = std::max(K, c->size(2));
  const int64_t B = a.size(0), N = a.size(1), D = a.size(3);
  const View va = view_of(a, B, N, K, D, "relu_sum a"), vb = view_of(b, B, N, K, D, "relu_sum b"),
             vc = view_of(c, B, N, K, D, "relu_sum c");
  at::Tensor t = at::empty({B, N, K, D}, a.options().memory_format(at::MemoryFormat::Contiguous));
  float* o = t.data_ptr<float>();
  const std::vector<float> zeros(D, 0.0f);
  at::parallel_for(0, B * N, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t bi = r / N, ni = r % N;
      for (int64_t j = 0; j < K; ++j)
        relu_sum_line(o + (r * K + j) * D, at_row(va, bi, ni, j, zeros.data()), at_row(vb, bi, ni, j, zeros.data()),
                      at_row(vc, bi, ni, j, zeros.data()), D);
    }
  });
  return t;
}

// logits [B, N, K, D] (contiguous) become the softmax weights over K; returns sum_K w * (v1 + v2), [B, N, D]
at::Tensor attn_fwd(at::Tensor logits, const at::Tensor& v1, const c10::optional<at::Tensor>& v2) {
  check_dense(logits, "attn_fwd logits");
  const int64_t B = logits.size(0), N = logits.size(1), K = logits.size(2), D = logits.size(3);
  TORCH_CHECK(K > 0, "attn_fwd: no neighbours");
  const View a = view_of(v1, B, N, K, D, "attn_fwd v1"), b = view_of(v2, B, N, K, D, "attn_fwd v2");
  at::Tensor out = at::empty({B, N, D}, logits.options());
  float* L = logits.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const std::vector<float> zeros(D, 0.0f);
  at::parallel_for(0, B * N, kGrain, [&](int64_t begin, int64_t end) {
    std::vector<float> m(D), s(D);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t bi = r / N, ni = r % N;
      float* l = L + r * K * D;
      float* acc = o + r * D;
      std::memcpy(m.data(), l, D * sizeof(float));
      for (int64_t j = 1; j < K; ++j) max_line(m.data(), l + j * D, D);
      std::fill(s.begin(), s.end(), 0.0f);
      std::fill(acc, acc + D, 0.0f);
      for (int64_t j = 0; j < K; ++j)
        exp_acc_line(l + j * D, m.data(), at_row(a, bi, ni, j, zeros.data()), at_row(b, bi, ni, j, zeros.data()),
                     s.data(), acc, D);
      for (int64_t d = 0; d < D; ++d) s[d] = 1.0f / s[d];
      scale_line(acc, s.data(), D);
      for (int64_t j = 0; j < K; ++j) scale_line(l + j * D, s.data(), D);
    }
  });
  return out;
}

// the backward of attn_fwd: gL written over the weights w (no longer needed: one [B, N, K, D] tensor less at the
// peak of the backward); returns gV, contiguous [B, N, K, D]
at::Tensor attn_bwd(at::Tensor w, const at::Tensor& v1, const c10::optional<at::Tensor>& v2,
                    const at::Tensor& out, const at::Tensor& grad) {
  check_dense(w, "attn_bwd w");
  const int64_t B = w.size(0), N = w.size(1), K = w.size(2), D = w.size(3);
  TORCH_CHECK(out.is_contiguous() && grad.is_contiguous() && out.numel() == B * N * D && grad.numel() == B * N * D,
              "attn_bwd: out and grad must be contiguous [B, N, D]");
  const View a = view_of(v1, B, N, K, D, "attn_bwd v1"), b = view_of(v2, B, N, K, D, "attn_bwd v2");
  at::Tensor gv = at::empty_like(w);
  float* W = w.data_ptr<float>();
  const float *o = out.data_ptr<float>(), *g = grad.data_ptr<float>();
  float* GV = gv.data_ptr<float>();
  const std::vector<float> zeros(D, 0.0f);
  at::parallel_for(0, B * N, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t bi = r / N, ni = r % N;
      for (int64_t j = 0; j < K; ++j) {
        const int64_t off = (r * K + j) * D;
        attn_bwd_line(W + off, at_row(a, bi, ni, j, zeros.data()), at_row(b, bi, ni, j, zeros.data()), o + r * D,
                      g + r * D, GV + off, D);
      }
    }
  });
  return gv;
}

// grad *= (t > 0) in place (grad, t: contiguous [B, N, K, D]); returns the sum over K, [B, N, D]
at::Tensor relu_bwd_sumk(at::Tensor grad, const at::Tensor& t) {
  check_dense(grad, "relu_bwd_sumk grad");
  check_dense(t, "relu_bwd_sumk t");
  TORCH_CHECK(grad.sizes() == t.sizes(), "relu_bwd_sumk: grad and t differ in shape");
  const int64_t B = t.size(0), N = t.size(1), K = t.size(2), D = t.size(3);
  at::Tensor gq = at::zeros({B, N, D}, t.options());
  float* g = grad.data_ptr<float>();
  const float* tt = t.data_ptr<float>();
  float* q = gq.data_ptr<float>();
  at::parallel_for(0, B * N, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t j = 0; j < K; ++j) relu_bwd_line(g + (r * K + j) * D, tt + (r * K + j) * D, q + r * D, D);
  });
  return gq;
}

}  // namespace

TORCH_LIBRARY(airnets, m) {
  m.def("relu_sum(Tensor a, Tensor? b, Tensor? c) -> Tensor", &relu_sum);
  m.def("attn_fwd(Tensor(a!) logits, Tensor v1, Tensor? v2) -> Tensor", &attn_fwd);
  m.def("attn_bwd(Tensor(a!) w, Tensor v1, Tensor? v2, Tensor out, Tensor grad) -> Tensor", &attn_bwd);
  m.def("relu_bwd_sumk(Tensor(a!) grad, Tensor t) -> Tensor", &relu_bwd_sumk);
}

// ---------------------------------------------------------------------------------------------------------------
// k nearest neighbours: for every query, the squared distances to all reference points (the same sum of squares,
// coordinate by coordinate, as airnets.attention.square_distance), the k smallest kept in a max-heap while scanning,
// then sorted nearest first (ties: lower index first). No [B, Q, M] matrix is ever written.
namespace {

at::Tensor knn(const at::Tensor& query_in, const at::Tensor& ref_in, int64_t k) {
  TORCH_CHECK(query_in.dim() == 3 && ref_in.dim() == 3 && query_in.size(2) == 3 && ref_in.size(2) == 3 &&
              query_in.size(0) == ref_in.size(0), "knn: expected [B, Q, 3] and [B, M, 3]");
  TORCH_CHECK(query_in.scalar_type() == at::kFloat && ref_in.scalar_type() == at::kFloat && query_in.device().is_cpu(),
              "knn: float32 CPU tensors only");
  const at::Tensor q = query_in.contiguous(), r = ref_in.contiguous();
  const int64_t B = q.size(0), Q = q.size(1), M = r.size(1);
  TORCH_CHECK(k >= 1 && k <= M, "knn: k must be in [1, M]");
  at::Tensor out = at::empty({B, Q, k}, q.options().dtype(at::kLong));
  const float *qp = q.data_ptr<float>(), *rp = r.data_ptr<float>();
  int64_t* op = out.data_ptr<int64_t>();
  at::parallel_for(0, B * Q, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> dist(M);
    std::vector<std::pair<float, int64_t>> heap;
    heap.reserve(k);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / Q;
      const float* x = qp + row * 3;
      const float* y = rp + b * M * 3;
      for (int64_t j = 0; j < M; ++j) {
        const float d0 = x[0] - y[3 * j], d1 = x[1] - y[3 * j + 1], d2 = x[2] - y[3 * j + 2];
        float s = d0 * d0;
        s = s + d1 * d1;
        dist[j] = s + d2 * d2;
      }
      heap.clear();
      for (int64_t j = 0; j < M; ++j) {
        if (static_cast<int64_t>(heap.size()) < k) {
          heap.emplace_back(dist[j], j);
          std::push_heap(heap.begin(), heap.end());
        } else if (std::make_pair(dist[j], j) < heap.front()) {
          std::pop_heap(heap.begin(), heap.end());
          heap.back() = {dist[j], j};
          std::push_heap(heap.begin(), heap.end());
        }
      }
      std::sort_heap(heap.begin(), heap.end());
      for (int64_t i = 0; i < k; ++i) op[row * k + i] = heap[i].second;
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(airnets, m) {
  m.def("knn(Tensor query, Tensor ref, int k) -> Tensor", &knn);
}
