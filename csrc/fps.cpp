// Farthest point sampling for airnets: the CPU kernel and the dispatch to the CUDA kernel (fps_cuda.cu).
//
// Semantics are those of the pointnet2_ops CUDA kernel that the AIR-Nets reference uses (see nbs/10_fps.ipynb):
//   * the first pick is index 0; every point keeps a running minimum squared distance, starting at 1e10;
//   * distances are float32, summed as (dx*dx + dy*dy) + dz*dz, with no fused multiply-add;
//   * optionally, points whose float32 squared norm is <= 1e-3 (compared as a double) are never updated or picked;
//   * ties go to the point whose (bit-reversed thread id, index) is smallest, where point k belongs to
//     thread k mod T and T = 2^floor(log2 N) capped at 512: the order the reference's reduction tree produces.
// The CPU kernel has two paths. The plain scan turns the tie rule into memory order: points are laid out in tie-break
// order once, so a "first strict maximum" scan over the laid-out points picks the same point the reference picks.
// For clouds with many picks, a kd-tree skips the subtrees a pick provably cannot change (see "the pruned kd-tree"
// below) and compares (running minimum, tie-break rank) pairs to keep the same tie rule.
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

// Whether a point takes part: with skip_near_origin, points whose float32 squared norm is <= 1e-3 (compared as a
// double, as the reference does) are never updated or picked.
inline bool eligible(const float* q, bool skip_near_origin) {
  return !(skip_near_origin && static_cast<double>(squared_norm(q[0], q[1], q[2])) <= kNearOriginSquaredNorm);
}

// The tie-break order of n points and, where asked for (the kd-tree needs it), its inverse. A point's rank is its
// position in the order; among equal running minima the smallest rank wins. Thread t's points t, t + T, t + 2T, ...
// sit together from start[t] on, so the rank of point k is start[k mod T] + k div T.
struct TieBreak {
  std::vector<int64_t> order;  // point index by rank
  std::vector<int64_t> start;  // rank of point t, for t < T (with_ranks only)
  int bits = 0;                // T = 2^bits

  TieBreak(int64_t n, bool with_ranks) : order(tie_break_order(n)) {
    const int64_t T = reference_threads(n);
    while ((int64_t(1) << bits) < T) ++bits;
    if (!with_ranks) return;
    start.resize(T);
    for (int64_t r = 0; r < n; r += (n - order[r] + T - 1) >> bits) start[order[r]] = r;  // thread t has ceil((n-t)/T)
  }
  int64_t rank(int64_t k) const { return start[k & ((int64_t(1) << bits) - 1)] + (k >> bits); }
};

// Points as structure-of-arrays "slots": coordinates and running minimum. Padding slots hold a running minimum of
// -1, which no squared distance lowers and no real slot loses to.
struct Slots {
  std::vector<float> x, y, z, dist;
  void resize(int64_t n) {
    x.assign(n, 0.f); y.assign(n, 0.f); z.assign(n, 0.f);
    dist.assign(n, -1.f);
  }
  void set(int64_t s, const float* q) { x[s] = q[0]; y[s] = q[1]; z[s] = q[2]; dist[s] = kInitialDistance; }
};

struct Best {
  float value;
  int64_t slot;  // the first slot holding it (the plain scan), or the smallest rank holding it (a kd-tree leaf)
};

// The vector loops, with GCC/Clang vector types: W floats at a time (SSE/NEON registers for W = 4, AVX2 for W = 8).
// `a < b ? a : b` on them is exactly minps/maxps, which the compiler does not emit for std::min on floats without
// -ffast-math.
//
// update_blocks lowers the running minimum of slots [lo, hi), whole blocks of kBlock slots, by the squared distance
// to (px, py, pz), and returns the largest running minimum with its first slot. Each block's maximum is kept in a
// register; only the winning block is scanned a second time to find the first slot that holds the maximum.
//
// update_leaf does the same for one kd-tree leaf, slots [lo, hi) (a multiple of 8), whose slots are not in rank
// order: it returns the smallest rank among the slots that hold the maximum, from a second, vectorised pass.
#if defined(__GNUC__) || defined(__clang__)
typedef float float4v __attribute__((vector_size(16)));
typedef float float8v __attribute__((vector_size(32)));
typedef int32_t int4v __attribute__((vector_size(16)));
typedef int32_t int8v __attribute__((vector_size(32)));

