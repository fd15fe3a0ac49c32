# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: language = c++
"""Generic row-table kernels (Cython backend).

Called by ``tripwire.rows`` through ``tripwire._dispatch``; siblings with the same names and
argument order live in ``tripwire/_kernels/rows_jit.py`` (Numba) and ``tests/reference.py``
(plain loops). Every function is one call per batch and runs without the GIL.

Conventions shared with the siblings:
- key columns arrive as dense codes: ``code = keys[i] - key_offset`` in ``[0, n_keys)``;
- an empty ``*_valid`` array means "no nulls", else ``valid[i] == 0`` marks a null row;
- each function returns per-violation ``(row, event, severity)`` plus one anchor row per event;
  the caller renumbers events by anchor so all backends agree on event ids.
"""
import numpy as np
cimport numpy as cnp

from tripwire import _config
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, INT64_MIN, INT64_MAX, INT32_MAX
from libc.string cimport memcpy, memset
from libc.math cimport isnan, isfinite, nextafterf, INFINITY
from libcpp.vector cimport vector
from libcpp.pair cimport pair
from libcpp.algorithm cimport copy, fill, merge as cpp_merge, sort as cpp_sort, is_sorted as cpp_is_sorted, lower_bound as cpp_lower_bound
from cython.operator cimport dereference as deref

from _types cimport key_t, key2_t, num_t

from _common cimport apart, is_valid, row_ranges, tw_unlikely, to_numpy, tw_max_threads, tw_minmax_i32, tw_minmax_i64, valid_ptr
from cython.parallel cimport prange

cnp.import_array()

ctypedef pair[int64_t, int64_t] kv_t


cdef extern from *:
    void __builtin_prefetch(const void*) nogil


# ----------------------------------------------------------------------------------------------
# rows.consistent
# ----------------------------------------------------------------------------------------------
cdef enum:
    SMALL_ATTRS = 4096  # below this many attribute values, count them per group (no sort)


cdef struct fc_t:  # rows.consistent, pass 1: an id's first attribute and its row count
    int32_t first
    int32_t count


cdef struct dev_t:  # rows.consistent, pass 1: a row whose attribute is not its id's first here
    int64_t row
    int32_t id
    int32_t attr


cdef void _first_attrs(const key_t* ids, int64_t id_offset, const uint8_t* id_valid_p, const key2_t* attrs,
                       int64_t attr_offset, const uint8_t* attr_valid_p, int64_t null_code, Py_ssize_t lo,
                       Py_ssize_t hi, fc_t* fc, uint8_t* bad, int64_t* first_row,
                       vector[dev_t]& deviants) noexcept nogil:
    """Pass 1 over rows ``lo .. hi``: per id its first attribute, its row and the row count here
    (``fc``, ``first_row``), ``bad`` where a second attribute shows, and every such row
    (``deviants``, in row order): all an id's rows here but the deviants hold its first value."""
    cdef Py_ssize_t i
    cdef int64_t k, a
    cdef fc_t* F
    if id_valid_p == NULL and attr_valid_p == NULL:
        # the usual case, kept to a few instructions a row: a first sight and a deviant both
        # differ from ``first`` (-1 before the first sight), and are handled out of line
        for i in range(lo, hi):
            k = ids[i] - id_offset
            a = attrs[i] - attr_offset
            F = &fc[k]
            F.count += 1
            if tw_unlikely(F.first != a):
                _first_or_deviant(F, k, a, i, bad, first_row, deviants)
        return
    for i in range(lo, hi):
        if not is_valid(id_valid_p, i):
            continue
        k = ids[i] - id_offset
        a = attrs[i] - attr_offset if is_valid(attr_valid_p, i) else null_code
        F = &fc[k]
        F.count += 1
        if F.first != a:
            _first_or_deviant(F, k, a, i, bad, first_row, deviants)


cdef void _first_or_deviant(fc_t* F, int64_t k, int64_t a, Py_ssize_t i, uint8_t* bad, int64_t* first_row,
                            vector[dev_t]& deviants) noexcept nogil:
    """Row ``i`` of id ``k`` holds ``a``, not the id's first value: it is the first row, or a
    deviant (out of line: rare, and the caller's loop keeps its registers)."""
    cdef dev_t d
    if F.first < 0:
        F.first = <int32_t>a
        first_row[k] = i
    else:
        bad[k] = 1
        d.row = i
        d.id = <int32_t>k
        d.attr = <int32_t>a
        deviants.push_back(d)


cdef void _gather_bad(const key_t* ids, int64_t id_offset, const uint8_t* id_valid_p, const key2_t* attrs,
                      int64_t attr_offset, const uint8_t* attr_valid_p, int64_t null_code, Py_ssize_t lo,
                      Py_ssize_t hi, const uint8_t* bad, int64_t* at, kv_t* sub) noexcept nogil:
    """Pass 2 over rows ``lo .. hi``: each bad id's rows, as (attribute, row), to ``sub`` from
    its slot ``at[id]`` on (arrival order kept)."""
    cdef Py_ssize_t i
    cdef int64_t k, a
    for i in range(lo, hi):
        if is_valid(id_valid_p, i):
            k = ids[i] - id_offset
            if bad[k]:
                a = attrs[i] - attr_offset if is_valid(attr_valid_p, i) else null_code
                sub[at[k]] = kv_t(a, i)
                at[k] += 1


cdef void _clear_range(fc_t* fc, uint8_t* bad, Py_ssize_t n_ids) noexcept nogil:
    """A range's pass-1 state, cleared by the thread that then fills it, so its cache lines
    start out in that core's cache rather than in the one of the thread that allocated them."""
    cdef Py_ssize_t k
    for k in range(n_ids):
        fc[k].first = -1
        fc[k].count = 0
    memset(bad, 0, n_ids)


# The per-id passes below run between the parallel row passes. They take their arrays as
# pointer arguments: inlined in ``consistent``, each store would reload every vector's data
# pointer from the stack (extensions build with -fno-strict-aliasing), several times the work.
cdef Py_ssize_t _merge_ranges(const fc_t* fc, const uint8_t* bads, int parts, Py_ssize_t n_ids, uint8_t* bad,
                              int64_t* bad_ids) noexcept nogil:
    """An id is bad when a range saw two values, or two ranges saw different first values.
    Sets ``bad``, lists the bad ids in order and returns their count. Branch-free: about one
    id in ten is bad, in no pattern a predictor could follow."""
    cdef Py_ssize_t k, c = 0
    cdef int p
    cdef int32_t a, f
    cdef uint8_t b
    if parts == 1:  # its own loop: the general one keeps k on the stack
        for k in range(n_ids):
            b = bads[k]
            bad[k] = b
            bad_ids[c] = k
            c += b
        return c
    for k in range(n_ids):
        b = bads[k]
        a = fc[k].first
        for p in range(1, parts):
            f = fc[p * n_ids + k].first
            b |= bads[p * n_ids + k] | ((a >= 0) & (f >= 0) & (f != a))
            a = a if a >= 0 else f
        bad[k] = b
        bad_ids[c] = k
        c += b
    return c


cdef void _deviants_by_id(vector[apart[vector[dev_t]]]& deviants, int parts, Py_ssize_t n_ids, int64_t* dstart,
                          vector[dev_t]& dev) noexcept nogil:
    """The ranges' deviants grouped by id, counting sort (ranges in order, so each id's
    deviants stay in row order): id ``k``'s are ``dev[dstart[k] : dstart[k + 1]]``."""
    cdef Py_ssize_t j, k, c, total = 0
    cdef int p
    memset(dstart, 0, (n_ids + 1) * sizeof(int64_t))
    for p in range(parts):
        for j in range(<Py_ssize_t>deviants[p].v.size()):
            dstart[deviants[p].v[j].id + 1] += 1
    for k in range(1, n_ids + 1):  # dstart[k + 1]: id k's first slot, then its cursor
        c = dstart[k]
        dstart[k] = total
        total += c
    dev.resize(total)
    for p in range(parts):
        for j in range(<Py_ssize_t>deviants[p].v.size()):
            k = deviants[p].v[j].id + 1
            dev[dstart[k]] = deviants[p].v[j]
            dstart[k] += 1


cdef Py_ssize_t _group_starts(const fc_t* fc, int parts, Py_ssize_t n_ids, const uint8_t* bad, int64_t* gstart,
                              int64_t* bad_ids) noexcept nogil:
    """Slots of the ids still bad after pass 1 in pass 2's counting sort (``gstart[k] ..
    gstart[k + 1]``; empty for the others); lists those ids in order and returns their count."""
    cdef Py_ssize_t k, c = 0
    cdef int p
    cdef int64_t total = 0, rows
    gstart[0] = 0
    if parts == 1:
        for k in range(n_ids):
            total += fc[k].count & -<int64_t>bad[k]
            gstart[k + 1] = total
            bad_ids[c] = k
            c += bad[k]
        return c
    for k in range(n_ids):
        rows = 0
        for p in range(parts):
            rows += fc[p * n_ids + k].count
        total += rows & -<int64_t>bad[k]
        gstart[k + 1] = total
        bad_ids[c] = k
        c += bad[k]
    return c


cdef inline void _visit(int64_t row, int64_t a, int64_t best_a, int64_t best_first, bint flag_minority,
                        int64_t* afirst, int64_t ev, float sev, vector[int64_t]& v_row, vector[int64_t]& v_event,
                        vector[float]& v_sev, vector[int64_t]& c_row, vector[int64_t]& c_src) noexcept nogil:
    """One row of a group whose values were counted (``afirst``: each value's first row): its
    violation (every non-majority row, or each value's first row) and its relabelling."""
    if (flag_minority and a != best_a) or (not flag_minority and afirst[a] == row):
        v_row.push_back(row)
        v_event.push_back(ev)
        v_sev.push_back(sev)
    if a != best_a and best_a >= 0:  # no non-null value: nothing to relabel to
        c_row.push_back(row)
        c_src.push_back(best_first)


