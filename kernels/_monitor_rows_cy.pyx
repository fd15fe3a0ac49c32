# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: language = c++
"""Native streaming state for a Monitor's per-identity row checks (Cython only).

Caller: ``tripwire._streaming.NativeRows`` (one ``RowsEngine`` per identifier column of a
Monitor), which hands each observed batch over as ``pyarrow.RecordBatch`` es read through the
Arrow C data interface (zero copy). The engine keeps, per identity (a hash index from the id
value to a compact slot, slots reused once an identity is judged):

- ``rows.consistent``: the identity's distinct attribute values in order of first appearance,
  each with its count and first row (``flag="minority"``: every row holding it);
- ``rows.contiguous``: the identity's presences ``(time, row)`` in arrival order, a repeat of
  the previous time dropped (the first row of a time stands for it);

and judges an identity once it has been quiet for ``horizon`` rows (a queue of identities by
their newest row, checked at the end of every batch), or at ``flush``. Judging runs the batch
kernels' rules (``_rows_cy.consistent``, ``_rows_cy.contiguous``) on the identity's state, so
a stream checked batch by batch gives ``Suite.check``'s violations on the whole table.

``feed`` (one call per record batch of an observed table) and ``finish`` change state in
place but remember what they changed: ``commit`` forgets that (and frees the identities
judged), ``abort`` undoes it (another assertion refused the batch). Rows are global
(``row0`` + position). The per-row loops run without the GIL.
"""
cimport cython
import numpy as np
cimport numpy as cnp
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t,
                          uintptr_t, INT64_MAX, INT64_MIN)
from libc.string cimport memcmp, memcpy
from libcpp.algorithm cimport sort as cpp_sort
from libcpp.pair cimport pair
from libcpp.string cimport string
from libcpp.vector cimport vector

from _arrow_c cimport ArrowArray, tw_release_array
from tripwire import _config

cnp.import_array()

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline void tw_prefetch(const void* p) { __builtin_prefetch(p, 1, 3); }
    static inline uint64_t tw_mix64(uint64_t x) {
      x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
      return x;
    }
    /* a string's hash, eight bytes at a time */
    static inline uint64_t tw_hash_bytes(const char* p, int64_t n) {
      uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)n * 0xff51afd7ed558ccdULL), w;
      while (n >= 8) { memcpy(&w, p, 8); h = (h ^ tw_mix64(w)) * 0x9E3779B97F4A7C15ULL; p += 8; n -= 8; }
      if (n > 0) { w = 0; memcpy(&w, p, (size_t)n); h = (h ^ tw_mix64(w)) * 0x9E3779B97F4A7C15ULL; }
      return tw_mix64(h);
    }
    """
    void tw_prefetch(const void* p) nogil
    uint64_t tw_mix64(uint64_t x) nogil
    uint64_t tw_hash_bytes(const char* p, int64_t n) nogil


# column kinds (tripwire._streaming._ROWS_KINDS): integers are read as int64 values (uint64 as
# their bits, as ``astype(np.int64)`` does), strings as bytes
cdef enum:
    K_I8 = 1
    K_I16 = 2
    K_I32 = 3
    K_I64 = 4
    K_U8 = 5
    K_U16 = 6
    K_U32 = 7
    K_U64 = 8
    K_UTF8 = 9
    K_LUTF8 = 10


cdef struct col_t:  # one column of the record batch being read (no ownership)
    const uint8_t* valid  # validity bitmap, NULL: no nulls
    const void* data  # values, or string offsets
    const char* chars  # string bytes
    int64_t off
    int kind


cdef struct ent_t:  # rows.consistent: a further distinct attribute value of an identity
    int64_t iv  # integer attributes: the value
    string sv  # string attributes: the bytes
    uint8_t null  # the null value (a value of its own)
    int64_t count, first_row
    vector[int64_t] rows  # flag="minority": every row holding it (count of them)


cdef struct cs_t:  # rows.consistent, per identity: its first value (the common case: its only
    # one) inline, the others in ``more`` (in order of first row)
    int64_t iv, count, first_row  # count 0: no row yet
    uint8_t null
    string sv
    vector[int64_t] rows
    vector[ent_t] more


ctypedef pair[int64_t, int64_t] rec_t  # rows.contiguous: a presence (time, row)


cdef struct ct_t:  # rows.contiguous, per identity: its presences in arrival order (a repeat of
    # the previous time dropped), packed: one 16-bit word ``row - previous row`` for a presence
    # ``step`` after the previous one (the common case), else ESCAPE and the time and row in
    # eight words. Two bytes per row instead of sixteen: appending to thousands of identities'
    # logs at once costs in the cache lines they touch
    vector[uint16_t] words
    int64_t n, last_t, last_row  # presences; the newest one's time and row
    int64_t gaps  # presences not ``step`` after the previous one: with fewer than allowed // 2 + 1
    # and times in order, nothing to flag (judging skips the log)
    uint8_t unsorted  # a time went backwards


cdef enum:
    ESCAPE = 0x8000  # a presence written in full (then 4 words of time, 4 of row)
    CHUNK = 2048  # rows per pass of the per-row loops


cdef inline void _append(ct_t* c, int64_t t, int64_t row, int64_t step) noexcept nogil:
    """Add a presence to an identity's packed log."""
    cdef uint64_t d = <uint64_t>row - <uint64_t>c.last_row
    cdef uint16_t w
    cdef size_t k
    if c.n and <uint64_t>t - <uint64_t>c.last_t == <uint64_t>step and d < ESCAPE:
        w = <uint16_t>d
        c.words.push_back(w)
    else:
        k = c.words.size()
        c.words.resize(k + 9)
        c.words[k] = ESCAPE
        memcpy(&c.words[k + 1], &t, 8)
        memcpy(&c.words[k + 5], &row, 8)
    if c.n and <uint64_t>t - <uint64_t>c.last_t != <uint64_t>step:
        c.gaps += 1
        if t < c.last_t:
            c.unsorted = 1
    c.n += 1
    c.last_t = t
    c.last_row = row


