"""Generic row-table kernels (Numba backend).

Siblings of ``kernels/_rows_cy.pyx`` with the same names, argument order and results; called by
``tripwire.rows`` through ``tripwire._dispatch`` when ``backend="numba"``. Compiled on first use.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._config import NUMBA_OPTIONS
from ._jit_args import readonly_args

_JIT = dict(NUMBA_OPTIONS)


@njit(**_JIT)
def _valid(valid, i):
    return valid.shape[0] == 0 or valid[i] != 0


@njit(**_JIT)
def _consistent(ids, id_offset, n_ids, id_valid, attrs, attr_offset, n_attrs, attr_valid, flag_minority):
    n = ids.shape[0]
    null_code = n_attrs
    stride = n_attrs + 1
    first = np.full(max(n_ids, 0), -1, np.int64)
    bad = np.zeros(max(n_ids, 0), np.uint8)
    for i in range(n):
        if not _valid(id_valid, i):
            continue
        k = ids[i] - id_offset
        a = attrs[i] - attr_offset if _valid(attr_valid, i) else null_code
        if first[k] < 0:
            first[k] = a
        elif first[k] != a:
            bad[k] = 1
    m = 0
    for i in range(n):
        if _valid(id_valid, i) and bad[ids[i] - id_offset]:
            m += 1
    keys = np.empty(m, np.int64)
    rws = np.empty(m, np.int64)
    j = 0
    for i in range(n):
        if _valid(id_valid, i) and bad[ids[i] - id_offset]:
            k = ids[i] - id_offset
            a = attrs[i] - attr_offset if _valid(attr_valid, i) else null_code
            keys[j] = k * stride + a
            rws[j] = i
            j += 1
    order = np.argsort(keys, kind="mergesort")  # stable: rows stay ascending within a key
    keys = keys[order]
    rws = rws[order]
    v_row = np.empty(m, np.int64)
    v_ev = np.empty(m, np.int64)
    v_sev = np.empty(m, np.float32)
    c_row = np.empty(m, np.int64)
    c_src = np.empty(m, np.int64)
    anchor = np.empty(m, np.int64)
    nv = 0
    nc = 0
    ev = 0
    s = 0
    while s < m:
        k = keys[s] // stride
        e = s
        while e < m and keys[e] // stride == k:
            e += 1
        best_cnt = -1
        best_first = -1
        best_a = -1
        group_anchor = rws[s]
        r = s
        while r < e:
            g0 = r
            a = keys[r] % stride
            run_first = rws[r]
            while r < e and keys[r] % stride == a:
                r += 1
            cnt = r - g0
            group_anchor = min(group_anchor, run_first)
            if a != null_code and (cnt > best_cnt or (cnt == best_cnt and run_first < best_first)):
                best_cnt = cnt
                best_first = run_first
                best_a = a
        if best_cnt < 0:
            best_cnt = 0
        sev = np.float32(np.float32(e - s - best_cnt) / np.float32(e - s))
        anchor[ev] = group_anchor
        for r in range(s, e):
            a = keys[r] % stride
            if (not flag_minority and (r == s or keys[r - 1] != keys[r])) or (flag_minority and a != best_a):
                v_row[nv] = rws[r]
                v_ev[nv] = ev
                v_sev[nv] = sev
                nv += 1
            if a != best_a and best_a >= 0:
                c_row[nc] = rws[r]
                c_src[nc] = best_first
                nc += 1
        ev += 1
        s = e
    return v_row[:nv], v_ev[:nv], v_sev[:nv], anchor[:ev], c_row[:nc], c_src[:nc]


@readonly_args
def consistent(ids, id_offset, n_ids, id_valid, attrs, attr_offset, n_attrs, attr_valid, flag_minority):
    if len(ids) != len(attrs):
        raise ValueError("id and attribute columns differ in length")
    return _consistent(ids, np.int64(id_offset), np.int64(n_ids), id_valid, attrs, np.int64(attr_offset),
                       np.int64(n_attrs), attr_valid, bool(flag_minority))


@njit(**_JIT)
def _contiguous(ids, id_offset, n_ids, id_valid, times, time_valid, window, step, allowed):
    n = ids.shape[0]
    starts = np.zeros(max(n_ids, 0) + 1, np.int64)
    for i in range(n):
        if _valid(id_valid, i) and _valid(time_valid, i):
            starts[ids[i] - id_offset + 1] += 1
    for g in range(n_ids):
        starts[g + 1] += starts[g]
    total = starts[n_ids] if n_ids > 0 else 0
    order = np.empty(total, np.int64)
    for i in range(n):
        if _valid(id_valid, i) and _valid(time_valid, i):
            k = ids[i] - id_offset
            order[starts[k]] = i
            starts[k] += 1
    cap = 16
    v_row = np.empty(cap, np.int64)
    v_sev = np.empty(cap, np.float32)
    nv = 0
    lo = 0
    for g in range(n_ids):
        hi = starts[g]
        if hi - lo < 2:
            lo = hi
            continue
        grp = order[lo:hi]
        t = times[grp]
        perm = np.argsort(t, kind="mergesort")  # stable: ties keep arrival order
        t = t[perm]
        rr = grp[perm]
        ut = np.empty(hi - lo, np.int64)
        ur = np.empty(hi - lo, np.int64)
        nu = 0
        for p in range(hi - lo):
            if nu == 0 or t[p] != ut[nu - 1]:
                ut[nu] = t[p]
                ur[nu] = rr[p]
                nu += 1
        for p in range(nu):
            trans = 0
            for q in range(p + 1, nu):
                if np.uint64(ut[q]) - np.uint64(ut[p]) >= np.uint64(window):  # no int64 overflow
                    break
                if np.uint64(ut[q]) - np.uint64(ut[q - 1]) != np.uint64(step):
                    trans += 2
                if trans > allowed:
                    if nv + 2 > cap:
                        cap *= 2
                        v_row = np.concatenate((v_row, np.empty(cap - v_row.shape[0], np.int64)))
                        v_sev = np.concatenate((v_sev, np.empty(cap - v_sev.shape[0], np.float32)))
                    v_row[nv] = ur[p]
                    v_row[nv + 1] = ur[q]
                    v_sev[nv] = trans - allowed
                    v_sev[nv + 1] = trans - allowed
                    nv += 2
                    break
        lo = hi
    v_row = v_row[:nv]
    v_ev = np.arange(nv, dtype=np.int64) // 2
    anchor = v_row[0::2].copy()
    return v_row, v_ev, v_sev[:nv], anchor


@readonly_args
def contiguous(ids, id_offset, n_ids, id_valid, times, time_valid, window, step, allowed):
    if len(ids) != len(times):
        raise ValueError("id and time columns differ in length")
    return _contiguous(ids, np.int64(id_offset), np.int64(n_ids), id_valid, times, time_valid,
                       np.int64(window), np.int64(step), np.int64(allowed))


@njit(**_JIT)
def _bitmap_rows(bits, bit_offset, n, valid_bits, valid_offset):
    out = np.empty(n, np.int64)
    m = 0
    has_valid = valid_bits.shape[0] > 0
    for i in range(n):
        b = i + bit_offset
        if (bits[b >> 3] >> (b & 7)) & 1:
            if has_valid:
                vb = i + valid_offset
                if not ((valid_bits[vb >> 3] >> (vb & 7)) & 1):
                    continue
            out[m] = i
            m += 1
    return out[:m].copy()


@readonly_args
def bitmap_rows(bits, bit_offset, n, valid_bits, valid_offset):
    return _bitmap_rows(bits, np.int64(bit_offset), np.int64(n), valid_bits, np.int64(valid_offset))


@njit(**_JIT)
def _positive_rows(values, valid):
    n = values.shape[0]
    rows = np.empty(n, np.int64)
    sev = np.empty(n, np.float32)
    m = 0
    for i in range(n):
        if values[i] > 0 and _valid(valid, i):
            rows[m] = i
            sev[m] = values[i]
            m += 1
    return rows[:m].copy(), sev[:m].copy()


@readonly_args
def positive_rows(values, valid):
    return _positive_rows(values, valid)


# ---------------------------------------------------------------------------------------------
# check_program: each distinct program is compiled once into a fused loop (generated from the
# program's opcodes — never from user text).
# ---------------------------------------------------------------------------------------------
_CMP_SYM = ["<", "<=", ">", ">=", "==", "!="]
_PROGRAM_CACHE: dict = {}


# Internal opcodes of this module (after _narrow_f32): compare a float32 column in float32
# against f32[c]; a comparison that no row / every row satisfies.
_OP_CMP_F32, _OP_FALSE, _OP_TRUE = 11, 12, 13


def _exact_f32(c: float, cmp: int) -> tuple[int, float]:
    """``x <cmp> c`` for float32 x as an exact float32 comparison (see _rows_cy._exact_f32):
    returns (cmp', f), or (-1, 0) when no row matches, (-2, 0) when all do, (-3, 0) for NaN."""
    if c != c:
        return -3, 0.0
    with np.errstate(over="ignore"):
        v = np.float32(c)
    if float(v) == c:
        return cmp, float(v)
    if float(v) > c:
        v = np.nextafter(v, np.float32(-np.inf))
    if cmp in (0, 1):
        return 1, float(v)
    if cmp in (2, 3):
        return 2, float(v)
    return (-1, 0.0) if cmp == 4 else (-2, 0.0)


def _narrow_f32(program, fconsts, dtypes):
    """Rewrite float32-column comparisons so the compiled loop stays in float32 (8 lanes, no
    widening); exact for every float32 value, NaN and infinities included."""
    code = program.tolist()
    f32 = []
    for ins in code:
        op, a, b, c = ins
        if op == 1 and dtypes[a] == 0:  # OP_CMP_CONST_F on DT_F32
            k, v = _exact_f32(float(fconsts[c]), b)
            if k >= 0:
                f32.append(v)
                ins[:] = [_OP_CMP_F32, a, k, len(f32) - 1]
            elif k == -1:
                ins[:] = [_OP_FALSE, 0, 0, 0]
            elif k == -2:
                ins[:] = [_OP_TRUE, 0, 0, 0]
    return np.array(code, np.int64).reshape(-1, 4), np.array(f32, np.float32)


def _program_source(code, n_cols) -> str:
    stack: list[str] = []
    for op, a, b, c in code.tolist():
        if op in (1, 2):  # column vs constant (float64 / int64)
            const = f"fc[{c}]" if op == 1 else f"ic[{c}]"
            cast = "np.float64" if op == 1 else "np.int64"
            stack.append(f"({cast}(c{a}[i]) {_CMP_SYM[b]} {const})")
        elif op == _OP_CMP_F32:
            stack.append(f"(c{a}[i] {_CMP_SYM[b]} f32[{c}])")
        elif op in (_OP_FALSE, _OP_TRUE):
            stack.append("False" if op == _OP_FALSE else "True")
        elif op in (3, 4):  # column vs column
            cast = "np.float64" if op == 3 else "np.int64"
            stack.append(f"({cast}(c{a}[i]) {_CMP_SYM[b]} {cast}(c{c}[i]))")
        elif op in (5, 6):
            r, l = stack.pop(), stack.pop()
            stack.append(f"({l} {'and' if op == 5 else 'or'} {r})")
        elif op == 7:
            stack.append(f"(not {stack.pop()})")
        elif op == 8:
            stack.append(f"np.isnan(np.float64(c{a}[i]))")
        elif op == 9:
            stack.append(f"np.isfinite(np.float64(c{a}[i]))")
        elif op == 10:
            stack.append("True")
        else:
            raise ValueError(f"bad opcode {op}")
    (expr,) = stack
    args = ", ".join(f"c{j}" for j in range(n_cols))
    return (f"def _mask({args}{', ' if args else ''}fc, ic, f32, n):\n"
            f"    out = np.empty(n, np.bool_)\n"
            f"    for i in range(n):\n"
            f"        out[i] = {expr}\n"
            f"    return out\n")


@readonly_args
def check_program(program, fconsts, iconsts, columns, dtypes, n):
    code, f32 = _narrow_f32(program, fconsts, dtypes)
    key = (code.tobytes(), len(columns))
    fn = _PROGRAM_CACHE.get(key)
    if fn is None:
        ns: dict = {"np": np}
        exec(_program_source(code, len(columns)), ns)  # generated from opcodes only
        fn = _PROGRAM_CACHE[key] = njit(**_JIT)(ns["_mask"])
    cols = [np.ascontiguousarray(c) for c in columns]
    for c in cols:
        if c.shape[0] != n:
            raise ValueError("column lengths differ")
    return np.flatnonzero(fn(*cols, fconsts, iconsts, f32, np.int64(n))).astype(np.int64)
