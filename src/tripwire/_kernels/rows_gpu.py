"""Generic row-table kernels (CuPy backend).

Siblings of ``kernels/_rows_cy.pyx`` with the same names, argument order and results (event
order and row order included); called by ``tripwire.rows`` (and ``boxes.class_consistency``)
through ``tripwire._dispatch`` when ``backend="cupy"``. Host NumPy arrays in and out.

What runs where:

- ``consistent``: the rows of valid ids are sorted on the device by (id, attribute) with a
  stable sort (rows stay ascending inside each run); runs of equal (id, attribute) are the
  distinct values, a group of two runs or more is an event. Each group's majority (most
  rows, ties to the earliest first row) and first row come from one atomic max / min per run.
  Violations and corrections keep the Cython kernel's order: group by group, rows in arrival
  order when there are few attribute values (its counting path), by (attribute, row) otherwise
  (its sorting path).
- ``contiguous``: stable sorts by (id, time); the first row of each (id, time) run is a
  presence. A start ``p`` is flagged at its ``G``-th following gap (``G = allowed // 2 + 1``:
  each gap adds two transitions) when that gap lies in the same id and within the window:
  the gap is found by rank in the prefix sum of gaps, so there is no per-start scan. The
  pairs are emitted in the order the Cython kernel takes (its streaming path when it would
  stream, per id otherwise).
- ``bitmap_rows``, ``positive_rows``: element-wise on the device, then a compaction.
- ``check_program``: a program of one float32 column compared with a constant (the commonest
  check) runs the **Cython kernel**: it scans the column with SIMD at memory speed, and the
  column's copy to the device alone takes longer (H100: 4.6 ms on the GPU vs 2.7 ms Cython
  for 10 M rows). Every other program (opcodes and column dtypes; constants are kernel
  arguments) is compiled once into one element-wise CUDA kernel, generated from the opcodes
  only, never from user text. Comparisons are in double (float32 columns widen exactly) or
  int64, as the Cython kernel's are; NaN compares false except ``!=``.
"""
from __future__ import annotations

import numpy as np

from . import _rows_cy
from ._gpu import check, cp, dev, launch, module, static_module

_I64, _U8, _F64 = np.int64, np.uint8, np.float64
_KEYS = (np.int32, np.int64)
_I64_MAX = np.iinfo(np.int64).max
SMALL_ATTRS = 4096  # kernels/_rows_cy.pyx: below this many values the Cython kernel keeps arrival order
STREAM_MAX_ALLOWED = 1024  # kernels/_rows_cy.pyx: when its contiguous kernel streams
STREAM_SLOTS_PER_ROW = 8

_SRC = r"""
// per run of equal (id, attribute): its group's best key (count and first row) and first row
extern "C" __global__ void run_stats(const long long* run_group, const long long* run_key,
                                     const long long* run_first, long long n_runs, long long* best,
                                     long long* group_first) {
    long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n_runs) return;
    long long g = run_group[r];
    atomicMax(&best[g], run_key[r]);
    atomicMin(&group_first[g], run_first[r]);
}
"""
def _mod():
    return static_module(_SRC)


def _empty_i64():
    return np.empty(0, np.int64)


def _stable_order(*keys):
    """Positions sorted by ``keys`` (last key primary), ties in position order: stable sorts
    from the minor key to the major one, as ``numpy.lexsort``."""
    order = cp.argsort(keys[0])  # CuPy's sorts are stable
    for k in keys[1:]:
        order = order[cp.argsort(k[order])]
    return order


