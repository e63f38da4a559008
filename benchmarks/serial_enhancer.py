"""``python -m benchmarks.serial_enhancer``: the enhancer role as ``amplify-stream worker
enhancer`` runs it, but narrating only once the rewrite is whole: the serial baseline of
the time to first audio (`make bench`). Not a setting of the service, which always hands
each sentence to the narrator as the rewrite completes it."""

from __future__ import annotations

from amplify_stream import cli
from consumers import runtime
from consumers.enhancer import Enhancer


class SerialEnhancer(Enhancer):
    pipelined = False


def main() -> int:
    runtime.ROLES["enhancer"] = runtime.enhancer_role(SerialEnhancer)
    return cli.main(["worker", "enhancer"])


if __name__ == "__main__":
    raise SystemExit(main())
