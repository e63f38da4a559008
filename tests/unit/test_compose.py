"""docker-compose.yml: each worker's healthcheck asks its own /readyz (on the port its
AMPLIFY_METRICS_PORT names, and fails on anything but 200), and the broker is the Kafka
version scripts/kafka.sh runs the tests against."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKERS = {"enhancer", "narrator", "projector", "documents"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    return services


def workers(services: dict[str, Any]) -> dict[str, Any]:
    found = {k: v for k, v in services.items() if v.get("command", [None])[0] == "worker"}
    assert set(found) == WORKERS
    return found


def readyz_url(service: dict[str, Any]) -> tuple[str, str]:
    """The healthcheck's script, and the one URL it asks."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    urls = re.findall(r"http://[^'\"\s]+", test[3])
    assert len(urls) == 1, test
    return test[3], urls[0]


def test_every_worker_healthcheck_asks_its_own_readyz(services: dict[str, Any]) -> None:
    for name, service in workers(services).items():
        port = int(service["environment"]["AMPLIFY_METRICS_PORT"])
        _, url = readyz_url(service)
        assert url == f"http://127.0.0.1:{port}/readyz", name
        assert "ports" not in service, f"{name}: its metrics port stays internal"


def test_no_healthcheck_is_the_one_that_cannot_fail(services: dict[str, Any]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck", {}).get("test", [])
        assert "/proc/1/status" not in " ".join(check), name


class Answer(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    thread.join()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (204, False), (503, False)])
def test_the_healthcheck_passes_on_200_only(
    services: dict[str, Any], server: ThreadingHTTPServer, status: int, healthy: bool
) -> None:
    script, url = readyz_url(workers(services)["enhancer"])
    Answer.status = status
    local = f"http://127.0.0.1:{server.server_address[1]}/readyz"
    run = subprocess.run(
        [sys.executable, "-c", script.replace(url, local)], capture_output=True, timeout=30
    )
    assert (run.returncode == 0) is healthy, run.stderr


def test_the_kafka_image_is_the_version_the_tests_run() -> None:
    script = (ROOT / "scripts" / "kafka.sh").read_text()
    match = re.search(r'^KAFKA_VERSION="\$\{KAFKA_VERSION:-([^}"]+)\}"', script, re.MULTILINE)
    assert match, "KAFKA_VERSION not found in scripts/kafka.sh"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{match.group(1)}"