template <typename vec, int W>
__attribute__((always_inline)) inline float update_block(Slots& c, int64_t b, int64_t e, float px, float py, float pz) {
  const float* __restrict x = c.x.data();
  const float* __restrict y = c.y.data();
  const float* __restrict z = c.z.data();
  float* __restrict d = c.dist.data();
  vec vx, vy, vz;
  for (int l = 0; l < W; ++l) { vx[l] = px; vy[l] = py; vz[l] = pz; }
  vec m = vx - vx - 1.f;
  for (int64_t i = b; i < e; i += W) {
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
  return mm;
}

template <typename vec, int W>
__attribute__((always_inline)) inline Best update_blocks(Slots& c, int64_t lo, int64_t hi, float px, float py, float pz) {
  float best = -1.f;
  int64_t best_block = -1;
  for (int64_t b = lo; b < hi; b += kBlock) {
    const float mm = update_block<vec, W>(c, b, b + kBlock, px, py, pz);
    if (mm > best) { best = mm; best_block = b; }
  }
  if (best_block < 0) return {best, -1};
  int64_t s = best_block;
  while (c.dist[s] != best) ++s;
  return {best, s};
}

template <typename vec, typename ivec, int W>
__attribute__((always_inline)) inline Best update_leaf(Slots& c, const int32_t* rank, int64_t lo, int64_t hi, float px,
                                                       float py, float pz) {
  const float best = update_block<vec, W>(c, lo, hi, px, py, pz);
  const float* __restrict d = c.dist.data();
  vec vbest;
  ivec none, r;
  for (int l = 0; l < W; ++l) { vbest[l] = best; none[l] = INT32_MAX; }
  r = none;
  for (int64_t i = lo; i < hi; i += W) {
    vec dd;
    ivec rr;
    std::memcpy(&dd, d + i, sizeof(vec)); std::memcpy(&rr, rank + i, sizeof(ivec));
    const ivec cand = dd == vbest ? rr : none;
    r = cand < r ? cand : r;
  }
  int32_t rr = r[0];
  for (int l = 1; l < W; ++l) rr = r[l] < rr ? r[l] : rr;
  return {best, rr};
}

Best update_blocks_generic(Slots& c, int64_t lo, int64_t hi, float px, float py, float pz) {
  return update_blocks<float4v, 4>(c, lo, hi, px, py, pz);
}
Best update_leaf_generic(Slots& c, const int32_t* rank, int64_t lo, int64_t hi, float px, float py, float pz) {
  return update_leaf<float4v, int4v, 4>(c, rank, lo, hi, px, py, pz);
}
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) Best update_blocks_avx2(Slots& c, int64_t lo, int64_t hi, float px, float py, float pz) {
  return update_blocks<float8v, 8>(c, lo, hi, px, py, pz);
}
__attribute__((target("avx2"))) Best update_leaf_avx2(Slots& c, const int32_t* rank, int64_t lo, int64_t hi, float px,
                                                      float py, float pz) {
  return update_leaf<float8v, int8v, 8>(c, rank, lo, hi, px, py, pz);
}
bool has_avx2() {
  static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
  return yes;
}
#endif

