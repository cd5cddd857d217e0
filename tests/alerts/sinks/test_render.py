"""Every sink's wire format, rendered without a network."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from canary.alerts.sinks import Sink, SinkConfig, build_sinks
from tests.alerts.helpers import make_alert, make_payload

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkConfig)
SECRET_URL = "https://hooks.slack.com/services/T000/B000/very-secret-token"


def sink(**config: Any) -> Sink[Any]:
    (built,) = build_sinks([ADAPTER.validate_python(config)]).values()
    return built


def test_stdout_prints_and_logs_one_line_per_alert(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    alerts = [make_alert(), make_alert({"endpoint": "gpu-b", "pool": "gpu"}, alert_id=8)]
    stdout = sink(type="stdout")
    lines = stdout.render(make_payload(alerts))
    assert [level for level, _ in lines] == ["warning", "warning"]
    first = lines[0][1]
    assert first.startswith("[FIRING] refusal_rate on endpoint=gpu-a,pool=gpu,model=m1: ")
    assert "12.0% (12/100) vs baseline 2.0%" in first
    assert "sessions affected 30.0% (12/40)" in first
    assert "change deploy-7" in first
    assert "evidence: canary show 101, canary show 102, canary show 103" in first
    assert "104" not in first

    resolved = stdout.render(make_payload([make_alert(status="resolved")], status="resolved"))
    assert resolved[0][0] == "info" and resolved[0][1].startswith("[RESOLVED]")

    with caplog.at_level("INFO", logger="canary.alerts"):
        stdout.send(make_payload(alerts))
    assert capsys.readouterr().out.splitlines() == [line for _, line in lines]
    assert [r.getMessage() for r in caplog.records if r.name == "canary.alerts"] == [
        line for _, line in lines
    ]


def test_webhook_posts_the_payload_unchanged() -> None:
    payload = make_payload()
    assert sink(type="webhook", url="http://hooks.internal").render(payload) == [("", payload)]


# The postableAlert of Alertmanager's v2 OpenAPI spec: labels required, the rest optional.
POSTABLE_FIELDS = {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def assert_postable_alerts(body: Any) -> None:
    assert isinstance(body, list) and body
    for alert in body:
        assert set(alert) <= POSTABLE_FIELDS and "labels" in alert
        for label_set in (alert["labels"], alert.get("annotations", {})):
            assert all(isinstance(v, str) for v in label_set.values())
        assert all(LABEL_NAME.match(k) for k in alert["labels"])
        for key in ("startsAt", "endsAt"):
            if key in alert:
                assert datetime.fromisoformat(alert[key]).tzinfo is not None


def test_alertmanager_renders_v2_postable_alerts() -> None:
    am = sink(
        type="alertmanager",
        url="http://am:9093",
        severity="page",
        generator_url="https://canary.internal/alerts/{alert_id}?fp={fingerprint}",
    )
    labels = {"endpoint": "gpu-a", "pool": "gpu", "severity": "mine", "zone.name": "a"}
    alert = make_alert(labels)
    ((path, body),) = am.render(make_payload([alert]))
    assert path == "/api/v2/alerts"
    assert_postable_alerts(body)
    (firing,) = body
    assert firing["labels"] == {
        "alertname": "CanaryRegression",
        "metric": "refusal_rate",
        "severity": "page",
        "endpoint": "gpu-a",
        "pool": "gpu",
        "cohort_severity": "mine",
        "zone_name": "a",
        "change_id": "deploy-7",
        "canary_fingerprint": alert.fingerprint,
    }
    annotations = firing["annotations"]
    assert "12.0% (12/100) vs baseline 2.0%" in annotations["summary"]
    assert "sessions affected 30.0% (12/40)" in annotations["description"]
    assert "deploy deploy-7" in annotations["description"]
    assert annotations["evidence"] == "canary show 101; canary show 102; canary show 103"
    assert firing["startsAt"] == alert.fired_at.isoformat()  # type: ignore[union-attr]
    # Ends a week after the notification unless canary resolves it first (never AM's 5 min).
    assert firing["endsAt"] > firing["startsAt"] and firing["endsAt"].startswith("2026-03-08")
    assert firing["generatorURL"] == f"https://canary.internal/alerts/7?fp={alert.fingerprint}"

    resolved_alert = make_alert(labels, status="resolved")
    ((_, body),) = am.render(make_payload([resolved_alert], status="resolved"))
    assert_postable_alerts(body)
    assert body[0]["labels"] == firing["labels"]  # same label set: Alertmanager resolves it
    assert body[0]["endsAt"] == resolved_alert.resolved_at.isoformat()  # type: ignore[union-attr]


def test_alertmanager_without_a_change_or_generator_url() -> None:
    am = sink(type="alertmanager", url="http://am:9093")
    ((_, body),) = am.render(make_payload([make_alert(change_id=None)]))
    assert_postable_alerts(body)
    assert "change_id" not in body[0]["labels"] and "generatorURL" not in body[0]
    assert am.render(make_payload([])) == []


def slack_body(payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **config: Any) -> Any:
    monkeypatch.setenv("CANARY_TEST_SLACK_URL", SECRET_URL)
    ((path, body),) = sink(type="slack", url_env="CANARY_TEST_SLACK_URL", **config).render(payload)
    assert path == ""
    assert SECRET_URL not in json.dumps(body) and "very-secret-token" not in json.dumps(body)
    return body


def test_slack_message_has_a_header_a_section_per_alert_and_evidence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = slack_body(make_payload(), monkeypatch)
    assert body["text"].startswith("FIRING: ")
    header, change, section = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert "deploy-7" in change["elements"][0]["text"]
    text = section["text"]["text"]
    assert section["text"]["type"] == "mrkdwn"
    assert "`refusal_rate` on `endpoint=gpu-a,pool=gpu,model=m1`" in text
    assert "`canary show 101`, `canary show 102`, `canary show 103`" in text
    assert "```I cannot help with that.```" in text


def test_slack_escapes_and_truncates_model_output(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = "<!channel> look ```rm -rf /``` & <https://evil.example|click> `x`" + "A" * 500
    payload = make_payload(samples=[{"result_id": 5, "excerpt": hostile}])
    body = slack_body(payload, monkeypatch, excerpt_chars=100)
    text = body["blocks"][-1]["text"]["text"]
    excerpt = text.split("```", 1)[1].rsplit("```", 1)[0]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in excerpt and "&amp;" in excerpt
    assert "`" not in excerpt
    assert excerpt.endswith("…") and excerpt.count("A") < 100
    assert text.count("```") == 2


def test_slack_stays_inside_slack_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    alerts = [make_alert({"endpoint": f"e{i}", "pool": "p" * 200}, alert_id=i) for i in range(30)]
    payload = make_payload(alerts, samples=[{"result_id": 1, "excerpt": "z" * 5000}] * 5)
    payload["summary"] = "s" * 400
    body = slack_body(payload, monkeypatch, excerpt_chars=1000)
    blocks = body["blocks"]
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    sections = [b for b in blocks if b["type"] == "section"]
    assert len(sections) == 20
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert "10 more alerts" in blocks[-1]["elements"][0]["text"]
