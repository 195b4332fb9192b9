# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Multiresolution IsoSurface Extraction (airnets._mise): the octree bookkeeping of ONet's MISE, explained and
tested in nbs/30_mise.ipynb (which also holds `ReferenceMISE`, a plain-Python version the tests compare against).

Semantics (those of ONet's libmise): a fine lattice of R = resolution_0 * 2**depth cells per axis, integer nodes
[0, R]^3. Root voxels (edge 2**depth) tile it; their corners are registered first. After each `update`, every
known node flags each leaf voxel whose closure holds it ("has a value >= threshold" / "has a value <= threshold");
leaves of level < depth with both flags are split into 8 and the 27 nodes of their 3x3x3 sub-lattice are registered
(those not yet registered start unknown). `query` returns the unknown nodes; the loop ends when it returns none.
One addition of ours: fine cells given to `seed` before the first update are treated at every round as if both flags
were set, so their leaves are split down to the finest level whatever the values (without seeds: libmise's results).

How this file differs from libmise in bookkeeping, not in results: voxel states live in one dense byte array per
level (absent / leaf / split, plus the two flags), so finding the leaf that holds a fine cell is at most `depth`
array reads instead of a walk through an octree of objects; nodes live in an open-addressing hash table keyed by
their linear lattice index; flags persist between rounds (a surviving leaf keeps the flags its nodes gave it) and
each node visits the voxels around it level by level, once per distinct voxel rather than once per cell."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, int32_t, uint8_t, uint64_t
from libc.string cimport memset
from libc.math cimport NAN
from libcpp.vector cimport vector

cnp.import_array()

ctypedef fused real:
    float
    double

cdef enum:
    ABSENT = 0
    LEAF = 1
    SPLIT = 2
    STATE = 3
    POS = 4
    NEG = 8
    BOTH = 12

cdef class MISE:
    "MISE bookkeeping: `query()` the nodes to evaluate, `update(nodes, values)`, repeat until none; then `to_dense()`"
    cdef readonly int resolution_0, depth, resolution
    cdef readonly double threshold
    cdef readonly int rounds
    cdef int64_t n1                    # nodes per axis, R + 1
    cdef vector[int64_t] lvl_off       # offset of each level's voxel states in `vox`
    cdef vector[uint8_t] vox           # voxel states of levels 0 .. depth-1 (level-`depth` leaves are never split)
    cdef vector[int32_t] xyz           # node coordinates, 3 per node, in registration order
    cdef vector[double] val
    cdef vector[uint8_t] known         # 0 unknown, 1 known, 2 known and settled: every leaf around it is at level `depth`
    cdef int eb                        # log2 of the block edge of the node index
    cdef int64_t nb                    # blocks per axis
    cdef vector[int32_t] corner        # per block: position of its corner node in the node list (-1: none)
    cdef vector[int32_t] block         # per block: which slot block holds its other nodes (-1: none yet)
    cdef vector[int32_t] slots         # slot blocks of E^3 node positions (-1: not registered)
    cdef int64_t first_unknown         # every node before it is known
    cdef int64_t n_known
    cdef vector[int64_t] to_split      # level * 2**40 + voxel index, collected while flagging
    cdef vector[int64_t] seeds         # fine cells (x, y, z, ...) whose leaves are split at every round, whatever the values

    def __init__(self, int resolution_0, # voxels per axis at the coarsest level (64 for AIR-Nets, 32 for ONet)
                 int depth, # refinement steps: the fine lattice has resolution_0 * 2**depth cells per axis
                 double threshold=0.0): # the level set, in the units of the values (logits: 0 = probability 0.5)
        if resolution_0 < 1: raise ValueError(f'resolution_0 must be >= 1, got {resolution_0}')
        if depth < 0: raise ValueError(f'depth must be >= 0, got {depth}')
        if (<int64_t>resolution_0 << depth) > 4096: raise ValueError(f'resolution_0 * 2**depth = {resolution_0 << depth} is above 4096')
        if threshold != threshold: raise ValueError('threshold is NaN')
        self.resolution_0, self.depth, self.threshold = resolution_0, depth, threshold
        self.resolution = resolution_0 << depth
        self.n1 = self.resolution + 1
        self.rounds = 0
        cdef int64_t total = 0, n, l, i, j, k
        for l in range(depth):
            self.lvl_off.push_back(total)
            n = <int64_t>resolution_0 << l
            total += n * n * n
        self.vox.assign(total, ABSENT)
        if depth > 0: memset(&self.vox[0], LEAF, <size_t>(<int64_t>resolution_0 ** 3))
        n = resolution_0 + 1
        self._index_init()
        cdef int64_t s = 1 << depth
        for i in range(n):
            for j in range(n):
                for k in range(n): self._register(i * s, j * s, k * s)
        self.first_unknown = 0
        self.n_known = 0

    # ---------------------------------------------------------------- the node index
    # Nodes are found through a directory of blocks of E^3 lattice positions (E = 2**min(depth, 3)): a block's corner
    # node is kept in the directory itself (so the coarse lattice costs no block storage) and the other E^3 - 1
    # positions get a block of slots only once one of them is registered, which happens only near the surface.
    cdef void _index_init(self):
        self.eb = min(self.depth, 3)
        self.nb = (self.resolution >> self.eb) + 1
        self.corner.assign(self.nb * self.nb * self.nb, -1)
        self.block.assign(self.nb * self.nb * self.nb, -1)

    cdef inline int32_t* _slot(self, int64_t x, int64_t y, int64_t z, bint create) noexcept:
        "where the node index of (x, y, z) is kept (NULL: its block has no slots and `create` is False)"
        cdef int e = self.eb
        cdef int64_t m = (1 << e) - 1, b = ((x >> e) * self.nb + (y >> e)) * self.nb + (z >> e)
        cdef int64_t o = (((x & m) << e) + (y & m) << e) + (z & m)
        if o == 0: return &self.corner[b]
        if self.block[b] < 0:
            if not create: return NULL
            self.block[b] = <int32_t>(self.slots.size() >> (3 * e))
            self.slots.resize(self.slots.size() + (<size_t>1 << (3 * e)), -1)
        return &self.slots[(<int64_t>self.block[b] << (3 * e)) + o]

    cdef int64_t _find(self, int64_t x, int64_t y, int64_t z) noexcept:
        "position of node (x, y, z) in the node list, or -1"
        cdef int32_t* s = self._slot(x, y, z, False)
        return -1 if s == NULL else s[0]

    cdef void _register(self, int64_t x, int64_t y, int64_t z) noexcept:
        "add node (x, y, z) as unknown unless it is registered"
        cdef int32_t* s = self._slot(x, y, z, True)
        if s[0] >= 0: return
        s[0] = <int32_t>self.val.size()
        self.xyz.push_back(<int32_t>x); self.xyz.push_back(<int32_t>y); self.xyz.push_back(<int32_t>z)
        self.val.push_back(0.0)
        self.known.push_back(0)

    # ---------------------------------------------------------------- flags and splits
    cdef int _flag(self, int l, int64_t x0, int64_t x1, int64_t y0, int64_t y1, int64_t z0, int64_t z1, uint8_t bits) noexcept nogil:
        "flag the leaves holding the fine cells [x0..x1] x [y0..y1] x [z0..z1] (at most 2 per axis), from level l down; -> leaves of level < depth seen"
        cdef int s = self.depth - l
        cdef int64_t n = <int64_t>self.resolution_0 << l
        cdef int64_t vx, vy, vz, ax0, ax1, ay0, ay1, az0, az1, v
        cdef uint8_t st, old
        cdef int seen = 0
        for vx in range(x0 >> s, (x1 >> s) + 1):
            ax0 = max(x0, vx << s); ax1 = min(x1, ((vx + 1) << s) - 1)
            for vy in range(y0 >> s, (y1 >> s) + 1):
                ay0 = max(y0, vy << s); ay1 = min(y1, ((vy + 1) << s) - 1)
                for vz in range(z0 >> s, (z1 >> s) + 1):
                    az0 = max(z0, vz << s); az1 = min(z1, ((vz + 1) << s) - 1)
                    v = self.lvl_off[l] + (vx * n + vy) * n + vz
                    old = self.vox[v]
                    st = old & STATE
                    if st == LEAF:
                        seen += 1
                        if (old | bits) != old:
                            self.vox[v] = old | bits
                            if (old | bits) & BOTH == BOTH: self.to_split.push_back((<int64_t>l << 40) + v - self.lvl_off[l])
                    elif st == SPLIT and l + 1 < self.depth:
                        seen += self._flag(l + 1, ax0, ax1, ay0, ay1, az0, az1, bits)
        return seen

    cdef int _flag_node(self, int64_t p) noexcept nogil:
        cdef int64_t R = self.resolution
        cdef int64_t x = self.xyz[3 * p], y = self.xyz[3 * p + 1], z = self.xyz[3 * p + 2]
        cdef double v = self.val[p]
        cdef uint8_t bits = (POS if v >= self.threshold else 0) | (NEG if v <= self.threshold else 0)
        # the fine cells with lower corner node + o, o in {-1, 0}^3, inside [0, R)^3
        return self._flag(0, max(x - 1, 0), min(x, R - 1), max(y - 1, 0), min(y, R - 1), max(z - 1, 0), min(z, R - 1), bits)

    cdef void _split(self, int l, int64_t v):
        cdef int64_t n = <int64_t>self.resolution_0 << l, nc = 2 * n
        cdef int64_t vx = v // (n * n), vy = (v // n) % n, vz = v % n
        cdef int s = self.depth - l
        cdef int64_t h = <int64_t>1 << (s - 1), a, b, c
        self.vox[self.lvl_off[l] + v] = SPLIT
        if l + 1 < self.depth:          # the children are leaves
            for a in range(2):
                for b in range(2):
                    for c in range(2): self.vox[self.lvl_off[l + 1] + ((2 * vx + a) * nc + 2 * vy + b) * nc + 2 * vz + c] = LEAF
        for a in range(3):
            for b in range(3):
                for c in range(3): self._register((vx << s) + a * h, (vy << s) + b * h, (vz << s) + c * h)

    cdef void _subdivide(self):
        cdef int64_t p, n = <int64_t>self.val.size()
        cdef size_t i
        self.to_split.clear()
        if self.depth == 0: return
        cdef size_t c
        with nogil:
            for p in range(n):     # known[p]: 0 unknown, 1 known, 2 known and settled (only level-`depth` leaves around it)
                if self.known[p] == 1 and self._flag_node(p) == 0: self.known[p] = 2
            for c in range(0, self.seeds.size(), 3):   # a seeded cell's leaf splits as if the surface crossed it
                self._flag(0, self.seeds[c], self.seeds[c], self.seeds[c + 1], self.seeds[c + 1], self.seeds[c + 2], self.seeds[c + 2], BOTH)
        for i in range(self.to_split.size()):
            if self.vox[self.lvl_off[self.to_split[i] >> 40] + (self.to_split[i] & ((<int64_t>1 << 40) - 1))] & STATE == LEAF:
                self._split(<int>(self.to_split[i] >> 40), self.to_split[i] & ((<int64_t>1 << 40) - 1))

    # ---------------------------------------------------------------- the public cycle
    def seed(self, cells): # [P, 3] integer lower corners of fine cells, each in [0, R)
        "Refine the leaves holding these fine cells down to the finest level whatever the values (call before the first `update`): where the surface is known to pass, near the input points, a part thinner than a coarse cell is not stepped over"
        cdef cnp.ndarray a = np.ascontiguousarray(cells, dtype=np.int64)
        if a.ndim != 2 or a.shape[1] != 3: raise ValueError(f'cells must have shape [P, 3], got {list(np.shape(cells))}')
        if a.shape[0] and (a.min() < 0 or a.max() >= self.resolution): raise ValueError(f'cells must lie in [0, {self.resolution}), got {a.min()} .. {a.max()}')
        if self.rounds: raise ValueError('seed before the first update')
        a = np.unique(a, axis=0)
        cdef int64_t[:, ::1] q = a
        cdef int64_t i
        for i in range(q.shape[0]):
            self.seeds.push_back(q[i, 0]); self.seeds.push_back(q[i, 1]); self.seeds.push_back(q[i, 2])

    def query(self): # -> [P, 3] int64 lattice coordinates of the nodes still to evaluate (empty: done)
        "The registered nodes without a value, in registration order"
        cdef int64_t n = <int64_t>self.val.size(), p, m = 0
        while self.first_unknown < n and self.known[self.first_unknown]: self.first_unknown += 1
        out = np.empty((n - self.first_unknown, 3), dtype=np.int64)
        cdef int64_t[:, ::1] o = out
        for p in range(self.first_unknown, n):
            if not self.known[p]:
                o[m, 0] = self.xyz[3 * p]; o[m, 1] = self.xyz[3 * p + 1]; o[m, 2] = self.xyz[3 * p + 2]
                m += 1
        return out[:m]

    def update(self, points, # [P, 3] integer lattice coordinates (as returned by `query`)
               values):      # [P] values at those nodes (logits)
        "Store the values of registered nodes, then split every leaf that now sees both sides of the threshold"
        cdef cnp.ndarray pts = np.ascontiguousarray(points, dtype=np.int64)
        cdef cnp.ndarray vals = np.ascontiguousarray(values, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3: raise ValueError(f'points must have shape [P, 3], got {list(np.shape(points))}')
        if vals.ndim != 1 or vals.shape[0] != pts.shape[0]: raise ValueError(f'values must have shape [{pts.shape[0]}], got {list(np.shape(values))}')
        bad = ~np.isfinite(vals)
        if bad.any(): raise ValueError(f'{int(bad.sum())} of {len(vals)} values are NaN or infinite (first at node {pts[np.argmax(bad)].tolist()})')
        cdef int64_t[:, ::1] q = pts
        cdef double[::1] w = vals
        cdef int64_t i, p, x, y, z, R = self.resolution
        for i in range(q.shape[0]):
            x, y, z = q[i, 0], q[i, 1], q[i, 2]
            p = self._find(x, y, z) if 0 <= x <= R and 0 <= y <= R and 0 <= z <= R else -1
            if p < 0: raise ValueError(f'node {[x, y, z]} is not a registered node of this MISE (query() returns those)')
            if self.known[p]: raise ValueError(f'node {[x, y, z]} has a value already (give each queried node one value)')
            self.val[p] = w[i]; self.known[p] = 1; self.n_known += 1
        self.rounds += 1
        self._subdivide()

    @property
    def n_points(self) -> int: return <int64_t>self.val.size()  # registered nodes
    @property
    def n_evaluated(self) -> int: return self.n_known               # nodes given a value

    def to_dense(self, dtype=np.float64, # float32 or float64
                 out=None): # an array to fill instead of a new one (C-contiguous, [R+1]^3, `dtype`): saves the allocation when extracting many shapes
        "[R+1]^3 values: known nodes as given, the others copied from the previous node along x, then y, then z"
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64): raise ValueError(f'dtype must be float32 or float64, got {dtype}')
        if out is None: out = np.empty((self.n1,) * 3, dtype=dtype)
        elif not (isinstance(out, np.ndarray) and out.shape == (self.n1,) * 3 and out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable):
            raise ValueError(f'out must be a writeable C-contiguous {dtype} array of shape {(self.n1,) * 3}')
        cdef int64_t left
        if dtype == np.float32: left = self._fill(<float*>cnp.PyArray_DATA(out))
        else: left = self._fill(<double*>cnp.PyArray_DATA(out))
        if left: raise ValueError(f'{left} nodes have no value and no known node before them: evaluate every queried node first')
        return out

    cdef int64_t _fill(self, real* a) noexcept nogil:
        # The three forward fills in one pass over the output: slab x = i of the x-filled field is kept in `xs`
        # (known nodes of slab i overwrite it), row (i, j) of the y-filled field in `yr` (the x-filled row overwrites
        # it where defined), and the output row is `yr` filled forward along z.
        cdef int64_t n1 = self.n1, sl = n1 * n1, p, i, j, k, n = <int64_t>self.val.size(), left = 0, q
        cdef vector[int64_t] start, order
        cdef vector[real] xs, yr
        cdef real nan = <real>NAN
        cdef real x, y, carry
        cdef real *xp
        cdef real *yp
        cdef real *op
        start.assign(n1 + 1, 0)
        for p in range(n):
            if self.known[p]: start[self.xyz[3 * p] + 1] += 1
        for i in range(n1): start[i + 1] += start[i]
        order.assign(start[n1], 0)
        cdef vector[int64_t] fillp = start
        for p in range(n):
            if self.known[p]:
                order[fillp[self.xyz[3 * p]]] = p; fillp[self.xyz[3 * p]] += 1
        xs.assign(sl, nan)
        yr.assign(n1, nan)
        for i in range(n1):
            for q in range(start[i], start[i + 1]):
                p = order[q]; xs[self.xyz[3 * p + 1] * n1 + self.xyz[3 * p + 2]] = <real>self.val[p]
            for k in range(n1): yr[k] = nan
            for j in range(n1):
                carry = nan
                xp = &xs[j * n1]; yp = &yr[0]; op = &a[i * sl + j * n1]
                for k in range(n1):          # branch-free: the compiler turns these into selects
                    x = xp[k]
                    y = x if x == x else yp[k]
                    yp[k] = y
                    carry = y if y == y else carry
                    op[k] = carry
                if op[0] != op[0]:           # rare: a NaN prefix (nodes never evaluated)
                    k = 0
                    while k < n1 and op[k] != op[k]: k += 1
                    left += k
        return left