Best update_and_argmax(Slots& c, int64_t lo, int64_t hi, float px, float py, float pz) {
#if defined(__x86_64__) || defined(__i386__)
  if (has_avx2()) return update_blocks_avx2(c, lo, hi, px, py, pz);
#endif
  return update_blocks_generic(c, lo, hi, px, py, pz);
}
Best update_leaf_and_argmax(Slots& c, const int32_t* rank, int64_t lo, int64_t hi, float px, float py, float pz) {
#if defined(__x86_64__) || defined(__i386__)
  if (has_avx2()) return update_leaf_avx2(c, rank, lo, hi, px, py, pz);
#endif
  return update_leaf_generic(c, rank, lo, hi, px, py, pz);
}
#else  // other compilers (MSVC): plain loops, same arithmetic
Best update_and_argmax(Slots& c, int64_t lo, int64_t hi, float px, float py, float pz) {
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
Best update_leaf_and_argmax(Slots& c, const int32_t* rank, int64_t lo, int64_t hi, float px, float py, float pz) {
  const float best = update_and_argmax(c, lo, hi, px, py, pz).value;
  int32_t r = INT32_MAX;
  for (int64_t i = lo; i < hi; ++i)
    if (c.dist[i] == best && rank[i] < r) r = rank[i];
  return {best, r};
}
#endif

// ------------------------------------------------------------------------------------------------- the plain scan
// Every pick updates every eligible point. The slots are the eligible points in tie-break order, padded to whole
// blocks, so "first strict maximum in memory order" is the tie rule. Used where the kd-tree below does not pay:
// few picks (its build costs about as much as a hundred plain picks) or small clouds. `chunks` > 1 splits every
// pick across threads, for a few large clouds: each thread scans a range of whole blocks, and the ranges are
// combined in order, which keeps the first maximum.
void sample_scan(const float* p, int64_t m, bool skip_near_origin, const TieBreak& tie, int64_t chunks, int64_t* out) {
  std::vector<int64_t> index;  // original point index by slot
  index.reserve(tie.order.size());
  for (int64_t k : tie.order)
    if (eligible(p + 3 * k, skip_near_origin)) index.push_back(k);
  const int64_t size = static_cast<int64_t>(index.size());
  const int64_t padded = (size + kBlock - 1) / kBlock * kBlock;
  Slots c;
  c.resize(padded);
  for (int64_t s = 0; s < size; ++s) c.set(s, p + 3 * index[s]);
  chunks = std::max<int64_t>(1, std::min<int64_t>(chunks, padded / kBlock));
  const int64_t per = (padded / kBlock + chunks - 1) / chunks * kBlock;
  std::vector<Best> part(chunks);
  int64_t last = 0;
  out[0] = 0;
  for (int64_t j = 1; j < m; ++j) {
    const float px = p[3 * last], py = p[3 * last + 1], pz = p[3 * last + 2];
    Best best{-1.f, -1};
    if (chunks == 1) {
      best = update_and_argmax(c, 0, padded, px, py, pz);
    } else {
      at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t)
          part[t] = update_and_argmax(c, std::min(padded, t * per), std::min(padded, (t + 1) * per), px, py, pz);
      });
      for (const Best& q : part)
        if (q.slot >= 0 && q.value > best.value) best = q;
    }
    last = best.slot < 0 ? 0 : index[best.slot];  // no eligible point at all: the reference returns 0
    out[j] = last;
  }
}

