# cython: language_level=3
"""Fused types shared by every kernel family (one place, so backends agree on dtypes)."""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

# Dense identifier codes (see tripwire._arrow.encode_keys): Arrow dictionary indices are int32,
# direct-addressed integer ids stay in their own int32/int64 buffer (zero copy).
ctypedef fused key_t:
    int32_t
    int64_t

# A second, independent key type for kernels that take two key columns.
ctypedef fused key2_t:
    int32_t
    int64_t

# Every fixed-width numeric column a per-row check can read without a copy.
ctypedef fused num_t:
    float
    double
    int8_t
    int16_t
    int32_t
    int64_t
    uint8_t
    uint16_t
    uint32_t
    uint64_t
