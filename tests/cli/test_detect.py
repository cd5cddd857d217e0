"""`canary detect`: verdicts in input order, JSON Lines, one-line errors naming the line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from canary.cli.main import app
from canary.errors import ExitCode

runner = CliRunner()
CORPUS = Path(__file__).parents[1] / "data" / "broken_outputs.jsonl"


def detect(tmp_path: Path, *rows: object, args: tuple[str, ...] = ()) -> Result:
    path = tmp_path / "rows.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return runner.invoke(app, ["detect", str(path), *args])


def one_error_line(result: Result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_json_lines_in_input_order_with_reasons_and_spans(tmp_path: Path) -> None:
    result = detect(
        tmp_path,
        {"id": "leak", "text": "Done.<|eot_id|>"},
        {"text": "A perfectly ordinary answer."},
        {
            "id": "cut",
            "text": "東京は大きな都市で\ufffd",
            "finish_reason": "length",
            "expect": {"scripts": ["Han", "Hiragana"]},
        },
        {"id": "gpt2", "text": "ĠI'mĠtryingĠtoĠunderstand", "prompt": "Hello"},
        args=("--json",),
    )
    assert result.exit_code == ExitCode.OK, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["leak", "2", "cut", "gpt2"]
    assert [o["flagged"] for o in out] == [True, False, False, True]
    leak = out[0]["reasons"][0]
    assert leak["detector"] == "special_tokens" and leak["metric"] == "special_token_leak"
    assert leak["value"] == 1.0
    assert leak["span"] == {**leak["span"], "start": 5, "end": 15, "text": "<|eot_id|>"}
    assert out[3]["reasons"][0]["metric"] == "tokenizer_marker_leak"


def test_table_output_counts_flagged_rows_and_exits_0(tmp_path: Path) -> None:
    result = detect(tmp_path, {"id": "a", "text": "!!!!!!!!!!!!!!!!"}, {"id": "b", "text": "Fine."})
    assert result.exit_code == ExitCode.OK
    assert "FLAGGED  a" in result.stdout and "ok       b" in result.stdout
    assert "repetition/repetition=1 at 0:16" in result.stdout
    assert result.stdout.strip().endswith("1 of 2 outputs flagged")


def test_output_text_cannot_act_on_the_terminal(tmp_path: Path) -> None:
    result = detect(tmp_path, {"id": "\x1b[31mred\u202e", "text": "x\x1b]0;title\x07<|im_end|>"})
    assert result.exit_code == ExitCode.OK
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b" in result.stdout
    json_result = detect(tmp_path, {"text": "x\x1b[2J<|im_end|>\u202e"}, args=("--json",))
    assert "\x1b" not in json_result.stdout and "\u202e" not in json_result.stdout
    assert json.loads(json_result.stdout)["flagged"] is True


def test_bad_rows_are_one_line_errors_naming_the_line(tmp_path: Path) -> None:
    cases = {
        "line 2: not JSON": ({"text": "ok"}, "{broken"),
        "line 1: a JSON object is needed": ("[1, 2]",),
        "line 3: text: Input should be a valid string": ({"text": "a"}, "", {"text": 5}),
        "line 1: text: Field required": ({"prompt": "no text"},),
        "line 1: kind: Value error, unknown kind 'prose'": ({"text": "a", "kind": "prose"},),
        "line 1: unknown Unicode script 'Hann'": ({"text": "a", "expect": {"scripts": ["Hann"]}},),
    }
    for expected, rows in cases.items():
        result = detect(tmp_path, *rows)
        assert result.exit_code == ExitCode.USAGE, (expected, result.output)
        assert expected in one_error_line(result), (expected, result.stderr)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["detect", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == ExitCode.USAGE and "cannot read" in one_error_line(missing)
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    result = runner.invoke(app, ["detect", str(latin1)])
    assert result.exit_code == ExitCode.USAGE
    assert "line 2: not UTF-8" in one_error_line(result)


def test_stdin_and_the_models_own_special_tokens(tmp_path: Path) -> None:
    rows = json.dumps({"text": "one<custom_sep>two"}) + "\n"
    plain = runner.invoke(app, ["detect", "-", "--json"], input=rows)
    assert json.loads(plain.stdout)["flagged"] is False
    own = runner.invoke(
        app, ["detect", "-", "--json", "--special-token", "<custom_sep>"], input=rows
    )
    assert json.loads(own.stdout)["flagged"] is True


def test_the_shipped_corpus(tmp_path: Path) -> None:
    result = runner.invoke(app, ["detect", str(CORPUS), "--json"])
    assert result.exit_code == ExitCode.OK
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    assert [v["id"] for v in verdicts] == [r["id"] for r in rows]
    assert not any(v["flagged"] for v, r in zip(verdicts, rows, strict=True) if not r["broken"])
    table = runner.invoke(app, ["detect", str(CORPUS)])
    summary = table.stdout.strip().splitlines()[-1]
    assert summary.startswith("rows labelled broken flagged: ") and summary.endswith(
        "labelled clean flagged: 0 of 31"
    )


def _reference_with_own_token(tmp_path: Path) -> Path:
    """The shipped model saved with one more special token, which no generic shape matches."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from canary.scoring.reference import shared_reference_model

    shipped = shared_reference_model("canary:tiny")
    model = AutoModelForCausalLM.from_pretrained(shipped.path)
    tokenizer = AutoTokenizer.from_pretrained(shipped.path)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<custom_sep>"]})
    model.resize_token_embeddings(len(tokenizer))
    out = tmp_path / "reference"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_a_reference_adds_its_special_tokens_and_the_likelihood(tmp_path: Path) -> None:
    rows = (
        {"id": "sep", "text": "one<custom_sep>two"},
        {"id": "salad", "prompt": "Write a story:", "text": " zq xv kj pw qz vx jk wp zx qj"},
        {"id": "no-prompt", "text": " zq xv kj pw qz vx jk wp zx qj"},
        {"id": "fluent", "prompt": "The weather today is", "text": " sunny and warm."},
    )

    def reasons(result: Result) -> dict[str, set[str]]:
        assert result.exit_code == ExitCode.OK, result.output
        out = [json.loads(line) for line in result.stdout.splitlines()]
        return {o["id"]: {f"{r['detector']}/{r['metric']}" for r in o["reasons"]} for o in out}

    plain = reasons(detect(tmp_path, *rows, args=("--json",)))
    reference = str(_reference_with_own_token(tmp_path))
    judged = reasons(detect(tmp_path, *rows, args=("--json", "--reference", reference)))
    assert "special_tokens/special_token_leak" not in plain["sep"]
    assert "special_tokens/special_token_leak" in judged["sep"]
    assert not any("likelihood/" in r for rs in plain.values() for r in rs)
    assert "likelihood/implausible_text" in judged["salad"]
    assert "likelihood/implausible_text" not in judged["no-prompt"]
    assert "likelihood/implausible_text" not in judged["fluent"]