// --------------------------------------------------------------------------------------------- the pruned kd-tree
// Late in a run, most picks lower the running minimum of only the points near them. A kd-tree lets a pick skip every
// subtree none of whose running minima it can lower, and keeps the argmax in the tree, so a pick costs the points
// near it plus the tree nodes around them, instead of the whole cloud.
//
// Layout: the eligible points are split in two halves along the widest axis, `depth` times, into 2^depth leaves of
// at most about kLeafSize points. Each leaf's points are contiguous slots padded to a multiple of 8, updated by the
// vector loop above; a parallel array holds each slot's tie-break rank.
//
// Every node keeps the bounding box of its points, their largest running minimum (`value`) and the smallest rank
// among the points that hold it (`rank`): the node's winner under the tie rule. A leaf finds it with a second pass
// over its slots; a parent takes the child with the larger value, on equal values the smaller rank. The root's
// winner is then exactly the reference's pick: the largest running minimum, first in tie-break order.
//
// Skipping is exact. For a point q in the box, |q_i - p_i| is at least the box's gap g_i on axis i, and float32
// rounding is monotone, so the kernel's float32 (dx*dx + dy*dy) + dz*dz is at least g^2 = sum g_i^2 up to its
// rounding errors: one per subtraction, product and sum, at most five relative errors of 2^-24 on any term (< 3e-7
// in all), plus, where a product falls below FLT_MIN, absolute errors below 1e-44 (below FLT_MIN = 1.2e-38 each
// where the CPU flushes denormals to zero, as after torch.set_flush_denormal(True)). skip_bound returns
// g^2 (1 - 1e-5) - 1e-36 in double (whose own errors are ~1e-16 relative), a lower bound of every float32 distance
// from p to the box, and never below 0 since float32 squares never are. If it is >= the node's value, no running
// minimum in the node is above any of those distances: min() leaves them all as they are, and the node is skipped
// whole. That covers the initial 1e10 (a box more than 1e5 away stays untouched) and running minima of 0 (copies
// of picked points). Non-finite coordinates void the argument: such clouds take the plain scan.
constexpr int64_t kLeafSize = 256;        // most points per leaf, about (larger leaves: fewer node visits)
constexpr int64_t kLane = 8;              // leaves are padded to whole AVX2 registers

struct Node {
  float lo[3], hi[3];  // bounding box of the node's points (lo = +inf, hi = -inf for an empty leaf)
  float value;         // their largest running minimum (-1 for an empty leaf: never visited, never the winner)
  int32_t rank;        // the smallest tie-break rank among the points holding it
};

inline double gap(float lo, float hi, double v) { return v < lo ? lo - v : v > hi ? v - hi : 0.0; }

inline double skip_bound(const Node& nd, const double q[3]) {
  const double gx = gap(nd.lo[0], nd.hi[0], q[0]), gy = gap(nd.lo[1], nd.hi[1], q[1]), gz = gap(nd.lo[2], nd.hi[2], q[2]);
  return std::max(0.0, (gx * gx + gy * gy + gz * gz) * (1.0 - 1e-5) - 1e-36);
}

class KdCloud {
 public:
  // The eligible points of p[n][3], read in index order; `size` of them.
  KdCloud(const float* p, int64_t n, bool skip_near_origin, const TieBreak& tie) {
    std::vector<Point> a, b;
    a.reserve(n);
    for (int64_t k = 0; k < n; ++k) {
      const float* q = p + 3 * k;
      if (eligible(q, skip_near_origin)) a.push_back({{q[0], q[1], q[2]}, static_cast<int32_t>(tie.rank(k))});
    }
    size = static_cast<int64_t>(a.size());
    b.resize(size);
    depth_ = 0;
    while ((size + (int64_t(1) << depth_) - 1) >> depth_ > kLeafSize) ++depth_;
    leaves_ = int64_t(1) << depth_;
    std::vector<int64_t> cut(leaves_ + 1, size);  // leaf l gets points [cut[l], cut[l + 1])
    split(a.data(), b.data(), 0, size, 1, 0, cut);
    const Point* pts = depth_ % 2 ? b.data() : a.data();  // where the last level of the split left them

    // leaves to slots, each padded with copies of its first point, whose running minimum of -1 never wins
    begin_.assign(leaves_ + 1, 0);
    for (int64_t l = 0; l < leaves_; ++l) begin_[l + 1] = begin_[l] + (cut[l + 1] - cut[l] + kLane - 1) / kLane * kLane;
    slots_.resize(begin_[leaves_]);
    rank_.assign(begin_[leaves_], INT32_MAX);
    node_.resize(2 * leaves_);
    for (int64_t l = 0; l < leaves_; ++l) {
      Node& nd = node_[leaves_ + l];
      const int64_t len = cut[l + 1] - cut[l];
      const Point* q = pts + cut[l];
      for (int i = 0; i < 3; ++i) { nd.lo[i] = INFINITY; nd.hi[i] = -INFINITY; }
      nd.value = len ? kInitialDistance : -1.f;
      nd.rank = INT32_MAX;
      for (int64_t s = 0; s < len; ++s) {
        slots_.set(begin_[l] + s, q[s].c);
        rank_[begin_[l] + s] = q[s].rank;
        nd.rank = std::min(nd.rank, q[s].rank);
        for (int i = 0; i < 3; ++i) { nd.lo[i] = std::min(nd.lo[i], q[s].c[i]); nd.hi[i] = std::max(nd.hi[i], q[s].c[i]); }
      }
      for (int64_t s = begin_[l] + len; s < begin_[l + 1]; ++s) {
        slots_.x[s] = q[0].c[0]; slots_.y[s] = q[0].c[1]; slots_.z[s] = q[0].c[2];
      }
    }
    for (int64_t k = leaves_ - 1; k >= 1; --k) {
      Node& nd = node_[k];
      const Node &u = node_[2 * k], &v = node_[2 * k + 1];
      for (int i = 0; i < 3; ++i) { nd.lo[i] = std::min(u.lo[i], v.lo[i]); nd.hi[i] = std::max(u.hi[i], v.hi[i]); }
      pull(k);
    }
  }

