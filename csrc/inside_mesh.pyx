# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Ray-parity inside test for triangle meshes (airnets.inside_mesh), the algorithm of ONet's and IF-Net's data
pipelines (see nbs/00_geometry.ipynb): rays from every query point along +z and -z, crossings counted on a 2-D hash
of the triangles' xy projections.

The caller maps mesh and points affinely so that the mesh's bounding box spans [0.5, R - 0.5] on every axis
(R = resolution). The hash has R x R cells of size 1; a triangle goes into every cell its integer xy bounding box
covers. A point counts a triangle when the triangle's xy projection contains the point's xy strictly (barycentric
coordinates all > 0; degenerate projections are skipped), and then as "above" if the triangle's z there is >= the
point's z, else "below"."""
import numpy as np
cimport numpy as cnp
from libc.math cimport floor

cnp.import_array()

cdef inline (Py_ssize_t, Py_ssize_t) _cells(const double[:, :, ::1] tris, Py_ssize_t f, int axis, Py_ssize_t R) noexcept nogil:
    "the range of hash cells triangle f covers along `axis` (0: x, 1: y), clipped to [0, R - 1]"
    cdef double lo = min(tris[f, 0, axis], min(tris[f, 1, axis], tris[f, 2, axis]))
    cdef double hi = max(tris[f, 0, axis], max(tris[f, 1, axis], tris[f, 2, axis]))
    return max(<Py_ssize_t>floor(lo), 0), min(<Py_ssize_t>floor(hi), R - 1)

def count_crossings(const double[:, :, ::1] tris, # [F, 3, 3] triangles, already mapped into [0.5, R-0.5]^3
                    const double[:, ::1] pts,      # [P, 3] query points, mapped the same way
                    int resolution=512):           # R: hash cells per axis
    "Crossings of the +z and -z rays from each point: (above, below), two int32 arrays of length P"
    cdef Py_ssize_t F = tris.shape[0], P = pts.shape[0], R = resolution
    cdef Py_ssize_t f, c, i, j, k, x0, x1, y0, y1, cell, n_entries = 0
    cdef double ax, ay, bx, by, cx, cy, det, l0, l1, l2, px, py, pz, z
    cdef cnp.int64_t[::1] start = np.zeros(R * R + 1, dtype=np.int64)
    # pass 1: how many triangles per cell; pass 2: fill (compressed rows, one per cell)
    for f in range(F):
        x0, x1 = _cells(tris, f, 0, R)
        y0, y1 = _cells(tris, f, 1, R)
        for i in range(x0, x1 + 1):
            for j in range(y0, y1 + 1):
                start[i * R + j + 1] += 1
    for c in range(R * R): start[c + 1] += start[c]
    cdef cnp.int64_t[::1] fill = np.array(start[:R * R], dtype=np.int64)
    cdef cnp.int32_t[::1] entries = np.empty(start[R * R], dtype=np.int32)
    for f in range(F):
        x0, x1 = _cells(tris, f, 0, R)
        y0, y1 = _cells(tris, f, 1, R)
        for i in range(x0, x1 + 1):
            for j in range(y0, y1 + 1):
                cell = i * R + j
                entries[fill[cell]] = <cnp.int32_t>f
                fill[cell] += 1
    above_arr = np.zeros(P, dtype=np.int32)
    below_arr = np.zeros(P, dtype=np.int32)
    cdef cnp.int32_t[::1] above = above_arr, below = below_arr
    with nogil:
        for k in range(P):
            px = pts[k, 0]; py = pts[k, 1]; pz = pts[k, 2]
            if px < 0 or py < 0 or pz < 0 or px >= R or py >= R or pz > R: continue  # outside the box: outside
            cell = (<Py_ssize_t>px) * R + <Py_ssize_t>py
            for c in range(start[cell], start[cell + 1]):
                f = entries[c]
                ax = tris[f, 0, 0]; ay = tris[f, 0, 1]
                bx = tris[f, 1, 0]; by = tris[f, 1, 1]
                cx = tris[f, 2, 0]; cy = tris[f, 2, 1]
                det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
                if det == 0: continue
                l0 = ((by - cy) * (px - cx) + (cx - bx) * (py - cy)) / det
                l1 = ((cy - ay) * (px - cx) + (ax - cx) * (py - cy)) / det
                l2 = 1.0 - l0 - l1
                if l0 <= 0 or l1 <= 0 or l2 <= 0: continue
                z = l0 * tris[f, 0, 2] + l1 * tris[f, 1, 2] + l2 * tris[f, 2, 2]
                if z >= pz: above[k] += 1
                else: below[k] += 1
    return above_arr, below_arr