cdef inline void _unpack(const ct_t* c, int64_t step, vector[rec_t]& out) noexcept nogil:
    """An identity's presences (time, row) in arrival order, into ``out[:c.n]`` (``out`` only
    grows: resizing it down and up again would clear it every time)."""
    cdef size_t k = 0, n = c.words.size()
    cdef const uint16_t* w = c.words.data()
    cdef int64_t t = 0, row = 0
    if out.size() < <size_t>c.n:
        out.resize(c.n)
    cdef rec_t* o = out.data()
    while k < n:
        if w[k] == ESCAPE:
            memcpy(&t, &w[k + 1], 8)
            memcpy(&row, &w[k + 5], 8)
            k += 9
        else:
            t = <int64_t>(<uint64_t>t + <uint64_t>step)
            row += w[k]
            k += 1
        o.first = t
        o.second = row
        o += 1


cdef struct slot_t:  # an identity
    int64_t key  # integer ids: the value (string ids: in key_str)
    uint64_t hash
    int64_t last_row, nrows
    int64_t mark  # the pending batch's generation once saved; -2: judged (freed at commit)
    uint8_t alive


cdef struct bucket_t:  # the identity index: tag = an integer id's value or a string id's hash
    uint64_t tag
    int64_t slot  # -1: empty


cdef struct out_t:  # one member's violations, event by event, before canonical order
    vector[int64_t] rows, start, anchor, slot  # start: each event's first entry in rows
    vector[float] sev


cdef inline bint _bit(const uint8_t* bits, int64_t i) noexcept nogil:
    return bits == NULL or (bits[i >> 3] >> (i & 7)) & 1


cdef inline bint _ok(const col_t* c, int64_t i) noexcept nogil:
    return c.valid == NULL or _bit(c.valid, c.off + i)


cdef inline int64_t _int(const col_t* c, int64_t i) noexcept nogil:
    cdef int64_t j = c.off + i
    cdef int k = c.kind
    if k == K_I64 or k == K_U64:
        return (<const int64_t*>c.data)[j]
    if k == K_I32:
        return (<const int32_t*>c.data)[j]
    if k == K_I16:
        return (<const int16_t*>c.data)[j]
    if k == K_I8:
        return (<const int8_t*>c.data)[j]
    if k == K_U32:
        return (<const uint32_t*>c.data)[j]
    if k == K_U16:
        return (<const uint16_t*>c.data)[j]
    return (<const uint8_t*>c.data)[j]


cdef inline const char* _str(const col_t* c, int64_t i, int64_t* length) noexcept nogil:
    cdef int64_t j = c.off + i, a, b
    if c.kind == K_UTF8:
        a = (<const int32_t*>c.data)[j]
        b = (<const int32_t*>c.data)[j + 1]
    else:
        a = (<const int64_t*>c.data)[j]
        b = (<const int64_t*>c.data)[j + 1]
    length[0] = b - a
    return c.chars + a


cdef inline bint _is_str(int kind) noexcept nogil:
    return kind == K_UTF8 or kind == K_LUTF8