cdef bint _settle_group(int64_t k, int64_t n_ids, int parts, Py_ssize_t n, const fc_t* fc,
                        const int64_t* first_row, vector[dev_t]& dev, Py_ssize_t d_lo, Py_ssize_t d_hi,
                        int64_t null_code, bint flag_minority, vector[int64_t]& acount, vector[int64_t]& afirst,
                        vector[int64_t]& unrecorded, vector[int64_t]& v_row, vector[int64_t]& v_event,
                        vector[float]& v_sev, vector[int64_t]& anchor, vector[int64_t]& c_row,
                        vector[int64_t]& c_src, int64_t* ev) noexcept nogil:
    """Bad id ``k`` from pass 1 alone: per range its first value (``fc``, ``first_row``), held by
    every row there but its deviants ``dev[d_lo:d_hi]`` (ranges in order, rows in order). Emits
    its violations and corrections and returns False, or returns True (pass 2 needed) when a
    range's first value is not the majority and holds rows besides the first, whose rows pass 1
    did not keep. Rows are visited in row order: each range's first row, then its deviants."""
    cdef int p
    cdef Py_ssize_t j, j0, end
    cdef int64_t a, total = 0, best_cnt = -1, best_first = -1, best_a = -1, fr, anchor_row = -1
    cdef const fc_t* F
    cdef bint needs_rows = False
    cdef float sev
    # counts and first rows of each value
    j = d_lo
    for p in range(parts):
        F = &fc[p * n_ids + k]
        unrecorded[p] = 0
        if F.first < 0:
            continue
        end = n * (p + 1) // parts  # the range's rows end here
        fr = first_row[p * n_ids + k]
        if anchor_row < 0:
            anchor_row = fr
        j0 = j
        while j < d_hi and dev[j].row < end:
            j += 1
        unrecorded[p] = F.count - (j - j0)
        total += F.count
        acount[F.first] += unrecorded[p]
        if afirst[F.first] < 0:
            afirst[F.first] = fr
        for j0 in range(j0, j):
            a = dev[j0].attr
            acount[a] += 1
            if afirst[a] < 0:
                afirst[a] = dev[j0].row
    # the majority: most common non-null value, ties to the one seen first (visited in row order)
    j = d_lo
    for p in range(parts):
        F = &fc[p * n_ids + k]
        if F.first < 0:
            continue
        end = n * (p + 1) // parts
        fr = first_row[p * n_ids + k]
        a = F.first
        if a != null_code and afirst[a] == fr and acount[a] > best_cnt:
            best_cnt, best_first, best_a = acount[a], fr, a
        while j < d_hi and dev[j].row < end:
            a = dev[j].attr
            if a != null_code and afirst[a] == dev[j].row and acount[a] > best_cnt:
                best_cnt, best_first, best_a = acount[a], dev[j].row, a
            j += 1
    for p in range(parts):
        F = &fc[p * n_ids + k]
        if F.first >= 0 and F.first != best_a and unrecorded[p] > 1:
            needs_rows = True
    if not needs_rows:
        if best_cnt < 0:
            best_cnt = 0
        sev = <float>(total - best_cnt) / <float>total
        anchor.push_back(anchor_row)
        j = d_lo
        for p in range(parts):
            F = &fc[p * n_ids + k]
            if F.first < 0:
                continue
            end = n * (p + 1) // parts
            _visit(first_row[p * n_ids + k], F.first, best_a, best_first, flag_minority, afirst.data(), ev[0], sev,
                   v_row, v_event, v_sev, c_row, c_src)
            while j < d_hi and dev[j].row < end:
                _visit(dev[j].row, dev[j].attr, best_a, best_first, flag_minority, afirst.data(), ev[0], sev,
                       v_row, v_event, v_sev, c_row, c_src)
                j += 1
        ev[0] += 1
    # reset the counts for the next id
    for p in range(parts):
        F = &fc[p * n_ids + k]
        if F.first >= 0:
            acount[F.first] = 0
            afirst[F.first] = -1
    for j in range(d_lo, d_hi):
        acount[dev[j].attr] = 0
        afirst[dev[j].attr] = -1
    return needs_rows


