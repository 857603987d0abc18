"""The allocator's tuning: a server process keeps the memory a request frees, instead of faulting it in again."""

from __future__ import annotations

import subprocess
import sys

import pytest

# 100 "requests", each holding six 1 MB buffers at once (as a 5-digit canvas's decoding does), then freeing them;
# prints the minor page faults they took after the first.
LOOP = """
import resource, sys
from service.allocator import keep_freed_memory
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else None
def request():
    buffers = [bytearray(1 << 20) for _ in range(6)]  # zero-filled: every page is written
    del buffers
request()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    request()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, check=True).stdout
    tuned, count = out.split()
    return tuned, int(count)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt() is glibc's")
def test_freed_buffers_are_reused_without_page_faults():
    tuned, after = faults("tuned")
    assert tuned == "True" and after < 256  # 1 MB is 256 pages: not one buffer's worth faulted in again
    assert faults("plain")[1] > 100 * 256  # glibc's default: pages come and go with every request
