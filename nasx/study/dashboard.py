"""`nasx dashboard`: optuna-dashboard on a study's storage, bound to 127.0.0.1 by default.

Before serving, the study's Pareto-front figure (the report's, without reference models) is saved into the
study, where optuna-dashboard shows it among the study's plots. What a trial shows is recorded by the
search itself: "Arch summary", "Cost summary", "Latency summary" and "Status" user attrs (readable strings
beside the numeric ones, see nasx.store.summary), and the `constraints` list optuna-dashboard 0.21 reads to mark
infeasible trials."""

from __future__ import annotations

import socket
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from nasx.errors import NasxError
from nasx.store.studies import load_study, open_storage
from nasx.study.report_data import collect
from nasx.study.report_figures import front_figure

FIGURE_ID = "nasx-pareto-front"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per request would drown the URL
        pass


def _require_dashboard():
    try:
        import optuna_dashboard
    except ImportError:
        raise NasxError('nasx dashboard needs optuna-dashboard: pip install "nasx[dashboard]"') from None
    return optuna_dashboard


def attach_front_figure(study, url: str) -> str:
    """Save the Pareto-front figure into the study (overwriting the one saved before); returns its id."""
    dashboard = _require_dashboard()
    return dashboard.save_plotly_graph_object(study, front_figure(collect(study, url)), graph_object_id=FIGURE_ID)


# optuna-dashboard shows each user attr on one unbreakable line (white-space: nowrap): the Arch summary and
# the arch JSON then widen the whole trial page to thousands of pixels. Let those lines wrap instead.
WRAP_CSS = b"<style>p.MuiTypography-body1{white-space:normal;overflow-wrap:anywhere}</style>"


def with_wrapping_css(app):
    """The WSGI app with WRAP_CSS added to the <head> of its HTML pages."""

    def wrapped(environ, start_response):
        seen = {}

        def capture(status, headers, exc_info=None):
            seen["status"], seen["headers"], seen["exc_info"] = status, headers, exc_info
            return lambda data: None  # optuna-dashboard returns its body; nothing writes through this

        body = app(environ, capture)
        headers = seen["headers"]
        is_html = any(k.lower() == "content-type" and "text/html" in v for k, v in headers)
        if is_html:
            try:
                page = b"".join(body)
            finally:
                getattr(body, "close", lambda: None)()
            body = [page.replace(b"</head>", WRAP_CSS + b"</head>", 1)]
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body[0]))))
        start_response(seen["status"], headers, seen["exc_info"])
        return body

    return wrapped


def url_for(host: str, port: int, study_id: int | None = None) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    path = f"/dashboard/studies/{study_id}" if study_id is not None else "/dashboard"
    return f"http://{shown}:{port}{path}"


def serve(
    url: str, study_name: str | None = None, host: str = "127.0.0.1", port: int = 8080, out=sys.stdout, ready=None
) -> None:
    """Attach the front figure, bind, print the URL, serve until Ctrl-C. `port` 0 picks a free port."""
    dashboard = _require_dashboard()
    study = load_study(url, study_name)
    attach_front_figure(study, url)
    app = with_wrapping_css(dashboard.wsgi(open_storage(url)))
    server_class = _IPv6Server if ":" in host else _Server
    try:
        httpd = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    except OSError as e:
        hint = "; pick another --port (or --port 0 for a free one)" if port else ""
        raise NasxError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None
    actual = httpd.server_port
    out.write(f"optuna-dashboard for study {study.study_name!r} ({url}):\n  {url_for(host, actual, study._study_id)}\n")
    if host not in LOOPBACK:
        out.write("warning: listening beyond this machine; optuna-dashboard has no authentication\n")
    out.write("Ctrl-C to stop\n")
    out.flush()
    if ready is not None:
        ready(httpd)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
