"""Where a canvas request spends its time, in process, profiled with pyinstrument.

python -m bench.profile_request     # writes bench/results/profile_canvas.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyinstrument import Profiler

from bench.payloads import canvas_json
from service import create_app

RESULT = Path(__file__).parent / "results" / "profile_canvas.txt"


def main(requests: int = 2000) -> int:
    client = create_app().test_client()
    body = canvas_json()
    for _ in range(50):  # warm-up
        client.post("/predict", data=body, content_type="application/json")
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(requests):
        client.post("/predict", data=body, content_type="application/json")
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    RESULT.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
