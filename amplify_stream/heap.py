"""The garbage collector of a long-running process, set for latency."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Once the process has started (modules imported, clients connected, schemas built):
    collect, then move every object alive now to the permanent generation, which no
    collection scans again. A full collection then walks only what the service made
    since, not the hundreds of thousands of objects of its libraries: under the live
    documents bench, full collections of 75-110 ms in the gateway and in the documents
    worker were the spikes of keystroke-to-``doc.ack`` p99 (gc.callbacks, timed)."""
    gc.collect()
    gc.freeze()
