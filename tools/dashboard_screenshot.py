"""Save the README's screenshot of the dashboard's search page: docs/images/dashboard-search.png.

The bundled lecture search (``search_spaces/examples/lecture-cnn.yaml``, TPE) in a real SQLite store
served by the real app; its trials are claimed and reported through the store as a worker does, with
made-up Keras results (accuracy driven by the configuration plus noise, per-epoch curves), so that the
page is drawn in a few seconds without training. Needs Debian's chromium. The 1280x1170 viewport
(summary, history, parameters) is under 300 KB as PNG.

Run: ``PYTHONPATH=. .venv/bin/python tools/dashboard_screenshot.py``
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from hyperhive.models import TrialResult
from hyperhive.search_spaces import load
from hyperhive.settings import Settings
from hyperhive.store import SQLiteStore

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs/images/dashboard-search.png"


def made_up_result(config: dict[str, Any], rng: random.Random, epochs: int = 12) -> TrialResult:
    text = yaml.safe_dump(config)
    acc = 0.86 + 0.05 * ("elu" in text) + 0.03 * ("adam" in text) + rng.gauss(0, 0.025)
    acc = max(0.5, min(0.995, acc))
    history = [
        {"epoch": e, "val_accuracy": acc * (1 - 0.45 * 0.7**e) + rng.gauss(0, 0.004), "loss": 1.5 * 0.8**e}
        for e in range(1, epochs + 1)
    ]
    return TrialResult.done({"val_accuracy": acc, "val_loss": 1 - acc}, history=history)


def main() -> None:
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as d:
        store = SQLiteStore(Path(d) / "hh.db")
        doc = yaml.safe_load((REPO / "search_spaces/examples/lecture-cnn.yaml").read_text())
        doc.update(max_trials=40, seed=7)
        search = store.create_search(load(doc), owner="alice")
        for i in range(32):
            t = store.claim(f"gpu-box-{i % 3}", 600.0, search_id=search.id)
            assert t is not None and t.lease_token is not None and t.config is not None
            if i in (9, 23):
                store.report(
                    t.id, t.lease_token, TrialResult.failed("ResourceExhaustedError: OOM when allocating")
                )
            else:
                store.report(t.id, t.lease_token, made_up_result(t.config, rng))
        for i in range(2):  # two running, part-way through
            t = store.claim(f"gpu-box-{i}", 600.0, search_id=search.id)
            assert t is not None and t.lease_token is not None and t.config is not None
            store.heartbeat(t.id, t.lease_token, 600.0, made_up_result(t.config, rng).history[: 4 + 3 * i])
        _, token = store.create_token("alice")
        from hyperhive.service.app import create_app

        settings = Settings(store=f"sqlite:///{d}/hh.db", home=Path(d) / "home")  # type: ignore[call-arg]
        server = uvicorn.Server(uvicorn.Config(create_app(settings, store), port=0, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            b = pw.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader"],
            )
            ctx = b.new_context(viewport={"width": 1280, "height": 1170})
            ctx.add_cookies([{"name": "hyperhive_session", "value": token, "url": url}])
            page = ctx.new_page()
            page.goto(f"{url}/searches/{search.id}")
            for sel in ("#history", "#parcoords", "#importance", "#slices", "#curves"):
                page.wait_for_selector(f"{sel} .main-svg", timeout=120_000)
            time.sleep(1.0)
            OUT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUT))
            b.close()
        server.should_exit = True
        store.close()
    print(f"{OUT}: {OUT.stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    main()
