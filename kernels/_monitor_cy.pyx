# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: language = c++
"""Native streaming state for a Monitor's box assertions (Cython only).

Caller: ``tripwire._streaming.NativeBoxes`` (one per Monitor), which hands each observed batch
over as a ``pyarrow.RecordBatch``, read through the Arrow C data interface (zero copy). One
``BoxEngine`` holds, per stream, what its assertions still need and updates it in place:

- the stream clock: newest and oldest frame of each stream (frames in order across batches);
- ``boxes.multibox``: the open (newest) frame of each stream; a frame is judged, with the same
  union-find as the batch kernel, once a later frame of its stream arrives (in place in the
  batch's columns when the batch is in (stream, frame) order without nulls);
- the by-track assertions share one slot per (stream, track), found once per row for all of
  them; each keeps a dense array of records by slot: ``boxes.flicker`` the last box, forgotten
  once no later frame can close a gap from it; ``boxes.appear`` / ``boxes.class_consistency``
  the track's young boxes / its rows (varint deltas), judged once it has been quiet for
  ``horizon`` rows;
- flicker / appear by IoU: per stream the open frame and the active objects;
- ``boxes.valid``: nothing (judged row by row).

``prepare`` reads and checks a batch without changing any state (a batch may still be refused
by another assertion), ``commit`` applies it and returns the violations, ``abort`` drops it.
Rows are global (``row0`` + position). The heavy loops run without the GIL. Results equal the
batch kernels' (``_boxes_cy.multibox``, ``gaps``, ``valid``) on the whole stream; the monitor's
Hypothesis property test checks that against ``Suite.check``.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, intptr_t, uint8_t, uint64_t, uintptr_t, INT64_MIN, INT64_MAX
from libc.math cimport isfinite, NAN
from libc.string cimport memcmp
from cython.operator cimport dereference as deref, preincrement as inc
from libcpp.algorithm cimport stable_sort
from libcpp.string cimport string
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

from _arrow_c cimport ArrowArray, ArrowSchema, tw_release_array, tw_release_schema
from tripwire import _config
from _common cimport emit_groups, link_overlaps, match_frame, match_scratch_t, mean_of_two_scores, to_numpy

cnp.import_array()

cdef extern from *:
    """
    #include <stdint.h>
    #include <vector>
    /* An open-addressing index int64 -> pointer (linear probing, backward-shift erase): the
       per-row lookup of a track's record, several times faster than std::unordered_map's
       node hop. NULL: absent. The records themselves live elsewhere (stable addresses). */
    struct tw_flat {
      std::vector<int64_t> keys; std::vector<void*> vals; size_t mask = 0, count = 0;
      static inline size_t h(int64_t k) { uint64_t x = (uint64_t)k * 0x9E3779B97F4A7C15ull; return (size_t)(x ^ (x >> 29)); }
      void* find(int64_t k) const {
        if (!count) return NULL;
        size_t i = h(k) & mask;
        while (vals[i]) { if (keys[i] == k) return vals[i]; i = (i + 1) & mask; }
        return NULL;
      }
      void grow() {
        size_t n = keys.empty() ? 16 : keys.size() * 2;
        std::vector<int64_t> ok; std::vector<void*> ov; ok.swap(keys); ov.swap(vals);
        keys.assign(n, 0); vals.assign(n, NULL); mask = n - 1; count = 0;
        for (size_t i = 0; i < ok.size(); i++) if (ov[i]) put(ok[i], ov[i]);
      }
      void put(int64_t k, void* v) {
        if ((count + 1) * 2 > keys.size()) grow();
        size_t i = h(k) & mask;
        while (vals[i]) { if (keys[i] == k) { vals[i] = v; return; } i = (i + 1) & mask; }
        keys[i] = k; vals[i] = v; count++;
      }
      void erase(int64_t k) {
        if (!count) return;
        size_t i = h(k) & mask;
        while (vals[i] && keys[i] != k) i = (i + 1) & mask;
        if (!vals[i]) return;
        vals[i] = NULL; count--;
        for (size_t j = (i + 1) & mask; vals[j]; j = (j + 1) & mask) {
          size_t home = h(keys[j]) & mask;  /* j may move into the hole unless home lies in (i, j] */
          bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
          if (!stays) { keys[i] = keys[j]; vals[i] = vals[j]; vals[j] = NULL; i = j; }
        }
      }
      void clear() { keys.clear(); vals.clear(); mask = 0; count = 0; }
    };
    /* LEB128 varints: class_consistency keeps each row of a track as deltas to its previous row
       (typically 2 bytes instead of 16: the rows of live tracks are written once and read only
       when a track turns out bad, so the bytes written per row are what it costs) */
    static inline uint8_t* tw_varint_at(uint8_t* p, uint64_t x) {
      while (x >= 0x80) { *p++ = (uint8_t)(x | 0x80); x >>= 7; }
      *p++ = (uint8_t)x;
      return p;
    }
    /* One row of a track: the varint ``a`` and, when ``two``, ``b``, written at byte ``used`` of
       ``v`` (whose size() is its allocated length, grown by doubling); returns the new used
       length. One capacity check per row: push_back per byte kept the vector's end pointer in
       memory and cost ~3x more. */
    static inline size_t tw_put_row(std::vector<uint8_t>& v, size_t used, uint64_t a, uint64_t b, int two) {
      if (v.size() - used < 20) v.resize(v.size() < 32 ? 64 : 2 * v.size());
      uint8_t* p = tw_varint_at(v.data() + used, a);
      if (two) p = tw_varint_at(p, b);
      return (size_t)(p - v.data());
    }
    static inline uint64_t tw_get_varint(const uint8_t* p, size_t* pos) {
      uint64_t x = 0; int shift = 0; uint8_t b;
      do { b = p[(*pos)++]; x |= (uint64_t)(b & 0x7f) << shift; shift += 7; } while (b & 0x80);
      return x;
    }
    """
    size_t tw_put_row(vector[uint8_t]& v, size_t used, uint64_t a, uint64_t b, int two) nogil
    uint64_t tw_get_varint(const uint8_t* p, size_t* pos) nogil
    cppclass tw_flat:
        void* find(int64_t k) nogil
        void put(int64_t k, void* v) nogil
        void erase(int64_t k) nogil
        void clear() nogil


# roles: the columns the engine reads (index into BoxEngine.col)
cdef enum:
    R_STREAM = 0
    R_FRAME = 1
    R_TRACK = 2
    R_SCORE = 3
    R_X1 = 4
    R_Y1 = 5
    R_X2 = 6
    R_Y2 = 7
    R_CLS = 8
    N_ROLES = 9

cdef enum:
    KEEP_BYTES = 1 << 12  # a freed slot keeps its row vectors' capacity up to this (reuse, no malloc)

# stream column kinds
cdef enum:
    S_NONE = 0
    S_UTF8 = 1
    S_LARGE_UTF8 = 2
    S_INT64 = 3
    S_INT32 = 4  # class columns only (read as they are: a cast per batch costs more than the check)

ROLES = ("stream", "frame", "track", "score", "x1", "y1", "x2", "y2", "cls")
_FORMATS = (None, b"l", b"l", b"f", b"f", b"f", b"f", b"f", None)  # stream, cls: u, U or l


cdef struct col_t:  # one column of the batch being read (no ownership)
    const uint8_t* valid  # validity bitmap, NULL: no nulls
    const void* data
    const void* data2  # string bytes
    int64_t off


cdef struct box_t:  # a held box: multibox's open frames
    float x1, y1, x2, y2, score
    uint8_t has_score
    int64_t row, frame, stream


cdef struct last_t:  # flicker: a (stream, track)'s last box
    int64_t frame, row
    float score
    uint8_t has_score
    uint8_t held  # the slot holds a box for this assertion


cdef struct item_t:  # a box in a complete frame, before grouping
    int64_t stream, frame, seq


cdef struct ibox_t:  # a box for IoU identity (x1 NaN: a null coordinate, links to nothing)
    float x1, y1, x2, y2, score
    uint8_t has_score
    int64_t cls, row, frame  # cls: dense class code, -1: null (a class of its own)


cdef struct act_t:  # an active object of IoU identity: its last box
    ibox_t box
    int64_t obj
    uint8_t young  # appear: still younger than min_frames (its boxes are in io_young)


cdef struct yb_t:  # a box of a young object (appear)
    int64_t row, frame
    float score
    uint8_t has_score




cdef struct ident_t:  # a (stream, track) of appear / class_consistency by track
    uint8_t held  # the slot holds a track for this assertion
    int64_t first, last, last_row  # frames (appear), the newest row (both)
    int64_t first_cls
    uint8_t done  # appear: lived min_frames (never flagged: boxes dropped)
    uint8_t bad  # class_consistency: more than one class seen
    vector[yb_t] rows  # appear: the young track's boxes
    # class_consistency: every row as varints (tw_put_row): (row - previous row) * 2 + (frame
    # null), then, with a frame, (frame - previous frame) zigzagged; classes kept apart. The
    # first ``cbytes`` bytes are used (the vector's size is what it has allocated)
    vector[uint8_t] crows
    size_t cbytes
    int64_t ccount, cprev_row, cprev_frame  # rows held; the last row and frame encoded
    vector[int64_t] ccls  # class_consistency: the class per row, kept only once bad (before: first_cls)


cdef inline bint _bit(const uint8_t* bits, int64_t i) noexcept nogil:
    return bits == NULL or (bits[i >> 3] >> (i & 7)) & 1


cdef inline bint _ok(col_t* c, int64_t i) noexcept nogil:
    return c.valid == NULL or _bit(c.valid, c.off + i)


cdef inline float _f32(col_t* c, int64_t i) noexcept nogil:
    return (<const float*>c.data)[c.off + i]


cdef inline int64_t _i64(col_t* c, int64_t i) noexcept nogil:
    return (<const int64_t*>c.data)[c.off + i]


cdef inline bint _item_less(const item_t& a, const item_t& b) noexcept nogil:
    if a.stream != b.stream:
        return a.stream < b.stream
    return a.frame < b.frame


cdef cppclass _MbScratch:  # multibox's complete boxes (structure of arrays), kept between batches
    vector[float] x1, y1, x2, y2, sc
    vector[uint8_t] sv
    vector[int64_t] row, frame, stream

    void swap_with(vector[float]& x1, vector[float]& y1, vector[float]& x2, vector[float]& y2,
                   vector[float]& sc, vector[uint8_t]& sv, vector[int64_t]& row, vector[int64_t]& frame,
                   vector[int64_t]& stream) noexcept nogil:
        this.x1.swap(x1)
        this.y1.swap(y1)
        this.x2.swap(x2)
        this.y2.swap(y2)
        this.sc.swap(sc)
        this.sv.swap(sv)
        this.row.swap(row)
        this.frame.swap(frame)
        this.stream.swap(stream)


cdef struct _MbGroups:  # one _multibox call: union-find scratch, then what it flagged
    vector[float] area, grp_best, ev_sev
    vector[uint8_t] bok, grp_has
    vector[int64_t] parent, size, grp_event, v_pos, v_ev, anchors
    vector[int64_t] o_row, o_frame, o_stream, o_ev, o_anchor  # per flagged box; o_anchor per event


cdef bint _mb_group(const float* x1, const float* y1, const float* x2, const float* y2, const float* sc,
                    const uint8_t* sv, int64_t g0, int64_t q, float t, int64_t min_boxes, _MbGroups* w,
                    int64_t* ev) noexcept nogil:
    """The frame of boxes ``g0 .. g0 + q`` of the arrays, as ``_boxes_cy.multibox`` judges one:
    ``link_overlaps`` (union-find over the pairs linked when inter >= iou * union), then
    ``emit_groups``. True when it flagged boxes (``w.v_pos``, ``w.v_ev``: positions, events;
    ``w.anchors``)."""
    if q < min_boxes or q < 2:
        return False
    link_overlaps(x1 + g0, y1 + g0, x2 + g0, y2 + g0, q, t, w.parent, w.size, w.area, w.bok)
    w.v_pos.clear()
    w.v_ev.clear()
    w.anchors.clear()
    emit_groups(g0, q, w.parent.data(), w.size.data(), min_boxes, sc, sv, w.grp_best, w.grp_has, w.grp_event,
                w.anchors, w.ev_sev, w.v_pos, w.v_ev, ev)
    return w.v_pos.size() > 0


# Whether a kernel section releases the GIL: a compile-time choice per specialization of the
# methods that take a ``gil_t*`` (NULL, only its type matters). Small batches keep the GIL
# (``_config.MONITOR_NOGIL_MIN_ROWS``): their sections take microseconds, less than giving the
# GIL away and waiting to get it back when other threads run Python, and a thread that releases
# it while holding the monitor's lock lets the other observing threads queue on the lock.
ctypedef struct release_t:
    char unused
ctypedef struct keep_t:
    char unused
ctypedef fused gil_t:
    release_t
    keep_t


cdef class ExportedBatch:
    """A ``pyarrow.RecordBatch`` exported through the Arrow C data interface, for
    ``BoxEngine.prepare``. Made by ``export_batch`` before the caller takes the monitor's lock:
    exporting releases the GIL, and a thread that releases it while holding the lock lets the
    other request threads run into the lock and queue on it (a context switch each)."""
    cdef ArrowArray arr
    cdef object schema

    def __cinit__(self):
        self.arr.release = NULL

    def __dealloc__(self):
        tw_release_array(&self.arr)


def export_batch(batch):
    """``batch`` (a ``pyarrow.RecordBatch``) exported for ``BoxEngine.prepare``."""
    cdef ExportedBatch e = ExportedBatch.__new__(ExportedBatch)
    batch._export_to_c(<uintptr_t>&e.arr)
    e.schema = batch.schema
    return e


cdef class BoxEngine:
    """Streaming state of a suite's box assertions over one column mapping (see the module
    docstring). ``multibox``: ``[(iou, min_boxes)]``; ``flicker``: ``[max_gap]`` (identity
    track); ``valid``: ``[(width, height)]`` (0: unchecked); ``iou``: ``[(iou, max_gap,
    min_frames)]``, identity IoU: ``boxes.flicker`` (``min_frames`` 0) or ``boxes.appear``;
    ``cls_kind``: the class column's kind (as ``stream_kind``; 0: none)."""

    cdef readonly int stream_kind, cls_kind
    cdef public int64_t nogil_min_rows  # batches of fewer rows keep the GIL (see gil_t)
    cdef bint release  # the prepared batch's kernel sections release the GIL
    cdef readonly list values  # stream id -> its value (None: free id)
    cdef int idx[N_ROLES]  # child index of each role, -1: absent
    cdef unordered_map[string, int64_t] str_ids
    cdef unordered_map[int64_t, int64_t] int_ids
    cdef vector[int64_t] free_ids
    cdef vector[int64_t] newest, oldest  # per stream id; INT64_MIN: none yet
    # multibox
    cdef vector[float] mb_iou
    cdef vector[int64_t] mb_min
    cdef vector[vector[vector[box_t]]] mb_open  # [assertion][stream] -> open frame's boxes
    # flicker by track
    cdef vector[int64_t] fl_gap
    cdef vector[vector[last_t]] fl_d  # [assertion][track slot]
    cdef vector[int64_t] fl_n, fl_prune_at  # slots held per assertion; prune when above
    # valid
    cdef vector[double] va_w, va_h
    # flicker / appear by IoU: per assertion, per stream the open frame and the active
    # objects (oldest first, as associate keeps them); appear: the boxes of young objects
    cdef vector[float] io_iou
    cdef vector[int64_t] io_gap, io_min, io_next
    cdef vector[vector[vector[ibox_t]]] io_open
    cdef vector[vector[vector[act_t]]] io_act
    cdef vector[unordered_map[int64_t, vector[yb_t]]] io_young
    cdef unordered_map[string, int64_t] cls_str
    cdef unordered_map[int64_t, int64_t] cls_int
    cdef tw_flat cls_idx  # cls_int indexed for the per-row lookup (value: code + 1)
    cdef vector[int64_t] bcls  # the batch's class codes (when an IoU assertion reads them)
    cdef vector[int64_t] cc_count  # _judge_track's class counts by code + 1 (zero between calls)
    # appear (kind 0) / class_consistency (kind 1) by track: per assertion, each track's record
    # until it has been quiet for ``horizon`` rows
    cdef vector[int64_t] id_kind, id_min, id_swept, id_n
    cdef vector[vector[ident_t]] id_d  # [assertion][track slot]
    # track slots: the by-track assertions find a row's (stream, track) record through one
    # lookup per row for all of them (``tslot``), then index their own dense arrays. A slot is
    # freed when no assertion holds it (tk_refs), its arrays' entries are reused
    cdef vector[tw_flat] tk_idx  # per stream id: track -> slot + 1
    cdef vector[int64_t] tk_track, tk_stream, tk_refs, tk_free, tk_new  # tk_stream -1: a free slot
    cdef vector[int64_t] tk_zero  # slots no assertion holds any more, freed after the batch
    cdef vector[int64_t] tslot  # per row of the batch: its slot, -1: none (null stream or track)
    cdef int64_t horizon  # -1: until flush
    cdef vector[int64_t] sany  # stream id per row whatever its frame (-1: null stream)
    # scratch of the per-batch passes, kept between batches: allocated anew, vectors of a
    # batch's size come from fresh pages each time (page faults cost more than the pass)
    cdef _MbScratch mbw
    cdef vector[int64_t] fl_rows, mb_evof
    # the prepared batch
    cdef ArrowArray arr
    cdef bint pending
    cdef int64_t n, row0
    cdef col_t col[N_ROLES]
    cdef vector[int64_t] sid  # stream id per row, -1: not in any stream (null stream or frame)
    cdef vector[int64_t] pnew, cnew, cpart  # _across's per stream id: newest of earlier parts, of the current
    cdef vector[int64_t] touched  # stream ids with rows in the batch
    cdef vector[int64_t] lo, hi  # per stream id: the batch's frame range (INT64_MAX/MIN: none)
    cdef vector[uint8_t] mark  # per stream id: has rows in the batch

    def __cinit__(self):
        self.pending = False
        self.arr.release = NULL

    def __init__(self, int stream_kind, multibox=(), flicker=(), valid=(), iou=(), int cls_kind=0,
                 ident=(), horizon=None):
        """``ident``: ``[(kind, min_frames)]``, kind 0: ``boxes.appear`` by track, 1:
        ``boxes.class_consistency``; ``horizon``: rows a track stays quiet before it is judged
        (``None``: at flush)."""
        self.stream_kind = stream_kind
        self.cls_kind = cls_kind
        self.nogil_min_rows = _config.MONITOR_NOGIL_MIN_ROWS
        self.horizon = -1 if horizon is None else horizon
        for k, m in ident:
            self.id_kind.push_back(k)
            self.id_min.push_back(m)
            self.id_swept.push_back(0)
        self.id_d.resize(len(ident))
        self.id_n.assign(len(ident), 0)
        for t, g, m in iou:
            self.io_iou.push_back(<float>t)
            self.io_gap.push_back(g)
            self.io_min.push_back(m)
            self.io_next.push_back(0)
        self.io_open.resize(len(iou))
        self.io_act.resize(len(iou))
        self.io_young.resize(len(iou))
        self.values = []
        for iou, m in multibox:
            self.mb_iou.push_back(<float>iou)
            self.mb_min.push_back(m)
        self.mb_open.resize(len(multibox))
        for g in flicker:
            self.fl_gap.push_back(g)
            self.fl_prune_at.push_back(1024)
            self.fl_n.push_back(0)
        self.fl_d.resize(len(flicker))
        for w, h in valid:
            self.va_w.push_back(float(w) if w else 0.0)
            self.va_h.push_back(float(h) if h else 0.0)

    def __dealloc__(self):
        tw_release_array(&self.arr)

    # ------------------------------------------------------------------ streams
    cdef inline int64_t _top(self, int64_t s) noexcept nogil:
        """Stream ``s``'s newest frame, this batch's included (INT64_MIN: none)."""
        return self.hi[s] if self.hi[s] > self.newest[s] else self.newest[s]

    cdef inline int64_t _first_frame(self, int64_t s) noexcept nogil:
        """Stream ``s``'s first frame: from earlier batches, else this batch's oldest."""
        return self.oldest[s] if self.newest[s] != INT64_MIN else self.lo[s]

    cdef int64_t _new_id(self) noexcept nogil:
        cdef int64_t s
        cdef size_t a
        if self.free_ids.size():
            s = self.free_ids.back()
            self.free_ids.pop_back()
            return s
        s = self.newest.size()
        self.newest.push_back(INT64_MIN)
        self.oldest.push_back(INT64_MIN)
        self.lo.push_back(INT64_MAX)
        self.hi.push_back(INT64_MIN)
        self.mark.push_back(0)
        for a in range(self.mb_open.size()):
            self.mb_open[a].resize(s + 1)
        self.tk_idx.resize(s + 1)
        for a in range(self.io_open.size()):
            self.io_open[a].resize(s + 1)
            self.io_act[a].resize(s + 1)
        return s

    def stream_id(self, value):
        """The id of a stream value, or -1 when unknown."""
        cdef string key
        cdef unordered_map[int64_t, int64_t].iterator it
        cdef unordered_map[string, int64_t].iterator jt
        if self.stream_kind == S_NONE:
            return 0 if value is None and self.newest.size() else -1
        if self.stream_kind == S_INT64:
            if not isinstance(value, int):
                return -1
            it = self.int_ids.find(value)
            return -1 if it == self.int_ids.end() else deref(it).second
        if not isinstance(value, str):
            return -1
        key = value.encode("utf-8")
        jt = self.str_ids.find(key)
        return -1 if jt == self.str_ids.end() else deref(jt).second

    def clock(self, bint with_pending=True):
        """{stream value: (oldest, newest)}, with the prepared batch when ``with_pending``."""
        out = {}
        cdef int64_t s, lo_, hi_
        for s in range(self.newest.size()):
            lo_, hi_ = self.oldest[s], self.newest[s]
            if with_pending and self.pending and self.hi[s] != INT64_MIN:
                if hi_ == INT64_MIN:
                    lo_ = self.lo[s]
                if self.hi[s] > hi_:
                    hi_ = self.hi[s]
            if hi_ != INT64_MIN:
                out[self.values[s]] = (lo_, hi_)
        return out

    # ------------------------------------------------------------------ one batch
    def prepare(self, batch, int64_t row0, indices, bint verify=True, const int64_t[::1] parts=None):
        """Read ``batch`` (a ``pyarrow.RecordBatch``, exported through the Arrow C data
        interface: zero copy; or an ``ExportedBatch``, taken over; ``None``: no rows): stream
        ids and frame ranges; nothing changes yet. ``indices``: the column of each role (``ROLES``; -1: absent). ``verify``: check
        the column formats (the caller does it once per schema: exporting the schema costs
        more than the rest). ``parts``: the batch is several batches gathered (the first row
        of each after the first, ascending): their frames must also be in order per stream
        across them, as across separate batches. Returns ``None`` when accepted, ``("late",
        stream value, first frame, newest frame)`` when a stream's frame arrives after a newer
        one of an earlier batch, ``("across", stream value, frame, newest frame)`` when it
        comes after a newer one of an earlier part."""
        cdef ArrowSchema schema
        cdef int r, k, c
        cdef int64_t i, s, n
        cdef int64_t bad = -1
        cdef ExportedBatch exported = batch if type(batch) is ExportedBatch else None
        if self.pending:
            self.abort()
        for r in range(N_ROLES):
            self.idx[r] = indices[r]
        self.arr.release = NULL
        n = 0
        if batch is not None:
            if verify:
                schema.release = NULL
                (exported.schema if exported is not None else batch.schema)._export_to_c(<uintptr_t>&schema)
                try:
                    for r in range(N_ROLES):
                        c = self.idx[r]
                        if c < 0:
                            continue
                        if c >= schema.n_children:
                            raise ValueError("tripwire: column index out of range")
                        fmt = schema.children[c].format
                        want = _FORMATS[r]
                        if r == R_STREAM or r == R_CLS:
                            k = S_UTF8 if fmt == b"u" else S_LARGE_UTF8 if fmt == b"U" else S_INT64 if fmt == b"l" \
                                else S_INT32 if fmt == b"i" and r == R_CLS else -1
                            if k != (self.stream_kind if r == R_STREAM else self.cls_kind):
                                raise ValueError(f"tripwire: {ROLES[r]} column format {fmt!r} changed")
                        elif fmt != want:
                            raise ValueError(f"tripwire: column format {fmt!r}, expected {want!r}")
                finally:
                    tw_release_schema(&schema)
            if exported is not None:  # moved (the C data interface's way): the holder's is marked released
                if exported.arr.release == NULL:
                    raise ValueError("tripwire: an exported batch is read once")
                self.arr = exported.arr
                exported.arr.release = NULL
            else:
                batch._export_to_c(<uintptr_t>&self.arr)
            n = self.arr.length
        self.n = n
        self.row0 = row0
        self.release = n >= self.nogil_min_rows
        for r in range(N_ROLES):  # the shape the formats promise (a cheap guard for verify=False)
            c = self.idx[r]
            if c >= 0 and n and (c >= self.arr.n_children or self.arr.children[c].length != n
                                 or self.arr.children[c].n_buffers != (3 if (r == R_STREAM and self.stream_kind != S_INT64)
                                                                       or (r == R_CLS and self.cls_kind != S_INT64
                                                                           and self.cls_kind != S_INT32) else 2)):
                self.abort()
                raise ValueError("tripwire: the batch does not have the columns the engine expects")
        for r in range(N_ROLES):
            c = self.idx[r]
            if c < 0 or n == 0:
                self.col[r].valid = NULL
                self.col[r].data = NULL
                self.col[r].data2 = NULL
                self.col[r].off = 0
                continue
            child = self.arr.children[c]
            self.col[r].off = child.offset
            self.col[r].valid = <const uint8_t*>child.buffers[0] if child.null_count != 0 else NULL
            self.col[r].data = child.buffers[1]
            self.col[r].data2 = child.buffers[2] if child.n_buffers > 2 else NULL
        new_first = self._stream_ids(<release_t*>NULL) if self.release else self._stream_ids(<keep_t*>NULL)
        for s, i in new_first:
            self.values[s] = self._value(i)
        # the clock: each stream's frames in this batch must not precede its newest
        cdef const int64_t* sid = self.sid.data()
        cdef const int64_t* fr = <const int64_t*>self.col[R_FRAME].data + self.col[R_FRAME].off
        cdef int64_t* lo = self.lo.data()
        cdef int64_t* hi = self.hi.data()
        if self.release:
            with nogil:
                self._frame_ranges(sid, fr, lo, hi, n)
        else:
            self._frame_ranges(sid, fr, lo, hi, n)
        for k in range(self.touched.size()):
            s = self.touched[k]
            if self.newest[s] != INT64_MIN and self.lo[s] < self.newest[s]:
                late = (self.values[s], self.lo[s], self.newest[s])
                self.abort()
                return ("late",) + late
        if parts is not None and len(parts):
            if self.release:
                with nogil:
                    bad = self._across(parts)
            else:
                bad = self._across(parts)
            if bad >= 0:
                s = self.sid[bad]
                late = (self.values[s], _i64(&self.col[R_FRAME], bad), self.pnew[s])
                self.abort()
                return ("across",) + late
        self.pending = True
        return None

    cdef void _frame_ranges(self, const int64_t* sid, const int64_t* fr, int64_t* lo, int64_t* hi,
                            int64_t n) noexcept nogil:
        """Each touched stream's oldest and newest frame in the batch (``lo``, ``hi``)."""
        cdef size_t k
        cdef int64_t i, s, f
        for k in range(self.touched.size()):
            s = self.touched[k]
            lo[s] = INT64_MAX
            hi[s] = INT64_MIN
        for i in range(n):
            s = sid[i]
            if s < 0:
                continue
            f = fr[i]
            lo[s] = min(lo[s], f)
            hi[s] = max(hi[s], f)

    cdef int64_t _across(self, const int64_t[::1] parts) noexcept nogil:
        """The first row whose frame precedes its stream's newest frame in an earlier part of
        the batch (-1: none). One pass: per stream the newest frame of its earlier parts
        (``pnew``) and of its current part (``cnew``, part ``cpart``)."""
        cdef int64_t i, s, f, b = 0, k, n = self.n
        cdef int64_t end = parts[0] if parts.shape[0] else n
        cdef size_t m = self.newest.size()
        if self.pnew.size() < m:
            self.pnew.resize(m)
            self.cnew.resize(m)
            self.cpart.resize(m)
        for k in range(<int64_t>self.touched.size()):
            s = self.touched[k]
            self.pnew[s] = INT64_MIN
            self.cnew[s] = INT64_MIN
            self.cpart[s] = 0
        for i in range(n):
            while i >= end:  # the next part (parts without rows are skipped)
                b += 1
                end = parts[b] if b < parts.shape[0] else n
            s = self.sid[i]
            if s < 0:  # no stream or no frame: in no frame order (as across batches)
                continue
            f = _i64(&self.col[R_FRAME], i)
            if self.cpart[s] != b:  # the stream's first row in this part
                if self.cnew[s] > self.pnew[s]:
                    self.pnew[s] = self.cnew[s]
                self.cpart[s] = b
                self.cnew[s] = INT64_MIN
            if f < self.pnew[s]:
                return i
            if f > self.cnew[s]:
                self.cnew[s] = f
        return -1

    cdef list _stream_ids(self, gil_t* how):
        """``sid`` and ``touched`` for the batch; new streams get ids. Returns [(id, first
        row)] of the new ones (their values are read with the GIL)."""
        cdef int64_t n = self.n, i, s = 0, prev = -1, length, plen = -1, v
        cdef const char* p
        cdef const char* pp = NULL
        cdef col_t* sc = &self.col[R_STREAM]
        cdef col_t* fc = &self.col[R_FRAME]
        cdef bint has_stream = self.idx[R_STREAM] >= 0
        cdef int64_t* sany_p
        cdef int64_t* sid_p
        cdef vector[int64_t] new_ids, new_rows
        cdef string key
        cdef unordered_map[int64_t, int64_t].iterator it
        cdef unordered_map[string, int64_t].iterator jt
        self.sid.resize(n)
        self.sany.resize(n)
        self.touched.clear()
        with nogil(gil_t is release_t):
            if not has_stream and n:
                if self.newest.size() == 0:
                    s = self._new_id()
                    new_ids.push_back(s)
                    new_rows.push_back(-1)
                self.mark[0] = 1
                self.touched.push_back(0)
                sany_p = self.sany.data()
                sid_p = self.sid.data()
                for i in range(n):  # one stream: 0, and -1 in sid for a row without a frame
                    sany_p[i] = 0
                    sid_p[i] = _ok(fc, i) - 1
            for i in range(n if has_stream else 0):
                if not _ok(sc, i):
                    self.sid[i] = -1
                    self.sany[i] = -1
                    continue
                if self.stream_kind == S_INT64:
                    v = _i64(sc, i)
                    if prev >= 0 and v == plen:
                        s = prev
                    else:
                        it = self.int_ids.find(v)
                        if it == self.int_ids.end():
                            s = self._new_id()
                            self.int_ids[v] = s
                            new_ids.push_back(s)
                            new_rows.push_back(i)
                        else:
                            s = deref(it).second
                        plen = v
                else:
                    if self.stream_kind == S_UTF8:
                        p = <const char*>sc.data2 + (<const int32_t*>sc.data)[sc.off + i]
                        length = (<const int32_t*>sc.data)[sc.off + i + 1] - (<const int32_t*>sc.data)[sc.off + i]
                    else:
                        p = <const char*>sc.data2 + (<const int64_t*>sc.data)[sc.off + i]
                        length = (<const int64_t*>sc.data)[sc.off + i + 1] - (<const int64_t*>sc.data)[sc.off + i]
                    if prev >= 0 and length == plen and memcmp(p, pp, length) == 0:
                        s = prev  # runs of one stream: no hashing
                    else:
                        key.assign(p, length)
                        jt = self.str_ids.find(key)
                        if jt == self.str_ids.end():
                            s = self._new_id()
                            self.str_ids[key] = s
                            new_ids.push_back(s)
                            new_rows.push_back(i)
                        else:
                            s = deref(jt).second
                        pp = p
                        plen = length
                self.sany[i] = s
                prev = s
                if not _ok(fc, i):  # no frame: in no frame of its stream (class_consistency reads it)
                    self.sid[i] = -1
                    continue
                self.sid[i] = s
                if not self.mark[s]:
                    self.mark[s] = 1
                    self.touched.push_back(s)
        out = []
        for i in range(<int64_t>new_ids.size()):
            out.append((new_ids[i], new_rows[i]))
            while len(self.values) <= new_ids[i]:
                self.values.append(None)
        return out

    cdef object _value(self, int64_t i):
        """The stream value of row ``i`` (``None`` without a stream column)."""
        cdef col_t* sc = &self.col[R_STREAM]
        cdef int64_t a, b
        if i < 0 or self.idx[R_STREAM] < 0:
            return None
        if self.stream_kind == S_INT64:
            return _i64(sc, i)
        if self.stream_kind == S_UTF8:
            a = (<const int32_t*>sc.data)[sc.off + i]
            b = (<const int32_t*>sc.data)[sc.off + i + 1]
        else:
            a = (<const int64_t*>sc.data)[sc.off + i]
            b = (<const int64_t*>sc.data)[sc.off + i + 1]
        return (<const char*>sc.data2)[a:b].decode("utf-8")

    def abort(self):
        """Drop the prepared batch (another assertion refused it)."""
        cdef size_t k
        for k in range(self.touched.size()):
            self.lo[self.touched[k]] = INT64_MAX
            self.hi[self.touched[k]] = INT64_MIN
            self.mark[self.touched[k]] = 0
        self.touched.clear()
        self.pending = False
        tw_release_array(&self.arr)

    def touched_values(self):
        """Values of the streams with rows in the prepared batch."""
        return [self.values[self.touched[k]] for k in range(self.touched.size())]

    def commit(self):
        """Apply the prepared batch; returns, per assertion (multibox, flicker, valid in
        construction order), ``None`` when it found nothing, else its violations in canonical
        order (events numbered by their first row, rows ascending inside one), one entry per
        flagged row: multibox ``(rows, events, severity, frames, streams)``, flicker ``(rows,
        events, severity, frames, streams, tracks)``, valid ``(rows, reasons)``."""
        cdef size_t k
        cdef int64_t s
        if not self.pending:
            raise ValueError("tripwire: no prepared batch")
        try:
            out = self._batch_results(<release_t*>NULL) if self.release else self._batch_results(<keep_t*>NULL)
            for k in range(self.tk_new.size()):  # new slots no assertion took (rows without a frame)
                if self.tk_refs[self.tk_new[k]] == 0:
                    self.tk_zero.push_back(self.tk_new[k])
            self.tk_new.clear()
            self._free_slots()
            for k in range(self.touched.size()):
                s = self.touched[k]
                if self.hi[s] != INT64_MIN:
                    if self.newest[s] == INT64_MIN:
                        self.oldest[s] = self.lo[s]
                    if self.hi[s] > self.newest[s]:
                        self.newest[s] = self.hi[s]
        finally:
            self.abort()
        return out

    cdef list _batch_results(self, gil_t* how):
        """Every assertion's violations in the prepared batch (``commit``'s list); ``how``: the
        kernel sections' GIL variant, chosen once per batch."""
        cdef size_t a
        out = []
        for a in range(self.mb_iou.size()):
            out.append(self._multibox(a, False, None, how))
        if self.fl_gap.size() or self.id_d.size():
            self._track_slots()
        for a in range(self.fl_gap.size()):
            out.append(self._flicker(a, how))
        for a in range(self.va_w.size()):
            out.append(self._valid(a, how))
        if self.io_iou.size() or self.id_d.size():
            self._class_codes()
        for a in range(self.io_iou.size()):
            out.append(self._iou(a, False, None, how))
        for a in range(self.id_d.size()):
            out.append(self._ident(a, False, None, how))
        return out

    # ------------------------------------------------------------------ multibox
    cdef object _multibox(self, size_t a, bint flushing, object which, gil_t* how):
        """Judge the frames this batch completes (``flushing``: every open frame of the
        streams in ``which``, all when ``None``) and keep the new open frames."""
        cdef int64_t n = 0 if flushing else self.n, i, s, m = 0, g0, g1, j, q, ev = 0, f, ps, pf
        cdef size_t k
        cdef float t = self.mb_iou[a]
        cdef int64_t min_boxes = self.mb_min[a]
        cdef vector[vector[box_t]]* opened = &self.mb_open[a]
        cdef vector[box_t] held  # held boxes this batch completes
        cdef vector[item_t] items
        cdef _MbGroups w  # union-find scratch and the flagged boxes (rows, frames, streams, events)
        # the complete boxes, structure of arrays (grouped by (stream, frame) below)
        cdef vector[float] bx1, by1, bx2, by2, bsc
        cdef vector[uint8_t] bsv
        cdef vector[int64_t] brow, bframe, bstream
        cdef vector[int64_t] streams
        cdef box_t b
        cdef bint sorted_ = True, coords_null, direct
        cdef col_t* c = self.col
        cdef bint has_score = self.idx[R_SCORE] >= 0
        cdef const int64_t* sid = self.sid.data()
        cdef const int64_t* cfr
        cdef int64_t* pst
        cdef int64_t* pfr
        self.mbw.swap_with(bx1, by1, bx2, by2, bsc, bsv, brow, bframe, bstream)  # back before returning
        if flushing:
            if which is None:
                for s in range(<int64_t>opened.size()):
                    streams.push_back(s)
            else:
                for s in which:
                    streams.push_back(s)
        with nogil(gil_t is release_t):
            if flushing:
                for k in range(streams.size()):
                    s = streams[k]
                    for j in range(<int64_t>opened[0][s].size()):
                        held.push_back(opened[0][s][j])
                    opened[0][s].clear()
            coords_null = c[R_X1].valid != NULL or c[R_Y1].valid != NULL or c[R_X2].valid != NULL \
                or c[R_Y2].valid != NULL
            # the common case: every row in a frame, rows in (stream, frame) order, no null
            # coordinate or score: complete frames are judged where they lie in the batch's
            # columns (no copy); only a held frame goes through the copy below
            direct = not flushing and n > 0 and not coords_null and (not has_score or c[R_SCORE].valid == NULL)
            ps = -1
            pf = INT64_MIN
            cfr = <const int64_t*>c[R_FRAME].data + c[R_FRAME].off
            i = 0
            while direct and i < n:
                s = sid[i]
                f = cfr[i]
                if s < 0 or s < ps or (s == ps and f < pf):
                    direct = False
                ps = s
                pf = f
                i += 1
            if direct:
                self._multibox_direct(a, &w, &ev, bx1, by1, bx2, by2, bsc, bsv, brow, bframe)
            elif not flushing:  # held open frames this batch closes
                for k in range(self.touched.size()):
                    s = self.touched[k]
                    if self.hi[s] != INT64_MIN and opened[0][s].size() and self.hi[s] > opened[0][s][0].frame:
                        for j in range(<int64_t>opened[0][s].size()):
                            held.push_back(opened[0][s][j])
                        opened[0][s].clear()
            if direct:
                n = 0
                held.clear()
            # held boxes first (lower rows), then the batch's in row order: arrival order
            m = held.size() + n
            bx1.resize(m)
            by1.resize(m)
            bx2.resize(m)
            by2.resize(m)
            bsc.resize(m)
            bsv.resize(m)
            brow.resize(m)
            bframe.resize(m)
            bstream.resize(m)
            m = 0
            for k in range(held.size()):
                b = held[k]
                bx1[m] = b.x1
                by1[m] = b.y1
                bx2[m] = b.x2
                by2[m] = b.y2
                bsc[m] = b.score
                bsv[m] = b.has_score
                brow[m] = b.row
                bframe[m] = b.frame
                bstream[m] = b.stream
                m += 1
            for i in range(n):
                s = self.sid[i]
                if s < 0:
                    continue
                if _i64(&c[R_FRAME], i) < self.hi[s]:
                    if coords_null and not (_ok(&c[R_X1], i) and _ok(&c[R_Y1], i) and _ok(&c[R_X2], i)
                                            and _ok(&c[R_Y2], i)):
                        bx1[m] = NAN  # a null coordinate links to nothing, like NaN
                    else:
                        bx1[m] = _f32(&c[R_X1], i)
                    by1[m] = _f32(&c[R_Y1], i)
                    bx2[m] = _f32(&c[R_X2], i)
                    by2[m] = _f32(&c[R_Y2], i)
                    if has_score:
                        bsc[m] = _f32(&c[R_SCORE], i)
                        bsv[m] = _ok(&c[R_SCORE], i)
                    brow[m] = self.row0 + i
                    bframe[m] = _i64(&c[R_FRAME], i)
                    bstream[m] = s
                    if m and (bstream[m] < bstream[m - 1] or (bstream[m] == bstream[m - 1] and bframe[m] < bframe[m - 1])):
                        sorted_ = False
                    m += 1
                else:  # the newest frame of its stream: open
                    b.frame = _i64(&c[R_FRAME], i)
                    b.stream = s
                    b.row = self.row0 + i
                    if coords_null and not (_ok(&c[R_X1], i) and _ok(&c[R_Y1], i) and _ok(&c[R_X2], i)
                                            and _ok(&c[R_Y2], i)):
                        b.x1 = NAN
                    else:
                        b.x1 = _f32(&c[R_X1], i)
                    b.y1 = _f32(&c[R_Y1], i)
                    b.x2 = _f32(&c[R_X2], i)
                    b.y2 = _f32(&c[R_Y2], i)
                    b.score = _f32(&c[R_SCORE], i) if has_score else 0
                    b.has_score = _ok(&c[R_SCORE], i) if has_score else 0
                    opened[0][s].push_back(b)
            if held.size():  # the held boxes' order against the batch's
                for k in range(1, held.size() + 1 if <int64_t>held.size() < m else held.size()):
                    if bstream[k] < bstream[k - 1] or (bstream[k] == bstream[k - 1] and bframe[k] < bframe[k - 1]):
                        sorted_ = False
            if not sorted_:  # group by (stream, frame), arrival order inside a frame: permute
                items.resize(m)
                for j in range(m):
                    items[j].stream = bstream[j]
                    items[j].frame = bframe[j]
                    items[j].seq = j
                stable_sort(items.begin(), items.end(), _item_less)
                _permute_f(bx1, items)
                _permute_f(by1, items)
                _permute_f(bx2, items)
                _permute_f(by2, items)
                _permute_f(bsc, items)
                _permute_u8(bsv, items)
                _permute_i(brow, items)
                _permute_i(bframe, items)
                _permute_i(bstream, items)
            pst = bstream.data()
            pfr = bframe.data()
            g0 = 0
            while g0 < m:
                g1 = g0 + 1
                while g1 < m and pst[g1] == pst[g0] and pfr[g1] == pfr[g0]:
                    g1 += 1
                if _mb_group(bx1.data(), by1.data(), bx2.data(), by2.data(), bsc.data() if has_score else NULL,
                             bsv.data(), g0, g1 - g0, t, min_boxes, &w, &ev):
                    for k in range(w.v_pos.size()):
                        j = w.v_pos[k]
                        w.o_row.push_back(brow[j])
                        w.o_frame.push_back(bframe[j])
                        w.o_stream.push_back(bstream[j])
                        w.o_ev.push_back(w.v_ev[k])
                    for k in range(w.anchors.size()):
                        w.o_anchor.push_back(brow[w.anchors[k]])
                g0 = g1
        self.mbw.swap_with(bx1, by1, bx2, by2, bsc, bsv, brow, bframe, bstream)
        if w.o_row.size() == 0:
            return None
        # canonical order (as tripwire._assertion.canonical_events): events numbered by their
        # anchor row (each group's first box, its lowest row), rows ascending inside one
        cdef size_t n_out = w.o_row.size()
        cdef vector[item_t] entries
        _canonical_order(w.o_anchor, w.o_ev, w.o_row, entries)
        rows = np.empty(n_out, np.int64)
        frames = np.empty(n_out, np.int64)
        sids = np.empty(n_out, np.int64)
        events = np.empty(n_out, np.int64)
        sev = np.empty(n_out, np.float32)
        cdef int64_t[::1] rv = rows, fv = frames, sv = sids, evv = events
        cdef float[::1] sevv = sev
        for k in range(n_out):
            j = entries[k].seq
            rv[k] = w.o_row[j]
            fv[k] = w.o_frame[j]
            sv[k] = w.o_stream[j]
            evv[k] = entries[k].stream
            sevv[k] = w.ev_sev[w.o_ev[j]]
        return rows, events, sev, frames, sids

    cdef void _multibox_direct(self, size_t a, _MbGroups* w, int64_t* ev, vector[float]& bx1, vector[float]& by1,
                               vector[float]& bx2, vector[float]& by2, vector[float]& bsc, vector[uint8_t]& bsv,
                               vector[int64_t]& brow, vector[int64_t]& bframe) noexcept nogil:
        """``_multibox`` on a batch in (stream, frame) order with every row in a frame and no
        null coordinate or score: each complete frame is judged in place in the batch's columns;
        a held frame (with this batch's boxes of the same frame) through a copy (``bx1`` ...)."""
        cdef int64_t n = self.n, i, g1, s, f, k, j, q, hf
        cdef float t = self.mb_iou[a]
        cdef int64_t min_boxes = self.mb_min[a]
        cdef vector[vector[box_t]]* opened = &self.mb_open[a]
        cdef col_t* c = self.col
        cdef const int64_t* sid = self.sid.data()
        cdef bint has_score = self.idx[R_SCORE] >= 0
        cdef const float* px1 = <const float*>c[R_X1].data + c[R_X1].off
        cdef const float* py1 = <const float*>c[R_Y1].data + c[R_Y1].off
        cdef const float* px2 = <const float*>c[R_X2].data + c[R_X2].off
        cdef const float* py2 = <const float*>c[R_Y2].data + c[R_Y2].off
        cdef const float* psc = <const float*>c[R_SCORE].data + c[R_SCORE].off if has_score else NULL
        cdef const int64_t* pfr = <const int64_t*>c[R_FRAME].data + c[R_FRAME].off
        cdef int64_t row0 = self.row0
        cdef vector[box_t] hb
        cdef box_t b
        i = 0
        while i < n:
            s = sid[i]
            f = pfr[i]
            g1 = i + 1
            while g1 < n and sid[g1] == s and pfr[g1] == f:
                g1 += 1
            if (i == 0 or sid[i - 1] != s) and opened[0][s].size() and self.hi[s] > opened[0][s][0].frame:
                # the stream's held frame is complete: its boxes, then this batch's of that frame
                hb.clear()
                hb.swap(opened[0][s])
                hf = hb[0].frame
                q = hb.size() + (g1 - i if f == hf else 0)
                bx1.resize(q)
                by1.resize(q)
                bx2.resize(q)
                by2.resize(q)
                bsc.resize(q)
                bsv.resize(q)
                brow.resize(q)
                bframe.resize(q)
                for k in range(q):
                    if k < <int64_t>hb.size():
                        b = hb[k]
                    else:
                        j = i + k - <int64_t>hb.size()
                        b.x1 = px1[j]
                        b.y1 = py1[j]
                        b.x2 = px2[j]
                        b.y2 = py2[j]
                        b.score = psc[j] if has_score else 0
                        b.has_score = has_score
                        b.row = self.row0 + j
                    bx1[k] = b.x1
                    by1[k] = b.y1
                    bx2[k] = b.x2
                    by2[k] = b.y2
                    bsc[k] = b.score
                    bsv[k] = b.has_score
                    brow[k] = b.row
                if _mb_group(bx1.data(), by1.data(), bx2.data(), by2.data(), bsc.data() if has_score else NULL,
                             bsv.data(), 0, q, t, min_boxes, w, ev):
                    for k in range(<int64_t>w.v_pos.size()):
                        w.o_row.push_back(brow[w.v_pos[k]])
                        w.o_frame.push_back(hf)
                        w.o_stream.push_back(s)
                        w.o_ev.push_back(w.v_ev[k])
                    for k in range(<int64_t>w.anchors.size()):
                        w.o_anchor.push_back(brow[w.anchors[k]])
                if f == hf:
                    i = g1
                    continue
            if f == self.hi[s]:  # the newest frame of its stream: open
                for j in range(i, g1):
                    b.frame = f
                    b.stream = s
                    b.row = self.row0 + j
                    b.x1 = px1[j]
                    b.y1 = py1[j]
                    b.x2 = px2[j]
                    b.y2 = py2[j]
                    b.score = psc[j] if has_score else 0
                    b.has_score = has_score
                    opened[0][s].push_back(b)
            elif _mb_group(px1, py1, px2, py2, psc, NULL, i, g1 - i, t, min_boxes, w, ev):
                for k in range(<int64_t>w.v_pos.size()):
                    w.o_row.push_back(self.row0 + w.v_pos[k])
                    w.o_frame.push_back(f)
                    w.o_stream.push_back(s)
                    w.o_ev.push_back(w.v_ev[k])
                for k in range(<int64_t>w.anchors.size()):
                    w.o_anchor.push_back(self.row0 + w.anchors[k])
            i = g1

    def flush_multibox(self, size_t a, streams=None):
        """Judge the open frames of ``streams`` (ids; all when ``None``) and forget them."""
        if self.pending:
            raise ValueError("tripwire: flush with a prepared batch")
        return self._multibox(a, True, streams, <release_t*>NULL)

    # ------------------------------------------------------------------ track slots
    cdef void _track_slots(self) noexcept nogil:
        """``tslot``: each row's track slot, for every by-track assertion (new (stream, track)
        pairs get one, listed in ``tk_new``); -1 without a stream or a track."""
        cdef int64_t n = self.n, i, s, tr, k, h
        cdef size_t a
        cdef col_t tcol = self.col[R_TRACK]  # local: kept in registers
        cdef col_t* tc = &tcol
        cdef bint has_track = self.idx[R_TRACK] >= 0
        cdef const int64_t* sany = self.sany.data()
        cdef int64_t* ts
        # the batch's recent (stream, track) -> slot, direct-mapped by track: a frame's few
        # tracks come back frame after frame (slots are not freed during a batch)
        cdef int64_t c_tr[64]
        cdef int64_t c_s[64]
        cdef int64_t c_k[64]
        for h in range(64):
            c_s[h] = -1
        self.tslot.resize(n)
        ts = self.tslot.data()
        self.tk_new.clear()
        for i in range(n):
            s = sany[i]
            if s < 0 or not has_track or not _ok(tc, i):
                ts[i] = -1
                continue
            tr = _i64(tc, i)
            h = tr & 63
            if c_s[h] == s and c_tr[h] == tr:
                ts[i] = c_k[h]
                continue
            k = <int64_t><intptr_t>self.tk_idx[s].find(tr) - 1
            if k < 0:
                if self.tk_free.size():
                    k = self.tk_free.back()
                    self.tk_free.pop_back()
                else:  # a new slot: every assertion's arrays grow (entries not held)
                    k = self.tk_track.size()
                    self.tk_track.push_back(0)
                    self.tk_stream.push_back(0)
                    self.tk_refs.push_back(0)
                    for a in range(self.fl_d.size()):
                        self.fl_d[a].resize(k + 1)
                    for a in range(self.id_d.size()):
                        self.id_d[a].resize(k + 1)
                self.tk_track[k] = tr
                self.tk_stream[k] = s
                self.tk_refs[k] = 0
                self.tk_idx[s].put(tr, <void*><intptr_t>(k + 1))
                self.tk_new.push_back(k)
            ts[i] = k
            c_s[h] = s
            c_tr[h] = tr
            c_k[h] = k

    cdef inline void _unref(self, int64_t k) noexcept nogil:
        """An assertion lets go of slot ``k``; once none holds it, it is freed by
        ``_free_slots`` (after the batch: a later assertion may still take it for this batch's
        rows, which already point to it)."""
        self.tk_refs[k] -= 1
        if self.tk_refs[k] == 0:
            self.tk_zero.push_back(k)

    cdef void _free_slots(self) noexcept nogil:
        cdef size_t q
        cdef int64_t k
        for q in range(self.tk_zero.size()):
            k = self.tk_zero[q]
            if self.tk_refs[k] == 0 and self.tk_stream[k] >= 0:
                self.tk_idx[self.tk_stream[k]].erase(self.tk_track[k])
                self.tk_stream[k] = -1
                self.tk_free.push_back(k)
        self.tk_zero.clear()

    cdef vector[uint8_t] _picked(self, object streams):
        """Per stream id: 1 when in ``streams`` (ids; all when ``None``)."""
        cdef vector[uint8_t] pick
        cdef uint8_t every = streams is None  # (not a conditional expression in the call: Cython
        pick.assign(self.newest.size(), every)  # passes it through a reference to a temporary)
        if streams is not None:
            for s in streams:
                pick[<size_t>s] = 1
        return pick

    # ------------------------------------------------------------------ flicker by track
    cdef object _flicker(self, size_t a, gil_t* how):
        cdef int64_t n = self.n, i, s, f, g, gap = self.fl_gap[a], k
        cdef size_t q
        cdef vector[int64_t] rows, starts, ends, fr, st, trk
        cdef vector[float] sev
        cdef vector[int64_t] prev_frame
        cdef col_t fcol = self.col[R_FRAME], scol = self.col[R_SCORE]  # local: kept in registers
        cdef int64_t row0 = self.row0
        cdef bint has_score = self.idx[R_SCORE] >= 0, in_order = True
        cdef last_t* lp
        cdef last_t* d
        cdef const int64_t* sid = self.sid.data()
        cdef const int64_t* ts = self.tslot.data()
        cdef float sc
        cdef bint hs
        if self.idx[R_TRACK] < 0:
            return None
        rows.swap(self.fl_rows)
        rows.clear()
        with nogil(gil_t is release_t):
            # rows with a stream, frame and track, in row order; when some stream's frames go
            # back in time inside the batch, in frame order (stable: rows of a frame in order)
            prev_frame.assign(self.newest.size(), INT64_MIN)
            for i in range(n):
                s = sid[i]
                if s < 0 or ts[i] < 0:
                    continue
                f = _i64(&fcol, i)
                in_order &= f >= prev_frame[s]
                prev_frame[s] = f
            if not in_order:
                for i in range(n):
                    if sid[i] >= 0 and ts[i] >= 0:
                        rows.push_back(i)
                fr.resize(n)
                for q in range(rows.size()):
                    fr[rows[q]] = _i64(&fcol, rows[q])
                _sort_by_frame(rows, fr)
                fr.clear()
            d = self.fl_d[a].data()
            for q in range(rows.size() if not in_order else n):
                i = rows[q] if not in_order else q  # in order: every row, those outside skipped
                k = ts[i]
                if in_order and (sid[i] < 0 or k < 0):
                    continue
                f = _i64(&fcol, i)
                if has_score:
                    sc = _f32(&scol, i)
                    hs = _ok(&scol, i)
                else:
                    sc = 0
                    hs = 0
                lp = &d[k]
                if lp.held:
                    g = f - lp.frame - 1
                    if g >= 1 and g <= gap:
                        starts.push_back(lp.row)
                        ends.push_back(row0 + i)
                        sev.push_back(mean_of_two_scores(lp.score, lp.has_score, sc, hs))
                        fr.push_back(lp.frame)
                        fr.push_back(f)
                        st.push_back(sid[i])
                        trk.push_back(self.tk_track[k])
                else:
                    lp.held = 1
                    self.tk_refs[k] += 1
                    self.fl_n[a] += 1
                lp.frame = f
                lp.row = row0 + i
                lp.score = sc
                lp.has_score = hs
            # forget the tracks no later frame can close a gap from (amortized: when the
            # held slots doubled since the last pass)
            if self.fl_n[a] > self.fl_prune_at[a]:
                for k in range(<int64_t>self.tk_track.size()):
                    lp = &d[k]
                    if not lp.held:
                        continue
                    f = self._top(self.tk_stream[k])
                    if f != INT64_MIN and lp.frame < f - gap - 1:
                        lp.held = 0
                        self.fl_n[a] -= 1
                        self._unref(k)
                self.fl_prune_at[a] = 2 * self.fl_n[a] + 1024
        rows.swap(self.fl_rows)
        if starts.size() == 0:
            return None
        return _gap_result(starts, ends, sev, fr, st, trk)

    def forget_tracks(self, size_t a, streams=None):
        """Forget the last boxes of ``streams`` (ids; all when ``None``): no gap can close."""
        cdef vector[uint8_t] pick = self._picked(streams)
        cdef int64_t k
        for k in range(<int64_t>self.tk_track.size()):
            if self.fl_d[a][k].held and pick[self.tk_stream[k]]:
                self.fl_d[a][k].held = 0
                self.fl_n[a] -= 1
                self._unref(k)
        self._free_slots()

    # ------------------------------------------------------------------ flicker / appear by IoU
    cdef void _class_codes(self) noexcept nogil:
        """``bcls``: a dense class code per row of the batch (-1: null, a class of its own;
        all rows 0 without a class column). Codes stay fixed for the engine's life, so held
        boxes compare with new ones."""
        cdef int64_t n = self.n, i, v, pc = -1, length, plen = -1
        cdef col_t ccol = self.col[R_CLS]  # local: kept in registers
        cdef col_t* cc = &ccol
        cdef const char* p
        cdef const char* pp = NULL
        cdef string key
        cdef unordered_map[string, int64_t].iterator jt
        # integer classes: a direct-mapped cache by the value's low byte in front of the index
        # (neighbouring boxes differ in class, so the last value alone rarely hits)
        cdef int64_t cache_v[256]
        cdef int64_t cache_c[256]
        cdef int64_t* out
        cdef int h
        self.bcls.resize(n)
        out = self.bcls.data()
        if self.idx[R_CLS] < 0:
            for i in range(n):
                out[i] = 0
            return
        if self.cls_kind == S_INT64 or self.cls_kind == S_INT32:
            for h in range(256):
                cache_c[h] = -1
            for i in range(n):
                if not _ok(cc, i):
                    out[i] = -1
                    continue
                if self.cls_kind == S_INT64:
                    v = _i64(cc, i)
                else:
                    v = (<const int32_t*>cc.data)[cc.off + i]
                h = v & 255
                if cache_c[h] >= 0 and cache_v[h] == v:
                    out[i] = cache_c[h]
                    continue
                pc = <int64_t><intptr_t>self.cls_idx.find(v) - 1
                if pc < 0:
                    pc = self.cls_int.size() + self.cls_str.size()
                    self.cls_int[v] = pc
                    self.cls_idx.put(v, <void*><intptr_t>(pc + 1))
                cache_v[h] = v
                cache_c[h] = pc
                out[i] = pc
            return
        for i in range(n):
            if not _ok(cc, i):
                out[i] = -1
                continue
            if self.cls_kind == S_UTF8:
                p = <const char*>cc.data2 + (<const int32_t*>cc.data)[cc.off + i]
                length = (<const int32_t*>cc.data)[cc.off + i + 1] - (<const int32_t*>cc.data)[cc.off + i]
            else:
                p = <const char*>cc.data2 + (<const int64_t*>cc.data)[cc.off + i]
                length = (<const int64_t*>cc.data)[cc.off + i + 1] - (<const int64_t*>cc.data)[cc.off + i]
            if pc >= 0 and length == plen and memcmp(p, pp, length) == 0:
                out[i] = pc  # runs of one class: no hashing
                continue
            key.assign(p, length)
            jt = self.cls_str.find(key)
            if jt == self.cls_str.end():
                pc = self.cls_int.size() + self.cls_str.size()
                self.cls_str[key] = pc
            else:
                pc = deref(jt).second
            pp = p
            plen = length
            out[i] = pc

    cdef void _ibox(self, int64_t i, ibox_t* b) noexcept nogil:
        """Row ``i`` of the batch as an IoU box (as ``boxes._association_boxes`` reads it)."""
        cdef col_t* c = self.col
        if not (_ok(&c[R_X1], i) and _ok(&c[R_Y1], i) and _ok(&c[R_X2], i) and _ok(&c[R_Y2], i)):
            b.x1 = NAN  # a null coordinate links to nothing, like NaN
        else:
            b.x1 = _f32(&c[R_X1], i)
        b.y1 = _f32(&c[R_Y1], i)
        b.x2 = _f32(&c[R_X2], i)
        b.y2 = _f32(&c[R_Y2], i)
        if self.idx[R_SCORE] >= 0:
            b.score = _f32(&c[R_SCORE], i)
            b.has_score = _ok(&c[R_SCORE], i)
        else:
            b.score = 0
            b.has_score = 0
        b.cls = self.bcls[i]
        b.row = self.row0 + i
        b.frame = _i64(&c[R_FRAME], i)

    cdef void _judge(self, size_t a, int64_t s, act_t* o, int64_t first_frame, int64_t last_frame,
                     _Out* out) noexcept nogil:
        """``appear``: a young object that ends (no later frame can continue it) is flagged
        when it lived fewer than ``min_frames`` and is not cut by its stream's first or last
        frame; its young boxes are forgotten either way."""
        cdef unordered_map[int64_t, vector[yb_t]].iterator it = self.io_young[a].find(o.obj)
        cdef vector[yb_t]* bs
        cdef size_t k
        cdef double ssum = 0
        cdef int64_t scount = 0, ev
        cdef float m
        if it == self.io_young[a].end():
            return
        bs = &deref(it).second
        if bs.size() and bs[0][bs.size() - 1].frame - bs[0][0].frame + 1 < self.io_min[a] \
                and bs[0][0].frame != first_frame and bs[0][bs.size() - 1].frame != last_frame:
            ev = out.anchor.size()
            out.anchor.push_back(bs[0][0].row)  # its first box (frame order)
            for k in range(bs.size()):
                out.rows.push_back(bs[0][k].row)
                out.frames.push_back(bs[0][k].frame)
                out.ev.push_back(ev)
                out.sids.push_back(s)
                out.objs.push_back(o.obj)
                if bs[0][k].has_score and bs[0][k].score == bs[0][k].score:
                    ssum += bs[0][k].score  # in frame order, as the batch check sums them
                    scount += 1
            if scount == 0:
                out.sev.push_back(1.0)
            else:
                m = <float>(ssum / scount)
                out.sev.push_back(m if m > <float>1e-6 else <float>1e-6)
        self.io_young[a].erase(it)

    cdef void _frame_iou(self, size_t a, int64_t s, vector[ibox_t]& boxes, int64_t first_frame,
                         _Scratch* w, _Out* out) noexcept nogil:
        """Link one complete frame of stream ``s`` to its active objects: the batch kernel's
        step (``_boxes_cy.associate``: forget the stale, ``match_frame``, start new objects)."""
        cdef vector[act_t]* act = &self.io_act[a][s]
        cdef int64_t f = boxes[0].frame, gap = self.io_gap[a], mf = self.io_min[a], ev
        cdef size_t k, keep = 0, m = boxes.size(), n_act
        cdef act_t o
        cdef act_t* o_
        cdef yb_t yb
        cdef ibox_t* b
        cdef vector[yb_t]* ys
        n_act = act.size()
        w.ax1.resize(n_act)
        w.ay1.resize(n_act)
        w.ax2.resize(n_act)
        w.ay2.resize(n_act)
        w.acls.resize(n_act)
        w.aframe.resize(n_act)
        # forget objects unseen for more than max_gap frames, and lay the rest out as
        # match_frame reads them, in one pass (an object is moved only when one before it left)
        for k in range(n_act):
            o_ = &act[0][k]
            if f - o_.box.frame - 1 > gap:
                if o_.young:
                    self._judge(a, s, o_, first_frame, INT64_MIN, out)
                continue
            if keep != k:
                act[0][keep] = o_[0]
            w.ax1[keep] = o_.box.x1
            w.ay1[keep] = o_.box.y1
            w.ax2[keep] = o_.box.x2
            w.ay2[keep] = o_.box.y2
            w.acls[keep] = o_.box.cls
            w.aframe[keep] = o_.box.frame
            keep += 1
        act.resize(keep)
        n_act = keep
        w.bx1.resize(m)
        w.by1.resize(m)
        w.bx2.resize(m)
        w.by2.resize(m)
        w.bcls.resize(m)
        w.match.resize(m)
        for k in range(m):
            w.bx1[k] = boxes[k].x1
            w.by1[k] = boxes[k].y1
            w.bx2[k] = boxes[k].x2
            w.by2[k] = boxes[k].y2
            w.bcls[k] = boxes[k].cls
        match_frame(w.ax1.data(), w.ay1.data(), w.ax2.data(), w.ay2.data(), w.acls.data(), w.aframe.data(),
                    n_act, w.bx1.data(), w.by1.data(), w.bx2.data(), w.by2.data(), w.bcls.data(), m,
                    self.io_iou[a], w.mw, w.match.data())
        for k in range(m):
            b = &boxes[k]
            if w.match[k] >= 0:
                o = act[0][w.match[k]]
                if mf == 0 and f - o.box.frame > 1:  # flicker: the object missed frames
                    out.starts.push_back(o.box.row)
                    out.ends.push_back(b.row)
                    out.gsev.push_back(mean_of_two_scores(o.box.score, o.box.has_score, b.score, b.has_score))
                    out.gfr.push_back(o.box.frame)
                    out.gfr.push_back(f)
                    out.gst.push_back(s)
                    out.gobj.push_back(o.obj)
                if o.young:
                    ys = &self.io_young[a][o.obj]
                    if f - ys[0][0].frame + 1 >= mf:  # lived min_frames: never flagged
                        self.io_young[a].erase(o.obj)
                        act[0][w.match[k]].young = 0
                    else:
                        yb.row = b.row
                        yb.frame = f
                        yb.score = b.score
                        yb.has_score = b.has_score
                        ys.push_back(yb)
                act[0][w.match[k]].box = b[0]
            elif isfinite(b.x1) and isfinite(b.y1) and isfinite(b.x2) and isfinite(b.y2):
                o.box = b[0]
                o.obj = self.io_next[a]
                self.io_next[a] += 1
                o.young = mf > 0
                if o.young:
                    yb.row = b.row
                    yb.frame = f
                    yb.score = b.score
                    yb.has_score = b.has_score
                    self.io_young[a][o.obj].push_back(yb)
                act.push_back(o)

    cdef object _iou(self, size_t a, bint flushing, object which, gil_t* how):
        """Link the frames this batch completes (``flushing``: the open frames of the streams
        in ``which``, all when ``None``, which then end); keep the new open frames; forget
        (appear: judge) the objects no later frame can reach."""
        cdef int64_t n = 0 if flushing else self.n, i, s, f, hi, top, first_frame, gap = self.io_gap[a]
        cdef size_t k, j, keep, g0, g1
        cdef vector[item_t] items
        cdef vector[ibox_t] fb
        cdef vector[ibox_t]* opened
        cdef vector[act_t]* act
        cdef vector[int64_t] streams
        cdef ibox_t b
        cdef bint sorted_ = True
        cdef _Scratch w
        cdef _Out out
        if flushing:
            if which is None:
                for s in range(<int64_t>self.io_open[a].size()):
                    streams.push_back(s)
            else:
                for s in which:
                    streams.push_back(s)
        with nogil(gil_t is release_t):
            if flushing:
                for k in range(streams.size()):
                    s = streams[k]
                    if self.newest[s] == INT64_MIN:
                        continue
                    opened = &self.io_open[a][s]
                    if opened.size():
                        fb.swap(opened[0])
                        opened.clear()
                        self._frame_iou(a, s, fb, self.oldest[s], &w, &out)
                    act = &self.io_act[a][s]
                    for j in range(act.size()):  # the stream ends: every object with it
                        if act[0][j].young:
                            self._judge(a, s, &act[0][j], self.oldest[s], self.newest[s], &out)
                    act.clear()
            else:
                items.reserve(n)
                for i in range(n):
                    s = self.sid[i]
                    if s < 0:
                        continue
                    items.resize(items.size() + 1)
                    items.back().stream = s
                    items.back().frame = _i64(&self.col[R_FRAME], i)
                    items.back().seq = i
                    k = items.size()
                    if k > 1 and _item_less(items[k - 1], items[k - 2]):
                        sorted_ = False
                if not sorted_:  # by (stream, frame), row order inside a frame
                    stable_sort(items.begin(), items.end(), _item_less)
                g0 = 0
                while g0 < items.size():
                    s = items[g0].stream
                    hi = self.hi[s]
                    first_frame = self._first_frame(s)
                    opened = &self.io_open[a][s]
                    while g0 < items.size() and items[g0].stream == s:
                        f = items[g0].frame
                        g1 = g0
                        while g1 < items.size() and items[g1].stream == s and items[g1].frame == f:
                            g1 += 1
                        fb.clear()
                        if opened.size() and opened[0][0].frame < f:  # the held frame is complete
                            fb.swap(opened[0])
                            opened.clear()
                            self._frame_iou(a, s, fb, first_frame, &w, &out)
                            fb.clear()
                        if opened.size():  # the held frame goes on in this batch: held boxes first
                            fb.swap(opened[0])
                            opened.clear()
                        for j in range(g0, g1):
                            self._ibox(items[j].seq, &b)
                            fb.push_back(b)
                        if f < hi:
                            self._frame_iou(a, s, fb, first_frame, &w, &out)
                        else:  # the stream's newest frame: open until a later one arrives
                            opened.swap(fb)
                        g0 = g1
                    # objects no later frame can reach end now (appear: judged at once)
                    top = self._top(s)
                    act = &self.io_act[a][s]
                    keep = 0
                    for j in range(act.size()):
                        if top - act[0][j].box.frame - 1 <= gap:
                            act[0][keep] = act[0][j]
                            keep += 1
                        elif act[0][j].young:
                            self._judge(a, s, &act[0][j], first_frame, top, &out)
                    act.resize(keep)
        if self.io_min[a] == 0:
            if out.starts.size() == 0:
                return None
            return _gap_result(out.starts, out.ends, out.gsev, out.gfr, out.gst, out.gobj)
        if out.anchor.size() == 0:
            return None
        return _events_result(out)

    def flush_iou(self, size_t a, streams=None):
        """Link the open frames of ``streams`` (ids; all when ``None``), judge their objects
        (appear) and forget them."""
        if self.pending:
            raise ValueError("tripwire: flush with a prepared batch")
        return self._iou(a, True, streams, <release_t*>NULL)

    # ------------------------------------------------------------------ appear / class_consistency by track
    cdef void _judge_track(self, size_t a, int64_t s, int64_t track, ident_t* r, int64_t first_frame,
                           int64_t last_frame, _Out* out) noexcept nogil:
        """A closed track: ``appear``: flagged when it lived fewer than ``min_frames`` and is not
        cut by its stream's first or last frame (as ``lifetimes``); ``class_consistency``: its
        rows not holding the most common non-null class, ties to the class seen first (as
        ``_rows_cy.consistent`` with ``flag_minority``)."""
        cdef size_t k, j, m = r.rows.size() if self.id_kind[a] == 0 else <size_t>r.ccount
        cdef double ssum = 0
        cdef int64_t scount = 0, ev, best_cnt = -1, best = 0, cnt
        cdef float sv
        if m == 0:
            return
        if self.id_kind[a] == 0:
            if r.done or r.first == first_frame or r.last == last_frame:
                return
            ev = out.anchor.size()
            out.anchor.push_back(r.rows[0].row)  # its first row
            for k in range(m):
                out.rows.push_back(r.rows[k].row)
                out.frames.push_back(r.rows[k].frame)
                out.ev.push_back(ev)
                out.sids.push_back(s)
                out.objs.push_back(track)
                if r.rows[k].has_score and r.rows[k].score == r.rows[k].score:
                    ssum += r.rows[k].score  # in row order, as the batch kernel sums them
                    scount += 1
            if scount == 0:
                out.sev.push_back(1.0)
            else:
                sv = <float>(ssum / scount)
                out.sev.push_back(sv if sv > <float>1e-6 else <float>1e-6)
            return
        if not r.bad:
            return
        # the majority: count each class (dense codes index ``cc_count``, all zero between calls),
        # then judge each at its first row in row order, so ties keep the earliest
        cdef int64_t* counts
        cdef int64_t code_
        if self.cc_count.size() < self.cls_int.size() + self.cls_str.size() + 1:
            self.cc_count.resize(self.cls_int.size() + self.cls_str.size() + 1, 0)
        counts = self.cc_count.data() + 1  # code -1 (null): counts[-1]
        for k in range(m):
            counts[r.ccls[k]] += 1
        for k in range(m):
            code_ = r.ccls[k]
            cnt = counts[code_]
            if code_ != -1 and cnt > best_cnt:
                best_cnt = cnt
                best = code_
            counts[code_] = 0  # zero again (and counted once: at its first row)
        if best_cnt < 0:
            best_cnt = 0
            best = -2  # no non-null class: every row is flagged
        sv = <float>(<int64_t>m - best_cnt) / <float><int64_t>m
        ev = out.anchor.size()
        cdef size_t pos = 0
        cdef uint64_t code, zz
        cdef int64_t row = 0, frame = 0, fr
        for k in range(m):  # decode the rows (see ident_t.crows)
            code = tw_get_varint(r.crows.data(), &pos)
            row = <int64_t>(<uint64_t>row + (code >> 1))
            if code & 1:
                fr = INT64_MIN
            else:
                zz = tw_get_varint(r.crows.data(), &pos)
                frame = <int64_t>(<uint64_t>frame + ((zz >> 1) ^ (0 - (zz & 1))))
                fr = frame
            if k == 0:
                out.anchor.push_back(row)
            if r.ccls[k] != best:
                out.rows.push_back(row)
                out.frames.push_back(fr)
                out.ev.push_back(ev)
                out.sids.push_back(s)
                out.objs.push_back(track)
        out.sev.push_back(sv)

    cdef void _drop_ident(self, size_t a, int64_t k) noexcept nogil:
        """Assertion ``a`` lets go of slot ``k`` (its vectors kept for the next track, when small)."""
        cdef ident_t* r = &self.id_d[a][k]
        r.held = 0
        r.rows.clear()
        r.cbytes = 0
        r.ccls.clear()
        if r.crows.size() > KEEP_BYTES:
            r.crows.clear()
            r.crows.shrink_to_fit()
        if r.ccls.capacity() * 8 > KEEP_BYTES:
            r.ccls.shrink_to_fit()
        if r.rows.capacity() * sizeof(yb_t) > KEEP_BYTES:
            r.rows.shrink_to_fit()
        self.id_n[a] -= 1
        self._unref(k)

    cdef inline void _ident_open(self, size_t a, int64_t k, ident_t* r, int64_t first_cls) noexcept nogil:
        """Assertion ``a`` starts holding a track in slot ``k`` (record ``r``)."""
        r.held = 1
        self.tk_refs[k] += 1
        self.id_n[a] += 1
        r.first = INT64_MAX
        r.last = INT64_MIN
        r.done = 0
        r.bad = 0
        r.first_cls = first_cls
        r.ccount = 0
        r.cbytes = 0
        r.cprev_row = 0
        r.cprev_frame = 0

    cdef object _ident(self, size_t a, bint flushing, object which, gil_t* how):
        """Add the batch's rows to their tracks' records; judge the tracks quiet for ``horizon``
        rows (``appear``: whose stream has moved past their last frame); ``flushing``: judge
        every track of the streams in ``which`` (all when ``None``)."""
        cdef int64_t n = 0 if flushing else self.n, i, s, f, fr, k, end = self.row0 + self.n, top, first_frame
        cdef int64_t mf = self.id_min[a], live, n_slots = self.tk_track.size()
        cdef bint appear = self.id_kind[a] == 0, has_frame
        # local copies: the compiler then keeps them in registers (stores to the records could
        # alias the engine's fields, which it would re-read every row)
        cdef col_t fcol = self.col[R_FRAME], scol = self.col[R_SCORE]
        cdef int64_t row0 = self.row0
        cdef bint has_score = self.idx[R_SCORE] >= 0
        cdef const int64_t* bcls = self.bcls.data()
        cdef ident_t* r
        cdef ident_t* d = self.id_d[a].data()
        cdef yb_t yb
        cdef uint64_t du
        cdef const int64_t* sid = self.sid.data() if appear else self.sany.data()
        cdef const int64_t* ts = self.tslot.data()
        cdef vector[uint8_t] pick
        cdef _Out out
        if flushing:
            pick = self._picked(which)
        with nogil(gil_t is release_t):
            if flushing:
                for k in range(n_slots):
                    r = &d[k]
                    if not r.held or not pick[self.tk_stream[k]]:
                        continue
                    s = self.tk_stream[k]
                    self._judge_track(a, s, self.tk_track[k], r, self.oldest[s], self.newest[s], &out)
                    self._drop_ident(a, k)
            elif not appear:  # class_consistency: a few bytes a row (see ident_t.crows)
                for i in range(n):
                    k = ts[i]
                    if sid[i] < 0 or k < 0:
                        continue
                    r = &d[k]
                    if not r.held:
                        self._ident_open(a, k, r, bcls[i])
                    f = row0 + i
                    r.last_row = f
                    has_frame = _ok(&fcol, i)
                    du = 0
                    if has_frame:  # zigzag: frames may go back inside a batch (wrapping arithmetic)
                        fr = _i64(&fcol, i)
                        du = <uint64_t>fr - <uint64_t>r.cprev_frame
                        du = (du << 1) ^ (0 - (du >> 63))
                        r.cprev_frame = fr
                    r.cbytes = tw_put_row(r.crows, r.cbytes, ((<uint64_t>(f - r.cprev_row)) << 1) | (not has_frame),
                                          du, has_frame)
                    r.cprev_row = f
                    if r.bad:  # classes are kept only once a second one is seen
                        r.ccls.push_back(bcls[i])
                    elif bcls[i] != r.first_cls:
                        r.bad = 1
                        r.ccls.assign(r.ccount, r.first_cls)
                        r.ccls.push_back(bcls[i])
                    r.ccount += 1
            else:  # appear: frame extents, and the rows of a track until it lived min_frames
                for i in range(n):
                    k = ts[i]
                    if sid[i] < 0 or k < 0:
                        continue
                    r = &d[k]
                    if not r.held:
                        self._ident_open(a, k, r, 0)
                    r.last_row = row0 + i
                    yb.row = row0 + i
                    yb.frame = _i64(&fcol, i) if _ok(&fcol, i) else INT64_MIN
                    f = yb.frame
                    if f < r.first:
                        r.first = f
                    if f > r.last:
                        r.last = f
                    if r.done:
                        continue
                    if r.last - r.first + 1 >= mf:  # lived min_frames: never flagged
                        r.done = 1
                        r.rows.clear()
                        continue
                    if has_score:
                        yb.score = _f32(&scol, i)
                        yb.has_score = _ok(&scol, i)
                    else:
                        yb.score = 0
                        yb.has_score = 0
                    r.rows.push_back(yb)
            if not flushing:
                # judge the tracks quiet for horizon rows (amortized: once as many rows as
                # there are tracks have come since the last pass, and at least horizon)
                live = self.id_n[a]
                if self.horizon >= 0 and end - self.id_swept[a] >= (live if live > self.horizon else self.horizon):
                    self.id_swept[a] = end
                    for k in range(n_slots):
                        r = &d[k]
                        if not r.held:
                            continue
                        s = self.tk_stream[k]
                        top = self._top(s)
                        first_frame = self._first_frame(s)
                        if r.last_row < end - self.horizon and (not appear or r.last < top):
                            self._judge_track(a, s, self.tk_track[k], r, first_frame, top, &out)
                            self._drop_ident(a, k)
        if out.anchor.size() == 0:
            return None
        return _events_result(out)

    def flush_ident(self, size_t a, streams=None):
        """Judge every track of ``streams`` (ids; all when ``None``) and forget them."""
        if self.pending:
            raise ValueError("tripwire: flush with a prepared batch")
        got = self._ident(a, True, streams, <release_t*>NULL)
        self._free_slots()
        return got

    # ------------------------------------------------------------------ valid
    cdef object _valid(self, size_t a, gil_t* how):
        """As ``_boxes_cy.valid``: reasons bitmask per broken box (blocks: a branch-free loop
        the compiler vectorizes, then nulls, then a scan for the rare bad rows)."""
        cdef int64_t n = self.n, i, lo, k, mm
        cdef double w = self.va_w[a], h = self.va_h[a]
        cdef uint8_t has_w = w > 0, has_h = h > 0, fin
        cdef float x1, y1, x2, y2, sc, zero = 0, one = 1
        cdef col_t* c = self.col
        cdef bint has_score = self.idx[R_SCORE] >= 0
        cdef const float* px1 = NULL
        cdef const float* py1 = NULL
        cdef const float* px2 = NULL
        cdef const float* py2 = NULL
        cdef const float* psc = NULL
        cdef uint8_t bad[1024]
        cdef vector[int64_t] rows, reasons
        if n == 0:
            return None
        px1 = <const float*>c[R_X1].data + c[R_X1].off
        py1 = <const float*>c[R_Y1].data + c[R_Y1].off
        px2 = <const float*>c[R_X2].data + c[R_X2].off
        py2 = <const float*>c[R_Y2].data + c[R_Y2].off
        if has_score:
            psc = <const float*>c[R_SCORE].data + c[R_SCORE].off
        with nogil(gil_t is release_t):
            lo = 0
            while lo < n:
                mm = n - lo if n - lo < 1024 else 1024
                for k in range(mm):
                    x1 = px1[lo + k]
                    y1 = py1[lo + k]
                    x2 = px2[lo + k]
                    y2 = py2[lo + k]
                    fin = ((x1 - x1) == zero) & ((y1 - y1) == zero) & ((x2 - x2) == zero) & ((y2 - y2) == zero)
                    bad[k] = ((((x2 <= x1) * 2) | ((y2 <= y1) * 4)
                               | (((has_w & ((x1 < zero) | (x2 > w))) | (has_h & ((y1 < zero) | (y2 > h)))) * 8))
                              * fin) | ((1 - fin) * 1)
                if c[R_X1].valid != NULL or c[R_Y1].valid != NULL or c[R_X2].valid != NULL or c[R_Y2].valid != NULL:
                    for k in range(mm):
                        if not (_ok(&c[R_X1], lo + k) and _ok(&c[R_Y1], lo + k) and _ok(&c[R_X2], lo + k)
                                and _ok(&c[R_Y2], lo + k)):
                            bad[k] = 1
                if has_score:
                    for k in range(mm):
                        sc = psc[lo + k]
                        bad[k] |= (1 - ((sc >= zero) & (sc <= one))) * 16
                    if c[R_SCORE].valid != NULL:  # a null score is fine
                        for k in range(mm):
                            if not _ok(&c[R_SCORE], lo + k):
                                bad[k] &= ~16
                for k in range(mm):
                    if bad[k]:
                        rows.push_back(self.row0 + lo + k)
                        reasons.push_back(bad[k])
                lo += 1024
        if rows.size() == 0:
            return None
        return to_numpy[int64_t](rows), to_numpy[int64_t](reasons).astype(np.uint8)

    # ------------------------------------------------------------------ state
    def forget(self, streams=None):
        """Forget the clock (and ids) of ``streams`` (ids; all when ``None``)."""
        cdef size_t k, j
        if self.pending:
            raise ValueError("tripwire: forget with a prepared batch")
        if streams is None:
            self.str_ids.clear()
            self.int_ids.clear()
            self.free_ids.clear()
            self.newest.clear()
            self.oldest.clear()
            self.lo.clear()
            self.hi.clear()
            self.mark.clear()
            for k in range(self.mb_open.size()):
                self.mb_open[k].clear()
            for k in range(self.fl_d.size()):
                self.fl_d[k].clear()
                self.fl_n[k] = 0
            for k in range(self.io_open.size()):
                self.io_open[k].clear()
                self.io_act[k].clear()
                self.io_young[k].clear()
            for k in range(self.id_d.size()):
                self.id_d[k].clear()
                self.id_n[k] = 0
            self.tk_idx.clear()
            self.tk_track.clear()
            self.tk_stream.clear()
            self.tk_refs.clear()
            self.tk_free.clear()
            self.tk_zero.clear()
            self.cls_str.clear()
            self.cls_int.clear()
            self.cls_idx.clear()
            self.values = []
            return
        cdef vector[uint8_t] pick = self._picked(streams)
        cdef int64_t t
        for t in range(<int64_t>self.tk_track.size()):  # their tracks, in every assertion
            if self.tk_refs[t] == 0 or not pick[self.tk_stream[t]]:
                continue
            for k in range(self.fl_d.size()):
                if self.fl_d[k][t].held:
                    self.fl_d[k][t].held = 0
                    self.fl_n[k] -= 1
                    self._unref(t)
            for k in range(self.id_d.size()):
                if self.id_d[k][t].held:
                    self._drop_ident(k, t)
        self._free_slots()
        for s in streams:
            v = self.values[s]
            if v is None and self.stream_kind != S_NONE:
                continue
            if self.stream_kind == S_INT64:
                self.int_ids.erase(<int64_t>v)
            elif self.stream_kind != S_NONE:
                self.str_ids.erase(<string>v.encode("utf-8"))
            self.newest[s] = INT64_MIN
            self.oldest[s] = INT64_MIN
            for k in range(self.mb_open.size()):
                self.mb_open[k][s].clear()
            for k in range(self.io_open.size()):
                self.io_open[k][s].clear()
                for j in range(self.io_act[k][s].size()):
                    self.io_young[k].erase(self.io_act[k][s][j].obj)
                self.io_act[k][s].clear()
            if self.stream_kind != S_NONE:
                self.values[s] = None
                self.free_ids.push_back(s)

    def retained_rows(self):
        """Boxes held back: open frames, last boxes per track and per object, young objects'
        boxes."""
        cdef size_t a, s
        cdef int64_t total = 0
        cdef unordered_map[int64_t, vector[yb_t]].iterator it
        for a in range(self.mb_open.size()):
            for s in range(self.mb_open[a].size()):
                total += self.mb_open[a][s].size()
        for a in range(self.fl_n.size()):
            total += self.fl_n[a]
        for a in range(self.io_open.size()):
            for s in range(self.io_open[a].size()):
                total += self.io_open[a][s].size() + self.io_act[a][s].size()
            it = self.io_young[a].begin()
            while it != self.io_young[a].end():
                total += deref(it).second.size()
                inc(it)
        for a in range(self.id_d.size()):
            for s in range(self.id_d[a].size()):
                if self.id_d[a][s].held:
                    total += max(self.id_d[a][s].rows.size() + <size_t>self.id_d[a][s].ccount, 1)
        return total