@cython.final
cdef class RowsEngine:
    """Streaming state of the per-identity row checks over one identifier column (see the
    module docstring). ``id_str``: the ids are strings (else integers); ``consistent``:
    ``[(attr_str, flag_minority)]``; ``contiguous``: ``[(window, step, allowed)]`` in ticks of
    the time column; ``horizon``: rows an identity stays quiet before it is judged (``None``:
    at flush). Results come per member: the consistent ones, then the contiguous ones."""

    cdef readonly bint id_str
    cdef int64_t horizon  # -1: until flush
    cdef size_t n_cs, n_ct
    # the identity index: open addressing (linear probing, backward-shift erase)
    cdef vector[bucket_t] buckets
    cdef size_t bmask
    cdef readonly size_t identities  # identities held (not judged yet)
    # per slot (an identity; slots are reused once it is judged)
    cdef vector[slot_t] slots
    cdef vector[string] key_str
    cdef vector[int64_t] free_slots
    cdef vector[cs_t] cs  # [slot * n_cs + member]
    cdef vector[ct_t] ct  # [slot * n_ct + member]
    cdef readonly int64_t live_rows  # rows of the identities held
    # members
    cdef vector[uint8_t] cs_str, cs_min
    cdef vector[int64_t] ct_window, ct_step, ct_allowed
    # identities by newest row, oldest first from fifo_head (stale entries skipped)
    cdef vector[pair[int64_t, int64_t]] fifo
    cdef size_t fifo_head
    # the pending batch: what it changed, to undo it
    cdef bint pending
    cdef public int64_t nogil_min_rows  # batches of fewer rows keep the GIL (as the box engine's)
    cdef bint release  # the pending batch's kernel sections release the GIL
    cdef int64_t gen
    cdef vector[int64_t] sv_slot, sv_last, sv_n, sv_cs, sv_ct
    cdef vector[uint8_t] sv_new, sv_uns
    cdef vector[int64_t] inc_log  # (index into cs, value) of counts raised in ``more``
    cdef size_t sv_fifo_size, sv_fifo_head
    cdef int64_t sv_live_rows
    cdef vector[int64_t] judged  # slots judged: freed at commit
    cdef ArrowArray arr
    cdef vector[col_t] cols  # the batch's attribute columns, then its time columns
    cdef col_t idc
    cdef vector[rec_t] scratch  # an identity's presences, unpacked while judging it
    cdef vector[int64_t] slot_of  # the batch's slot per row (-1: a null id)
    cdef vector[int64_t] dslot, dlast, dcount  # per id of the batch's range: slot, newest row, rows
    cdef vector[int64_t] gap_t  # the last gaps' times while judging one identity

    def __cinit__(self):
        self.arr.release = NULL
        self.pending = False
        self.gen = 0
        self.bmask = 0
        self.identities = 0
        self.fifo_head = 0
        self.live_rows = 0

    def __init__(self, bint id_str, consistent=(), contiguous=(), horizon=None):
        cdef uint8_t flag  # a typed value: Cython 3.3 passes a conditional expression to
        # push_back(const T&) as a reference to a temporary that is gone before the call
        self.id_str = id_str
        self.horizon = -1 if horizon is None else horizon
        self.nogil_min_rows = _config.MONITOR_NOGIL_MIN_ROWS
        for attr_str, minority in consistent:
            flag = 1 if attr_str else 0
            self.cs_str.push_back(flag)
            flag = 1 if minority else 0
            self.cs_min.push_back(flag)
        for window, step, allowed in contiguous:
            self.ct_window.push_back(window)
            self.ct_step.push_back(step)
            self.ct_allowed.push_back(allowed)
        self.n_cs = self.cs_str.size()
        self.n_ct = self.ct_window.size()

    def __dealloc__(self):
        tw_release_array(&self.arr)

    # ------------------------------------------------------------------ the identity index
    cdef void _grow(self) noexcept nogil:
        cdef size_t n = 16 if self.buckets.size() == 0 else self.buckets.size() * 2, i, j
        cdef vector[bucket_t] old
        cdef bucket_t empty
        empty.tag = 0
        empty.slot = -1
        old.swap(self.buckets)
        self.buckets.assign(n, empty)
        self.bmask = n - 1
        for i in range(old.size()):
            if old[i].slot >= 0:
                j = self.slots[old[i].slot].hash & self.bmask
                while self.buckets[j].slot >= 0:
                    j = (j + 1) & self.bmask
                self.buckets[j] = old[i]

    cdef inline int64_t _slot_int(self, int64_t v, bint* created) noexcept nogil:
        """The slot of integer id ``v`` (a new one when unseen)."""
        cdef uint64_t h = tw_mix64(<uint64_t>v)
        cdef size_t j = h & self.bmask
        cdef int64_t s
        cdef bucket_t* b
        if self.buckets.size():
            while True:
                b = &self.buckets[j]
                if b.slot < 0:
                    break
                if b.tag == <uint64_t>v:
                    return b.slot
                j = (j + 1) & self.bmask
        created[0] = True
        s = self._insert(h, <uint64_t>v)
        self.slots[s].key = v
        return s

    cdef inline int64_t _slot_str(self, const char* p, int64_t length, bint* created) noexcept nogil:
        """The slot of string id ``p[:length]`` (a new one when unseen)."""
        cdef uint64_t h = tw_hash_bytes(p, length)
        cdef size_t j = h & self.bmask
        cdef int64_t s
        cdef bucket_t* b
        if self.buckets.size():
            while True:
                b = &self.buckets[j]
                if b.slot < 0:
                    break
                if b.tag == h and <int64_t>self.key_str[b.slot].size() == length \
                        and (length == 0 or memcmp(self.key_str[b.slot].data(), p, length) == 0):
                    return b.slot
                j = (j + 1) & self.bmask
        created[0] = True
        s = self._insert(h, h)
        self.key_str[s].assign(p, length)
        return s

    cdef int64_t _insert(self, uint64_t h, uint64_t tag) noexcept nogil:
        """A new slot for an unseen id of hash ``h``, in the index under ``tag``."""
        cdef int64_t s
        cdef size_t j
        if (self.identities + 1) * 2 > self.buckets.size():
            self._grow()
        if self.free_slots.size():
            s = self.free_slots.back()
            self.free_slots.pop_back()
        else:
            s = self.slots.size()
            self.slots.resize(s + 1)
            self.key_str.resize(s + 1)
            self.cs.resize((s + 1) * self.n_cs)
            self.ct.resize((s + 1) * self.n_ct)
        self.slots[s].hash = h
        self.slots[s].last_row = -1
        self.slots[s].nrows = 0
        self.slots[s].mark = -1
        self.slots[s].alive = 1
        j = h & self.bmask
        while self.buckets[j].slot >= 0:
            j = (j + 1) & self.bmask
        self.buckets[j].tag = tag
        self.buckets[j].slot = s
        self.identities += 1
        return s

    cdef void _free(self, int64_t s) noexcept nogil:
        """Forget slot ``s``: out of the index, its state cleared (capacity kept for the next
        identity, unless large)."""
        cdef size_t i, j, home, m
        cdef bint stays
        cdef cs_t* c
        cdef ct_t* t
        if not self.slots[s].alive:
            return
        i = self.slots[s].hash & self.bmask
        while self.buckets[i].slot != s:
            i = (i + 1) & self.bmask
        self.buckets[i].slot = -1
        self.identities -= 1
        j = (i + 1) & self.bmask
        while self.buckets[j].slot >= 0:
            home = self.slots[self.buckets[j].slot].hash & self.bmask  # j moves into the hole unless home lies in (i, j]
            stays = (home > i and home <= j) if i <= j else (home > i or home <= j)
            if not stays:
                self.buckets[i] = self.buckets[j]
                self.buckets[j].slot = -1
                i = j
            j = (j + 1) & self.bmask
        self.slots[s].alive = 0
        self.live_rows -= self.slots[s].nrows
        self.slots[s].nrows = 0
        if self.id_str:
            self.key_str[s].clear()
        for m in range(self.n_cs):
            c = &self.cs[s * self.n_cs + m]
            c.count = 0
            c.sv.clear()
            c.rows.clear()
            c.more.clear()
            if c.rows.capacity() > 4096:
                vector[int64_t]().swap(c.rows)
        for m in range(self.n_ct):
            t = &self.ct[s * self.n_ct + m]
            t.words.clear()
            if t.words.capacity() > 16384:
                vector[uint16_t]().swap(t.words)
            t.n = 0
            t.gaps = 0
            t.unsorted = 0
        self.free_slots.push_back(s)

    # ------------------------------------------------------------------ one batch
    def feed(self, batch, int64_t row0, int id_col, int id_kind, attrs=(), times=()):
        """Add the rows of ``batch`` (a ``pyarrow.RecordBatch``; its rows are ``row0 ..``) to
        their identities. ``id_col``/``id_kind``: the id column's index and kind;
        ``attrs``/``times``: ``(index, kind)`` of each consistent / contiguous member's
        attribute / time column. The first ``feed`` after a ``commit`` or ``abort`` opens a
        pending batch."""
        cdef int64_t n, k
        cdef int index, kind
        cdef ArrowArray* child
        cdef col_t c
        if _is_str(id_kind) != self.id_str:
            raise ValueError("tripwire: the id column changed between strings and integers")
        if <size_t>len(attrs) != self.n_cs or <size_t>len(times) != self.n_ct:
            raise ValueError("tripwire: one column per member expected")
        specs = [(id_col, id_kind)] + list(attrs) + list(times)
        for k in range(1, 1 + <int64_t>self.n_cs):
            if _is_str(specs[k][1]) != self.cs_str[k - 1]:
                raise ValueError("tripwire: an attribute column changed between strings and integers")
        if not self.pending:
            self._begin()
        self.arr.release = NULL
        batch._export_to_c(<uintptr_t>&self.arr)
        try:
            n = self.arr.length
            self.cols.clear()
            for k in range(len(specs)):
                index, kind = specs[k]
                if index < 0 or index >= self.arr.n_children:
                    raise ValueError("tripwire: column index out of range")
                child = self.arr.children[index]
                if child.length != n or child.n_buffers != (3 if _is_str(kind) else 2) or child.dictionary != NULL:
                    raise ValueError("tripwire: the batch does not have the columns the engine expects")
                c.off = child.offset
                c.valid = <const uint8_t*>child.buffers[0] if child.null_count != 0 else NULL
                c.data = child.buffers[1]
                c.chars = <const char*>child.buffers[2] if _is_str(kind) else NULL
                c.kind = kind
                if k == 0:
                    self.idc = c
                else:
                    self.cols.push_back(c)
            self.release = n >= self.nogil_min_rows
            if self.release:
                with nogil:
                    self._rows(n, row0)
            elif n:
                self._rows(n, row0)
        finally:
            tw_release_array(&self.arr)

    cdef void _begin(self) noexcept:
        self.pending = True
        self.gen += 1
        self.sv_slot.clear()
        self.sv_last.clear()
        self.sv_n.clear()
        self.sv_new.clear()
        self.sv_cs.clear()
        self.sv_ct.clear()
        self.sv_uns.clear()
        self.inc_log.clear()
        self.judged.clear()
        self.sv_fifo_size = self.fifo.size()
        self.sv_fifo_head = self.fifo_head
        self.sv_live_rows = self.live_rows

    cdef void _save(self, int64_t s, bint created) noexcept nogil:
        """Remember slot ``s`` as it was before the pending batch first touched it."""
        cdef size_t m
        cdef cs_t* c
        cdef ct_t* t
        self.slots[s].mark = self.gen
        self.sv_slot.push_back(s)
        self.sv_last.push_back(self.slots[s].last_row)
        self.sv_n.push_back(self.slots[s].nrows)
        self.sv_new.push_back(created)
        for m in range(self.n_cs):
            c = &self.cs[s * self.n_cs + m]
            self.sv_cs.push_back(c.count)
            self.sv_cs.push_back(c.more.size())
        for m in range(self.n_ct):
            t = &self.ct[s * self.n_ct + m]
            self.sv_ct.push_back(t.words.size())
            self.sv_ct.push_back(t.n)
            self.sv_ct.push_back(t.last_t)
            self.sv_ct.push_back(t.last_row)
            self.sv_ct.push_back(t.gaps)
            self.sv_uns.push_back(t.unsorted)

    cdef void _rows(self, int64_t n, int64_t row0) noexcept nogil:
        """The batch's rows into their identities, CHUNK rows at a time: the chunk's slots,
        then a pass per member over it (short loops; the identities' state stays in cache
        between the passes instead of being pushed out by a whole batch's columns)."""
        cdef int64_t a, b, lo = 0
        cdef bint direct = not self.id_str and self._direct_range(n, &lo)
        self.slot_of.resize(CHUNK)
        a = 0
        while a < n:
            b = a + CHUNK if a + CHUNK < n else n
            if direct:
                self._slots_direct(a, b, row0, lo)
            else:
                self._slots_hashed(a, b, row0)
            self._members(a, b, row0)
            a = b
        if direct:
            self._direct_done()

    cdef void _members(self, int64_t a, int64_t b, int64_t row0) noexcept nogil:
        """Rows ``a .. b`` (their slots in ``slot_of``) into each member's state."""
        cdef int64_t i, s, v, length = 0, row, t, step
        cdef const char* p = NULL
        cdef bint null, text, minority
        cdef size_t m, n_cs = self.n_cs, n_ct = self.n_ct
        cdef col_t* c
        cdef cs_t* cs
        cdef ct_t* ct
        cdef const int64_t* slot_of = self.slot_of.data() - a  # indexed by row
        cdef const int64_t* tp
        cdef const int32_t* ap32 = NULL
        cdef const int64_t* ap64 = NULL
        cdef col_t* tc
        if n_cs == 1 and n_ct == 1 and not self.cs_str[0] and not self.cs_min[0]:
            c = &self.cols[0]
            tc = &self.cols[1]
            if c.valid == NULL and tc.valid == NULL and (c.kind == K_I32 or c.kind == K_I64) and tc.kind == K_I64:
                # the common shape (one of each, flag="first", integer columns without nulls):
                # one pass over the rows for both, columns read as they are
                if c.kind == K_I32:
                    ap32 = <const int32_t*>c.data + c.off
                else:
                    ap64 = <const int64_t*>c.data + c.off
                tp = <const int64_t*>tc.data + tc.off
                step = self.ct_step[0]
                for i in range(a, b):
                    s = slot_of[i]
                    if s < 0:
                        continue
                    row = row0 + i
                    cs = &self.cs[s]
                    v = ap32[i] if ap32 != NULL else ap64[i]
                    if cs.count and not cs.null and cs.iv == v:
                        cs.count += 1
                    elif cs.count == 0:
                        cs.null = 0
                        cs.iv = v
                        cs.first_row = row
                        cs.count = 1
                    else:
                        self._another(s, False, v, NULL, 0, row, 0)
                    t = tp[i]
                    ct = &self.ct[s]
                    if ct.n and t == ct.last_t:
                        continue  # a repeated time is one presence: its first row stands for it
                    _append(ct, t, row, step)
                return
        for m in range(n_cs):
            c = &self.cols[m]
            text = self.cs_str[m]
            minority = self.cs_min[m]
            for i in range(a, b):
                s = slot_of[i]
                if s < 0:
                    continue
                row = row0 + i
                cs = &self.cs[s * n_cs + m]
                null = not _ok(c, i)
                v = 0
                if null:
                    pass
                elif text:
                    p = _str(c, i, &length)
                else:
                    v = _int(c, i)
                if cs.count == 0:  # the identity's first row
                    cs.null = null
                    cs.iv = v
                    if text and not null:
                        cs.sv.assign(p, length)
                    cs.first_row = row
                    cs.count = 1
                    if minority:
                        cs.rows.push_back(row)
                elif self._same(cs.null, cs.iv, &cs.sv, null, v, p, length, text):
                    cs.count += 1  # the common case: an identity keeps its attribute
                    if minority:
                        cs.rows.push_back(row)
                else:
                    self._another(s * n_cs + m, null, v, p, length, row, m)
        for m in range(n_ct):
            c = &self.cols[n_cs + m]
            step = self.ct_step[m]
            for i in range(a, b):
                s = slot_of[i]
                if s < 0 or not _ok(c, i):
                    continue
                t = _int(c, i)
                ct = &self.ct[s * n_ct + m]
                if ct.n and t == ct.last_t:
                    continue  # a repeated time is one presence: its first row stands for it
                _append(ct, t, row0 + i, step)

    cdef bint _direct_range(self, int64_t n, int64_t* lo_out) noexcept nogil:
        """Integer ids over a small range in this batch (the common case: tracker ids): a
        table by id for the batch (``dslot``, ``dlast``, ``dcount``), so the index is probed
        once per id, not once per row, and each identity's newest row and row count are
        gathered there. False: the range is too wide, or every id is null (rows are hashed)."""
        cdef col_t* idc = &self.idc
        cdef int64_t i, v, lo = INT64_MAX, hi = INT64_MIN, span
        cdef const int64_t* ids
        if idc.kind == K_I64 and idc.valid == NULL:
            ids = <const int64_t*>idc.data + idc.off  # the common layout: a plain loop
            for i in range(n):
                v = ids[i]
                lo = v if v < lo else lo
                hi = v if v > hi else hi
        else:
            for i in range(n):
                if _ok(idc, i):
                    v = _int(idc, i)
                    lo = v if v < lo else lo
                    hi = v if v > hi else hi
        if hi < lo or <uint64_t>hi - <uint64_t>lo >= <uint64_t>(n + 4096):
            return False  # the table would cost more than the rows (24 bytes per id of the range)
        span = hi - lo + 1
        self.dslot.assign(span, -1)
        self.dlast.resize(span)
        self.dcount.assign(span, 0)
        lo_out[0] = lo
        return True

    cdef void _slots_direct(self, int64_t a, int64_t b, int64_t row0, int64_t lo) noexcept nogil:
        cdef col_t* idc = &self.idc
        cdef int64_t i, code, s
        cdef bint created
        cdef const int64_t* ids = NULL
        cdef int64_t* slot_of = self.slot_of.data() - a
        cdef int64_t* dslot = self.dslot.data()
        cdef int64_t* dlast = self.dlast.data()
        cdef int64_t* dcount = self.dcount.data()
        if idc.kind == K_I64 and idc.valid == NULL:
            ids = <const int64_t*>idc.data + idc.off
        for i in range(a, b):
            if ids != NULL:
                code = ids[i] - lo
            elif not _ok(idc, i):
                slot_of[i] = -1
                continue
            else:
                code = _int(idc, i) - lo
            s = dslot[code]
            if s < 0:
                created = False
                s = self._slot_int(code + lo, &created)
                dslot[code] = s
                if self.slots[s].mark != self.gen:
                    self._save(s, created)  # before any member changes the identity
            slot_of[i] = s
            dlast[code] = row0 + i
            dcount[code] += 1

    cdef void _direct_done(self) noexcept nogil:
        """The batch's newest row and row count of each identity, from the direct table."""
        cdef size_t code
        cdef int64_t s, cnt, added = 0
        for code in range(self.dslot.size()):
            s = self.dslot[code]
            if s >= 0:
                cnt = self.dcount[code]
                self.slots[s].last_row = self.dlast[code]
                self.slots[s].nrows += cnt
                added += cnt
        self.live_rows += added
        if self.dslot.capacity() > 1 << 20:  # a huge batch's table: not kept for the next one
            vector[int64_t]().swap(self.dslot)
            vector[int64_t]().swap(self.dlast)
            vector[int64_t]().swap(self.dcount)

    cdef void _slots_hashed(self, int64_t a, int64_t b, int64_t row0) noexcept nogil:
        """Each row's slot through the index (string ids, or integer ids over a wide range)."""
        cdef int64_t i, s = -1, v, prev_v = 0, length = 0, prev_len = -1, added = 0
        cdef const char* p = NULL
        cdef const char* prev_p = NULL
        cdef bint created, str_ids = self.id_str, has_prev = False
        cdef col_t* idc = &self.idc
        cdef slot_t* sl
        cdef int64_t* slot_of = self.slot_of.data() - a
        for i in range(a, b):
            if not _ok(idc, i):
                slot_of[i] = -1
                continue
            created = False
            if str_ids:
                p = _str(idc, i, &length)
                if not (has_prev and length == prev_len and memcmp(p, prev_p, length) == 0):
                    s = self._slot_str(p, length, &created)  # runs of one id: no hashing
                    prev_p = p
                    prev_len = length
            else:
                v = _int(idc, i)
                if not (has_prev and v == prev_v):
                    s = self._slot_int(v, &created)
                    prev_v = v
            has_prev = True
            sl = &self.slots[s]
            if sl.mark != self.gen:
                self._save(s, created)  # before any member changes the identity
            sl.last_row = row0 + i
            sl.nrows += 1
            added += 1
            slot_of[i] = s
        self.live_rows += added

    cdef inline bint _same(self, uint8_t e_null, int64_t e_iv, string* e_sv, bint null, int64_t v,
                           const char* p, int64_t length, bint text) noexcept nogil:
        if e_null or null:
            return e_null and null
        if not text:
            return e_iv == v
        return <int64_t>e_sv.size() == length and (length == 0 or memcmp(e_sv.data(), p, length) == 0)

    cdef void _another(self, size_t at, bint null, int64_t v, const char* p, int64_t length, int64_t row,
                       size_t m) noexcept nogil:
        """A row whose attribute is not its identity's first value (rare: the identity is or
        turns inconsistent)."""
        cdef cs_t* cs = &self.cs[at]
        cdef ent_t* e
        cdef ent_t blank
        cdef size_t q
        for q in range(cs.more.size()):
            e = &cs.more[q]
            if self._same(e.null, e.iv, &e.sv, null, v, p, length, self.cs_str[m]):
                e.count += 1
                if self.cs_min[m]:
                    e.rows.push_back(row)
                self.inc_log.push_back(at)
                self.inc_log.push_back(q)
                return
        blank.null = null
        blank.iv = v
        blank.count = 1
        blank.first_row = row
        cs.more.push_back(blank)
        e = &cs.more.back()
        if self.cs_str[m] and not null:
            e.sv.assign(p, length)
        if self.cs_min[m]:
            e.rows.push_back(row)

    def finish(self, int64_t end):
        """End the pending batch (rows up to ``end``): judge the identities quiet for
        ``horizon`` rows. Returns each member's violations (see ``_result``)."""
        cdef size_t k
        cdef int64_t limit = end - self.horizon
        cdef vector[out_t] outs
        if not self.pending:
            self._begin()  # a batch without rows
            self.release = False
        outs.resize(self.n_cs + self.n_ct)
        if self.horizon >= 0:
            if self.release:
                with nogil:
                    self._judge_quiet(limit, outs)
            else:
                self._judge_quiet(limit, outs)
        got = []
        for k in range(outs.size()):
            got.append(self._result(outs[k]))
        return got

    cdef void _judge_quiet(self, int64_t limit, vector[out_t]& outs) noexcept nogil:
        """Queue the pending batch's identities by their newest row; judge those quiet since
        before row ``limit``."""
        cdef size_t k
        cdef int64_t s
        cdef vector[pair[int64_t, int64_t]] fresh
        cdef pair[int64_t, int64_t] f
        for k in range(self.sv_slot.size()):
            s = self.sv_slot[k]
            fresh.push_back(pair[int64_t, int64_t](self.slots[s].last_row, s))
        cpp_sort(fresh.begin(), fresh.end())
        self.fifo.insert(self.fifo.end(), fresh.begin(), fresh.end())
        while self.fifo_head < self.fifo.size() and self.fifo[self.fifo_head].first < limit:
            f = self.fifo[self.fifo_head]
            self.fifo_head += 1
            s = f.second
            if self.slots[s].alive and self.slots[s].last_row == f.first and self.slots[s].mark != -2:
                self._judge(s, outs)
                self.slots[s].mark = -2  # judged: freed at commit
                self.judged.push_back(s)

    cdef void _free_judged(self) noexcept nogil:
        cdef size_t k
        for k in range(self.judged.size()):
            self._free(self.judged[k])
        if self.fifo_head > 4096 and self.fifo_head * 2 > self.fifo.size():
            self.fifo.erase(self.fifo.begin(), self.fifo.begin() + self.fifo_head)
            self.fifo_head = 0

    def commit(self):
        """Keep the pending batch: forget what would undo it, free the identities judged."""
        if not self.pending:
            return
        if self.release:
            with nogil:
                self._free_judged()
        else:
            self._free_judged()
        self.judged.clear()
        self.pending = False

    def abort(self):
        """Undo the pending batch (nothing of it is kept)."""
        cdef size_t k, m, n_cs = self.n_cs, n_ct = self.n_ct
        cdef int64_t s, cnt
        cdef ent_t* e
        cdef cs_t* c
        cdef ct_t* t
        if not self.pending:
            return
        with nogil:
            k = self.inc_log.size()
            while k >= 2:  # counts raised in ``more``, newest first
                k -= 2
                e = &self.cs[self.inc_log[k]].more[self.inc_log[k + 1]]
                e.count -= 1
                if self.cs_min[self.inc_log[k] % n_cs]:
                    e.rows.pop_back()
            for k in range(self.sv_slot.size()):
                s = self.sv_slot[k]
                self.slots[s].mark = -1
                if self.sv_new[k]:
                    self.slots[s].nrows = 0  # live_rows is restored below
                    self._free(s)
                    continue
                self.slots[s].last_row = self.sv_last[k]
                self.slots[s].nrows = self.sv_n[k]
                for m in range(n_cs):
                    c = &self.cs[s * n_cs + m]
                    cnt = self.sv_cs[2 * (k * n_cs + m)]
                    c.count = cnt
                    if self.cs_min[m]:
                        c.rows.resize(cnt)
                    c.more.resize(self.sv_cs[2 * (k * n_cs + m) + 1])
                for m in range(n_ct):
                    t = &self.ct[s * n_ct + m]
                    t.words.resize(self.sv_ct[5 * (k * n_ct + m)])
                    t.n = self.sv_ct[5 * (k * n_ct + m) + 1]
                    t.last_t = self.sv_ct[5 * (k * n_ct + m) + 2]
                    t.last_row = self.sv_ct[5 * (k * n_ct + m) + 3]
                    t.gaps = self.sv_ct[5 * (k * n_ct + m) + 4]
                    t.unsorted = self.sv_uns[k * n_ct + m]
            for k in range(self.judged.size()):
                s = self.judged[k]
                if self.slots[s].mark == -2:
                    self.slots[s].mark = -1
            self.fifo.resize(self.sv_fifo_size)
            self.fifo_head = self.sv_fifo_head
            self.live_rows = self.sv_live_rows
        self.judged.clear()
        self.pending = False

    def flush(self):
        """Judge every identity and forget it (the end of the stream)."""
        cdef vector[out_t] outs
        cdef int64_t s
        cdef size_t k
        if self.pending:
            raise ValueError("tripwire: flush with a pending batch")
        outs.resize(self.n_cs + self.n_ct)
        with nogil:
            for s in range(<int64_t>self.slots.size()):
                if self.slots[s].alive:
                    self._judge(s, outs)
        got = []
        for k in range(outs.size()):
            got.append(self._result(outs[k]))
        with nogil:
            for s in range(<int64_t>self.slots.size()):
                if self.slots[s].alive:
                    self._free(s)
            self.fifo.clear()
            self.fifo_head = 0
        return got

    # ------------------------------------------------------------------ judging
    cdef void _judge(self, int64_t s, vector[out_t]& outs) noexcept nogil:
        cdef size_t m
        for m in range(self.n_cs):
            self._consistent(m, s, &outs[m])
        for m in range(self.n_ct):
            self._contiguous(m, s, &outs[self.n_cs + m])

    cdef void _consistent(self, size_t m, int64_t s, out_t* out) noexcept nogil:
        """As ``_rows_cy.consistent``: an identity with more than one value (null is one) is
        an event anchored at its first row; severity: share of rows not holding the most
        common non-null value (ties: the value seen first); flagged: the first row of each
        value, or (``flag="minority"``) every row not holding the most common one."""
        cdef cs_t* c = &self.cs[s * self.n_cs + m]
        cdef size_t q, n_more = c.more.size(), start
        cdef int64_t total = c.count, best_cnt = -1, best = -2  # best: -1 the first value, q in more
        cdef ent_t* e
        if n_more == 0:
            return
        if not c.null:
            best_cnt = c.count
            best = -1
        for q in range(n_more):  # in order of first row: ties keep the earliest
            e = &c.more[q]
            total += e.count
            if not e.null and e.count > best_cnt:
                best_cnt = e.count
                best = q
        if best_cnt < 0:
            best_cnt = 0
        start = out.rows.size()
        out.start.push_back(start)
        out.anchor.push_back(c.first_row)
        out.slot.push_back(s)
        out.sev.push_back(<float>(total - best_cnt) / <float>total)
        if not self.cs_min[m]:
            out.rows.push_back(c.first_row)
            for q in range(n_more):
                out.rows.push_back(c.more[q].first_row)
            return
        if best != -1:
            out.rows.insert(out.rows.end(), c.rows.begin(), c.rows.end())
        for q in range(n_more):
            if <int64_t>q != best:
                out.rows.insert(out.rows.end(), c.more[q].rows.begin(), c.more[q].rows.end())
        cpp_sort(out.rows.begin() + start, out.rows.end())

    cdef void _contiguous(self, size_t m, int64_t s, out_t* out) noexcept nogil:
        """As ``_rows_cy.contiguous`` on the identity's distinct times in ascending order (the
        first row of a time stands for it): with G = allowed // 2 + 1 gaps needed, the start
        at time u is flagged at its G-th following gap q when time(q) - u < window (the batch
        kernel's streaming pass, on one identity)."""
        cdef ct_t* ct = &self.ct[s * self.n_ct + m]
        cdef vector[rec_t]* r = &self.scratch
        cdef int64_t allowed = self.ct_allowed[m], window = self.ct_window[m], step = self.ct_step[m]
        cdef int64_t G = allowed // 2 + 1, GR = allowed // 2 + 2, gc = 0, gp = 0, slot, t, et, hi_t, lo_t
        cdef int64_t nu, p, q, w
        cdef float sev = <float>(2 * G - allowed)
        cdef rec_t* u
        if ct.n <= G or (not ct.unsorted and ct.gaps < G):  # never G gaps
            return
        _unpack(ct, step, self.scratch)
        u = r.data()
        nu = ct.n
        if ct.unsorted:
            cpp_sort(u, u + nu)  # (time, row): the first row of each time leads its run
            w = 0
            for q in range(nu):
                if q == 0 or u[q].first != u[w - 1].first:
                    u[w] = u[q]
                    w += 1
            nu = w
        if nu <= G:
            return
        self.gap_t.assign(GR, 0)
        for q in range(1, nu):
            t = u[q].first
            if <uint64_t>t - <uint64_t>u[q - 1].first == <uint64_t>step:
                continue
            self.gap_t[gp] = t
            gp = 0 if gp + 1 == GR else gp + 1
            if gc < GR:
                gc += 1
            if gc < G:
                continue
            # the G-th latest gap sits G slots back from the next slot; the (G+1)-th, GR back
            slot = gp - G
            if slot < 0:
                slot += GR
            hi_t = self.gap_t[slot]
            lo_t = self.gap_t[gp] if gc > G else INT64_MIN
            p = q - 1
            while p >= 0:
                et = u[p].first
                if et < lo_t or <uint64_t>t - <uint64_t>et >= <uint64_t>window:
                    break
                if et < hi_t:
                    out.start.push_back(out.rows.size())
                    out.anchor.push_back(u[p].second)
                    out.slot.push_back(s)
                    out.sev.push_back(sev)
                    if u[p].second < u[q].second:
                        out.rows.push_back(u[p].second)
                        out.rows.push_back(u[q].second)
                    else:
                        out.rows.push_back(u[q].second)
                        out.rows.push_back(u[p].second)
                p -= 1

    cdef object _result(self, out_t& out):
        """``None`` (nothing found) or ``(rows, events, severity, keys)`` in canonical order:
        events numbered by their anchor row, rows ascending inside one; ``keys``: the id of
        each row (int64 array, or a list of str)."""
        cdef size_t n_ev = out.anchor.size(), n = out.rows.size(), e, k, j, lo, hi
        cdef int64_t s
        cdef vector[pair[int64_t, int64_t]] order
        cdef vector[int64_t] slot_of
        if n_ev == 0:
            return None
        for e in range(n_ev):
            order.push_back(pair[int64_t, int64_t](out.anchor[e], e))
        cpp_sort(order.begin(), order.end())
        rows = np.empty(n, np.int64)
        events = np.empty(n, np.int64)
        sev = np.empty(n, np.float32)
        cdef int64_t[::1] rv = rows, evv = events, kv
        cdef float[::1] sv = sev
        k = 0
        for j in range(n_ev):
            e = order[j].second
            lo = out.start[e]
            hi = out.start[e + 1] if e + 1 < n_ev else out.rows.size()
            for lo in range(lo, hi):
                rv[k] = out.rows[lo]
                evv[k] = j
                sv[k] = out.sev[e]
                slot_of.push_back(out.slot[e])
                k += 1
        if self.id_str:
            texts = {}
            keys = []
            for k in range(n):
                s = slot_of[k]
                if s not in texts:
                    texts[s] = self.key_str[s].decode("utf-8", "replace")
                keys.append(texts[s])
        else:
            keys = np.empty(n, np.int64)
            kv = keys
            for k in range(n):
                kv[k] = self.slots[slot_of[k]].key
        return rows, events, sev, keys