def consistent(const key_t[::1] ids, int64_t id_offset, int64_t n_ids, const uint8_t[::1] id_valid,
               const key2_t[::1] attrs, int64_t attr_offset, int64_t n_attrs,
               const uint8_t[::1] attr_valid, bint flag_minority):
    """Identifiers whose rows carry more than one attribute value.

    A null attribute is a value of its own (code ``n_attrs``); rows with a null id are skipped.
    Returns ``(row, event, severity, anchor, corr_row, corr_src)``: violations flag the first row
    of each distinct value (``flag_minority=False``, the paper library's rows) or every row not
    holding the majority value; corrections relabel each minority row to the value found at
    ``corr_src`` (first row of the most common non-null value, ties to the earliest).
    """
    cdef const uint8_t* id_valid_p = valid_ptr(id_valid)
    cdef const uint8_t* attr_valid_p = valid_ptr(attr_valid)
    cdef Py_ssize_t n = ids.shape[0], i
    cdef int64_t k, a, null_code = n_attrs
    cdef bint small = n < INT32_MAX and n_attrs < INT32_MAX
    first = np.full(0 if small else max(n_ids, 0), -1, dtype=np.int64)
    bad = np.zeros(max(n_ids, 0), dtype=np.uint8)
    gstart = np.zeros(max(n_ids, 0) + 1, dtype=np.int64)
    cdef int64_t[::1] first_v = first
    cdef uint8_t[::1] bad_v = bad
    cdef int64_t[::1] gstart_v = gstart
    cdef vector[kv_t] sub
    cdef vector[int64_t] v_row, v_event, anchor, c_row, c_src
    cdef vector[float] v_sev
    cdef Py_ssize_t s, e, r, g_start, m
    cdef int64_t best_cnt, best_first, run_first, run_cnt, total, best_a, group_anchor, ev
    cdef float sev
    cdef vector[int64_t] acount, afirst, at
    cdef fc_t* fc = NULL
    cdef uint8_t* bads = NULL
    cdef int64_t* first_row = NULL
    cdef int parts = 1, p
    cdef vector[int64_t] dstart, unrecorded
    cdef int64_t* bad_ids = NULL
    cdef Py_ssize_t n_bad = 0
    cdef vector[apart[vector[dev_t]]] deviants  # padded: each range's thread pushes to its own
    cdef vector[dev_t] dev
    cdef Py_ssize_t j
    if attrs.shape[0] != n:
        raise ValueError("id and attribute columns differ in length")
    if small:
        parts = row_ranges(n, n_ids, _config.CONSISTENT_PARALLEL_MIN_ROWS, _config.CONSISTENT_PARTS)
        # per range: fc, bad flags, first rows (np.empty: each range's thread writes its own)
        fc_buf = np.empty(parts * max(n_ids, 0), dtype=np.int64)
        bads_buf = np.empty(parts * max(n_ids, 0), dtype=np.uint8)
        first_buf = np.empty(parts * max(n_ids, 0), dtype=np.int64)  # read only where fc saw the id
        fc = <fc_t*>cnp.PyArray_DATA(fc_buf)
        bads = <uint8_t*>cnp.PyArray_DATA(bads_buf)
        first_row = <int64_t*>cnp.PyArray_DATA(first_buf)
    bad_ids_buf = np.empty(max(n_ids, 0), dtype=np.int64)  # the bad ids, in order
    bad_ids = <int64_t*>cnp.PyArray_DATA(bad_ids_buf)
    ev = 0
    with nogil:
        if small:
            # pass 1: per id the first attribute seen (a different one marks the id bad) and its
            # row count, packed in 8 bytes: the working set of a first-attribute array alone,
            # and no separate counting pass. From CONSISTENT_PARALLEL_MIN_ROWS rows, one row
            # range per thread, each with its own counts, merged in row order.
            deviants.resize(parts)
            # one range runs through the parallel loop too: outlined there, the row loop keeps
            # its pointers in registers (inlined in this function it reloads them every row)
            for p in prange(parts, num_threads=parts, schedule="static"):
                _clear_range(fc + p * n_ids, bads + p * n_ids, n_ids)
                _first_attrs(&ids[0], id_offset, id_valid_p, &attrs[0], attr_offset, attr_valid_p, null_code,
                             n * p // parts, n * (p + 1) // parts, fc + p * n_ids, bads + p * n_ids,
                             first_row + p * n_ids, deviants[p].v)
            n_bad = _merge_ranges(fc, bads, parts, n_ids, &bad_v[0] if n_ids > 0 else NULL, bad_ids)
            if n_attrs < SMALL_ATTRS:
                # Most bad ids are settled by pass 1 alone: per range, the rows not recorded as
                # deviants hold its first value, and only the first of them needs a row unless
                # that value is the majority. The others stay bad for pass 2.
                dstart.resize(n_ids + 1)
                _deviants_by_id(deviants, parts, n_ids, dstart.data(), dev)
                acount.assign(n_attrs + 1, 0)
                afirst.assign(n_attrs + 1, -1)
                unrecorded.resize(parts)
                for j in range(n_bad):
                    k = bad_ids[j]
                    bad_v[k] = _settle_group(k, n_ids, parts, n, fc, first_row, dev, dstart[k], dstart[k + 1],
                                             null_code, flag_minority, acount, afirst, unrecorded,
                                             v_row, v_event, v_sev, anchor, c_row, c_src, &ev)
            if n_ids > 0:
                n_bad = _group_starts(fc, parts, n_ids, &bad_v[0], &gstart_v[0], bad_ids)
        else:  # the same in two passes with 64-bit state
            for i in range(n):
                if not is_valid(id_valid_p, i):
                    continue
                k = ids[i] - id_offset
                a = attrs[i] - attr_offset if is_valid(attr_valid_p, i) else null_code
                if first_v[k] < 0:
                    first_v[k] = a
                elif first_v[k] != a:
                    bad_v[k] = 1
            for i in range(n):
                if is_valid(id_valid_p, i):
                    k = ids[i] - id_offset
                    if bad_v[k]:
                        gstart_v[k + 1] += 1
            for k in range(n_ids):
                gstart_v[k + 1] += gstart_v[k]
                if bad_v[k]:
                    bad_ids[n_bad] = k
                    n_bad += 1
        # pass 2: counting sort of the bad ids' rows (arrival order kept): each range fills its
        # own slots of each group, after the earlier ranges' rows of it
        m = <Py_ssize_t>gstart_v[n_ids] if n_ids > 0 else 0
        sub.resize(m)
        if m:
            at.resize(parts * n_ids)  # read only at bad ids
            for j in range(n_bad):
                k = bad_ids[j]
                at[k] = gstart_v[k]
                for p in range(1, parts):
                    at[p * n_ids + k] = at[(p - 1) * n_ids + k] + fc[(p - 1) * n_ids + k].count
            for p in prange(parts, num_threads=parts, schedule="static"):  # one range too, as in pass 1
                _gather_bad(&ids[0], id_offset, id_valid_p, &attrs[0], attr_offset, attr_valid_p, null_code,
                            n * p // parts, n * (p + 1) // parts, &bad_v[0], at.data() + p * n_ids, sub.data())
        if n_attrs < SMALL_ATTRS:
            # few attribute values: count them per group in place (rows stay in arrival order)
            acount.assign(n_attrs + 1, 0)
            afirst.assign(n_attrs + 1, -1)
            for j in range(n_bad):
                k = bad_ids[j]
                s = gstart_v[k]
                e = gstart_v[k + 1]
                if e == s:
                    continue
                for r in range(s, e):
                    a = sub[r].first
                    if afirst[a] < 0:
                        afirst[a] = sub[r].second
                    acount[a] += 1
                best_cnt = -1
                best_first = -1
                best_a = -1
                for r in range(s, e):  # first occurrences come in row order: ties keep the earliest
                    a = sub[r].first
                    if a != null_code and afirst[a] == sub[r].second and acount[a] > best_cnt:
                        best_cnt = acount[a]
                        best_first = afirst[a]
                        best_a = a
                if best_cnt < 0:
                    best_cnt = 0
                total = e - s
                sev = <float>(total - best_cnt) / <float>total
                anchor.push_back(sub[s].second)
                for r in range(s, e):
                    _visit(sub[r].second, sub[r].first, best_a, best_first, flag_minority, afirst.data(), ev, sev,
                           v_row, v_event, v_sev, c_row, c_src)
                for r in range(s, e):
                    acount[sub[r].first] = 0
                    afirst[sub[r].first] = -1
                ev += 1
        else:  # many values: sort each group by (attribute, row)
            for j in range(n_bad):
                k = bad_ids[j]
                s = gstart_v[k]
                e = gstart_v[k + 1]
                if e == s:
                    continue
                cpp_sort(sub.begin() + s, sub.begin() + e)
                # runs of equal attribute inside [s, e): the majority is the most common non-null
                best_cnt = -1
                best_first = -1
                best_a = -1
                group_anchor = sub[s].second
                total = e - s
                r = s
                while r < e:
                    g_start = r
                    a = sub[r].first
                    run_first = sub[r].second
                    while r < e and sub[r].first == a:
                        r += 1
                    run_cnt = r - g_start
                    if run_first < group_anchor:
                        group_anchor = run_first
                    if a != null_code and (run_cnt > best_cnt or (run_cnt == best_cnt and run_first < best_first)):
                        best_cnt = run_cnt
                        best_first = run_first
                        best_a = a
                if best_cnt < 0:
                    best_cnt = 0
                sev = <float>(total - best_cnt) / <float>total
                anchor.push_back(group_anchor)
                r = s
                while r < e:
                    a = sub[r].first
                    if (not flag_minority and (r == s or sub[r - 1].first != a)) or \
                       (flag_minority and a != best_a):
                        v_row.push_back(sub[r].second)
                        v_event.push_back(ev)
                        v_sev.push_back(sev)
                    if a != best_a and best_a >= 0:
                        c_row.push_back(sub[r].second)
                        c_src.push_back(best_first)
                    r += 1
                ev += 1
    return (to_numpy[int64_t](v_row), to_numpy[int64_t](v_event), to_numpy[float](v_sev), to_numpy[int64_t](anchor),
            to_numpy[int64_t](c_row), to_numpy[int64_t](c_src))


# ----------------------------------------------------------------------------------------------
# rows.contiguous
# ----------------------------------------------------------------------------------------------
# Streaming limits: per id the last time and row (16 bytes) plus a ring of its last G + 1 gap
# times (touched only at gaps), and a 4-byte link per row. Used when that state is small;
# otherwise, or when an id's times go backwards in arrival order, the grouped path sorts per id.
cdef enum:
    STREAM_MAX_ALLOWED = 1024
    STREAM_SLOTS_PER_ROW = 8


cdef bint _contiguous_stream(const key_t[::1] ids, int64_t id_offset, int64_t n_ids,
                             const uint8_t[::1] id_valid, const int64_t[::1] times,
                             const uint8_t[::1] time_valid, int64_t window, int64_t step,
                             int64_t allowed, vector[int64_t]& v_row, vector[float]& v_sev,
                             vector[int64_t]& anchor) noexcept nogil:
    """One pass in arrival order; False (outputs cleared) when some id's times decrease.

    Equivalent to the per-start scan: with G = allowed // 2 + 1 gaps needed, a start p is
    flagged exactly at its G-th following gap q, provided u_q - u_p < window. So at each new gap
    of an id, the starts flagged are its distinct times in [time of its (G+1)-th latest gap,
    time of its G-th latest gap) within the window: found by walking back the id's chain of
    presences (``prev``), which only happens at gaps.
    """
    cdef const uint8_t* id_valid_p = valid_ptr(id_valid)
    cdef const uint8_t* time_valid_p = valid_ptr(time_valid)
    cdef Py_ssize_t n = ids.shape[0], i
    cdef int64_t G = allowed // 2 + 1, GR = allowed // 2 + 2
    cdef int64_t k, t, last, lr, gc, gp, lo_t, hi_t, et, slot, r
    cdef float sev = <float>(2 * G - allowed)
    # last[2k] = last distinct time of id k, last[2k+1] = its first row (-1: not seen yet)
    cdef vector[int64_t] last_v, gap_t, gap_m
    cdef vector[int32_t] prev    # previous distinct presence of the same id, per row
    last_v.resize(2 * n_ids, -1)
    gap_t.resize(n_ids * GR, 0)
    gap_m.resize(n_ids, 0)       # gap count (saturating at GR) | next slot << 32
    prev.resize(n, -1)
    for i in range(n):
        if not (is_valid(id_valid_p, i) and is_valid(time_valid_p, i)):
            continue
        k = ids[i] - id_offset
        t = times[i]
        lr = last_v[2 * k + 1]
        if lr >= 0:
            last = last_v[2 * k]
            if t == last:
                continue  # a repeated time is one presence
            if t < last:
                v_row.clear()
                v_sev.clear()
                anchor.clear()
                return False
            prev[i] = <int32_t>lr
            if <uint64_t>t - <uint64_t>last != <uint64_t>step:
                gc = gap_m[k] & <int64_t>0xFFFFFFFF
                gp = gap_m[k] >> 32
                gap_t[k * GR + gp] = t
                gp = 0 if gp + 1 == GR else gp + 1
                if gc < GR:
                    gc += 1
                gap_m[k] = gc | (gp << 32)
                if gc >= G:
                    # the G-th latest gap sits G slots back from the next slot; the (G+1)-th, GR back
                    slot = gp - G
                    if slot < 0:
                        slot += GR
                    hi_t = gap_t[k * GR + slot]
                    lo_t = gap_t[k * GR + gp] if gc > G else INT64_MIN
                    r = lr
                    while r >= 0:
                        et = times[r]
                        if et < lo_t or <uint64_t>t - <uint64_t>et >= <uint64_t>window:
                            break
                        if et < hi_t:
                            v_row.push_back(r)
                            v_row.push_back(i)
                            v_sev.push_back(sev)
                            v_sev.push_back(sev)
                            anchor.push_back(r)
                        r = prev[r]
        last_v[2 * k] = t
        last_v[2 * k + 1] = i
    return True


# Fast path when a violation is always a pair of consecutive presences: at most one transition
# allowed (a single gap exceeds it) and a window too short to reach back past the presence before
# a gap (the one before that is at least 1 + the smallest gap spacing earlier). The paper's
# defaults (window=3, allowed_transitions=1, frames) are such a case. State: 16 bytes per id.
cdef struct pres_t:
    int64_t t   # latest distinct time (INT64_MAX: id not seen)
    int64_t r   # its first row in arrival order (-1: id not seen)

cdef enum:
    PAIRS_BLOCK = 8192  # rows per growth of the pairs buffer
    PAIRS_UNROLL = 8    # rows per cache line of ids and times: one prefetch each
    PAIRS_PREFETCH = 256  # rows ahead: the hardware prefetcher alone leaves the loop waiting on L3
    PAIRS_MIN_SLOTS = 4096  # id slots first made when the id range is found while scanning

cdef enum:  # what a scan of rows ended with
    PAIRS_DECREASE = 0  # some id's times decrease (the caller takes a general path)
    PAIRS_DONE = 1
    PAIRS_GROW = 2      # an id outside the slots (only when ids are found while scanning)
    PAIRS_TOO_WIDE = 3  # ids spread over more than the allowed slots


cdef inline bint _pairs_first(pres_t* P, pres_t* F, int64_t t, Py_ssize_t i) noexcept nogil:
    """A row whose time is not later than its id's latest: a first presence (recorded), a
    repeat (its first row stays) or a decrease (False)."""
    if P.r < 0:
        if F != NULL:
            F.t = t
            F.r = i
        P.t = t
        P.r = i
        return True
    return t == P.t


cdef inline int _pairs_step(const key_t* ids, int64_t key_lo, uint64_t n_slots, const int64_t* times,
                            Py_ssize_t r, pres_t* S, pres_t* F, uint64_t gap_lo, uint64_t gap_span,
                            kv_t* out, Py_ssize_t* c) noexcept nogil:
    """Row ``r`` of ``_pairs_run``."""
    cdef uint64_t k = <uint64_t>ids[r] - <uint64_t>key_lo
    if tw_unlikely(k >= n_slots):
        return PAIRS_GROW
    cdef int64_t t = times[r]
    cdef pres_t* P = &S[k]
    cdef pres_t last = P[0]  # read once: the stores below may alias it as far as C knows
    if tw_unlikely(t <= last.t):
        return _pairs_first(P, &F[k] if F != NULL else NULL, t, r)  # DONE or DECREASE
    out[c[0]].first = last.r
    out[c[0]].second = r
    c[0] += (<uint64_t>t - <uint64_t>last.t) - gap_lo < gap_span  # exact: t > last.t
    P.t = t
    P.r = r
    return PAIRS_DONE


cdef inline int _pairs_run(const key_t* ids, int64_t key_lo, uint64_t n_slots, const int64_t* times,
                           Py_ssize_t* at, Py_ssize_t e, pres_t* S, pres_t* F, uint64_t gap_lo,
                           uint64_t gap_span, kv_t* out, Py_ssize_t* n_out) noexcept nogil:
    """Rows ``at[0] .. e`` without nulls; PAIRS_DONE, or why it stopped at row ``at[0]``.
    The loop is bound by instructions and by the wait on ids and times: each row writes its
    pair and counts it only at a short gap, so no branch follows the data (``out`` has room for
    ``e - at[0]`` more pairs), and blocks of eight rows (unrolled) prefetch their cache lines
    well ahead. An unseen id's time is INT64_MAX, so a first presence takes the branch a repeat
    takes."""
    cdef Py_ssize_t c = n_out[0], i = at[0], j
    cdef int status
    while i + PAIRS_UNROLL <= e:
        __builtin_prefetch(ids + i + PAIRS_PREFETCH)
        __builtin_prefetch(times + i + PAIRS_PREFETCH)
        for j in range(PAIRS_UNROLL):
            status = _pairs_step(ids, key_lo, n_slots, times, i + j, S, F, gap_lo, gap_span, out, &c)
            if status != PAIRS_DONE:
                n_out[0] = c
                at[0] = i + j
                return status
        i += PAIRS_UNROLL
    while i < e:
        status = _pairs_step(ids, key_lo, n_slots, times, i, S, F, gap_lo, gap_span, out, &c)
        if status != PAIRS_DONE:
            n_out[0] = c
            at[0] = i
            return status
        i += 1
    n_out[0] = c
    at[0] = e
    return PAIRS_DONE


cdef inline int _pairs_run_valid(const key_t* ids, const uint8_t* id_valid_p, const int64_t* times,
                                 const uint8_t* time_valid_p, int64_t key_lo, uint64_t n_slots, Py_ssize_t* at,
                                 Py_ssize_t e, pres_t* S, pres_t* F, uint64_t gap_lo, uint64_t gap_span,
                                 kv_t* out, Py_ssize_t* n_out) noexcept nogil:
    """``_pairs_run`` for columns with nulls: rows with a null id or time are skipped."""
    cdef Py_ssize_t c = n_out[0], i
    cdef int status
    for i in range(at[0], e):
        if is_valid(id_valid_p, i) and is_valid(time_valid_p, i):
            status = _pairs_step(ids, key_lo, n_slots, times, i, S, F, gap_lo, gap_span, out, &c)
            if status != PAIRS_DONE:
                n_out[0] = c
                at[0] = i
                return status
    n_out[0] = c
    at[0] = e
    return PAIRS_DONE


cdef inline void _seen_span(vector[pres_t]& S, Py_ssize_t* first, Py_ssize_t* stop) noexcept nogil:
    """The slots ``first .. stop`` from the first to the last id seen (``first == stop``: none)."""
    cdef Py_ssize_t a = 0, b = S.size()
    while a < b and S[a].r < 0:
        a += 1
    while b > a and S[b - 1].r < 0:
        b -= 1
    first[0] = a
    stop[0] = b


cdef bint _slots_grow(vector[pres_t]& S, vector[pres_t]& F, bint first, int64_t* key_lo, int64_t key,
                      uint64_t max_slots) noexcept nogil:
    """Re-make the id slots (``S``, and ``F`` when ``first``; slot 0 is id ``key_lo[0]``) to
    hold ``key`` and every id seen so far, at least doubled, with the room on the side that
    grew; False when those ids alone span more than ``max_slots``."""
    cdef Py_ssize_t n_slots = S.size(), j0, j1  # ids seen: slots j0 .. j1 - 1
    cdef bint seen
    cdef int64_t lo = key_lo[0], u_lo = key, u_hi = key, new_lo
    cdef uint64_t need, want, extra
    cdef pres_t unseen
    cdef vector[pres_t] T
    unseen.t = INT64_MAX
    unseen.r = -1
    _seen_span(S, &j0, &j1)
    seen = j0 < j1
    if seen:
        u_lo = min(key, <int64_t>(<uint64_t>lo + <uint64_t>j0))
        u_hi = max(key, <int64_t>(<uint64_t>lo + <uint64_t>(j1 - 1)))
    need = <uint64_t>u_hi - <uint64_t>u_lo + 1
    if need > max_slots:
        return False
    want = min(max(need, 2 * <uint64_t>n_slots, <uint64_t>PAIRS_MIN_SLOTS), max_slots)
    extra = want - need
    if key == u_lo and seen:  # grew down: room below, not past INT64_MIN
        extra = min(extra, <uint64_t>u_lo - <uint64_t>INT64_MIN)
        new_lo = <int64_t>(<uint64_t>u_lo - extra)
    else:  # room above, not past INT64_MAX
        new_lo = u_lo
        if want - 1 > <uint64_t>INT64_MAX - <uint64_t>u_lo:
            new_lo = <int64_t>(<uint64_t>INT64_MAX - (want - 1))
    T.assign(want, unseen)
    if seen:
        copy(S.begin() + j0, S.begin() + j1, T.begin() + (<uint64_t>lo + <uint64_t>j0 - <uint64_t>new_lo))
    S.swap(T)
    if first:
        T.assign(want, unseen)
        if seen:
            copy(F.begin() + j0, F.begin() + j1, T.begin() + (<uint64_t>lo + <uint64_t>j0 - <uint64_t>new_lo))
        F.swap(T)
    key_lo[0] = new_lo
    return True


cdef int _pairs_part(const key_t* ids, const uint8_t* id_valid_p, const int64_t* times,
                     const uint8_t* time_valid_p, Py_ssize_t lo, Py_ssize_t hi, int64_t window, int64_t step,
                     vector[pres_t]& S, vector[pres_t]& F, bint first, int64_t* key_lo, uint64_t max_slots,
                     vector[kv_t]& pairs) noexcept nogil:
    """Rows ``lo .. hi``: (previous presence row, row) at each gap shorter than ``window``, in
    row order. ``S``: per id slot (slot 0 is id ``key_lo[0]``; all unseen, or empty when the
    slots are to be found here, up to ``max_slots``) each id's latest presence at the end;
    ``F`` (when ``first``; as ``S``): each id's first presence in the part."""
    cdef Py_ssize_t i, b, e, n_out = pairs.size()
    cdef int status
    cdef bint nulls = id_valid_p != NULL or time_valid_p != NULL
    # violation iff step != d < window with d >= 1 and (in this path) window <= 3 if step == 1
    # else window <= 2: one unsigned range test
    cdef uint64_t gap_lo = 2 if step == 1 else 1
    cdef uint64_t gap_span = <uint64_t>(window - gap_lo) if window > <int64_t>gap_lo else 0
    b = lo
    while b < hi:
        e = min(b + PAIRS_BLOCK, hi)
        if <Py_ssize_t>pairs.size() < n_out + (e - b):  # room for every row of the block
            pairs.resize(max(2 * pairs.size(), <size_t>(n_out + (e - b))))
        i = b
        while True:
            if nulls:
                status = _pairs_run_valid(ids, id_valid_p, times, time_valid_p, key_lo[0], S.size(), &i, e,
                                          S.data(), F.data() if first else NULL, gap_lo, gap_span, pairs.data(),
                                          &n_out)
            else:
                status = _pairs_run(ids, key_lo[0], S.size(), times, &i, e, S.data(), F.data() if first else NULL,
                                    gap_lo, gap_span, pairs.data(), &n_out)
            if status != PAIRS_GROW:
                break
            if not _slots_grow(S, F, first, key_lo, ids[i], max_slots):
                return PAIRS_TOO_WIDE
        if status != PAIRS_DONE:
            return status
        b = e
    pairs.resize(n_out)
    return PAIRS_DONE


cdef int _contiguous_pairs(const key_t[::1] ids, int64_t id_offset, int64_t n_ids,
                           const uint8_t[::1] id_valid, const int64_t[::1] times,
                           const uint8_t[::1] time_valid, int64_t window, int64_t step,
                           int parts, vector[vector[kv_t]]& runs) noexcept nogil:
    """The fast path over ``parts`` row ranges in parallel, each with its own state, then joined
    id by id in row order (the gap across a cut; a time repeated across a cut keeps the earlier
    row). ``runs`` gets (start row, row) per violation: part 0's, then per later part the pairs
    across its cut and its own, each run in row order of the second row. Ids are dense codes
    (``id - id_offset`` in ``[0, n_ids)``) or, with ``n_ids < 0``, any values spread over at
    most ``-n_ids`` slots, found while scanning (PAIRS_TOO_WIDE when they are not)."""
    cdef Py_ssize_t n = ids.shape[0], p, e, j
    cdef int64_t k, glo, ghi, g
    cdef uint64_t d, max_slots = <uint64_t>(n_ids if n_ids >= 0 else -n_ids)
    cdef vector[vector[pres_t]] S, F
    cdef vector[pres_t] acc
    cdef vector[int64_t] key_lo
    cdef vector[Py_ssize_t] seen_lo, seen_hi  # per part: its seen ids' slots
    cdef Py_ssize_t a, b
    cdef vector[kv_t] remap
    cdef vector[kv_t].iterator at
    cdef vector[int] status
    cdef const uint8_t* id_valid_p = valid_ptr(id_valid)
    cdef const uint8_t* time_valid_p = valid_ptr(time_valid)
    cdef pres_t unseen
    cdef pres_t* Fp
    cdef pres_t* Sp
    unseen.t = INT64_MAX
    unseen.r = -1
    if n == 0:
        return PAIRS_DONE
    runs.resize(2 * parts - 1)  # part 0, then (across cut p, part p) for p >= 1
    S.resize(parts)
    F.resize(parts)
    key_lo.assign(parts, id_offset)
    status.assign(parts, PAIRS_DONE)
    if parts == 1:
        if n_ids >= 0:
            S[0].assign(n_ids, unseen)
        return _pairs_part(&ids[0], id_valid_p, &times[0], time_valid_p, 0, n, window, step,
                           S[0], F[0], False, &key_lo[0], max_slots, runs[0])
    for p in prange(parts, num_threads=parts, schedule="static"):
        if n_ids >= 0:  # each thread fills its own state (first touch in its cache)
            S[p].assign(n_ids, unseen)
            F[p].assign(n_ids, unseen)
        status[p] = _pairs_part(&ids[0], id_valid_p, &times[0], time_valid_p, n * p // parts, n * (p + 1) // parts,
                                window, step, S[p], F[p], True, &key_lo[p], max_slots, runs[0 if p == 0 else 2 * p])
    for p in range(parts):
        if status[p] != PAIRS_DONE:
            return status[p]
    # join: acc (slot g is id glo + g) accumulates every id's latest presence over parts 0 .. p,
    # over the span of the ids seen (the slots' spare room would make far-apart ranges look wide)
    glo = INT64_MAX
    ghi = INT64_MIN  # last id seen
    seen_lo.assign(parts, 0)
    seen_hi.assign(parts, 0)
    for p in range(parts):
        _seen_span(S[p], &a, &b)
        seen_lo[p] = a
        seen_hi[p] = b
        if a < b:
            glo = min(glo, <int64_t>(<uint64_t>key_lo[p] + <uint64_t>a))
            ghi = max(ghi, <int64_t>(<uint64_t>key_lo[p] + <uint64_t>(b - 1)))
    if glo > ghi:
        return PAIRS_DONE  # no present row
    if <uint64_t>ghi - <uint64_t>glo >= max_slots:
        return PAIRS_TOO_WIDE  # each range's ids fit, their union does not
    acc.assign(<uint64_t>ghi - <uint64_t>glo + 1, unseen)
    if seen_lo[0] < seen_hi[0]:
        copy(S[0].begin() + seen_lo[0], S[0].begin() + seen_hi[0],
             acc.begin() + (<uint64_t>key_lo[0] + <uint64_t>seen_lo[0] - <uint64_t>glo))
    for p in range(1, parts):
        remap.clear()  # (row, earlier row): a time repeated across the cut keeps its first row
        Fp = F[p].data()
        Sp = S[p].data()
        for j in range(seen_lo[p], seen_hi[p]):
            if Fp[j].r < 0:
                continue  # id absent from part p
            g = <int64_t>(<uint64_t>key_lo[p] + <uint64_t>j - <uint64_t>glo)
            if acc[g].r < 0:
                acc[g] = Sp[j]
                continue
            if Fp[j].t < acc[g].t:
                return PAIRS_DECREASE
            if Fp[j].t == acc[g].t:
                remap.push_back(kv_t(Fp[j].r, acc[g].r))
                if Sp[j].r != Fp[j].r:
                    acc[g] = Sp[j]
                continue
            d = <uint64_t>Fp[j].t - <uint64_t>acc[g].t
            if d != <uint64_t>step and d < <uint64_t>window:
                runs[2 * p - 1].push_back(kv_t(acc[g].r, Fp[j].r))
            acc[g] = Sp[j]
        if remap.size() == 0:
            continue
        cpp_sort(remap.begin(), remap.end())
        for e in range(<Py_ssize_t>runs[2 * p].size()):
            k = runs[2 * p][e].first
            at = cpp_lower_bound(remap.begin(), remap.end(), kv_t(k, INT64_MIN))
            if at != remap.end() and deref(at).first == k:
                runs[2 * p][e].first = deref(at).second
    return PAIRS_DONE


cdef void _write_pairs(vector[vector[kv_t]]& runs, int64_t* rows, int64_t* events, float* sev, float value,
                       int64_t* anchors) noexcept nogil:
    """Every run's pairs as violations in start-row order (the canonical order: each start
    opens one event, and a start row starts one pair at most). Runs come sorted or nearly
    (rows usually arrive in time order) and follow one another but for the pairs across a
    cut: each is sorted when it is not, then appended, or merged where it overlaps."""
    cdef vector[kv_t] done, merged
    cdef Py_ssize_t r, j, m
    for r in range(<Py_ssize_t>runs.size()):
        if runs[r].size() == 0:
            continue
        if not cpp_is_sorted(runs[r].begin(), runs[r].end()):
            cpp_sort(runs[r].begin(), runs[r].end())
        if done.size() == 0:
            done.swap(runs[r])
        elif done.back() < runs[r].front():
            done.insert(done.end(), runs[r].begin(), runs[r].end())
        else:
            merged.resize(done.size() + runs[r].size())
            cpp_merge(done.begin(), done.end(), runs[r].begin(), runs[r].end(), merged.begin())
            done.swap(merged)
    m = done.size()
    for j in range(m):
        rows[2 * j] = done[j].first
        rows[2 * j + 1] = done[j].second
        events[2 * j] = j
        events[2 * j + 1] = j
        sev[2 * j] = value
        sev[2 * j + 1] = value
        anchors[j] = done[j].first


cdef inline bint _pairs_apply(int64_t window, int64_t step, int64_t allowed) noexcept:
    """Whether the fast path applies: every violation is a pair of consecutive presences."""
    return allowed < 2 and window <= (3 if step == 1 else 2)


cdef object _contiguous_fast(const key_t[::1] ids, int64_t id_offset, int64_t n_ids, const uint8_t[::1] id_valid,
                             const int64_t[::1] times, const uint8_t[::1] time_valid,
                             int64_t window, int64_t step, int64_t allowed):
    """The fast path's (rows, events, severity, anchors), or its PAIRS_* status when it could
    not finish (``n_ids`` as for ``_contiguous_pairs``)."""
    cdef vector[vector[kv_t]] runs
    cdef Py_ssize_t n_pairs = 0, p
    cdef int64_t* w_rows
    cdef int64_t* w_events
    cdef int64_t* w_anchors
    cdef float* w_sev
    cdef int status
    cdef int parts = row_ranges(ids.shape[0], max(n_ids, 0), _config.CONTIGUOUS_PARALLEL_MIN_ROWS,
                                _config.CONTIGUOUS_PARTS)
    with nogil:
        status = _contiguous_pairs(ids, id_offset, n_ids, id_valid, times, time_valid, window, step, parts, runs)
    if status != PAIRS_DONE:
        return status
    for p in range(<Py_ssize_t>runs.size()):
        n_pairs += runs[p].size()
    out_rows = np.empty(2 * n_pairs, np.int64)
    out_events = np.empty(2 * n_pairs, np.int64)
    out_sev = np.empty(2 * n_pairs, np.float32)
    out_anchors = np.empty(n_pairs, np.int64)
    w_rows = <int64_t*>cnp.PyArray_DATA(out_rows)
    w_events = <int64_t*>cnp.PyArray_DATA(out_events)
    w_sev = <float*>cnp.PyArray_DATA(out_sev)
    w_anchors = <int64_t*>cnp.PyArray_DATA(out_anchors)
    with nogil:
        _write_pairs(runs, w_rows, w_events, w_sev, <float>(2 - allowed), w_anchors)
    return out_rows, out_events, out_sev, out_anchors


def contiguous_direct(const key_t[::1] ids, const uint8_t[::1] id_valid, const int64_t[::1] times,
                      const uint8_t[::1] time_valid, int64_t window, int64_t step, int64_t allowed,
                      int64_t max_slots):
    """``contiguous`` on an integer id column as it is (no dense codes: the ids' range is found
    while scanning, which spares ``tripwire._arrow.encode_keys`` its pass over the column), or
    ``None`` when that cannot finish: not the fast path's parameters, ids spread over more than
    ``max_slots`` values, or an id whose times decrease (the caller then encodes the ids and
    calls ``contiguous``). Cython only; called by ``tripwire.rows.contiguous``."""
    if times.shape[0] != ids.shape[0]:
        raise ValueError("id and time columns differ in length")
    if max_slots < 1 or not _pairs_apply(window, step, allowed):
        return None
    fast = _contiguous_fast(ids, 0, -max_slots, id_valid, times, time_valid, window, step, allowed)
    return None if isinstance(fast, int) else fast


def contiguous(const key_t[::1] ids, int64_t id_offset, int64_t n_ids, const uint8_t[::1] id_valid,
               const int64_t[::1] times, const uint8_t[::1] time_valid,
               int64_t window, int64_t step, int64_t allowed):
    """Identifiers that disappear and reappear too often within ``window`` time units.

    Per id, distinct times in ascending order (a repeated time is one presence; its first row in
    arrival order stands for it). From each start time ``t_i``, later times ``t_j`` with
    ``t_j - t_i < window`` are scanned; each step that is not ``+step`` adds two transitions
    (a disappearance and a reappearance). Once the count exceeds ``allowed``, rows ``i`` and
    ``j`` form one violation (severity: transitions over the limit) and the scan moves to the
    next start. Rows with a null id or time are skipped.
    """
    cdef const uint8_t* id_valid_p = valid_ptr(id_valid)
    cdef const uint8_t* time_valid_p = valid_ptr(time_valid)
    cdef Py_ssize_t n = ids.shape[0], i, j, p, q, g, lo, hi, nu
    cdef int64_t k, trans, t0
    cdef bint sorted_group
    if times.shape[0] != n:
        raise ValueError("id and time columns differ in length")
    cdef int64_t[::1] st, od
    cdef vector[int64_t] v_row, v_event, anchor
    cdef vector[float] v_sev
    cdef vector[kv_t] buf          # (time, row) of one group, sorted only when needed
    cdef vector[int64_t] ut, ur    # distinct times of one group and their first rows
    cdef int64_t ev = 0, m = 0
    cdef bint streamed = False
    cdef object fast
    if _pairs_apply(window, step, allowed) and n_ids <= STREAM_SLOTS_PER_ROW * n + 65536:
        fast = _contiguous_fast(ids, id_offset, n_ids, id_valid, times, time_valid, window, step, allowed)
        if not isinstance(fast, int):
            return fast
    if n < 2**31 - 1 and allowed < STREAM_MAX_ALLOWED and \
            n_ids * (allowed // 2 + 4) <= STREAM_SLOTS_PER_ROW * n + 65536:
        with nogil:
            streamed = _contiguous_stream(ids, id_offset, n_ids, id_valid, times, time_valid,
                                          window, step, allowed, v_row, v_sev, anchor)
    if streamed:
        events = np.repeat(np.arange(anchor.size(), dtype=np.int64), 2)
        return to_numpy[int64_t](v_row), events, to_numpy[float](v_sev), to_numpy[int64_t](anchor)
    st = np.zeros(max(n_ids, 0) + 1, dtype=np.int64)
    od = np.empty(n, dtype=np.int64)
    with nogil:
        # counting sort by id code: groups in code order, rows in arrival order
        for i in range(n):
            if is_valid(id_valid_p, i) and is_valid(time_valid_p, i):
                st[ids[i] - id_offset + 1] += 1
        for g in range(n_ids):
            st[g + 1] += st[g]
        for i in range(n):
            if is_valid(id_valid_p, i) and is_valid(time_valid_p, i):
                k = ids[i] - id_offset
                od[st[k]] = i
                st[k] += 1
        # st[k] now holds the end of group k; walk groups
        lo = 0
        for g in range(n_ids):
            hi = st[g]
            if hi - lo < 2:
                lo = hi
                continue
            sorted_group = True
            for p in range(lo + 1, hi):
                if times[od[p]] < times[od[p - 1]]:
                    sorted_group = False
                    break
            ut.clear()
            ur.clear()
            if sorted_group:
                for p in range(lo, hi):
                    if ut.size() == 0 or times[od[p]] != ut.back():
                        ut.push_back(times[od[p]])
                        ur.push_back(od[p])
            else:
                buf.clear()
                for p in range(lo, hi):
                    buf.push_back(kv_t(times[od[p]], od[p]))
                cpp_sort(buf.begin(), buf.end())
                for p in range(<Py_ssize_t>buf.size()):
                    if ut.size() == 0 or buf[p].first != ut.back():
                        ut.push_back(buf[p].first)
                        ur.push_back(buf[p].second)
            nu = <Py_ssize_t>ut.size()
            for p in range(nu):
                trans = 0
                t0 = ut[p]
                for q in range(p + 1, nu):
                    if <uint64_t>ut[q] - <uint64_t>t0 >= <uint64_t>window:  # no overflow: ut[q] >= t0
                        break
                    if <uint64_t>ut[q] - <uint64_t>ut[q - 1] != <uint64_t>step:
                        trans += 2
                    if trans > allowed:
                        v_row.push_back(ur[p])
                        v_row.push_back(ur[q])
                        v_event.push_back(ev)
                        v_event.push_back(ev)
                        v_sev.push_back(<float>(trans - allowed))
                        v_sev.push_back(<float>(trans - allowed))
                        anchor.push_back(ur[p])
                        ev += 1
                        break
            lo = hi
    return to_numpy[int64_t](v_row), to_numpy[int64_t](v_event), to_numpy[float](v_sev), to_numpy[int64_t](anchor)


# ----------------------------------------------------------------------------------------------
# rows.check: boolean results -> rows
# ----------------------------------------------------------------------------------------------
def bitmap_rows(const uint8_t[::1] bits, int64_t bit_offset, int64_t n,
                const uint8_t[::1] valid_bits, int64_t valid_offset):
    """Rows whose bit is set in an Arrow boolean bitmap (and in its validity bitmap, if any)."""
    cdef vector[int64_t] rows
    cdef int64_t i, b, vb
    cdef bint has_valid = valid_bits.shape[0] > 0
    with nogil:
        i = 0
        while i < n:
            b = i + bit_offset
            # skip a whole zero byte when aligned
            if (b & 7) == 0 and i + 8 <= n and bits[b >> 3] == 0:
                i += 8
                continue
            if (bits[b >> 3] >> (b & 7)) & 1:
                if has_valid:
                    vb = i + valid_offset
                    if (valid_bits[vb >> 3] >> (vb & 7)) & 1:
                        rows.push_back(i)
                else:
                    rows.push_back(i)
            i += 1
    return to_numpy[int64_t](rows)


def positive_rows(const double[::1] values, const uint8_t[::1] valid):
    """Rows whose numeric result is > 0 (NaN and nulls are not), with the value as severity."""
    cdef const uint8_t* valid_p = valid_ptr(valid)
    cdef vector[int64_t] rows
    cdef vector[float] sev
    cdef Py_ssize_t i, n = values.shape[0]
    with nogil:
        for i in range(n):
            if values[i] > 0 and is_valid(valid_p, i):
                rows.push_back(i)
                sev.push_back(<float>values[i])
    return to_numpy[int64_t](rows), to_numpy[float](sev)


# ----------------------------------------------------------------------------------------------
# rows.check: native expression programs
# ----------------------------------------------------------------------------------------------
# Opcodes (tripwire._expr.compile_program emits them; keep the numbers in sync).
cdef enum:
    OP_CMP_CONST_F = 1  # a=column, b=cmp, c=constant index   (compare as float64)
    OP_CMP_CONST_I = 2  # a=column, b=cmp, c=constant index   (compare as int64)
    OP_CMP_COL_F = 3  # a=column, b=cmp, c=column            (both as float64)
    OP_CMP_COL_I = 4  # a=column, b=cmp, c=column            (both as int64)
    OP_AND = 5
    OP_OR = 6
    OP_NOT = 7
    OP_ISNAN = 8  # a=column
    OP_ISFINITE = 9  # a=column
    OP_TRUE = 10
    MAX_STACK = 32

cdef enum:
    BLOCK = 1024

# dtype codes (tripwire._expr.DTYPE_CODES)
cdef enum:
    DT_F32 = 0
    DT_F64 = 1
    DT_I8 = 2
    DT_I16 = 3
    DT_I32 = 4
    DT_I64 = 5
    DT_U8 = 6
    DT_U16 = 7
    DT_U32 = 8
    DT_U64 = 9


# The hot loops are C++ templates so that ``__restrict`` tells the compiler the byte mask never
# aliases the column: without it gcc keeps every store ordered and the loops stay scalar (3x slower).
cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #include <string.h>
    #include <vector>
    template <typename T, typename C>
    static inline void tw_cmp_const(const T* __restrict x, ptrdiff_t n, int cmp, C c, uint8_t* __restrict out) {
        switch (cmp) {
        case 0: for (ptrdiff_t i = 0; i < n; ++i) out[i] = (C)x[i] < c; break;
        case 1: for (ptrdiff_t i = 0; i < n; ++i) out[i] = (C)x[i] <= c; break;
        case 2: for (ptrdiff_t i = 0; i < n; ++i) out[i] = (C)x[i] > c; break;
        case 3: for (ptrdiff_t i = 0; i < n; ++i) out[i] = (C)x[i] >= c; break;
        case 4: for (ptrdiff_t i = 0; i < n; ++i) out[i] = (C)x[i] == c; break;
        default: for (ptrdiff_t i = 0; i < n; ++i) out[i] = (C)x[i] != c; break;
        }
    }
    template <typename C>
    static inline void tw_cmp_cols(const C* __restrict a, const C* __restrict b, ptrdiff_t n, int cmp, uint8_t* __restrict out) {
        switch (cmp) {
        case 0: for (ptrdiff_t i = 0; i < n; ++i) out[i] = a[i] < b[i]; break;
        case 1: for (ptrdiff_t i = 0; i < n; ++i) out[i] = a[i] <= b[i]; break;
        case 2: for (ptrdiff_t i = 0; i < n; ++i) out[i] = a[i] > b[i]; break;
        case 3: for (ptrdiff_t i = 0; i < n; ++i) out[i] = a[i] >= b[i]; break;
        case 4: for (ptrdiff_t i = 0; i < n; ++i) out[i] = a[i] == b[i]; break;
        default: for (ptrdiff_t i = 0; i < n; ++i) out[i] = a[i] != b[i]; break;
        }
    }
    template <typename T, typename C>
    static inline void tw_load(const T* __restrict x, ptrdiff_t n, C* __restrict out) {
        for (ptrdiff_t i = 0; i < n; ++i) out[i] = (C)x[i];
    }
    static inline void tw_and(uint8_t* __restrict a, const uint8_t* __restrict b, ptrdiff_t n) {
        for (ptrdiff_t i = 0; i < n; ++i) a[i] &= b[i];
    }
    static inline void tw_or(uint8_t* __restrict a, const uint8_t* __restrict b, ptrdiff_t n) {
        for (ptrdiff_t i = 0; i < n; ++i) a[i] |= b[i];
    }
    static inline void tw_not(uint8_t* __restrict a, ptrdiff_t n) {
        for (ptrdiff_t i = 0; i < n; ++i) a[i] ^= 1;
    }
    /* rows where the mask is set; skips 32 zero bytes at a time (violations are rare) */
    static inline void tw_emit(const uint8_t* __restrict m, ptrdiff_t n, int64_t base, std::vector<int64_t>& rows) {
        ptrdiff_t i = 0;
        for (; i + 32 <= n; i += 32) {
            uint64_t w[4];
            memcpy(w, m + i, 32);
            if ((w[0] | w[1] | w[2] | w[3]) == 0) continue;
            for (ptrdiff_t j = i; j < i + 32; ++j) if (m[j]) rows.push_back(base + j);
        }
        for (; i < n; ++i) if (m[i]) rows.push_back(base + i);
    }

    /* One float32 column against one float32 constant: compare a vector, take its sign bits,
       emit set bits with count-trailing-zeros. No byte mask is written or re-read. SSE2 is the
       x86-64 baseline; an AVX2 clone is chosen at run time; other CPUs get the scalar loop. */
    template <int CMP> static inline bool tw_cmp1(float a, float c) {
        return CMP == 0 ? a < c : CMP == 1 ? a <= c : CMP == 2 ? a > c : CMP == 3 ? a >= c
             : CMP == 4 ? a == c : a != c;
    }
    template <int CMP>
    static void tw_scan_f32_scalar(const float* x, ptrdiff_t i, ptrdiff_t n, float c, std::vector<int64_t>& rows) {
        for (; i < n; ++i) if (tw_cmp1<CMP>(x[i], c)) rows.push_back(i);
    }
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    template <int CMP> static inline int tw_mask4(__m128 a, __m128 c) {
        return _mm_movemask_ps(CMP == 0 ? _mm_cmplt_ps(a, c) : CMP == 1 ? _mm_cmple_ps(a, c)
            : CMP == 2 ? _mm_cmpgt_ps(a, c) : CMP == 3 ? _mm_cmpge_ps(a, c)
            : CMP == 4 ? _mm_cmpeq_ps(a, c) : _mm_cmpneq_ps(a, c));
    }
    template <int CMP>
    static void tw_scan_f32_sse2(const float* x, ptrdiff_t n, float c, std::vector<int64_t>& rows) {
        const __m128 vc = _mm_set1_ps(c);
        ptrdiff_t i = 0;
        for (; i + 16 <= n; i += 16) {
            unsigned m = tw_mask4<CMP>(_mm_loadu_ps(x + i), vc)
                       | tw_mask4<CMP>(_mm_loadu_ps(x + i + 4), vc) << 4
                       | tw_mask4<CMP>(_mm_loadu_ps(x + i + 8), vc) << 8
                       | tw_mask4<CMP>(_mm_loadu_ps(x + i + 12), vc) << 12;
            while (m) { rows.push_back(i + __builtin_ctz(m)); m &= m - 1; }
        }
        tw_scan_f32_scalar<CMP>(x, i, n, c, rows);
    }
    template <int CMP>
    __attribute__((target("avx2"))) static void tw_scan_f32_avx2(const float* x, ptrdiff_t n, float c, std::vector<int64_t>& rows) {
        const int P = CMP == 0 ? _CMP_LT_OQ : CMP == 1 ? _CMP_LE_OQ : CMP == 2 ? _CMP_GT_OQ
                    : CMP == 3 ? _CMP_GE_OQ : CMP == 4 ? _CMP_EQ_OQ : _CMP_NEQ_UQ;
        const __m256 vc = _mm256_set1_ps(c);
        ptrdiff_t i = 0;
        for (; i + 32 <= n; i += 32) {
            uint64_t m = (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vc, P))
                       | (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 8), vc, P)) << 8
                       | (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 16), vc, P)) << 16
                       | (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 24), vc, P)) << 24;
            while (m) { rows.push_back(i + __builtin_ctzll(m)); m &= m - 1; }
        }
        tw_scan_f32_scalar<CMP>(x, i, n, c, rows);
    }
    template <int CMP>
    static void tw_scan_f32_t(const float* x, ptrdiff_t n, float c, std::vector<int64_t>& rows) {
        static const bool avx2 = __builtin_cpu_supports("avx2");
        if (avx2) tw_scan_f32_avx2<CMP>(x, n, c, rows); else tw_scan_f32_sse2<CMP>(x, n, c, rows);
    }
    #else
    template <int CMP>
    static void tw_scan_f32_t(const float* x, ptrdiff_t n, float c, std::vector<int64_t>& rows) {
        tw_scan_f32_scalar<CMP>(x, 0, n, c, rows);
    }
    #endif
    static void tw_scan_f32(const float* x, ptrdiff_t n, int cmp, float c, std::vector<int64_t>& rows) {
        switch (cmp) {
        case 0: tw_scan_f32_t<0>(x, n, c, rows); break;
        case 1: tw_scan_f32_t<1>(x, n, c, rows); break;
        case 2: tw_scan_f32_t<2>(x, n, c, rows); break;
        case 3: tw_scan_f32_t<3>(x, n, c, rows); break;
        case 4: tw_scan_f32_t<4>(x, n, c, rows); break;
        default: tw_scan_f32_t<5>(x, n, c, rows); break;
        }
    }
    """
    void tw_cmp_const[T, C](const T* x, Py_ssize_t n, int cmp, C c, uint8_t* out) noexcept nogil
    void tw_cmp_cols[C](const C* a, const C* b, Py_ssize_t n, int cmp, uint8_t* out) noexcept nogil
    void tw_load[T, C](const T* x, Py_ssize_t n, C* out) noexcept nogil
    void tw_and(uint8_t* a, const uint8_t* b, Py_ssize_t n) noexcept nogil
    void tw_or(uint8_t* a, const uint8_t* b, Py_ssize_t n) noexcept nogil
    void tw_not(uint8_t* a, Py_ssize_t n) noexcept nogil
    void tw_emit(const uint8_t* m, Py_ssize_t n, int64_t base, vector[int64_t]& rows) noexcept nogil
    void tw_scan_f32(const float* x, Py_ssize_t n, int cmp, float c, vector[int64_t]& rows) noexcept nogil


cdef inline int _exact_f32(double c, int cmp, float* f) noexcept nogil:
    """Rewrite ``x <cmp> c`` for float32 x as an exact float32 comparison ``x <cmp'> f``.

    With f the largest float32 <= c, x > c <=> x > f and x < c <=> x <= f whenever c is not
    itself a float32 (then x == c never holds and x != c always does). Returns the new cmp,
    -1 when no row can match, -2 when every row matches, -3 when c is NaN (compare in double).
    """
    cdef float v = <float>c
    if c != c:
        return -3
    if <double>v == c:
        f[0] = v
        return cmp
    if <double>v > c:
        v = nextafterf(v, -INFINITY)
    f[0] = v
    if cmp == 0 or cmp == 1:
        return 1
    if cmp == 2 or cmp == 3:
        return 2
    return -1 if cmp == 4 else -2


cdef inline void _cmp_f32(const float* x, Py_ssize_t n, int cmp, double c, uint8_t* out) noexcept nogil:
    # float32 vs a float64 constant, exactly and at float32 vector width
    cdef float f = 0
    cdef int k = _exact_f32(c, cmp, &f)
    if k >= 0:
        tw_cmp_const[float, float](x, n, k, f, out)
    elif k == -1:
        memset(out, 0, n)
    elif k == -2:
        memset(out, 1, n)
    else:
        tw_cmp_const[float, double](x, n, cmp, c, out)


cdef void _load_col_d(const void* base, int dt, Py_ssize_t s, Py_ssize_t n, double* out) noexcept nogil:
    if dt == DT_F32: tw_load[float, double](<const float*>base + s, n, out)
    elif dt == DT_F64: tw_load[double, double](<const double*>base + s, n, out)
    elif dt == DT_I8: tw_load[int8_t, double](<const int8_t*>base + s, n, out)
    elif dt == DT_I16: tw_load[int16_t, double](<const int16_t*>base + s, n, out)
    elif dt == DT_I32: tw_load[int32_t, double](<const int32_t*>base + s, n, out)
    elif dt == DT_I64: tw_load[int64_t, double](<const int64_t*>base + s, n, out)
    elif dt == DT_U8: tw_load[uint8_t, double](<const uint8_t*>base + s, n, out)
    elif dt == DT_U16: tw_load[uint16_t, double](<const uint16_t*>base + s, n, out)
    elif dt == DT_U32: tw_load[uint32_t, double](<const uint32_t*>base + s, n, out)
    else: tw_load[uint64_t, double](<const uint64_t*>base + s, n, out)


cdef void _load_col_i(const void* base, int dt, Py_ssize_t s, Py_ssize_t n, int64_t* out) noexcept nogil:
    if dt == DT_I8: tw_load[int8_t, int64_t](<const int8_t*>base + s, n, out)
    elif dt == DT_I16: tw_load[int16_t, int64_t](<const int16_t*>base + s, n, out)
    elif dt == DT_I32: tw_load[int32_t, int64_t](<const int32_t*>base + s, n, out)
    elif dt == DT_I64: tw_load[int64_t, int64_t](<const int64_t*>base + s, n, out)
    elif dt == DT_U8: tw_load[uint8_t, int64_t](<const uint8_t*>base + s, n, out)
    elif dt == DT_U16: tw_load[uint16_t, int64_t](<const uint16_t*>base + s, n, out)
    else: tw_load[uint32_t, int64_t](<const uint32_t*>base + s, n, out)


cdef void _cmp_col_const_d(const void* base, int dt, Py_ssize_t s, Py_ssize_t n, int cmp, double c,
                           uint8_t* out) noexcept nogil:
    if dt == DT_F32: _cmp_f32(<const float*>base + s, n, cmp, c, out)
    elif dt == DT_F64: tw_cmp_const[double, double](<const double*>base + s, n, cmp, c, out)
    elif dt == DT_I8: tw_cmp_const[int8_t, double](<const int8_t*>base + s, n, cmp, c, out)
    elif dt == DT_I16: tw_cmp_const[int16_t, double](<const int16_t*>base + s, n, cmp, c, out)
    elif dt == DT_I32: tw_cmp_const[int32_t, double](<const int32_t*>base + s, n, cmp, c, out)
    elif dt == DT_I64: tw_cmp_const[int64_t, double](<const int64_t*>base + s, n, cmp, c, out)
    elif dt == DT_U8: tw_cmp_const[uint8_t, double](<const uint8_t*>base + s, n, cmp, c, out)
    elif dt == DT_U16: tw_cmp_const[uint16_t, double](<const uint16_t*>base + s, n, cmp, c, out)
    elif dt == DT_U32: tw_cmp_const[uint32_t, double](<const uint32_t*>base + s, n, cmp, c, out)
    else: tw_cmp_const[uint64_t, double](<const uint64_t*>base + s, n, cmp, c, out)


cdef void _cmp_col_const_i(const void* base, int dt, Py_ssize_t s, Py_ssize_t n, int cmp, int64_t c,
                           uint8_t* out) noexcept nogil:
    if dt == DT_I8: tw_cmp_const[int8_t, int64_t](<const int8_t*>base + s, n, cmp, c, out)
    elif dt == DT_I16: tw_cmp_const[int16_t, int64_t](<const int16_t*>base + s, n, cmp, c, out)
    elif dt == DT_I32: tw_cmp_const[int32_t, int64_t](<const int32_t*>base + s, n, cmp, c, out)
    elif dt == DT_I64: tw_cmp_const[int64_t, int64_t](<const int64_t*>base + s, n, cmp, c, out)
    elif dt == DT_U8: tw_cmp_const[uint8_t, int64_t](<const uint8_t*>base + s, n, cmp, c, out)
    elif dt == DT_U16: tw_cmp_const[uint16_t, int64_t](<const uint16_t*>base + s, n, cmp, c, out)
    else: tw_cmp_const[uint32_t, int64_t](<const uint32_t*>base + s, n, cmp, c, out)


cdef void _isnan_col(const void* base, int dt, Py_ssize_t s, Py_ssize_t n, bint finite, uint8_t* out) noexcept nogil:
    cdef Py_ssize_t i
    if dt == DT_F32:
        for i in range(n):
            out[i] = isfinite((<const float*>base)[s + i]) if finite else isnan((<const float*>base)[s + i])
    elif dt == DT_F64:
        for i in range(n):
            out[i] = isfinite((<const double*>base)[s + i]) if finite else isnan((<const double*>base)[s + i])
    else:  # integers are always finite, never NaN
        memset(out, 1 if finite else 0, n)


def check_program(const int64_t[:, ::1] program, const double[::1] fconsts, const int64_t[::1] iconsts,
                  object columns, const int64_t[::1] dtypes, int64_t n):
    """Rows where a compiled boolean expression holds.

    ``program`` is postfix: one ``(opcode, a, b, c)`` row per instruction; ``columns`` are
    1-D contiguous NumPy arrays (no nulls: the caller routes nullable inputs to Arrow).
    Evaluates ``BLOCK`` rows at a time on a small stack of byte masks held in L1.
    """
    cdef Py_ssize_t n_ins = program.shape[0], n_cols = len(columns), ci
    cdef vector[const void*] ptrs
    keep = []
    for ci in range(n_cols):
        arr = np.ascontiguousarray(columns[ci])
        if arr.shape[0] != n:
            raise ValueError("column lengths differ")
        keep.append(arr)
        ptrs.push_back(<const void*><size_t>arr.ctypes.data)
    cdef vector[int64_t] rows
    cdef uint8_t stack[MAX_STACK][BLOCK]
    cdef double da[BLOCK]
    cdef double db[BLOCK]
    cdef int64_t ia[BLOCK]
    cdef int64_t ib[BLOCK]
    cdef Py_ssize_t s, m, i, pc, sp, w
    cdef int64_t op, a, b, c
    for pc in range(n_ins):
        op = program[pc, 0]
        if op < OP_CMP_CONST_F or op > OP_TRUE:
            raise ValueError(f"bad opcode {op}")
    cdef float f32c = 0
    cdef int fast = -3
    if n_ins == 1 and program[0, 0] == OP_CMP_CONST_F and dtypes[program[0, 1]] == DT_F32:
        fast = _exact_f32(fconsts[program[0, 3]], <int>program[0, 2], &f32c)
    if fast >= 0 or fast == -1:
        # the commonest check, one float32 column against a constant: a SIMD scan, no mask
        if fast >= 0:
            with nogil:
                tw_scan_f32(<const float*>ptrs[program[0, 1]], n, fast, f32c, rows)
        return to_numpy[int64_t](rows)
    with nogil:
        s = 0
        while s < n:
            m = BLOCK if n - s > BLOCK else n - s
            sp = 0
            for pc in range(n_ins):
                op = program[pc, 0]
                a = program[pc, 1]
                b = program[pc, 2]
                c = program[pc, 3]
                if op == OP_CMP_CONST_F:
                    _cmp_col_const_d(ptrs[a], <int>dtypes[a], s, m, <int>b, fconsts[c], &stack[sp][0])
                    sp += 1
                elif op == OP_CMP_CONST_I:
                    _cmp_col_const_i(ptrs[a], <int>dtypes[a], s, m, <int>b, iconsts[c], &stack[sp][0])
                    sp += 1
                elif op == OP_CMP_COL_F:
                    _load_col_d(ptrs[a], <int>dtypes[a], s, m, &da[0])
                    _load_col_d(ptrs[c], <int>dtypes[c], s, m, &db[0])
                    tw_cmp_cols[double](&da[0], &db[0], m, <int>b, &stack[sp][0])
                    sp += 1
                elif op == OP_CMP_COL_I:
                    _load_col_i(ptrs[a], <int>dtypes[a], s, m, &ia[0])
                    _load_col_i(ptrs[c], <int>dtypes[c], s, m, &ib[0])
                    tw_cmp_cols[int64_t](&ia[0], &ib[0], m, <int>b, &stack[sp][0])
                    sp += 1
                elif op == OP_AND:
                    sp -= 1
                    tw_and(&stack[sp - 1][0], &stack[sp][0], m)
                elif op == OP_OR:
                    sp -= 1
                    tw_or(&stack[sp - 1][0], &stack[sp][0], m)
                elif op == OP_NOT:
                    tw_not(&stack[sp - 1][0], m)
                elif op == OP_ISNAN or op == OP_ISFINITE:
                    _isnan_col(ptrs[a], <int>dtypes[a], s, m, op == OP_ISFINITE, &stack[sp][0])
                    sp += 1
                else:  # OP_TRUE
                    memset(&stack[sp][0], 1, m)
                    sp += 1
            tw_emit(&stack[0][0], m, s, rows)
            s += m
    return to_numpy[int64_t](rows)


# ----------------------------------------------------------------------------------------------
# every assertion: is a kernel's output already in canonical event order?
# ----------------------------------------------------------------------------------------------
cdef bint _events_canonical(const int64_t[::1] rows, const int64_t[::1] events,
                            const int64_t[::1] anchors) noexcept nogil:
    cdef Py_ssize_t i, n = rows.shape[0], m = anchors.shape[0]
    if events.shape[0] != n or n == 0:
        return False
    for i in range(1, m):
        if anchors[i] <= anchors[i - 1]:
            return False
    if events[0] != 0 or events[n - 1] != m - 1:
        return False
    for i in range(1, n):
        if events[i] == events[i - 1]:
            if rows[i] <= rows[i - 1]:
                return False
        elif events[i] != events[i - 1] + 1:
            return False
    return True


cdef inline void _minmax_rows(const key_t* values, const uint8_t* valid, Py_ssize_t lo, Py_ssize_t hi,
                              int64_t* out_lo, int64_t* out_hi) noexcept nogil:
    """Min and max of the present values in rows ``lo .. hi`` (none: INT64_MAX, INT64_MIN)."""
    if valid != NULL:
        valid += lo
    if key_t is int32_t:
        tw_minmax_i32(values + lo, hi - lo, valid, out_lo, out_hi)
    else:
        tw_minmax_i64(values + lo, hi - lo, valid, out_lo, out_hi)


def int_min_max(const key_t[::1] values, const uint8_t[::1] valid):
    """``(min, max)`` of the present values of an int64 or int32 column (``valid`` empty: all
    present), or ``None`` when none is. Called by ``tripwire._arrow`` to size dense key codes:
    one pass, vectorized, on two threads from ``_config.KEY_PARALLEL_MIN_ROWS`` rows."""
    cdef Py_ssize_t n = values.shape[0], p
    cdef const uint8_t* valid_p = valid_ptr(valid)
    cdef int parts = 2 if n >= _config.KEY_PARALLEL_MIN_ROWS and tw_max_threads() > 1 else 1
    cdef int64_t lo[2]
    cdef int64_t hi[2]
    if valid_p != NULL and valid.shape[0] != n:
        raise ValueError("values and validity differ in length")
    lo[1] = INT64_MAX
    hi[1] = INT64_MIN
    if n == 0:
        return None
    with nogil:
        if parts == 1:
            _minmax_rows(&values[0], valid_p, 0, n, &lo[0], &hi[0])
        else:
            for p in prange(2, num_threads=2, schedule="static"):
                _minmax_rows(&values[0], valid_p, n * p // 2, n * (p + 1) // 2, &lo[p], &hi[p])
    if min(lo[0], lo[1]) > max(hi[0], hi[1]):
        return None  # nothing present
    return min(lo[0], lo[1]), max(hi[0], hi[1])


def int_min_max_many(list columns):
    """``int_min_max`` of several columns in one parallel region: ``columns`` is a list of
    ``(values, valid)`` (int64 or int32 C-contiguous values; ``valid`` empty or one byte per
    value), the result one ``(min, max)`` or ``None`` per column. Called by
    ``tripwire._arrow.encode_many`` when an assertion keys on several integer columns: each
    thread reads its half of every column, and the threads meet once instead of per column."""
    cdef Py_ssize_t m = len(columns), j, rows = 0
    cdef vector[const void*] ptr
    cdef vector[const uint8_t*] vptr
    cdef vector[Py_ssize_t] ns
    cdef vector[int] wide
    cdef vector[int64_t] lo, hi
    cdef int parts, p
    cdef cnp.ndarray values, valid
    cdef int typ
    for item in columns:  # C-level checks: this runs on every key encoding, small batches too
        values, valid = item
        typ = cnp.PyArray_TYPE(values)
        if (typ != cnp.NPY_INT64 and typ != cnp.NPY_INT32) or values.ndim != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(values):
            raise ValueError("int_min_max_many takes contiguous int64 or int32 columns")
        if valid.shape[0] not in (0, values.shape[0]) or cnp.PyArray_TYPE(valid) != cnp.NPY_UINT8:
            raise ValueError("values and validity differ in length")
        ptr.push_back(cnp.PyArray_DATA(values))
        vptr.push_back(<const uint8_t*>cnp.PyArray_DATA(valid) if valid.shape[0] else NULL)
        ns.push_back(values.shape[0])
        wide.push_back(typ == cnp.NPY_INT64)
        rows += values.shape[0]
    parts = 2 if rows >= _config.KEY_PARALLEL_MIN_ROWS and tw_max_threads() > 1 else 1
    lo.assign(2 * m, INT64_MAX)
    hi.assign(2 * m, INT64_MIN)
    with nogil:
        for p in prange(parts, num_threads=parts, schedule="static"):
            for j in range(m):
                _minmax_part(ptr[j], wide[j], vptr[j], ns[j] * p // parts, ns[j] * (p + 1) // parts,
                             &lo[2 * j + p], &hi[2 * j + p])
    out = []
    for j in range(m):
        a, b = min(lo[2 * j], lo[2 * j + 1]), max(hi[2 * j], hi[2 * j + 1])
        out.append(None if a > b else (a, b))
    return out


cdef inline void _minmax_part(const void* values, int wide, const uint8_t* valid, Py_ssize_t lo, Py_ssize_t hi,
                              int64_t* out_lo, int64_t* out_hi) noexcept nogil:
    if wide:
        _minmax_rows(<const int64_t*>values, valid, lo, hi, out_lo, out_hi)
    else:
        _minmax_rows(<const int32_t*>values, valid, lo, hi, out_lo, out_hi)


def events_canonical(const int64_t[::1] rows, const int64_t[::1] events, const int64_t[::1] anchors):
    """True when events are numbered 0, 1, ... in order of strictly increasing anchors and
    violations run by (event, row) with rows increasing inside an event: the order
    ``tripwire._assertion.canonical_events`` would produce (one pass instead of its sort)."""
    cdef bint ok
    with nogil:
        ok = _events_canonical(rows, events, anchors)
    return ok


# Runs of a sorted int64 column, in one pass without a branch per row: each run's start into
# an array as long as the column (only the pages the runs reach are touched), and any descent.
cdef extern from * nogil:
    """
    #include <stdint.h>
    /* out[0 .. returned]: each run's first row, then n; -1 (out partly written) when some value
     * is below the one before it. One pass: every row writes its index and counts it only at a
     * change, so the common row takes no branch that follows the data. */
    static int64_t tw_run_starts(const int64_t* __restrict k, int64_t n, int64_t* __restrict out) {
        int64_t c = 1;
        int down = 0;
        out[0] = 0;
        for (int64_t i = 1; i < n; i++) {
            out[c] = i;
            c += k[i] != k[i - 1];
            down |= k[i] < k[i - 1];
        }
        out[c] = n;
        return down ? -1 : c;
    }
    """
    int64_t tw_run_starts(const int64_t* k, int64_t n, int64_t* out)


def sorted_runs(const int64_t[::1] key):
    """CSR offsets of the runs of equal values of a non-decreasing ``key`` (each run's first
    row, then ``len(key)``), or ``None`` when some value is below the one before it. Called by
    ``tripwire._frames.group_rows``: the sortedness check and the frame boundaries in one
    native pass that reads the key once (NumPy's comparisons, ``flatnonzero`` and
    ``concatenate`` take ~4x; a count pass before the starts took 1.06-1.16x at 10^6 rows)."""
    cdef Py_ssize_t n = key.shape[0]
    cdef int64_t runs
    if n == 0:
        return np.zeros(1, np.int64)
    starts = np.empty(n + 1, np.int64)  # pages past the runs are never touched
    cdef int64_t[::1] o = starts
    with nogil:
        runs = tw_run_starts(&key[0], n, &o[0])
    if runs < 0:
        return None
    return starts[:runs + 1].copy()