cdef struct _Scratch:  # scratch of one _iou call (match_frame's inputs)
    vector[float] ax1, ay1, ax2, ay2, bx1, by1, bx2, by2
    vector[int64_t] acls, aframe, bcls, match
    match_scratch_t mw


cdef struct _Out:  # violations of one _iou call
    # flicker: gap pairs (as _gap_result takes them)
    vector[int64_t] starts, ends, gfr, gst, gobj
    vector[float] gsev
    # appear: per flagged row, and per event its anchor (first row) and severity
    vector[int64_t] rows, frames, ev, sids, objs, anchor
    vector[float] sev


cdef void _canonical_order(const vector[int64_t]& anchor, const vector[int64_t]& ev,
                           const vector[int64_t]& rows, vector[item_t]& entries) noexcept nogil:
    """Canonical order of violations (as ``tripwire._assertion.canonical_events``): events
    numbered by their anchor row, rows ascending inside one. ``entries[k]``: the ``k``-th
    violation in that order, ``.seq`` its index in ``rows``, ``.stream`` its event number."""
    cdef size_t n_ev = anchor.size(), n = rows.size(), k
    cdef vector[item_t] by_anchor
    cdef vector[int64_t] rank
    by_anchor.resize(n_ev)
    for k in range(n_ev):
        by_anchor[k].stream = anchor[k]
        by_anchor[k].frame = 0
        by_anchor[k].seq = k
    stable_sort(by_anchor.begin(), by_anchor.end(), _item_less)
    rank.resize(n_ev)
    for k in range(n_ev):
        rank[by_anchor[k].seq] = k
    entries.resize(n)
    for k in range(n):
        entries[k].stream = rank[ev[k]]
        entries[k].frame = rows[k]
        entries[k].seq = k
    stable_sort(entries.begin(), entries.end(), _item_less)