# ----------------------------------------------------------------------------------------------
# rows.consistent
# ----------------------------------------------------------------------------------------------
def consistent(ids, id_offset, n_ids, id_valid, attrs, attr_offset, n_attrs, attr_valid, flag_minority):
    ids, attrs = check(ids, _KEYS, "id codes"), check(attrs, _KEYS, "attribute codes")
    id_valid, attr_valid = check(id_valid, _U8, "validity"), check(attr_valid, _U8, "validity")
    n = len(ids)
    if len(attrs) != n:
        raise ValueError("id and attribute columns differ in length")
    n_ids, n_attrs = int(n_ids), int(n_attrs)
    e = _empty_i64()
    empty = (e, e.copy(), np.empty(0, np.float32), e.copy(), e.copy(), e.copy())
    if n == 0 or n_ids <= 0:
        return empty
    null_code = n_attrs
    a_all = dev(attrs).astype(cp.int64) - np.int64(attr_offset)
    if len(attr_valid):
        a_all = cp.where(dev(attr_valid) != 0, a_all, np.int64(null_code))
    k_all = dev(ids).astype(cp.int64) - np.int64(id_offset)
    rows = cp.flatnonzero(dev(id_valid)) if len(id_valid) else cp.arange(n, dtype=cp.int64)
    m = int(rows.shape[0])
    if m == 0:
        return empty
    k, a = k_all[rows], a_all[rows]
    stride = n_attrs + 1
    if n_ids * stride < 2**62:  # one sort of a combined key
        order = cp.argsort(k * np.int64(stride) + a)
    else:
        order = _stable_order(a, k)
    ks, as_, rs = k[order], a[order], rows[order]
    new_g = cp.ones(m, cp.bool_)
    new_g[1:] = ks[1:] != ks[:-1]
    new_r = new_g.copy()
    new_r[1:] |= as_[1:] != as_[:-1]
    grp_start = cp.flatnonzero(new_g)
    run_start = cp.flatnonzero(new_r)
    ng, nr = int(grp_start.shape[0]), int(run_start.shape[0])
    if nr == ng:  # every id holds one value
        return empty
    gid = cp.cumsum(new_g, dtype=cp.int64) - 1  # group of each sorted row
    rid = cp.cumsum(new_r, dtype=cp.int64) - 1  # run of each sorted row
    run_grp = gid[run_start]
    run_first = rs[run_start]
    run_cnt = cp.diff(cp.concatenate([run_start, cp.array([m], cp.int64)]))
    bad = cp.bincount(run_grp, minlength=ng) >= 2
    # majority: most rows, ties to the smaller first row; a null value is never the majority
    span = np.int64(n + 1)
    run_key = cp.where(as_[run_start] != null_code, run_cnt * span + (np.int64(n) - run_first), np.int64(-1))
    best = cp.full(ng, -1, cp.int64)
    group_first = cp.full(ng, _I64_MAX, cp.int64)
    launch(_mod(), "run_stats", nr, run_grp, run_key, run_first, np.int64(nr), best, group_first)
    has_best = best >= 0
    best_cnt = cp.where(has_best, best // span, np.int64(0))
    best_first = cp.where(has_best, np.int64(n) - best % span, np.int64(-1))
    total = cp.diff(cp.concatenate([grp_start, cp.array([m], cp.int64)]))
    # float32 division, as the Cython kernel's <float>(total - best) / <float>total
    sev_g = (total - best_cnt).astype(cp.float32) / total.astype(cp.float32)
    ev_g = cp.cumsum(bad, dtype=cp.int64) - 1
    run_is_best = (run_key == best[run_grp]) & (run_key >= 0)
    row_bad = bad[gid]
    not_best = ~run_is_best[rid]
    vmask = row_bad & (not_best if flag_minority else new_r)
    cmask = row_bad & has_best[gid] & not_best
    vpos, cpos = cp.flatnonzero(vmask), cp.flatnonzero(cmask)
    v_row, v_ev = rs[vpos], ev_g[gid[vpos]]
    v_sev = sev_g[gid[vpos]]
    c_row, c_src = rs[cpos], best_first[gid[cpos]]
    if n_attrs < SMALL_ATTRS:
        # the Cython kernel's counting path keeps arrival order inside each group: groups are
        # already in order, so sorting by (group, row) only reorders rows inside a group
        o = cp.argsort(gid[vpos] * np.int64(n) + v_row)
        v_row, v_ev, v_sev = v_row[o], v_ev[o], v_sev[o]
        o = cp.argsort(gid[cpos] * np.int64(n) + c_row)
        c_row, c_src = c_row[o], c_src[o]
    anchor = group_first[bad]
    return (cp.asnumpy(v_row).astype(np.int64), cp.asnumpy(v_ev).astype(np.int64),
            cp.asnumpy(v_sev).astype(np.float32), cp.asnumpy(anchor).astype(np.int64),
            cp.asnumpy(c_row).astype(np.int64), cp.asnumpy(c_src).astype(np.int64))


# ----------------------------------------------------------------------------------------------
# rows.contiguous
# ----------------------------------------------------------------------------------------------
def contiguous(ids, id_offset, n_ids, id_valid, times, time_valid, window, step, allowed):
    ids, times = check(ids, _KEYS, "id codes"), check(times, _I64, "times")
    id_valid, time_valid = check(id_valid, _U8, "validity"), check(time_valid, _U8, "validity")
    n = len(ids)
    if len(times) != n:
        raise ValueError("id and time columns differ in length")
    window, step, allowed, n_ids = int(window), int(step), int(allowed), int(n_ids)
    e = _empty_i64()
    empty = (e, e.copy(), np.empty(0, np.float32), e.copy())
    n_gaps_needed = allowed // 2 + 1  # the first count of transitions above `allowed` is 2 * G
    if n < 2 or n_ids <= 0 or n_gaps_needed > n:
        return empty
    ok = None
    if len(id_valid):
        ok = dev(id_valid) != 0
    if len(time_valid):
        tv = dev(time_valid) != 0
        ok = tv if ok is None else ok & tv
    rows = cp.flatnonzero(ok) if ok is not None else cp.arange(n, dtype=cp.int64)
    if int(rows.shape[0]) < 2:
        return empty
    k = dev(ids).astype(cp.int64)[rows] - np.int64(id_offset)
    t = dev(times)[rows]
    order = _stable_order(t, k)  # by (id, time), rows ascending inside
    ks, ts, rs = k[order], t[order], rows[order]
    new_g = cp.ones(ks.shape[0], cp.bool_)
    new_g[1:] = ks[1:] != ks[:-1]
    # the Cython kernel streams (and so emits in its order) when its state is small and no
    # id's times go backwards in arrival order: rows then ascend inside every id
    streams = n < 2**31 - 1 and allowed < STREAM_MAX_ALLOWED and \
        n_ids * (allowed // 2 + 4) <= STREAM_SLOTS_PER_ROW * n + 65536 and \
        not bool(((rs[1:] < rs[:-1]) & ~new_g[1:]).any())
    new_t = new_g.copy()
    new_t[1:] |= ts[1:] != ts[:-1]
    u = cp.flatnonzero(new_t)  # presences: first row of each distinct (id, time)
    ut, ur, ug = ts[u], rs[u], cp.cumsum(new_g, dtype=cp.int64)[u]
    ut_u = ut.view(cp.uint64)
    gap = cp.zeros(u.shape[0], cp.bool_)
    # no int64 overflow: differences in uint64, as the Cython kernel takes them
    gap[1:] = (ug[1:] == ug[:-1]) & ((ut_u[1:] - ut_u[:-1]) != np.uint64(step))
    gaps_at = cp.flatnonzero(gap)
    n_gaps = int(gaps_at.shape[0])
    if n_gaps < n_gaps_needed:
        return empty
    # the G-th gap after start p has rank (gaps up to p) + G - 1 among all gaps
    rank = cp.cumsum(gap, dtype=cp.int64) + np.int64(n_gaps_needed - 1)
    has = rank < n_gaps
    q = gaps_at[cp.where(has, rank, 0)]
    has &= ug[q] == ug
    has &= (ut_u[q] - ut_u) < np.uint64(window)
    p = cp.flatnonzero(has)
    q = q[p]
    if streams:  # found at each gap row in arrival order, starts walked back from the latest
        o = cp.argsort(ur[q] * np.int64(n) + (np.int64(n - 1) - ur[p]))
        p, q = p[o], q[o]
    n_ev = int(p.shape[0])
    pairs = cp.stack([ur[p], ur[q]], axis=1).reshape(-1)
    anchor = cp.asnumpy(ur[p]).astype(np.int64)
    sev = np.full(2 * n_ev, 2 * n_gaps_needed - allowed, np.float32)
    return (cp.asnumpy(pairs).astype(np.int64), np.repeat(np.arange(n_ev, dtype=np.int64), 2), sev, anchor)


# ----------------------------------------------------------------------------------------------
# rows.check: boolean and numeric results -> rows
# ----------------------------------------------------------------------------------------------
def bitmap_rows(bits, bit_offset, n, valid_bits, valid_offset):
    bits, valid_bits = check(bits, _U8, "bitmap"), check(valid_bits, _U8, "validity bitmap")
    n = int(n)
    if n <= 0:
        return _empty_i64()
    i = cp.arange(n, dtype=cp.int64)
    b = i + np.int64(bit_offset)
    keep = ((dev(bits)[b >> 3] >> (b & 7).astype(cp.uint8)) & 1) != 0
    if len(valid_bits):
        vb = i + np.int64(valid_offset)
        keep &= ((dev(valid_bits)[vb >> 3] >> (vb & 7).astype(cp.uint8)) & 1) != 0
    return cp.asnumpy(cp.flatnonzero(keep)).astype(np.int64)


def positive_rows(values, valid):
    values, valid = check(values, _F64, "values"), check(valid, _U8, "validity")
    n = len(values)
    if n == 0:
        return _empty_i64(), np.empty(0, np.float32)
    d = dev(values)
    keep = d > 0  # NaN is not
    if len(valid):
        keep &= dev(valid) != 0
    rows = cp.flatnonzero(keep)
    return cp.asnumpy(rows).astype(np.int64), cp.asnumpy(d[rows].astype(cp.float32))


# ----------------------------------------------------------------------------------------------
# rows.check: native expression programs
# ----------------------------------------------------------------------------------------------
# opcodes, comparison and dtype codes: tripwire._expr (shared with kernels/_rows_cy.pyx)
_OP_CMP_CONST_F, _OP_CMP_CONST_I, _OP_CMP_COL_F, _OP_CMP_COL_I = 1, 2, 3, 4
_OP_AND, _OP_OR, _OP_NOT, _OP_ISNAN, _OP_ISFINITE, _OP_TRUE = 5, 6, 7, 8, 9, 10
_CMP_SYM = ("<", "<=", ">", ">=", "==", "!=")
_CTYPES = ("float", "double", "signed char", "short", "int", "long long", "unsigned char",
           "unsigned short", "unsigned int", "unsigned long long")
_NP_TYPES = tuple(np.dtype(t) for t in ("float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                                        "uint16", "uint32", "uint64"))
_PROGRAMS: dict = {}


def _program_source(code: list, dts: tuple) -> str:
    """One element-wise kernel for a postfix program (opcodes and dtype codes only)."""
    stack: list[str] = []

    def col(j: int, as_type: str) -> str:
        return f"(({as_type})c{j}[i])"

    for op, a, b, c in code:
        if op == _OP_CMP_CONST_F:
            stack.append(f"({col(a, 'double')} {_CMP_SYM[b]} fc[{c}])")
        elif op == _OP_CMP_CONST_I:
            stack.append(f"({col(a, 'long long')} {_CMP_SYM[b]} ic[{c}])")
        elif op == _OP_CMP_COL_F:
            stack.append(f"({col(a, 'double')} {_CMP_SYM[b]} {col(c, 'double')})")
        elif op == _OP_CMP_COL_I:
            stack.append(f"({col(a, 'long long')} {_CMP_SYM[b]} {col(c, 'long long')})")
        elif op in (_OP_AND, _OP_OR):
            r, left = stack.pop(), stack.pop()
            stack.append(f"({left} {'&&' if op == _OP_AND else '||'} {r})")
        elif op == _OP_NOT:
            stack.append(f"(!{stack.pop()})")
        elif op in (_OP_ISNAN, _OP_ISFINITE):
            if dts[a] > 1:  # integers are always finite, never NaN
                stack.append("true" if op == _OP_ISFINITE else "false")
            else:
                stack.append(f"({'isfinite' if op == _OP_ISFINITE else 'isnan'}({col(a, 'double')}) != 0)")
        else:  # _OP_TRUE
            stack.append("true")
    if len(stack) != 1:
        raise ValueError("malformed program")
    params = "".join(f"const {_CTYPES[d]}* __restrict__ c{j}, " for j, d in enumerate(dts))
    return (f'extern "C" __global__ void program({params}const double* __restrict__ fc, '
            f"const long long* __restrict__ ic, long long n, unsigned char* __restrict__ out) {{\n"
            f"    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
            f"    if (i >= n) return;\n"
            f"    out[i] = ({stack[0]}) ? 1 : 0;\n"
            f"}}\n")


def check_program(program, fconsts, iconsts, columns, dtypes, n):
    program = np.ascontiguousarray(program, np.int64)
    fconsts, iconsts = check(fconsts, _F64, "constants"), check(iconsts, _I64, "constants")
    dtypes = check(dtypes, _I64, "dtype codes")
    n = int(n)
    cols = []
    for j, c in enumerate(columns):
        c = np.ascontiguousarray(c)
        if c.shape[0] != n:
            raise ValueError("column lengths differ")
        d = int(dtypes[j])
        if not 0 <= d < len(_NP_TYPES) or c.dtype != _NP_TYPES[d]:
            raise ValueError(f"column {j} is {c.dtype}, its dtype code says "
                             f"{_NP_TYPES[d] if 0 <= d < len(_NP_TYPES) else d}")
        cols.append(c)
    code = program.reshape(-1, 4).tolist()
    for op, *_ in code:
        if op < _OP_CMP_CONST_F or op > _OP_TRUE:
            raise ValueError(f"bad opcode {op}")
    if n == 0:
        return _empty_i64()
    if len(code) == 1 and code[0][0] == _OP_CMP_CONST_F and int(dtypes[code[0][1]]) == 0:
        # one float32 column against a constant: the Cython kernel's SIMD scan runs at memory
        # speed, faster than copying the column to the device (see the module docstring)
        return _rows_cy.check_program(program, fconsts, iconsts, cols, dtypes, n)
    dts = tuple(int(d) for d in dtypes[:len(cols)])
    key = (program.tobytes(), dts)
    mod = _PROGRAMS.get(key)
    if mod is None:
        mod = _PROGRAMS[key] = module(_program_source(code, dts))
    out = cp.empty(n, cp.uint8)
    launch(mod, "program", n, *(dev(c) for c in cols), dev(fconsts), dev(iconsts), np.int64(n), out)
    return cp.asnumpy(cp.flatnonzero(out)).astype(np.int64)
