# cython: language_level=3
"""The Arrow C data interface, for the kernels that read a record batch in place through
``_export_to_c`` (``_monitor_cy``, ``_monitor_rows_cy``): one declaration, cimported by both."""
from libc.stdint cimport int64_t

cdef extern from *:
    """
    #include <stdint.h>
    #ifndef ARROW_C_DATA_INTERFACE
    #define ARROW_C_DATA_INTERFACE
    struct ArrowSchema {
      const char* format; const char* name; const char* metadata; int64_t flags; int64_t n_children;
      struct ArrowSchema** children; struct ArrowSchema* dictionary;
      void (*release)(struct ArrowSchema*); void* private_data;
    };
    struct ArrowArray {
      int64_t length; int64_t null_count; int64_t offset; int64_t n_buffers; int64_t n_children;
      const void** buffers; struct ArrowArray** children; struct ArrowArray* dictionary;
      void (*release)(struct ArrowArray*); void* private_data;
    };
    #endif
    static inline void tw_release_array(struct ArrowArray* a) { if (a->release) a->release(a); }
    static inline void tw_release_schema(struct ArrowSchema* a) { if (a->release) a->release(a); }
    """
    cdef struct ArrowSchema:
        const char* format
        const char* name
        int64_t n_children
        ArrowSchema** children
        ArrowSchema* dictionary
        void (*release)(ArrowSchema*)
    cdef struct ArrowArray:
        int64_t length
        int64_t null_count
        int64_t offset
        int64_t n_buffers
        int64_t n_children
        const void** buffers
        ArrowArray** children
        ArrowArray* dictionary
        void (*release)(ArrowArray*)
    void tw_release_array(ArrowArray* a) nogil
    void tw_release_schema(ArrowSchema* a) nogil