cdef object _events_result(_Out& out):
    """Flagged objects in canonical order: events by their anchor row, rows ascending inside
    one. Returns ``(rows, events, severity, frames, streams, objects)``."""
    cdef size_t n = out.rows.size(), k
    cdef vector[item_t] entries
    _canonical_order(out.anchor, out.ev, out.rows, entries)
    rows = np.empty(n, np.int64)
    events = np.empty(n, np.int64)
    sev = np.empty(n, np.float32)
    frames = np.empty(n, np.int64)
    sids = np.empty(n, np.int64)
    objs = np.empty(n, np.int64)
    cdef int64_t[::1] rv = rows, evv = events, fv = frames, sv = sids, ov = objs
    cdef float[::1] sevv = sev
    cdef int64_t j
    for k in range(n):
        j = entries[k].seq
        rv[k] = out.rows[j]
        evv[k] = entries[k].stream
        sevv[k] = out.sev[out.ev[j]]
        fv[k] = out.frames[j]
        sv[k] = out.sids[j]
        ov[k] = out.objs[j]
    return rows, events, sev, frames, sids, objs


cdef object _gap_result(vector[int64_t]& starts, vector[int64_t]& ends, vector[float]& sev,
                        vector[int64_t]& fr, vector[int64_t]& st, vector[int64_t]& trk):
    """Gap pairs in canonical order, as ``tripwire.boxes._gap_result``: one event per gap,
    events by their start row, the two rows ascending inside one. Returns ``(rows, events,
    severity, frames, streams, tracks)``, one entry per flagged row."""
    cdef size_t n = starts.size(), k, p
    cdef vector[item_t] by_start
    cdef int64_t a, b
    by_start.resize(n)
    for k in range(n):
        by_start[k].stream = starts[k]
        by_start[k].frame = 0
        by_start[k].seq = k
    stable_sort(by_start.begin(), by_start.end(), _item_less)
    rows = np.empty(2 * n, np.int64)
    events = np.empty(2 * n, np.int64)
    severity = np.empty(2 * n, np.float32)
    frames = np.empty(2 * n, np.int64)
    streams = np.empty(2 * n, np.int64)
    tracks = np.empty(2 * n, np.int64)
    cdef int64_t[::1] rv = rows, ev = events, fv = frames, sv = streams, tv = tracks
    cdef float[::1] sevv = severity
    for k in range(n):
        p = by_start[k].seq
        a = 0 if starts[p] < ends[p] else 1  # which end has the lower row
        b = 1 - a
        rv[2 * k] = starts[p] if a == 0 else ends[p]
        rv[2 * k + 1] = ends[p] if a == 0 else starts[p]
        fv[2 * k] = fr[2 * p + a]
        fv[2 * k + 1] = fr[2 * p + b]
        ev[2 * k] = ev[2 * k + 1] = k
        sevv[2 * k] = sevv[2 * k + 1] = sev[p]
        sv[2 * k] = sv[2 * k + 1] = st[p]
        tv[2 * k] = tv[2 * k + 1] = trk[p]
    return rows, events, severity, frames, streams, tracks


