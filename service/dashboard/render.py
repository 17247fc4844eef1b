"""HTML rendering for the dashboard: one Jinja2 environment with autoescaping on, its filters, and the
security headers every page carries (no inline script runs: page data travels in
``<script type="application/json">`` blocks, which the scripts read)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jinja2
import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse

import hyperhive
from hyperhive.models import Search, TokenInfo

TEMPLATES = Path(__file__).parent / "templates"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def number(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def to_yaml(v: Any) -> str:
    return yaml.safe_dump(v, sort_keys=False, allow_unicode=True, default_flow_style=False)


def to_json(v: Any) -> str:
    return json.dumps(v, indent=2, ensure_ascii=False)


def dataset_label(search: Search) -> str:
    """One line naming the search's dataset (built-in name, upload id, path or folder)."""
    ds = search.document.get("dataset")
    if isinstance(ds, str):
        return ds
    if isinstance(ds, dict):
        for key in ("name", "upload", "path", "folder"):
            if ds.get(key) is not None:
                return f"{ds[key]}" if key == "name" else f"{key}: {ds[key]}"
    return ""


def elapsed(search: Search, now: float) -> float | None:
    if search.started_at is None:
        return None
    return (search.finished_at or now) - search.started_at


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(when=when, duration=duration, number=number, to_yaml=to_yaml, to_json=to_json)


PLOTLY_JS = "plotly-cartesian-4.1.1.min.js"
"""plotly.js's cartesian bundle (npm ``plotly.js-cartesian-dist-min`` 4.1.1, MIT, its licence beside it
in static/): scatter, bar, heatmap and the other 2-D traces the pages draw, in 1.5 MB where the full
bundle is 4.8 MB (a first visit spends most of its time parsing plotly.js)."""

_env.globals.update(
    version=hyperhive.__version__,
    dataset_label=dataset_label,
    plotly_js=f"/dashboard-static/plotly/{PLOTLY_JS}",
)


def compile_templates() -> None:
    """Compile every page's template now (at startup) rather than on its first request."""
    for path in TEMPLATES.glob("*.html"):
        _env.get_template(path.name)


def page(
    request: Request, template: str, user: TokenInfo | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    from hyperhive.service.dashboard.session import csrf_token

    html = _env.get_template(template).render(
        request=request,
        user=user,
        csrf=csrf_token(request),
        no_auth=request.app.state.settings.no_auth,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
