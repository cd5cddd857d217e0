from __future__ import annotations

import json
from pathlib import Path

import pytest

from canary.errors import ConfigError
from canary.probes import list_suites, load_suite


def test_shipped_suites_load_and_have_stable_versions() -> None:
    manifests = list_suites()
    assert manifests, "no suites shipped under probes/"
    for manifest in manifests:
        suite = load_suite(manifest)
        assert suite.probes
        assert load_suite(manifest).version == suite.version


def test_manifest_defaults_merge_into_rows(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text(
        json.dumps({"id": "a", "prompt": "x"})
        + "\n"
        + json.dumps({"id": "b", "prompt": "y", "params": {"temperature": 0.7}, "expect": {"k": 1}})
        + "\n"
    )
    (tmp_path / "s.yaml").write_text(
        "name: s\ndata: s.jsonl\ndefaults: {kind: fixed, params: {max_tokens: 5}, expect: {j: 2}}\n"
    )
    suite = load_suite(tmp_path / "s.yaml")
    a, b = suite.probes
    assert a.kind == b.kind == "fixed"
    assert a.params.max_tokens == b.params.max_tokens == 5
    assert b.params.temperature == 0.7 and a.params.temperature == 0.0
    assert b.expect == {"j": 2, "k": 1}
    assert a.expect == {"j": 2}


def test_version_changes_with_content_not_with_description(tmp_path: Path) -> None:
    data = tmp_path / "s.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": "x"}) + "\n")
    manifest = tmp_path / "s.yaml"
    manifest.write_text("name: s\ndescription: one\ndata: s.jsonl\n")
    first = load_suite(manifest).version
    manifest.write_text("name: s\ndescription: two\ndata: s.jsonl\n")
    assert load_suite(manifest).version == first
    data.write_text(json.dumps({"id": "a", "prompt": "x!"}) + "\n")
    assert load_suite(manifest).version != first


def test_csv_and_parquet_suites_equal_jsonl(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "kind": "fixed", "prompt": "2+2=", "expect": {"exact": "4"}},
        {"id": "b", "kind": "code", "prompt": "def f():", "params": {"max_tokens": 9}},
    ]
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    csv_lines = ["id,kind,prompt,expect,params"]
    for r in rows:

        def cell(value: object) -> str:
            text = json.dumps(value) if value is not None else ""
            return '"' + text.replace('"', '""') + '"'

        csv_lines.append(
            f'{r["id"]},{r["kind"]},"{r["prompt"]}",{cell(r.get("expect"))},{cell(r.get("params"))}'
        )
    (tmp_path / "c.csv").write_text("\n".join(csv_lines) + "\n")
    import datasets

    datasets.load_dataset("json", data_files=str(tmp_path / "s.jsonl"), split="train").to_parquet(
        str(tmp_path / "p.parquet")
    )
    from_jsonl = load_suite(tmp_path / "s.jsonl").probes
    assert load_suite(tmp_path / "c.csv").probes == from_jsonl
    assert load_suite(tmp_path / "p.parquet").probes == from_jsonl


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "a"}], "give exactly one of 'prompt' or 'messages'"),
        ([{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}], "appears twice"),
        ([{"id": "a", "prompt": "x", "kind": "vibes"}], "unknown kind 'vibes'"),
        ([{"id": "a", "prompt": "x", "params": {"top_logprobs": 3}}], "top_logprobs needs"),
        ([{"id": "a", "prompt": "x", "params": {"temprature": 1}}], "unknown key"),
    ],
)
def test_bad_probe_rows_give_one_line_errors(
    tmp_path: Path, rows: list[dict[str, object]], message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_suite_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"suite 'no-such-suite' not found; .*smoke"):
        load_suite("no-such-suite")


def test_broken_jsonl_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": "a", "prompt": \n')
    with pytest.raises(ConfigError, match="cannot read suite data"):
        load_suite(path)
