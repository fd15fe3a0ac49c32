"""Plain-loop reference kernels: the oracle the fast backends are compared against.

Same function names, argument order and results as ``kernels/_rows_cy.pyx``,
``tripwire/_kernels/rows_jit.py`` and ``tripwire/_kernels/udf_jit.py``, written from their
documented semantics with Python loops, dicts and ``sorted`` only (no vectorised NumPy): slow
and obviously right. ``tests/conftest.py`` registers this module as backend ``"reference"`` for
every kernel family.

Integers are read as Python ints (no overflow), floats as Python floats (IEEE doubles, like the
kernels' ``double`` arithmetic), so every comparison here is exact.
"""
from __future__ import annotations

import math

import numpy as np

import tripwire._expr as _expr

__all__ = ["consistent", "contiguous", "bitmap_rows", "positive_rows", "check_program",
           "udf_rows", "udf_groups"]


def _i64(values) -> np.ndarray:
    return np.array(list(values), dtype=np.int64).reshape(-1)


def _f32(values) -> np.ndarray:
    with np.errstate(over="ignore"):  # |value| > float32 max becomes +-inf, as a C cast does
        return np.array(list(values), dtype=np.float32).reshape(-1)


def _is_valid(valid, i: int) -> bool:
    """An empty validity array means "no nulls"; else 0 marks a null row."""
    return len(valid) == 0 or int(valid[i]) != 0


# ----------------------------------------------------------------------------------------------
# rows.consistent
# ----------------------------------------------------------------------------------------------
def consistent(ids, id_offset, n_ids, id_valid, attrs, attr_offset, n_attrs, attr_valid,
               flag_minority):
    """Identifiers whose (non-null-id) rows carry more than one attribute value.

    A null attribute is a value of its own. Per such identifier (one event, anchored at its
    first row): severity = share of its rows not holding the majority value, where the majority
    is the most common non-null value (ties: the value seen first). Violations are the first row
    of each distinct value (``flag_minority`` false) or every row not holding the majority value.
    Corrections relabel every row not holding the majority value to the majority's first row.
    """
    if len(ids) != len(attrs):
        raise ValueError("id and attribute columns differ in length")
    NULL = object()
    groups: dict[int, list[tuple[int, object]]] = {}  # id -> [(row, attribute)] in row order
    for i in range(len(ids)):
        if not _is_valid(id_valid, i):
            continue
        k = int(ids[i]) - int(id_offset)
        assert 0 <= k < n_ids, (k, n_ids)
        a = int(attrs[i]) - int(attr_offset) if _is_valid(attr_valid, i) else NULL
        if a is not NULL:
            assert 0 <= a < n_attrs, (a, n_attrs)
        groups.setdefault(k, []).append((i, a))

    v_row, v_ev, v_sev, anchors, c_row, c_src = [], [], [], [], [], []
    ev = 0
    for k in sorted(groups):
        members = groups[k]
        first_row: dict[object, int] = {}
        count: dict[object, int] = {}
        for row, a in members:
            if a not in first_row:
                first_row[a] = row
            count[a] = count.get(a, 0) + 1
        if len(count) < 2:
            continue
        best, best_cnt = NULL, 0
        for a in count:  # dict order = order of first appearance: ties go to the earliest
            if a is NULL:
                continue
            if best is NULL or count[a] > best_cnt:
                best, best_cnt = a, count[a]
        total = len(members)
        sev = (total - best_cnt) / total
        anchors.append(members[0][0])
        for row, a in members:
            if (not flag_minority and first_row[a] == row) or (flag_minority and a != best):
                v_row.append(row)
                v_ev.append(ev)
                v_sev.append(sev)
            if best is not NULL and a != best:
                c_row.append(row)
                c_src.append(first_row[best])
        ev += 1
    return _i64(v_row), _i64(v_ev), _f32(v_sev), _i64(anchors), _i64(c_row), _i64(c_src)


# ----------------------------------------------------------------------------------------------
# rows.contiguous
# ----------------------------------------------------------------------------------------------
def contiguous(ids, id_offset, n_ids, id_valid, times, time_valid, window, step, allowed):
    """Identifiers that disappear and reappear more than ``allowed`` transitions within a window.

    Per identifier: its distinct times ascending (a repeated time is one presence, represented
    by its first row in arrival order). From each start ``t_p``, scan later times ``t_q`` while
    ``t_q - t_p < window``; every step that is not exactly ``+step`` adds two transitions; once
    the count exceeds ``allowed``, rows of ``p`` and ``q`` form one violation (severity: count -
    allowed, anchor: row of ``p``) and the scan moves on to the next start.
    """
    if len(ids) != len(times):
        raise ValueError("id and time columns differ in length")
    window, step, allowed = int(window), int(step), int(allowed)
    per_id: dict[int, dict[int, int]] = {}  # id -> {time: first row}
    for i in range(len(ids)):
        if not (_is_valid(id_valid, i) and _is_valid(time_valid, i)):
            continue
        k = int(ids[i]) - int(id_offset)
        assert 0 <= k < n_ids, (k, n_ids)
        seen = per_id.setdefault(k, {})
        t = int(times[i])
        if t not in seen:
            seen[t] = i
    v_row, v_ev, v_sev, anchors = [], [], [], []
    ev = 0
    for k in sorted(per_id):
        ts = sorted(per_id[k])
        rows = [per_id[k][t] for t in ts]
        for p in range(len(ts)):
            trans = 0
            for q in range(p + 1, len(ts)):
                if ts[q] - ts[p] >= window:
                    break
                if ts[q] != ts[q - 1] + step:
                    trans += 2
                if trans > allowed:
                    v_row += [rows[p], rows[q]]
                    v_ev += [ev, ev]
                    v_sev += [trans - allowed, trans - allowed]
                    anchors.append(rows[p])
                    ev += 1
                    break
    return _i64(v_row), _i64(v_ev), _f32(v_sev), _i64(anchors)