cdef void _permute_f(vector[float]& v, vector[item_t]& items) noexcept nogil:
    cdef vector[float] tmp = v
    cdef size_t k
    for k in range(items.size()):
        v[k] = tmp[items[k].seq]


cdef void _permute_u8(vector[uint8_t]& v, vector[item_t]& items) noexcept nogil:
    cdef vector[uint8_t] tmp = v
    cdef size_t k
    for k in range(items.size()):
        v[k] = tmp[items[k].seq]


cdef void _permute_i(vector[int64_t]& v, vector[item_t]& items) noexcept nogil:
    cdef vector[int64_t] tmp = v
    cdef size_t k
    for k in range(items.size()):
        v[k] = tmp[items[k].seq]


cdef void _sort_by_frame(vector[int64_t]& rows, vector[int64_t]& frame) noexcept nogil:
    """Stable sort of ``rows`` by ``frame[row]`` (rows of one frame keep their order)."""
    cdef vector[item_t] keyed
    cdef size_t k
    keyed.resize(rows.size())
    for k in range(rows.size()):
        keyed[k].stream = 0
        keyed[k].frame = frame[rows[k]]
        keyed[k].seq = rows[k]
    stable_sort(keyed.begin(), keyed.end(), _item_less)
    for k in range(rows.size()):
        rows[k] = keyed[k].seq