  // Lower the running minima by the squared distance to (px, py, pz); return the new winner's rank (size > 0).
  int64_t update_and_pick(float px, float py, float pz) {
    const float pf[3] = {px, py, pz};
    const double pd[3] = {px, py, pz};
    visit(1, pf, pd);
    return node_[1].rank;
  }

  int64_t size = 0;

 private:
  struct Point {
    float c[3];
    int32_t rank;
  };

  // Split the points src[lo, hi) of node k at `level` in two halves along the widest axis, writing them to
  // dst[lo, hi), then split each half back from dst into src, down to the leaves. The cut is at the median of a
  // sample, by a branch-free partition (one pass); where that leaves a half with less than a quarter of the points
  // (many equal coordinates, an unlucky sample) or the node is small, at the exact median (std::nth_element). Leaf
  // sizes only affect speed: an empty leaf (fewer points than leaves) is never visited.
  void split(Point* src, Point* dst, int64_t lo, int64_t hi, int64_t k, int level, std::vector<int64_t>& cut) {
    if (level == depth_) {
      cut[k - leaves_] = lo;
      return;
    }
    const int64_t n = hi - lo;
    constexpr int64_t kSample = 63;
    float sample[3][kSample];
    const int64_t taken = std::min(n, kSample);
    for (int64_t i = 0; i < taken; ++i)
      for (int j = 0; j < 3; ++j) sample[j][i] = src[lo + i * n / taken].c[j];
    int axis = 0;
    float extent = -1.f;
    for (int j = 0; taken && j < 3; ++j) {
      const auto mm = std::minmax_element(sample[j], sample[j] + taken);
      if (*mm.second - *mm.first > extent) { extent = *mm.second - *mm.first; axis = j; }
    }
    int64_t mid = lo + n / 2;
    bool exact = n < 2 * kSample;
    if (!exact) {
      std::nth_element(sample[axis], sample[axis] + taken / 2, sample[axis] + taken);
      const float pivot = sample[axis][taken / 2];
      int64_t l = lo, r = hi;  // below the pivot to dst[lo, l), the rest to dst[r, hi)
      for (int64_t i = lo; i < hi; ++i) {
        const bool below = src[i].c[axis] < pivot;
        dst[l] = src[i];
        dst[r - 1] = src[i];
        l += below;
        r -= !below;
      }
      mid = l;
      exact = 4 * (mid - lo) < n || 4 * (hi - mid) < n;
      if (exact) mid = lo + n / 2;
    }
    if (exact) {
      const auto below = [axis](const Point& u, const Point& v) { return u.c[axis] < v.c[axis]; };
      std::nth_element(src + lo, src + mid, src + hi, below);
      std::copy(src + lo, src + hi, dst + lo);
    }
    split(dst, src, lo, mid, 2 * k, level + 1, cut);
    split(dst, src, mid, hi, 2 * k + 1, level + 1, cut);
  }