# ----------------------------------------------------------------------------------------------
# rows.check
# ----------------------------------------------------------------------------------------------
def _bit(buf, index: int) -> bool:
    return (int(buf[index // 8]) >> (index % 8)) & 1 == 1


def bitmap_rows(bits, bit_offset, n, valid_bits, valid_offset):
    """Rows ``i < n`` whose bit ``i + bit_offset`` is set (and validity bit, if any)."""
    out = []
    for i in range(int(n)):
        if not _bit(bits, i + int(bit_offset)):
            continue
        if len(valid_bits) and not _bit(valid_bits, i + int(valid_offset)):
            continue
        out.append(i)
    return _i64(out)


def positive_rows(values, valid):
    """Rows whose value is > 0 (NaN and nulls are not), with the value as severity."""
    rows, sev = [], []
    for i in range(len(values)):
        v = float(values[i])
        if v > 0 and _is_valid(valid, i):
            rows.append(i)
            sev.append(v)
    return _i64(rows), _f32(sev)


_CMP = {
    0: lambda x, y: x < y, 1: lambda x, y: x <= y, 2: lambda x, y: x > y,
    3: lambda x, y: x >= y, 4: lambda x, y: x == y, 5: lambda x, y: x != y,
}
assert _expr.CMP_CODES == {"<": 0, "<=": 1, ">": 2, ">=": 3, "==": 4, "!=": 5}
_DTYPES = {code: dt for dt, code in _expr.DTYPE_CODES.items()}


def _as_float(col, i: int) -> float:
    return float(col[i])  # int -> float rounds to nearest, like a C cast to double


def _as_int(col, i: int) -> int:
    return int(col[i])


def check_program(program, fconsts, iconsts, columns, dtypes, n):
    """Rows where a postfix boolean program (opcodes in ``tripwire._expr``) holds; row by row."""
    program = [tuple(int(x) for x in ins) for ins in np.asarray(program).reshape(-1, 4).tolist()]
    for op, *_ in program:
        if not _expr.OP_CMP_CONST_F <= op <= _expr.OP_TRUE:
            raise ValueError(f"bad opcode {op}")
    cols = list(columns)
    for j, c in enumerate(cols):
        if len(c) != n:
            raise ValueError("column lengths differ")
        assert np.dtype(c.dtype) == _DTYPES[int(dtypes[j])], (c.dtype, int(dtypes[j]))
    fc = [float(x) for x in fconsts]
    ic = [int(x) for x in iconsts]
    out = []
    for i in range(int(n)):
        stack: list[bool] = []
        for op, a, b, c in program:
            if op == _expr.OP_CMP_CONST_F:
                stack.append(_CMP[b](_as_float(cols[a], i), fc[c]))
            elif op == _expr.OP_CMP_CONST_I:
                stack.append(_CMP[b](_as_int(cols[a], i), ic[c]))
            elif op == _expr.OP_CMP_COL_F:
                stack.append(_CMP[b](_as_float(cols[a], i), _as_float(cols[c], i)))
            elif op == _expr.OP_CMP_COL_I:
                stack.append(_CMP[b](_as_int(cols[a], i), _as_int(cols[c], i)))
            elif op == _expr.OP_AND:
                r = stack.pop()
                stack.append(stack.pop() and r)
            elif op == _expr.OP_OR:
                r = stack.pop()
                stack.append(stack.pop() or r)
            elif op == _expr.OP_NOT:
                stack.append(not stack.pop())
            elif op == _expr.OP_ISNAN:
                stack.append(math.isnan(_as_float(cols[a], i)))
            elif op == _expr.OP_ISFINITE:
                stack.append(math.isfinite(_as_float(cols[a], i)))
            else:  # OP_TRUE
                stack.append(True)
            assert len(stack) <= _expr.MAX_STACK
        assert len(stack) == 1, stack
        if stack[0]:
            out.append(i)
    return _i64(out)


# ----------------------------------------------------------------------------------------------
# user assertions (family "udf"): the plain Python function, once per row / group
# ----------------------------------------------------------------------------------------------
def udf_rows(ua, views, valid, n):
    """Rows where ``ua.fn(row's scalars)`` is true or > 0 (null rows skipped), value as severity."""
    rows, sev = [], []
    for i in range(int(n)):
        if not _is_valid(valid, i):
            continue
        with np.errstate(all="ignore"):  # compiled code does not warn on inf - inf or overflow
            value = float(ua.fn(*[v[i] for v in views]))
        if value > 0:
            rows.append(i)
            sev.append(value)
    return _i64(rows), _f32(sev)


def udf_groups(ua, views, codes, offset, n_keys, valid):
    """Groups (by key code, valid rows only, rows in input order) where ``ua.fn(arrays)`` is
    true or > 0: every row of the group is flagged, one event per group anchored at its first row."""
    groups: dict[int, list[int]] = {}
    for i in range(len(codes)):
        if not _is_valid(valid, i):
            continue
        k = int(codes[i]) - int(offset)
        assert 0 <= k < n_keys, (k, n_keys)
        groups.setdefault(k, []).append(i)
    rows, events, sev, anchors = [], [], [], []
    ev = 0
    for k in sorted(groups):
        members = groups[k]
        idx = np.array(members, dtype=np.int64)
        with np.errstate(all="ignore"):
            value = float(ua.fn(*[v[idx] for v in views]))
        if value > 0:
            rows += members
            events += [ev] * len(members)
            sev += [value] * len(members)
            anchors.append(members[0])
            ev += 1
    return _i64(rows), _i64(events), _f32(sev), _i64(anchors)


# ----------------------------------------------------------------------------------------------
# Test helpers (not kernels): compare a report against the reference backend's
# ----------------------------------------------------------------------------------------------
def _same_values(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


def assert_same_table(got, want, *, float_columns=(), context="") -> None:
    """Column-by-column equality (NaN equals NaN); ``float_columns`` within float32 rounding."""
    assert got.column_names == want.column_names, (context, got.column_names, want.column_names)
    assert got.num_rows == want.num_rows, (context, got.num_rows, want.num_rows, got, want)
    for name in got.column_names:
        g, w = got.column(name).to_pylist(), want.column(name).to_pylist()
        if name in float_columns:
            np.testing.assert_allclose(np.array(g, np.float64), np.array(w, np.float64), rtol=3e-7,
                                       atol=0, err_msg=f"{context}: column {name!r}")
        else:
            assert _same_values(g, w), f"{context}: column {name!r} differs:\n got  {g}\n want {w}"


def assert_valid_result(report) -> None:
    """Invariants of every report: rows in range, events numbered densely, (event, row) order."""
    for a, r in report.results:
        assert r.rows.dtype == np.int64 and r.events.dtype == np.int64 and r.severity.dtype == np.float32
        assert len(r.rows) == len(r.events) == len(r.severity)
        if len(r.rows):
            assert r.rows.min() >= 0 and r.rows.max() < r.n_rows_checked
            assert sorted(set(r.events.tolist())) == list(range(r.n_events))
            pairs = list(zip(r.events.tolist(), r.rows.tolist()))
            assert pairs == sorted(set(pairs)), f"{a.name}: violations not in (event, row) order"
            # >= 0: a positive value below float32's smallest subnormal rounds to 0 (rows.check)
            assert (r.severity >= 0).all(), f"{a.name}: severity must be > 0"


def assert_same_report(got, want, *, keys: bool = True, ignore: tuple = (), context: str = "") -> None:
    """The same violations (severity within float32 rounding) and the same corrections.

    ``keys=False`` skips the ``key`` context column; ``ignore`` names input columns whose
    values may differ (e.g. the same ids as another type).
    """
    cols = [c for c in want.violations.column_names if keys or c != "key"]
    assert_same_table(got.violations.select(cols), want.violations.select(cols),
                      float_columns=("severity",), context=context)
    gc, wc = got.corrections(), want.corrections()
    keep = [c for c in wc.column_names if c not in ignore]
    assert_same_table(gc.select(keep), wc.select(keep), context=context + " corrections")
    assert_valid_result(got)


def check_like_reference(suite, table, backend: str, **kw):
    """Check ``table`` on ``backend`` and on the reference; assert both agree; return the first."""
    got = suite.check(table, backend=backend)
    want = suite.check(table, backend="reference")
    assert_same_report(got, want, context=f"{backend} vs reference", **kw)
    return got


# ----------------------------------------------------------------------------------------------
# Test helpers: one logical table in several physical Arrow layouts
# ----------------------------------------------------------------------------------------------
import pyarrow as pa  # noqa: E402  (helpers only; the kernels above never see Arrow)

ID_KINDS = ("int64", "int32", "uint8", "offset", "wide", "string", "dict", "float")


def id_array(values: list, kind: str) -> pa.Array:
    """Small non-negative ints (or None) as an identifier column of ``kind``; equal ints stay equal.

    ``offset``: direct addressing with a large minimum; ``wide``: a range too wide for direct
    addressing (hashed); ``dict``: dictionary<int32, string>.
    """
    def some(f):
        return [None if v is None else f(v) for v in values]

    if kind == "int64":
        return pa.array(values, pa.int64())
    if kind == "int32":
        return pa.array(values, pa.int32())
    if kind == "uint8":
        return pa.array(values, pa.uint8())
    if kind == "offset":
        return pa.array(some(lambda v: v + 10**12), pa.int64())
    if kind == "wide":
        return pa.array(some(lambda v: v * 10**9 - 3 * 10**9), pa.int64())
    if kind == "string":
        return pa.array(some(lambda v: f"id{v}"), pa.string())
    if kind == "dict":
        return pa.array(some(lambda v: f"id{v}"), pa.string()).dictionary_encode()
    if kind == "float":
        return pa.array(some(lambda v: v + 0.5), pa.float64())
    raise ValueError(kind)


LAYOUTS = ("plain", "sliced", "chunked")


def make_table(columns: dict, layout: str = "plain", splits: tuple = (1, 2)) -> pa.Table:
    """``columns``: name -> (values, build(values) -> pa.Array, pad value).

    ``sliced``: built with 3 pad rows in front and 2 behind, then ``slice(3, n)`` (non-zero
    offsets, offsets not a multiple of 8 for bitmaps); ``chunked``: built piecewise at the
    fractions ``splits`` (each piece its own arrays, so dictionaries differ per chunk) and
    concatenated.
    """
    n = len(next(iter(columns.values()))[0])
    if layout == "plain":
        return pa.table({k: b(v) for k, (v, b, _) in columns.items()})
    if layout == "sliced":
        t = pa.table({k: b([p] * 3 + list(v) + [p] * 2) for k, (v, b, p) in columns.items()})
        return t.slice(3, n)
    if layout == "chunked":
        cuts = sorted({0, n, *(min(n, int(n * s)) if isinstance(s, float) else min(n, s) for s in splits)})
        pieces = [pa.table({k: b(list(v)[lo:hi]) for k, (v, b, _) in columns.items()})
                  for lo, hi in zip(cuts, cuts[1:])] or [make_table(columns)]
        t = pa.concat_tables(pieces)
        return t
    raise ValueError(layout)


# ==============================================================================================
# boxes family (``kernels/_boxes_cy.pyx``, ``tripwire/_kernels/boxes_jit.py``)
# ==============================================================================================
# Written from the kernels' docstrings: a plain O(m^2) pairwise loop per frame and connected
# components by breadth-first search (no union-find). Box arithmetic is float32, like the
# kernels' ``float`` arithmetic (np.float32 scalars), so IoU ties agree bit for bit.
_F32 = np.float32


def _box_ok(x1, y1, x2, y2, p: int) -> bool:
    return all(math.isfinite(float(c[p])) for c in (x1, y1, x2, y2))


def _linked(x1, y1, x2, y2, p: int, q: int, t) -> bool:
    """IoU(p, q) >= t, tested as ``inter >= t * union`` in float32 (no division)."""
    ix = _F32(min(_F32(x2[p]), _F32(x2[q])) - max(_F32(x1[p]), _F32(x1[q])))
    if not ix > 0:
        return False
    iy = _F32(min(_F32(y2[p]), _F32(y2[q])) - max(_F32(y1[p]), _F32(y1[q])))
    if not iy > 0:
        return False
    area_p = _F32(_F32(x2[p]) - _F32(x1[p])) * _F32(_F32(y2[p]) - _F32(y1[p]))
    area_q = _F32(_F32(x2[q]) - _F32(x1[q])) * _F32(_F32(y2[q]) - _F32(y1[q]))
    inter = _F32(ix * iy)
    union = _F32(_F32(area_p + area_q) - inter)
    return bool(inter >= _F32(t * union))


def multibox(x1, y1, x2, y2, score, score_valid, offsets, iou, min_boxes):
    """Connected groups (IoU >= ``iou`` links, non-finite boxes link to nothing) of at least
    ``min_boxes`` boxes within one frame. Returns ``(pos, event, severity, anchor)``: every box
    of a group (frame by frame, groups in order of their first position, positions ascending
    in a group), its event, the group's highest non-null score (NaN scores skipped; 1 when the
    group has none; at least 1e-6) per box, and each group's first position."""
    n = len(x1)
    if len(y1) != n or len(x2) != n or len(y2) != n or (len(score) and len(score) != n):
        raise ValueError("box columns differ in length")
    t = _F32(iou)
    min_boxes = int(min_boxes)
    v_pos, v_ev, v_sev, anchors = [], [], [], []
    with np.errstate(all="ignore"):  # huge boxes: area overflows to inf, as in C
        for f in range(len(offsets) - 1):
            s, e = int(offsets[f]), int(offsets[f + 1])
            members = list(range(s, e))
            ok = {p: _box_ok(x1, y1, x2, y2, p) for p in members}
            adj: dict[int, list[int]] = {p: [] for p in members}
            for p in members:
                for q in members:
                    if p < q and ok[p] and ok[q] and _linked(x1, y1, x2, y2, p, q, t):
                        adj[p].append(q)
                        adj[q].append(p)
            seen: set[int] = set()
            for p in members:  # ascending: a group is met at its first position
                if p in seen:
                    continue
                group, todo = [], [p]
                seen.add(p)
                while todo:
                    u = todo.pop(0)
                    group.append(u)
                    for w in adj[u]:
                        if w not in seen:
                            seen.add(w)
                            todo.append(w)
                if len(group) < min_boxes:
                    continue
                scores = [float(score[u]) for u in group
                          if len(score) and _is_valid(score_valid, u) and not math.isnan(float(score[u]))]
                sev = max(max(scores), 1e-6) if scores else 1.0
                ev = len(anchors)
                anchors.append(p)
                for u in sorted(group):
                    v_pos.append(u)
                    v_ev.append(ev)
                    v_sev.append(sev)
    return _i64(v_pos), _i64(v_ev), _f32(v_sev), _i64(anchors)


VALID_BITS = {"nonfinite": 1, "x_order": 2, "y_order": 4, "outside": 8, "score": 16}


def valid(x1, y1, x2, y2, coord_valid, score, score_valid, width, height):
    """Rows with a broken box and a reason bitmask: null or non-finite coordinate (1, and no
    other coordinate test), x2 <= x1 (2), y2 <= y1 (4), outside [0, width] x [0, height] (8; a
    bound <= 0 is not checked), a non-null score that is NaN or outside [0, 1] (16)."""
    n = len(x1)
    width, height = float(width), float(height)
    rows, reasons = [], []
    for i in range(n):
        a, b, c, d = float(x1[i]), float(y1[i]), float(x2[i]), float(y2[i])
        bad = 0
        if not _is_valid(coord_valid, i) or not all(math.isfinite(v) for v in (a, b, c, d)):
            bad = VALID_BITS["nonfinite"]
        else:
            if c <= a:
                bad |= VALID_BITS["x_order"]
            if d <= b:
                bad |= VALID_BITS["y_order"]
            if (width > 0 and (a < 0 or c > width)) or (height > 0 and (b < 0 or d > height)):
                bad |= VALID_BITS["outside"]
        if len(score) and _is_valid(score_valid, i):
            sc = float(score[i])
            if math.isnan(sc) or sc < 0 or sc > 1:
                bad |= VALID_BITS["score"]
        if bad:
            rows.append(i)
            reasons.append(bad)
    return _i64(rows), np.array(reasons, dtype=np.uint8).reshape(-1)


__all__ += ["multibox", "valid"]


def _iou_f32(x1, y1, x2, y2, p: int, q: int, t):
    """(linked, iou) for boxes p and q in float32, as the kernels compute them."""
    ix = _F32(min(_F32(x2[p]), _F32(x2[q])) - max(_F32(x1[p]), _F32(x1[q])))
    if not ix > 0:
        return False, None
    iy = _F32(min(_F32(y2[p]), _F32(y2[q])) - max(_F32(y1[p]), _F32(y1[q])))
    if not iy > 0:
        return False, None
    area_p = _F32(_F32(x2[p]) - _F32(x1[p])) * _F32(_F32(y2[p]) - _F32(y1[p]))
    area_q = _F32(_F32(x2[q]) - _F32(x1[q])) * _F32(_F32(y2[q]) - _F32(y1[q]))
    inter = _F32(ix * iy)
    union = _F32(_F32(area_p + area_q) - inter)
    if not inter >= _F32(_F32(t) * union):
        return False, None
    return True, _F32(inter / union)


def associate(x1, y1, x2, y2, cls, offsets, group_frame, group_stream, iou, max_gap, seed_offsets=None,
              seed_pos=None, seed_obj=None, seed_frame=None, next_obj=0):
    """Greedy IoU linking of same-class boxes across frames (see the Cython docstring): for
    each frame, every (live object, box) pair of one class with IoU >= ``iou`` is listed,
    sorted by (IoU desc, object's last frame desc, object's creation order asc, position asc)
    and taken greedily one to one; objects live while ``frame - last - 1 <= max_gap`` within a
    stream. Seeds are objects created before every box here (oldest first per stream code),
    new objects are numbered from ``next_obj``. Returns the object per position, the
    (previous, next) position pairs of an object that skip at least one frame, in order of the
    next position, then the live objects of every stream code with frames or seeds after its
    last frame (stream code, id, position, frame; by stream code, oldest first) and the next id."""
    n = len(x1)
    obj, prev = [-1] * n, [-1] * n
    frame_at = [None] * n
    objects: list[dict] = []  # in creation order: {"id", "pos", "frame", "stream"}
    so = [] if seed_offsets is None else [int(v) for v in seed_offsets]
    n_grouped = int(offsets[-1]) if len(offsets) else 0
    if seed_pos is not None and any(not n_grouped <= int(p) < n for p in seed_pos):
        raise ValueError("seed positions must lie after the grouped positions, inside the box arrays")
    for st_code in range(len(so) - 1):
        for q in range(so[st_code], so[st_code + 1]):
            objects.append({"id": int(seed_obj[q]), "pos": int(seed_pos[q]), "frame": int(seed_frame[q]),
                            "stream": st_code})
            obj[int(seed_pos[q])] = int(seed_obj[q])
            frame_at[int(seed_pos[q])] = int(seed_frame[q])
    next_id = int(next_obj)
    last_frame: dict[int, int] = {}  # stream -> its last frame here
    n_groups = len(offsets) - 1
    with np.errstate(all="ignore"):
        for g in range(n_groups):
            s, e = int(offsets[g]), int(offsets[g + 1])
            f, stream = int(group_frame[g]), int(group_stream[g])
            last_frame[stream] = f
            live = [k for k, o in enumerate(objects)
                    if o["stream"] == stream and f - o["frame"] - 1 <= int(max_gap)]
            cands = []
            for k in live:
                p = objects[k]["pos"]
                for j in range(s, e):
                    if int(cls[j]) != int(cls[p]):
                        continue
                    ok, v = _iou_f32(x1, y1, x2, y2, p, j, iou)
                    if ok:
                        cands.append((-float(v), -objects[k]["frame"], k, j))
            cands.sort()
            used_obj, used_box = set(), set()
            for _, _, k, j in cands:
                if k in used_obj or j in used_box:
                    continue
                used_obj.add(k)
                used_box.add(j)
                obj[j], prev[j] = objects[k]["id"], objects[k]["pos"]
                objects[k]["pos"], objects[k]["frame"] = j, f
            for j in range(s, e):
                frame_at[j] = f
            for j in range(s, e):
                if j not in used_box and _box_ok(x1, y1, x2, y2, j):
                    obj[j] = next_id
                    objects.append({"id": next_id, "pos": j, "frame": f, "stream": stream})
                    next_id += 1
    gaps_ = [(prev[j], j) for j in range(n) if prev[j] >= 0 and frame_at[j] - frame_at[prev[j]] >= 2]
    state = [(o["stream"], o["id"], o["pos"], o["frame"]) for o in objects
             if o["stream"] not in last_frame or last_frame[o["stream"]] - o["frame"] - 1 <= int(max_gap)]
    state.sort(key=lambda r: r[0])  # stable: creation order within a stream
    return (_i64(obj), _i64(a for a, _ in gaps_), _i64(b for _, b in gaps_),
            *(_i64(r[i] for r in state) for i in range(4)), next_id)


def gaps(obj, obj_offset, n_obj, valid, frame, max_gap):
    """Consecutive boxes of one object (by frame, then array order) whose frames are 2 ..
    ``max_gap + 1`` apart. Always "in order" (a sort needs no second call)."""
    by_obj: dict[int, list[tuple[int, int]]] = {}
    for i in range(len(obj)):
        if _is_valid(valid, i):
            by_obj.setdefault(int(obj[i]) - int(obj_offset), []).append((int(frame[i]), i))
    pairs = []
    for boxes in by_obj.values():
        boxes.sort()
        for (fa, a), (fb, b) in zip(boxes, boxes[1:]):
            if 1 <= fb - fa - 1 <= int(max_gap):
                pairs.append((a, b))
    pairs.sort(key=lambda ab: ab[1])  # the Cython kernel emits them in array order of the end
    return _i64(a for a, _ in pairs), _i64(b for _, b in pairs), True


def lifetimes(obj, obj_offset, n_obj, valid, frame, frame_valid, stream, stream_offset, n_streams,
              score, score_valid, min_frames):
    """Objects whose first-to-last frame span is < ``min_frames`` and that touch neither end
    of their stream's frame range (over rows with a valid frame); all their rows, severity the
    mean non-null non-NaN score (1 without; at least 1e-6), anchor the object's first row."""
    extent: dict[int, list[int]] = {}
    rows: dict[int, list[int]] = {}
    for i in range(len(obj)):
        if not _is_valid(frame_valid, i):
            continue
        st = int(stream[i]) - int(stream_offset) if len(stream) else 0
        extent.setdefault(st, []).append(int(frame[i]))
        if _is_valid(valid, i):
            rows.setdefault(int(obj[i]) - int(obj_offset), []).append(i)
    v_pos, v_ev, v_sev, anchors = [], [], [], []
    flagged = []
    for o, rs in rows.items():
        fs = [int(frame[i]) for i in rs]
        st = int(stream[rs[0]]) - int(stream_offset) if len(stream) else 0
        if max(fs) - min(fs) + 1 >= int(min_frames):
            continue
        if min(fs) == min(extent[st]) or max(fs) == max(extent[st]):
            continue
        scores = [float(score[i]) for i in rs
                  if len(score) and _is_valid(score_valid, i) and not math.isnan(float(score[i]))]
        mean = float(_F32(sum(scores) / len(scores))) if scores else 1.0
        flagged.append((rs[0], rs, max(mean, float(_F32(1e-6))) if scores else 1.0))
    flagged.sort()
    for ev, (first, rs, sev) in enumerate(flagged):
        anchors.append(first)
    # rows in array order, as the kernel emits them
    ev_of = {r: ev for ev, (_, rs, _) in enumerate(flagged) for r in rs}
    for i in sorted(ev_of):
        v_pos.append(i)
        v_ev.append(ev_of[i])
        v_sev.append(flagged[ev_of[i]][2])
    return _i64(v_pos), _i64(v_ev), _f32(v_sev), _i64(anchors)


__all__ += ["associate", "gaps", "lifetimes"]


# ==============================================================================================
# points family (``kernels/_points_cy.pyx``, ``tripwire/_kernels/points_jit.py``)
# ==============================================================================================
# Written from the kernels' docstrings with plain loops: every point against every box of its
# frame (no grid), every 3D box against every camera box (a sorted candidate list), polygon
# clipping without the circle pre-test. Geometry is in Python floats (IEEE doubles) with the
# operations in the kernels' documented order, 2D IoU in float32 like ``boxes``, so decisions
# on faces and thresholds agree bit for bit.
def _box_fields(cx, cy, cz, l, w, h, yaw, b: int):
    vals = [float(a[b]) for a in (cx, cy, cz, l, w, h, yaw)]
    if not all(math.isfinite(v) for v in vals) or vals[3] < 0 or vals[4] < 0 or vals[5] < 0:
        return None
    return vals


def count_in_boxes(px, py, pz, point_lo, point_hi, cx, cy, cz, l, w, h, yaw, box_offsets, chunk):
    """Points of frame ``g`` (``point_lo[g]:point_hi[g]``) inside each box of that frame: in
    the box's frame ``|lx| <= l/2``, ``|ly| <= w/2``, ``|z - cz| <= h/2`` (faces included)."""
    n_groups = len(box_offsets) - 1
    if len(point_lo) != n_groups or len(point_hi) != n_groups:
        raise ValueError("point ranges need one entry per frame")
    counts = [0] * len(cx)
    for g in range(n_groups):
        for b in range(int(box_offsets[g]), int(box_offsets[g + 1])):
            f = _box_fields(cx, cy, cz, l, w, h, yaw, b)
            if f is None:
                continue
            bx, by, bz, bl, bw, bh, byaw = f
            c, s = math.cos(byaw), math.sin(byaw)
            hl, hw, hh = 0.5 * bl, 0.5 * bw, 0.5 * bh
            for i in range(int(point_lo[g]), int(point_hi[g])):
                x, y, z = float(px[i]), float(py[i]), float(pz[i])
                dx, dy = x - bx, y - by
                lx = dx * c + dy * s
                ly = dy * c - dx * s
                if abs(lx) <= hl and abs(ly) <= hw and abs(z - bz) <= hh:
                    counts[b] += 1
    return _i64(counts)


_EDGES = [(0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7)]


def _project(K, T, width, height, near, box):
    """``(x1, y1, x2, y2)`` float32 of a box in view, else None (see the kernel's docstring)."""
    if box is None:
        return None
    bx, by, bz, bl, bw, bh, byaw = box
    c, s = math.cos(byaw), math.sin(byaw)
    X, Y, Z = [], [], []
    for k in range(8):
        ox = (0.5 if k & 1 else -0.5) * bl
        oy = (0.5 if k & 2 else -0.5) * bw
        oz = (0.5 if k & 4 else -0.5) * bh
        wx = bx + (c * ox - s * oy)
        wy = by + (s * ox + c * oy)
        wz = bz + oz
        X.append(T[0] * wx + T[1] * wy + T[2] * wz + T[3])
        Y.append(T[4] * wx + T[5] * wy + T[6] * wz + T[7])
        Z.append(T[8] * wx + T[9] * wy + T[10] * wz + T[11])
    verts = [(X[k], Y[k], Z[k]) for k in range(8) if Z[k] >= near]
    for a, b in _EDGES:
        if (Z[a] < near < Z[b]) or (Z[b] < near < Z[a]):
            t = (near - Z[a]) / (Z[b] - Z[a])
            verts.append((X[a] + t * (X[b] - X[a]), Y[a] + t * (Y[b] - Y[a]), near))
    if not verts:
        return None
    us = [(K[0] * x + K[1] * y + K[2] * z) / z for x, y, z in verts]
    vs = [(K[3] * x + K[4] * y + K[5] * z) / z for x, y, z in verts]
    x1, y1 = _F32(max(min(us), 0.0)), _F32(max(min(vs), 0.0))
    x2, y2 = _F32(min(max(us), width)), _F32(min(max(vs), height))
    return (x1, y1, x2, y2) if (x2 > x1 and y2 > y1) else None


def project_match(cx, cy, cz, l, w, h, yaw, offsets3, x1, y1, x2, y2, offsets2, unit_camera, K, T, width,
                  height, near, iou):
    """Per (camera, frame) unit: project each 3D box, then match greedily by IoU (highest
    first, ties to the lower 3D then 2D position), pairs needing ``inter >= iou * union`` in
    float32. Returns ``(proj, match3, match2)`` as the kernel does."""
    n3, n2 = len(cx), len(x1)
    proj = np.full((n3, 4), np.nan, np.float32)
    match3, match2 = [-2] * n3, [-1] * n2
    t = _F32(iou)
    for u in range(len(offsets3) - 1):
        cam = int(unit_camera[u])
        Ku = [float(v) for v in K[9 * cam:9 * cam + 9]]
        Tu = [float(v) for v in T[16 * cam:16 * cam + 16]]
        for i in range(int(offsets3[u]), int(offsets3[u + 1])):
            box = [float(a[i]) for a in (cx, cy, cz, l, w, h, yaw)]  # negative sizes project too
            p = _project(Ku, Tu, float(width[cam]), float(height[cam]), float(near),
                         box if all(math.isfinite(v) for v in box) else None)
            if p is not None:
                proj[i] = p
                match3[i] = -1
        cands = []
        for i in range(int(offsets3[u]), int(offsets3[u + 1])):
            if match3[i] == -2:
                continue
            a = [_F32(v) for v in proj[i]]
            area_a = _F32(_F32(a[2] - a[0]) * _F32(a[3] - a[1]))
            for j in range(int(offsets2[u]), int(offsets2[u + 1])):
                b = [_F32(x1[j]), _F32(y1[j]), _F32(x2[j]), _F32(y2[j])]
                ix = _F32(min(a[2], b[2]) - max(a[0], b[0]))
                if not ix > 0:
                    continue
                iy = _F32(min(a[3], b[3]) - max(a[1], b[1]))
                if not iy > 0:
                    continue
                inter = _F32(ix * iy)
                union = _F32(_F32(area_a + _F32(_F32(b[2] - b[0]) * _F32(b[3] - b[1]))) - inter)
                if inter >= _F32(t * union):
                    cands.append((-_F32(inter / union), i, j))
        for _, i, j in sorted(cands):
            if match3[i] != -1 or match2[j] != -1:
                continue
            match3[i], match2[j] = j, i
    return proj, _i64(match3), _i64(match2)


def size_prior(l, w, h, dims_valid, codes, code_offset, code_valid, slot_of_code, lo, hi):
    """Rows whose class has a prior and whose l, w or h leaves it; severity the largest
    relative distance (float32, at least 1e-6), 1 for a null or non-finite dimension; reason
    bits as documented in the kernel."""
    rows, sev, why = [], [], []
    for i in range(len(l)):
        if not _is_valid(code_valid, i):
            continue
        code = int(codes[i]) - int(code_offset)
        if not 0 <= code < len(slot_of_code) or int(slot_of_code[code]) < 0:
            continue
        k = int(slot_of_code[code])
        dims = [float(_F32(l[i])), float(_F32(w[i])), float(_F32(h[i]))]
        if not _is_valid(dims_valid, i) or not all(math.isfinite(d) for d in dims):
            rows.append(i)
            sev.append(1.0)
            why.append(1)
            continue
        bits, worst = 0, 0.0
        for d, (low_bit, high_bit), a, b in zip(dims, ((2, 4), (8, 16), (32, 64)),
                                                 (float(v) for v in lo[3 * k:3 * k + 3]),
                                                 (float(v) for v in hi[3 * k:3 * k + 3])):
            if d < a:
                bits |= low_bit
                worst = max(worst, float(_F32((a - d) / a)))
            elif d > b:
                bits |= high_bit
                worst = max(worst, float(_F32((d - b) / b)))
        if bits:
            rows.append(i)
            sev.append(max(worst, float(_F32(1e-6))))
            why.append(bits)
    return _i64(rows), _f32(sev), np.array(why, np.uint8)


def few_points(counts, valid, min_points):
    """Positions with ``count < min_points`` (valid rows only), severity ``1 - max(count, 0) /
    min_points``."""
    rows, sev = [], []
    for i in range(len(counts)):
        if _is_valid(valid, i) and int(counts[i]) < int(min_points):
            rows.append(i)
            sev.append(1.0 - max(int(counts[i]), 0) * (1.0 / int(min_points)))
    return _i64(rows), _f32(sev)


def _footprint(bx, by, bl, bw, byaw):
    c, s = math.cos(byaw), math.sin(byaw)
    hl, hw = 0.5 * bl, 0.5 * bw
    local = [(hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw)]
    return [(bx + (c * ox - s * oy), by + (s * ox + c * oy)) for ox, oy in local]


def _clip_area(a, b) -> float:
    """Sutherland-Hodgman: polygon ``a`` clipped by each edge of ``b`` (both counter-clockwise),
    then the shoelace area."""
    poly = list(a)
    for e in range(4):
        (ex0, ey0), (ex1, ey1) = b[e], b[(e + 1) % 4]
        out = []
        for k in range(len(poly)):
            (pxk, pyk), (pxj, pyj) = poly[k], poly[(k + 1) % len(poly)]
            dp = (ex1 - ex0) * (pyk - ey0) - (ey1 - ey0) * (pxk - ex0)
            dq = (ex1 - ex0) * (pyj - ey0) - (ey1 - ey0) * (pxj - ex0)
            if dp >= 0:
                out.append((pxk, pyk))
            if (dp >= 0) != (dq >= 0):
                t = dp / (dp - dq)
                out.append((pxk + t * (pxj - pxk), pyk + t * (pyj - pyk)))
        poly = out
        if not poly:
            return 0.0
    area = 0.0
    for k in range(len(poly)):
        (xk, yk), (xj, yj) = poly[k], poly[(k + 1) % len(poly)]
        area += xk * yj - xj * yk
    return abs(area) * 0.5


def bev_multibox(cx, cy, l, w, yaw, score, score_valid, offsets, iou, min_boxes):
    """Connected groups (footprint IoU links: ``inter > 0 and inter >= iou * union``; a
    footprint without area or with a non-finite value links to nothing) of at least
    ``min_boxes`` boxes per frame; output as ``multibox``."""
    n = len(cx)
    if len(cy) != n or len(l) != n or len(w) != n or len(yaw) != n or (len(score) and len(score) != n):
        raise ValueError("box columns differ in length")
    v_pos, v_ev, v_sev, anchors = [], [], [], []
    for f in range(len(offsets) - 1):
        s, e = int(offsets[f]), int(offsets[f + 1])
        m = e - s
        if m < min_boxes or m < 2:
            continue
        fp, area = {}, {}
        for i in range(s, e):
            vals = [float(a[i]) for a in (cx, cy, l, w, yaw)]
            if all(math.isfinite(v) for v in vals) and vals[2] > 0 and vals[3] > 0:
                fp[i] = _footprint(*vals)
                area[i] = vals[2] * vals[3]
        adj = {i: [] for i in range(s, e)}
        for i in range(s, e):
            for j in range(i + 1, e):
                if i in fp and j in fp:
                    inter = _clip_area(fp[i], fp[j])
                    if inter > 0 and inter >= float(iou) * (area[i] + area[j] - inter):
                        adj[i].append(j)
                        adj[j].append(i)
        seen = set()
        for i in range(s, e):
            if i in seen:
                continue
            comp, todo = [], [i]
            seen.add(i)
            while todo:
                p = todo.pop()
                comp.append(p)
                for q in adj[p]:
                    if q not in seen:
                        seen.add(q)
                        todo.append(q)
            if len(comp) < min_boxes:
                continue
            scores = [float(score[p]) for p in comp
                      if len(score) and _is_valid(score_valid, p) and not math.isnan(float(score[p]))]
            sev = max(max(scores), float(_F32(1e-6))) if scores else 1.0
            anchors.append(min(comp))
            for p in sorted(comp):
                v_pos.append(p)
                v_ev.append(len(anchors) - 1)
                v_sev.append(sev)
    # the kernel emits a frame's boxes in position order, events numbered by first box
    order = sorted(range(len(v_pos)), key=lambda k: v_pos[k])
    return (_i64(v_pos[k] for k in order), _i64(v_ev[k] for k in order), _f32(v_sev[k] for k in order),
            _i64(anchors))


__all__ += ["count_in_boxes", "project_match", "size_prior", "few_points", "bev_multibox"]


# ==============================================================================================
# ecg family (``kernels/_ecg_cy.pyx``, ``tripwire/_kernels/ecg_jit.py``)
# ==============================================================================================
# Written from the kernels' docstrings with plain loops: every sample gets its class (N, R, F,
# ordinary) first, flat runs by a direct run scan, rails by a scan of the ordinary samples, and
# the union counted sample by sample. Sums are in the documented order: float32 lanes by
# position mod 8 within a second (np.float32 scalars), combined pairwise in Python floats.
# The detector is the documented Pan-Tompkins procedure step by step on Python lists; flips
# count their inverted windows by brute force over every pair.
def _f32_lane_sum(lanes) -> float:
    a = [float(v) for v in lanes]
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))


def _quality_one(w, fs, flat_s, clip_frac, max_abs, min_ptp, max_noise, max_wander):
    n = len(w)
    if n == 0:
        return 0, 0
    seg = max(1, math.floor(fs + 0.5))
    flat = max(2, math.floor(flat_s * fs + 0.5))
    vals = [np.float32(v) for v in w]
    fin = [math.isfinite(float(v)) for v in vals]
    cls = ["N" if not fin[i] else ("R" if abs(float(vals[i])) > max_abs else "") for i in range(n)]
    # flat runs: maximal runs of one finite value
    i = 0
    while i < n:
        j = i + 1
        if fin[i]:
            while j < n and vals[j] == vals[i]:
                j += 1
            if j - i >= flat and cls[i] == "":
                for q in range(i, j):
                    cls[q] = "F"
        i = j
    ordinary = [i for i in range(n) if cls[i] == ""]
    lo_rail = min((float(vals[i]) for i in ordinary), default=None)
    hi_rail = max((float(vals[i]) for i in ordinary), default=None)
    cnt_lo = sum(1 for i in ordinary if float(vals[i]) == lo_rail)
    cnt_hi = sum(1 for i in ordinary if float(vals[i]) == hi_rail)
    n_ord = len(ordinary)
    clip_lo = n_ord > 0 and cnt_lo >= 2 and cnt_lo >= clip_frac * n_ord
    clip_hi = n_ord > 0 and hi_rail != lo_rail and cnt_hi >= 2 and cnt_hi >= clip_frac * n_ord
    finite_vals = [float(vals[i]) for i in range(n) if fin[i]]
    lowamp = bool(finite_vals) and (max(finite_vals) - min(finite_vals)) < min_ptp
    # seconds: lane sums of finite samples and of |second difference|
    n_seg = (n + seg - 1) // seg
    seg_sum, seg_nfin, seg_d2, seg_nd2, seg_ptp = [], [], [], [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(n_seg):
            a, b = s * seg, min(s * seg + seg, n)
            lanes = [np.float32(0.0)] * 8
            dl = [np.float32(0.0)] * 8
            nd2 = 0
            for i in range(a, b):
                k = (i - a) % 8
                if fin[i]:
                    lanes[k] = np.float32(lanes[k] + vals[i])
                if i >= 2:
                    d = np.float32(np.float32(vals[i] - np.float32(np.float32(2.0) * vals[i - 1])) + vals[i - 2])
                    if math.isfinite(float(d)):
                        nd2 += 1
                        dl[k] = np.float32(dl[k] + np.float32(abs(d)))
            fv = [float(vals[i]) for i in range(a, b) if fin[i]]
            seg_sum.append(_f32_lane_sum(lanes))
            seg_nfin.append(len(fv))
            seg_d2.append(_f32_lane_sum(dl))
            seg_nd2.append(nd2)
            seg_ptp.append(max(fv) - min(fv) if fv else math.nan)
    total = 0.0
    for v in seg_sum:
        total = total + v
    nfin = sum(seg_nfin)
    mean = total / nfin if nfin else 0.0
    why = 0
    if nfin < n:
        why |= 1
    if "R" in cls:
        why |= 2
    if "F" in cls:
        why |= 4
    if clip_lo or clip_hi:
        why |= 8
    if lowamp:
        why |= 64
    bad = 0
    for s in range(n_seg):
        a, b = s * seg, min(s * seg + seg, n)
        noisy = seg_nd2[s] > 0 and seg_d2[s] > max_noise * seg_ptp[s] * seg_nd2[s]
        wander = seg_nfin[s] > 0 and abs(seg_sum[s] / seg_nfin[s] - mean) > max_wander
        why |= (16 if noisy else 0) | (32 if wander else 0)
        for i in range(a, b):
            if noisy or wander or lowamp or cls[i] != "":
                bad += 1
            elif (clip_lo and float(vals[i]) == lo_rail) or (clip_hi and float(vals[i]) == hi_rail):
                bad += 1
    return bad, why


def quality(x, lo, hi, fs, flat_s, clip_frac, max_abs, min_ptp, max_noise, max_wander):
    """Bad samples and reason bits per window (``kernels/_ecg_cy.pyx``)."""
    n_win = len(lo)
    if len(hi) != n_win or len(fs) != n_win:
        raise ValueError("lo, hi and fs need one entry per window")
    bad, why = [], []
    for w in range(n_win):
        if not (0 <= int(lo[w]) <= int(hi[w]) <= len(x)):
            raise ValueError("window bounds outside the values")
        b, r = _quality_one(list(x[int(lo[w]):int(hi[w])]), float(fs[w]), flat_s, clip_frac, max_abs, min_ptp,
                            max_noise, max_wander)
        bad.append(b)
        why.append(r)
    return _i64(bad), np.array(why, np.int32).reshape(-1)


def _detect_one(w, P):
    n = len(w)
    if n == 0:
        return []
    hb0, hb1, hb2, ha1, ha2, lb0, lb1, lb2, la1, la2 = (float(v) for v in P[:10])
    W, REF, TW, LEARN, RR0, D = (int(v) for v in P[10:16])
    xs = [float(np.float32(v)) for v in w]
    held = 0.0
    for v in xs:
        if math.isfinite(v):
            held = v
            break
    hx1 = hx2 = held
    hy1 = hy2 = lx1 = lx2 = ly1 = ly2 = 0.0
    y, m, s_hist = [], [], []
    S = 0.0
    def yat(k):
        return y[k] if k >= 0 else 0.0
    for i, v in enumerate(xs):
        if math.isfinite(v):
            held = v
        h = (((hb0 * held + hb1 * hx1) + hb2 * hx2) - ha2 * hy2) - ha1 * hy1
        hx2, hx1, hy2, hy1 = hx1, held, hy1, h
        low = (((lb0 * h + lb1 * lx1) + lb2 * lx2) - la2 * ly2) - la1 * ly1
        lx2, lx1, ly2, ly1 = lx1, h, ly1, low
        y.append(low)
        d = ((2.0 * low + yat(i - 1)) - yat(i - 3)) - 2.0 * yat(i - 4)
        s = d * d
        S = (S + s) - s_hist[i - W] if i >= W else S + s
        s_hist.append(s)
        m.append(S)

    def slope2(c):
        best = 0.0
        for k in range(max(0, c - W + 1), c + 1):
            d = ((2.0 * y[k] + yat(k - 1)) - yat(k - 3)) - 2.0 * yat(k - 4)
            best = max(best, d * d)
        return best

    L0 = min(LEARN, n)
    mx0, sum0 = m[0], 0.0
    for i in range(L0):
        mx0 = max(mx0, m[i])
        sum0 = sum0 + m[i]
    spki, npki = 0.25 * mx0, 0.5 * (sum0 / L0)
    rr: list[int] = []
    rr_avg = float(RR0)
    last, last_slope, sb_c, sb_v = -1, 0.0, -1, 0.0
    peaks: list[int] = []

    def accept(c):
        nonlocal last, rr_avg
        if last >= 0:
            rr.append(c - last)
            recent = rr[-8:]
            total = 0.0
            # the kernels keep a running sum of the last 8 intervals (exact: integers < 2**53)
            for q in recent:
                total += q
            rr_avg = total / len(recent)
        last = c
        peaks.append(c)

    for c in range(1, n - 1):
        v = m[c]
        if not (m[c - 1] < v and v >= m[c + 1]):
            continue
        ref_i = last if last >= 0 else 0
        thr1 = npki + 0.25 * (spki - npki)
        if sb_c >= 0 and (c - ref_i) > 1.66 * rr_avg and sb_v > 0.5 * thr1:
            spki = 0.25 * sb_v + 0.75 * spki
            last_slope = slope2(sb_c)
            accept(sb_c)
            sb_c, sb_v = -1, 0.0
        if last >= 0 and c - last < REF:
            continue
        thr1 = npki + 0.25 * (spki - npki)
        if v > thr1:
            sl = slope2(c)
            if last >= 0 and c - last < TW and sl < 0.25 * last_slope:
                npki = 0.125 * v + 0.875 * npki
                continue
            spki = 0.125 * v + 0.875 * spki
            last_slope = sl
            accept(c)
            sb_c, sb_v = -1, 0.0
        else:
            npki = 0.125 * v + 0.875 * npki
            if sb_c < 0 or v > sb_v:
                sb_c, sb_v = c, v
    ref_i = last if last >= 0 else 0
    thr1 = npki + 0.25 * (spki - npki)
    if sb_c >= 0 and (n - 1 - ref_i) > 1.66 * rr_avg and sb_v > 0.5 * thr1:
        peaks.append(sb_c)
    out = []
    for c in peaks:
        p, best = c, -1.0
        for i in range(max(0, c - W), c + 1):
            if abs(y[i]) > best:
                best, p = abs(y[i]), i
        out.append(max(0, p - D))
    return out


def _check_ecg_params(params, n_win):
    if params.shape != (n_win, 16):
        raise ValueError("params must be (n_windows, 16)")
    for w in range(n_win):
        P = params[w]
        if P[10] < 1 or P[11] <= P[10] or P[13] < 1 or P[15] < 0:
            raise ValueError("detector lengths out of range (W >= 1, REF > W, LEARN >= 1, DELAY >= 0)")


def rpeaks(x, lo, hi, params):
    """R-peak indices per window, relative to its first sample, and counts."""
    n_win = len(lo)
    if len(hi) != n_win:
        raise ValueError("lo and hi need one entry per window")
    _check_ecg_params(params, n_win)
    peaks, counts = [], []
    for w in range(n_win):
        if not (0 <= int(lo[w]) <= int(hi[w]) <= len(x)):
            raise ValueError("window bounds outside the values")
        p = _detect_one(list(x[int(lo[w]):int(hi[w])]), list(params[w]))
        peaks.extend(p)
        counts.append(len(p))
    return _i64(peaks), _i64(counts)


def rr_stats(x, lo, hi, params):
    """Peak count, mean RR (samples), CV, normalised RMSSD and median successive difference
    over median RR per window."""
    _, counts = rpeaks(x, lo, hi, params)
    pk_all = rpeaks(x, lo, hi, params)[0].tolist()
    npk, mean_out, cv_out, rm_out, mad_out = [], [], [], [], []

    def median(values):
        v = sorted(values)
        mid = len(v) // 2
        return float(v[mid]) if len(v) % 2 else (float(v[mid - 1]) + float(v[mid])) / 2.0

    at = 0
    for c in counts.tolist():
        p = pk_all[at:at + c]
        at += c
        npk.append(c)
        mean = cv = rm = mad = math.nan
        if c >= 2:
            rr = [p[i] - p[i - 1] for i in range(1, c)]
            s = 0.0
            for v in rr:
                s = s + float(v)
            mean = s / (c - 1)
            q = 0.0
            for v in rr:
                q = q + (float(v) - mean) * (float(v) - mean)
            cv = math.sqrt(q / (c - 1)) / mean
            if c >= 3:
                r = 0.0
                for i in range(1, len(rr)):
                    r = r + float(rr[i] - rr[i - 1]) * float(rr[i] - rr[i - 1])
                rm = math.sqrt(r / (c - 2)) / mean
                mad = median([abs(rr[i] - rr[i - 1]) for i in range(1, len(rr))]) / median(rr)
        mad_out.append(mad)
        mean_out.append(mean)
        cv_out.append(cv)
        rm_out.append(rm)
    return (_i64(npk), np.array(mean_out, np.float64), np.array(cv_out, np.float64), np.array(rm_out, np.float64),
            np.array(mad_out, np.float64))


def flips(labels, label_offset, n_labels, rec_offsets, t0, within):
    """A -> B -> A flips per record, inverted windows counted pair by pair."""
    n = len(labels)
    if len(t0) != n:
        raise ValueError("labels and t0 differ in length")
    n_rec = len(rec_offsets) - 1
    if n_rec < 0 or (n_rec == 0 and n) or (n_rec > 0 and (rec_offsets[0] != 0 or rec_offsets[-1] != n)):
        raise ValueError("rec_offsets must run from 0 to the number of labels")
    if any(rec_offsets[r + 1] < rec_offsets[r] for r in range(n_rec)):
        raise ValueError("rec_offsets must not decrease")
    if any(not (0 <= int(v) - int(label_offset) < n_labels) for v in labels):
        raise ValueError("label code out of range")
    first, last, src, sev = [], [], [], []
    for r in range(n_rec):
        a, b = int(rec_offsets[r]), int(rec_offsets[r + 1])
        runs = []  # (label, start, end) inclusive
        for i in range(a, b):
            if runs and runs[-1][0] == int(labels[i]):
                runs[-1] = (runs[-1][0], runs[-1][1], i)
            else:
                runs.append((int(labels[i]), i, i))
        for q, (lab, s, e) in enumerate(runs):
            earlier = [run for run in runs[:q] if run[0] == lab]
            if not earlier:
                continue
            _, ps, pe = earlier[-1]
            if float(t0[s]) - float(t0[pe]) <= within:
                count = sum(1 for i in range(ps, pe + 1) for j in range(s, e + 1)
                            if float(t0[j]) - float(t0[i]) <= within)
                first.append(pe + 1)
                last.append(s - 1)
                src.append(pe)
                sev.append(count)
    return _i64(first), _i64(last), _i64(src), _i64(sev)
__all__ += ["quality", "rpeaks", "rr_stats", "flips"]


# ----------------------------------------------------------------------------------------------
# Monitor: frame order per stream across gathered batches (tripwire._kernels._monitor_cy
# BoxEngine.prepare(parts=...), tripwire._streaming._ordered_across)
# ----------------------------------------------------------------------------------------------
def ordered_across(streams, frames, sizes) -> bool:
    """Whether, for batches of ``sizes`` rows concatenated (``streams``, ``frames``: one value
    per row, ``None``: null), no row's frame precedes the newest frame of its stream in an
    earlier batch. Rows with a null frame are in no order; a null stream is a stream of its
    own only when no stream column exists (``streams`` None: all rows one stream)."""
    newest_before: dict = {}  # stream -> newest frame of the batches so far
    start = 0
    for size in sizes:
        newest_here: dict = {}
        for i in range(start, start + size):
            s = None if streams is None else streams[i]
            if (streams is not None and s is None) or frames[i] is None:
                continue
            if s in newest_before and frames[i] < newest_before[s]:
                return False
            newest_here[s] = max(newest_here.get(s, frames[i]), frames[i])
        for s, f in newest_here.items():
            newest_before[s] = max(newest_before.get(s, f), f)
        start += size
    return True


__all__ += ["ordered_across"]


def longest_absence(keys) -> int:
    """The most rows a key stays away before coming back (the Monitor's ``horizon`` is exact
    when it is at least this). Keys that are ``None``, or tuples holding a ``None``, are skipped."""
    last, worst = {}, 0
    for i, k in enumerate(keys):
        if k is None or (isinstance(k, tuple) and None in k):
            continue
        if k in last:
            worst = max(worst, i - last[k])
        last[k] = i
    return worst


__all__ += ["longest_absence"]
