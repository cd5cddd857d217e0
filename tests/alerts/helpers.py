"""Notification payloads built from real `Alert`s, and a loopback HTTP receiver that records."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from canary.store.alert_values import Alert, alert_fingerprint

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_alert(
    labels: dict[str, str] | None = None,
    *,
    alert_id: int = 7,
    metric: str = "refusal_rate",
    status: str = "firing",
    change_id: str | None = "deploy-7",
) -> Alert:
    labels = labels or {"endpoint": "gpu-a", "pool": "gpu", "model": "m1"}
    return Alert(
        id=alert_id,
        fingerprint=alert_fingerprint(labels, metric),
        labels=labels,
        metric=metric,
        status=status,  # type: ignore[arg-type]
        pending_at=T0 - timedelta(minutes=20),
        fired_at=T0 - timedelta(minutes=10),
        resolved_at=T0 if status == "resolved" else None,
        onset_at=T0 - timedelta(minutes=30),
        change_id=change_id,
        baseline_rate=0.02,
        margin=0.01,
        k=12,
        n=100,
        score=7.5,
        evidence_ids=[101, 102, 103, 104],
        impact={"session_rate": 0.3, "flagged_sessions": 12, "sessions": 40},
    )


def make_payload(
    alerts: list[Alert] | None = None,
    *,
    status: str = "firing",
    samples: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A notification payload as the alert engine builds it."""
    alerts = alerts if alerts is not None else [make_alert(status=status)]
    change_id = alerts[0].change_id if alerts else None
    return {
        "version": 1,
        "notification_id": None,
        "group_key": alerts[0].group_key if alerts else "alert:none",
        "status": status,
        "created_at": T0.isoformat(),
        "change": (
            {
                "id": change_id,
                "kind": "deploy",
                "labels": {"pool": "gpu"},
                "at": (T0 - timedelta(minutes=31)).isoformat(),
                "note": "vllm 0.6.3 -> 0.6.4",
            }
            if change_id
            else None
        ),
        "summary": f"{len(alerts)} cohort(s) regressed on refusal_rate",
        "alerts": [
            {
                **alert.to_dict(),
                "samples": samples
                if samples is not None
                else [{"result_id": 101, "excerpt": "I cannot help with that."}],
            }
            for alert in alerts
        ],
    }


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with scripted statuses.

    `statuses` is consumed one per request; when empty the answer is 200. Error bodies echo the
    request path, as some receivers do, so tests can check that secrets are scrubbed.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append(
                        Request(self.path, dict(self.headers.items()), json.loads(raw))
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                body = b"ok" if status < 300 else f"failed for {self.path}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
