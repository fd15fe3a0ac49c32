"""CuPy plumbing shared by the GPU kernel families (``tripwire._kernels.<family>_gpu``).

Importing this module (and so any ``*_gpu`` module) without CuPy raises
:class:`tripwire.errors.BackendUnavailable` naming ``pip install tripwire[gpu]``.

Conventions of every GPU kernel: host NumPy arrays in and out (pyarrow exports no device
memory, so inputs are copied to the device explicitly and results copied back); the same
dtypes as the Cython kernels (a wrong dtype is a ``ValueError`` as it is for a Cython
memoryview); CUDA C compiled with ``--fmad=false`` so that no multiply-add is fused and every
float operation rounds as the Cython build's does (IEEE division and square root are NVRTC's
defaults). Trigonometry is the one thing CUDA's math library does not round like glibc, so
per-box cos/sin are computed on the host with ``math.cos``/``math.sin`` (the same libm the
Cython and Numba kernels call): a box's faces then sit at exactly the same place on every
backend, and the per-box cost is small next to the per-point work.
"""
from __future__ import annotations

import functools

import math

import numpy as np

from ..errors import BackendUnavailable

try:
    import cupy as cp
except ImportError as exc:  # pragma: no cover - exercised where CuPy is missing
    raise BackendUnavailable(
        "backend 'cupy' needs CuPy, which is not installed; install it with "
        "`pip install tripwire[gpu]` (an NVIDIA GPU and driver are needed too)"
    ) from exc

__all__ = ["cp", "module", "static_module", "launch", "dev", "check", "host_cos_sin", "frame_of", "overlap_links", "link_ends",
           "connected_labels", "emit_groups"]

THREADS = 256
_OPTIONS = ("--fmad=false", "-std=c++14")


def module(source: str) -> "cp.RawModule":
    """A compiled CUDA module (compiled once per process, on first launch; CuPy caches on disk)."""
    return cp.RawModule(code=source, options=_OPTIONS)


@functools.lru_cache(maxsize=None)
def static_module(source: str) -> "cp.RawModule":
    """:func:`module` of a family's fixed kernel source, kept for the process (built on first use)."""
    return module(source)


def launch(mod: "cp.RawModule", name: str, n: int, *args) -> None:
    """One thread per item ``0..n-1`` (kernels guard ``i < n``); nothing to do for ``n == 0``."""
    if n <= 0:
        return
    blocks = (n + THREADS - 1) // THREADS
    mod.get_function(name)((blocks,), (THREADS,), args)


def check(a: np.ndarray, dtypes, what: str = "") -> np.ndarray:
    """``a`` as a C-contiguous NumPy array of one of ``dtypes`` (a tuple or one dtype), else the
    ``ValueError`` a Cython memoryview raises for a mismatched buffer."""
    a = np.asarray(a)
    allowed = dtypes if isinstance(dtypes, tuple) else (dtypes,)
    if a.dtype not in [np.dtype(d) for d in allowed]:
        raise ValueError(f"Buffer dtype mismatch{' for ' + what if what else ''}: expected "
                         f"{' or '.join(str(np.dtype(d)) for d in allowed)}, got {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"Buffer has wrong number of dimensions{' for ' + what if what else ''} "
                         f"(expected 1, got {a.ndim})")
    return np.ascontiguousarray(a)


def dev(a: np.ndarray, dtypes=None) -> "cp.ndarray":
    """A host array on the device (after the dtype check when ``dtypes`` is given). An empty
    array still gets a one-element buffer so that kernels receive a valid pointer."""
    if dtypes is not None:
        a = check(a, dtypes)
    if len(a) == 0:
        return cp.zeros(1, a.dtype)
    return cp.asarray(a)