  // Node k's winner from its children's: the larger value, on equal values the smaller rank.
  void pull(int64_t k) {
    const Node &u = node_[2 * k], &v = node_[2 * k + 1];
    const Node& w = (v.value > u.value || (v.value == u.value && v.rank < u.rank)) ? v : u;
    node_[k].value = w.value;
    node_[k].rank = w.rank;
  }

  void visit(int64_t k, const float pf[3], const double pd[3]) {
    Node& nd = node_[k];
    if (skip_bound(nd, pd) >= nd.value) return;  // no running minimum in this subtree can be lowered
    if (k >= leaves_) {
      const int64_t l = k - leaves_;
      const Best b = update_leaf_and_argmax(slots_, rank_.data(), begin_[l], begin_[l + 1], pf[0], pf[1], pf[2]);
      nd.value = b.value;
      nd.rank = static_cast<int32_t>(b.slot);
      return;
    }
    visit(2 * k, pf, pd);
    visit(2 * k + 1, pf, pd);
    pull(k);
  }

  int depth_ = 0;
  int64_t leaves_ = 1;
  std::vector<int64_t> begin_;  // leaf l holds slots [begin_[l], begin_[l + 1])
  Slots slots_;
  std::vector<int32_t> rank_;   // tie-break rank by slot (INT32_MAX for padding)
  std::vector<Node> node_;      // heap order: node k has children 2k and 2k + 1; leaf l is node leaves_ + l
};

// Below these, the plain scan is as fast as building and using the kd-tree (measured on a 2-core Xeon, AVX2).
constexpr int64_t kTreeMinPoints = 1024;
constexpr int64_t kTreeMinPicks = 192;
// A pick of the plain scan is split across threads only for clouds this large (and fewer clouds than threads).
constexpr int64_t kInnerParallelMin = 65536;

bool use_tree(int64_t n, int64_t m) { return n >= kTreeMinPoints && m >= kTreeMinPicks && n <= INT32_MAX; }

// Farthest point sampling of one cloud p[n][3] into out[m]. `chunks` > 1 splits every pick of the plain scan.
void sample_cloud(const float* p, int64_t n, int64_t m, bool skip_near_origin, const TieBreak& tie, int64_t chunks,
                  int64_t* out) {
  bool tree = use_tree(n, m);
  for (int64_t i = 0; tree && i < 3 * n; ++i) tree = std::isfinite(p[i]);  // the skip bound needs finite coordinates
  if (!tree) return sample_scan(p, m, skip_near_origin, tie, chunks, out);
  KdCloud c(p, n, skip_near_origin, tie);
  int64_t last = 0;
  out[0] = 0;
  for (int64_t j = 1; j < m; ++j)  // no eligible point at all: the reference returns 0
    out[j] = last = c.size ? tie.order[c.update_and_pick(p[3 * last], p[3 * last + 1], p[3 * last + 2])] : 0;
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
  const TieBreak tie(n, use_tree(n, npoint));
  const int64_t threads = at::get_num_threads();
  if (B < threads && n >= kInnerParallelMin && !use_tree(n, npoint)) {
    // few large clouds and few picks: one cloud at a time, every pick split across the threads
    for (int64_t b = 0; b < B; ++b) sample_cloud(p + b * n * 3, n, npoint, skip_near_origin, tie, threads, o + b * npoint);
  } else if (B == 1 || threads == 1) {
    // no parallel work: no parallel region either (entering one costs a scheduler time slice when the cores are busy)
    for (int64_t b = 0; b < B; ++b) sample_cloud(p + b * n * 3, n, npoint, skip_near_origin, tie, 1, o + b * npoint);
  } else {
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) sample_cloud(p + b * n * 3, n, npoint, skip_near_origin, tie, 1, o + b * npoint);
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
