"""W&B online without network: a short probe of the host, then offline at once."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from dsnn.evaluation.report import log_to_wandb
from dsnn.training import start_logger
from dsnn.wandb_online import PROBE_TIMEOUT_S, answers
from tests.conftest import ROOT


class StalledServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.socket.accept()[0])
            except OSError:  # closed
                return

    def close(self) -> None:
        self.socket.close()
        for c in self.connections:
            c.close()


@pytest.fixture
def stalled():
    server = StalledServer()
    yield server
    server.close()


def test_probe_tells_an_answer_from_silence(stalled):
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 (http.server's naming)
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert answers(f"http://127.0.0.1:{server.server_port}/", timeout=2.0)  # 404 answers
    finally:
        server.shutdown()
        server.server_close()
    start = time.monotonic()
    assert not answers(stalled.url, timeout=0.5)
    assert time.monotonic() - start < 1.5
    assert stalled.connections  # it did go there
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    start = time.monotonic()
    assert not answers(f"http://127.0.0.1:{port}", timeout=2.0)
    assert time.monotonic() - start < 1.0  # refused: no need to wait


def test_online_run_without_an_answer_logs_offline_at_once(compose_cfg, tmp_path, stalled):
    import wandb

    cfg = compose_cfg("logger.wandb.mode=online", f"+logger.wandb.settings.base_url={stalled.url}")
    start = time.monotonic()
    logger = start_logger(cfg.logger.wandb)
    run = logger.experiment
    try:
        assert time.monotonic() - start < 10
        assert run.settings.mode == "offline"
        assert run.settings.init_timeout == 20  # the settings node reached wandb, as a dict
        assert stalled.connections  # the probe asked the configured host
    finally:
        wandb.finish()
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1


def test_evaluate_summary_run_without_an_answer_logs_offline_at_once(tmp_path, stalled):
    settings = {"mode": "online", "project": "dsnn", "init_timeout": 20, "base_url": stalled.url}
    start = time.monotonic()
    log_to_wandb(settings, "probe", tmp_path, summary={"test/acc": 0.5})
    assert time.monotonic() - start < PROBE_TIMEOUT_S + 10
    assert stalled.connections
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 1


@pytest.mark.slow
def test_train_py_online_with_a_key_and_no_network_costs_at_most_10_s(tmp_path, stalled):
    """A dummy API key and WANDB_BASE_URL at a host that never answers (the issue's case)."""
    env = os.environ | {
        "WANDB_API_KEY": "0123456789abcdef" * 2 + "01234567",  # 40 characters
        "WANDB_BASE_URL": stalled.url,
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
    }
    seconds = {}
    for mode in ("offline", "online"):
        start = time.monotonic()
        subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "experiment=demo", "model.width=4",
             "data.fraction=0.01", "data.val_size=500", "trainer.max_epochs=1",
             "energy.enabled=false", f"logger.wandb.mode={mode}",
             f"hydra.run.dir={tmp_path / mode}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        seconds[mode] = time.monotonic() - start
        assert len(list((tmp_path / mode / "wandb").glob("offline-run-*"))) == 1
    assert seconds["online"] - seconds["offline"] < 10, seconds
    assert stalled.connections
