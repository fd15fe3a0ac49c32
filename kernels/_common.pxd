# cython: language_level=3
"""Helpers shared by every Cython kernel family (inline: compiled into each module that
cimports them). Kernels take validity as a byte array that is empty when there are no nulls."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy
from libcpp.vector cimport vector


cdef inline const uint8_t* valid_ptr(const uint8_t[::1] valid) noexcept nogil:
    """NULL for an empty validity array (no nulls)."""
    if valid.shape[0] == 0:
        return NULL
    return &valid[0]


cdef inline bint is_valid(const uint8_t* valid, Py_ssize_t i) noexcept nogil:
    # a raw pointer, not a memoryview: passing a memoryview slice to a function copies it and
    # takes an atomic reference per call, which cost more than a whole per-row kernel body
    return valid == NULL or valid[i] != 0


ctypedef fused out_t:
    int64_t
    float


cdef inline object to_numpy(vector[out_t]& v):
    """A kernel's growing output vector as a new NumPy array (int64 or float32)."""
    out = np.empty(v.size(), dtype=np.int64 if out_t is int64_t else np.float32)
    cdef out_t[::1] o = out
    if v.size():
        memcpy(&o[0], v.data(), v.size() * sizeof(out_t))
    return out
