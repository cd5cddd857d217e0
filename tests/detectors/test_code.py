from __future__ import annotations

import pytest

from canary.detectors.base import Score
from canary.detectors.code import CodeDetector, extract_code
from canary.errors import ConfigError
from tests.detectors.inputs import chat_probe, given
from tests.support.scaling import assert_linear

DETECTOR = CodeDetector()


def score(text: str | None, language: str = "python", **kw: object) -> Score:
    (result,) = DETECTOR.score(given(text, "code", language=language, **kw))  # type: ignore[arg-type]
    return result


def test_python_in_fences_with_chatter_around_parses() -> None:
    text = (
        "Sure! Here is a function that adds one:\n\n```python\ndef inc(x: int) -> int:\n"
        '    """Add one."""\n    return x + 1\n```\n\nCall it as `inc(2)`, which gives 3.'
    )
    result = score(text)
    assert result.metric == "code_parse_error"
    assert result.value == 0.0 and not result.flagged


def test_syntax_error_is_flagged_with_line_and_column() -> None:
    text = "Here you go:\n```py\nimport math\n\ndef area(r):\n    return math.pi * r **\n```"
    result = score(text)
    assert result.flagged and result.value == 1.0
    assert result.evidence is not None
    assert result.evidence["line"] == 4
    assert result.evidence["column"] is not None
    assert result.evidence["line_text"] == "    return math.pi * r **"
    assert result.evidence["source"] == "fence"
    assert "syntax" in result.evidence["error"]


def test_corrupted_token_in_completion_is_flagged_against_prompt_plus_output() -> None:
    prompt = "def add(a, b):\n    return"
    assert not score(" a + b\n", prompt=prompt).flagged
    bad = score(" a +สวัสดี b)\n", prompt=prompt)
    assert bad.flagged and bad.evidence is not None
    assert bad.evidence["line"] == 2 and bad.evidence["prompt_lines"] == 2
    assert bad.evidence["line_text"].startswith("    return a +")


def test_completion_cut_by_max_tokens_is_not_an_error_but_a_stopped_one_is() -> None:
    prompt = "for i in range("
    cut = score("10):\n    total += i * (", prompt=prompt, finish_reason="length")
    assert not cut.flagged
    assert cut.evidence is not None and cut.evidence["reason"] == "truncated"
    assert score("10):\n    total += i * (", prompt=prompt, finish_reason="stop").flagged


def test_prose_after_completed_code_is_cut() -> None:
    prompt = "def add(a, b):\n    return"
    result = score(" a + b\n\nThis function adds two numbers and returns the sum.", prompt=prompt)
    assert not result.flagged


def test_unclosed_fence_may_be_cut_but_a_closed_one_may_not() -> None:
    assert not score("```python\ndef f(x):\n    return (x +\n", finish_reason="length").flagged
    assert score("```python\ndef f(x):\n    return (x +\n```", finish_reason="length").flagged


def test_only_blocks_in_the_probe_language_are_checked() -> None:
    text = "```bash\n$ pip install x && \n```\n\n```python\nprint('ok')\n```"
    assert not score(text).flagged
    other = score("```javascript\nconst x = 1;\n```")
    assert other.flagged and other.evidence == {
        "reason": "no_code",
        "language": "python",
        "fence_tags": ["javascript"],
    }
    blocks = extract_code(chat_probe("code"), "```\nx = 1\n```\n```python\ny = 2\n```", "python")
    assert [b.code for b in blocks] == ["y = 2\n"]


@pytest.mark.parametrize(
    ("text", "flagged", "line", "column"),
    [
        ('```json\n{"name": "Ada", "tags": ["x", "y"], "n": 1.5}\n```', False, None, None),
        ('{"name": "Ada",\n "tags": ["x", "y",]}', True, 2, 20),
        ("{'name': 'Ada'}", True, 1, 2),
    ],
)
def test_json(text: str, flagged: bool, line: int | None, column: int | None) -> None:
    result = score(text, language="json")
    assert result.flagged is flagged
    if flagged:
        assert result.evidence is not None
        assert (result.evidence["line"], result.evidence["column"]) == (line, column)


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("```sql\nSELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;\n```", False),
        ("Here is the query:\n\nSELECT id FROM orders WHERE total > 100 ORDER BY id;", False),
        ("```sql\nSELECT name FROM users WHERE (age > 30\n```", True),
        ("```sql\nSELECT a b c FROM t\n```", True),
        ("I cannot write that query", True),
    ],
)
def test_sql(text: str, flagged: bool) -> None:
    result = score(text, language="sql")
    assert result.flagged is flagged, result.evidence
    if flagged:
        assert result.evidence is not None and result.evidence["error"]


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_empty_output_is_flagged(text: str) -> None:
    result = score(text)
    assert result.flagged and result.evidence is not None
    assert result.evidence["reason"] == "empty"


def test_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"expect\.language"):
        score("x", language="cobol")


def test_failed_requests_are_not_scored() -> None:
    assert DETECTOR.score(given(None, "code", error_kind="http_5xx", language="python")) == []


def python_module(functions: int) -> str:
    return "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(functions))


def test_one_megabyte_of_code_is_judged_in_linear_time() -> None:
    """Speed itself: `python -m benchmarks.detectors_speed`."""
    body = python_module(30_000)
    assert len(body) > 1_000_000
    assert not score(f"```python\n{body}```").flagged
    broken = score(f"```python\n{body}def broken(:\n```")
    assert broken.flagged and broken.evidence is not None
    assert broken.evidence["line"] == 90_001
    assert_linear(
        lambda text: score(text),
        f"```python\n{python_module(30_000 // 8)}```",
        f"```python\n{body}```",
        k=8,
    )
