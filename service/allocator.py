"""The C allocator, tuned for a server: memory freed by one request is kept for the next.

A 5-digit canvas (a 952x280 RGBA PNG) passes through several 1 MB buffers: its inflated rows, its pixels, Pillow's
images of them. glibc gives a buffer this large pages of its own (mmap), or, once it has raised that threshold,
hands freed heap back to the system at once; either way the next request faults every page in again: 1,200 page
faults per 5-digit canvas, more than half of its decoding time (python -m bench.request_parts measures both ways).
Raising the two thresholds keeps that memory in the process, at most TRIM_FROM of it idle at the heap's top.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt()'s parameters, from glibc's <malloc.h>
MMAP_FROM = 16 << 20  # blocks this large still get pages of their own: a 25-megapixel photo's are rare
TRIM_FROM = 32 << 20  # free memory at the heap's top beyond this goes back to the system


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process and those it forks; False where the C library has no mallopt()."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):  # not glibc (macOS, Windows): its allocator is left as it is
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_FROM) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_FROM) == 1