def host_cos_sin(yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of float32 angles in double precision, by the host's libm (see the module
    docstring: CUDA's ``cos`` may differ in the last bit). Non-finite angles give NaN."""
    y = yaw.astype(np.float64).tolist()
    c = np.fromiter((math.cos(v) if math.isfinite(v) else math.nan for v in y), np.float64, len(y))
    s = np.fromiter((math.sin(v) if math.isfinite(v) else math.nan for v in y), np.float64, len(y))
    return c, s


def frame_of(offsets: np.ndarray, n: int) -> np.ndarray:
    """Per position its CSR group (-1 outside every group)."""
    out = np.full(n, -1, np.int64)
    if len(offsets) > 1 and offsets[-1] > offsets[0]:
        out[offsets[0]:offsets[-1]] = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    return out


# ----------------------------------------------------------------------------------------------
# overlap groups: connected components of a link list, and their events (multibox families)
# ----------------------------------------------------------------------------------------------
_CC_SRC = r"""
extern "C" __global__ void hook(const long long* a, const long long* b, long long n_edges,
                                long long* lab, int* changed) {
    long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= n_edges) return;
    long long ra = a[e], rb = b[e];
    while (lab[ra] != ra) ra = lab[ra];
    while (lab[rb] != rb) rb = lab[rb];
    if (ra == rb) return;
    // hang the larger root under the smaller: labels only ever decrease, so no cycle forms and
    // each component ends as one tree rooted at its smallest position
    long long hi = ra > rb ? ra : rb, lo = ra < rb ? ra : rb;
    atomicMin(&lab[hi], lo);
    *changed = 1;
}

extern "C" __global__ void compress(long long* lab, long long n) {
    long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (v >= n) return;
    long long r = lab[v];
    while (lab[r] != r) r = lab[r];
    lab[v] = r;
}
"""


def connected_labels(n: int, a: "cp.ndarray", b: "cp.ndarray") -> np.ndarray:
    """Per position ``0..n-1`` the smallest position of its connected component under the links
    ``a[k] -- b[k]`` (device arrays), as a host array. Hook and compress rounds until no link
    joins two trees (a few rounds: each halves the trees along a chain at least)."""
    cc = static_module(_CC_SRC)
    lab = cp.arange(max(n, 1), dtype=cp.int64)
    n_edges = int(a.shape[0])
    changed = cp.zeros(1, cp.int32)
    while n_edges:
        changed.fill(0)
        launch(cc, "hook", n_edges, a, b, np.int64(n_edges), lab, changed)
        launch(cc, "compress", n, lab, np.int64(n))
        if not int(changed.get()[0]):
            break
    return cp.asnumpy(lab[:n])


def emit_groups(labels: np.ndarray, offsets: np.ndarray, min_boxes: int, score: np.ndarray,
                score_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_common.emit_groups`` over every frame at once (host, vectorized: O(boxes)).

    Frames of fewer than ``max(min_boxes, 2)`` boxes emit nothing; in the others every
    component of at least ``min_boxes`` boxes is an event, numbered in order of its first
    position (its label), with severity its highest non-null, non-NaN score (1 without one, at
    least 1e-6). Returns ``(pos, event, severity per position, anchor)`` as the kernels do."""
    n = len(labels)
    counts = np.diff(offsets)
    frame_ok = (counts >= min_boxes) & (counts >= 2)
    box_ok = np.repeat(frame_ok, counts)
    size = np.bincount(labels, minlength=n) if n else np.zeros(0, np.int64)
    member = box_ok & (size[labels] >= min_boxes) if n else np.zeros(0, bool)
    pos = np.flatnonzero(member).astype(np.int64)
    roots = member & (labels == np.arange(n))
    anchors = np.flatnonzero(roots).astype(np.int64)
    event_of_root = np.cumsum(roots) - 1
    events = event_of_root[labels[pos]].astype(np.int64)
    n_ev = len(anchors)
    sev = np.ones(n_ev, np.float32)
    if len(score) and n_ev:
        sc = score[pos]
        keep = sc == sc
        if len(score_valid):
            keep &= score_valid[pos] != 0
        best = np.full(n_ev, -np.inf, np.float32)
        np.maximum.at(best, events[keep], sc[keep])
        has = np.bincount(events[keep], minlength=n_ev) > 0
        sev = np.where(has, np.where(best.astype(np.float64) > 1e-6, best, np.float32(1e-6)), np.float32(1.0))
        sev = sev.astype(np.float32)
    return pos, events, sev[events], anchors


def overlap_links(mod, link_kernel, n, box_args, end, threshold):
    """Count, then write, the links of every box to the later boxes of its frame (two passes
    of the same test: no buffer is sized by the number of pairs), as device arrays. The link
    kernel takes ``(*box_args, end, threshold, n, fill, count, start, la, lb)``."""
    count = cp.empty(n, cp.int64)
    d_end = dev(end)
    launch(mod, link_kernel, n, *box_args, d_end, threshold, np.int64(n), np.int32(0), count, count, count, count)
    start = cp.concatenate([cp.zeros(1, cp.int64), cp.cumsum(count)])
    n_links = int(start[-1].get())
    la = cp.empty(max(n_links, 1), cp.int64)
    lb = cp.empty(max(n_links, 1), cp.int64)
    if n_links:
        launch(mod, link_kernel, n, *box_args, d_end, threshold, np.int64(n), np.int32(1), count, start, la, lb)
    return la[:n_links], lb[:n_links]


def link_ends(offsets: np.ndarray, n: int, min_boxes: int) -> np.ndarray:
    """Per position the end of the positions it may link to: its frame's end in a frame of at
    least ``max(min_boxes, 2)`` boxes, else itself + 1 (no link: such frames emit nothing)."""
    frame = frame_of(offsets, n)
    counts = np.diff(offsets)
    ok = (counts >= min_boxes) & (counts >= 2)
    end = np.arange(1, n + 1, dtype=np.int64)
    inside = frame >= 0
    fr = frame[inside]
    end[inside] = np.where(ok[fr], offsets[1:][fr], end[inside])
    return end
