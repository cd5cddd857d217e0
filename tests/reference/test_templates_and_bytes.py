"""Chat probes rendered for the reference as the endpoint renders them; tokens keyed by bytes;
dtype, device and template in the fingerprint. The real shipped model and tokenizer throughout."""

from __future__ import annotations

import pytest

from canary.config.reference import SHIPPED_MODEL
from canary.errors import ConfigError
from canary.probes.model import Message, Probe, transcript
from canary.records import token_key
from canary.reference import ReferenceModel, encode_prompt
from canary.reference._bytes import unicode_to_byte
from canary.reference._templates import NAMED_TEMPLATES, resolve_template
from canary.sim import model_dir

CHAT = Probe(
    id="chat",
    messages=[
        Message(role="system", content="Answer briefly."),
        Message(role="user", content="Name a Thai word: ไทย"),
    ],
)


@pytest.fixture(scope="module")
def ref() -> ReferenceModel:
    return ReferenceModel.load(SHIPPED_MODEL)


def test_shipped_template_renders_todays_transcript_with_bos(ref: ReferenceModel) -> None:
    assert (model_dir() / "chat_template.jinja").is_file()
    rendered = ref.render(CHAT, "openai-chat")  # default: the tokenizer's own template
    assert rendered == "<|bos|>" + transcript(CHAT.as_messages())
    # The shipped model's own template is the transcript, so named (scores stay comparable).
    assert ref.template(None).label == ref.template("model").label == "transcript"
    # Same ids as the transcript encoded with the tokenizer's bos: never two bos.
    ids = encode_prompt(ref.tokenizer, rendered)
    assert ids == encode_prompt(ref.tokenizer, transcript(CHAT.as_messages()))
    assert ids.count(ref.tokenizer.bos_token_id) == 1
    # The named `transcript` template is the same text.
    assert ref.render(CHAT, "openai-chat", "transcript") == rendered


def test_completions_see_the_prompt_itself(ref: ReferenceModel) -> None:
    probe = Probe(id="p", prompt="Return the")
    assert ref.render(probe, "openai-completions", "chatml") == "Return the"
    assert ref.render(CHAT, "openai-completions") == transcript(CHAT.as_messages())


def test_named_and_inline_templates(ref: ReferenceModel) -> None:
    chatml = ref.render(CHAT, "openai-chat", "chatml")
    assert chatml.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>\n")
    assert chatml.endswith("<|im_start|>assistant\n")
    llama3 = ref.render(CHAT, "openai-chat", "llama3")
    assert llama3.startswith("<|bos|><|start_header_id|>system<|end_header_id|>\n\n")
    inline = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}>"
    assert ref.render(CHAT, "openai-chat", inline) == (
        "[system] Answer briefly.\n[user] Name a Thai word: ไทย\n>"
    )
    labels = {ref.template(s).label for s in (None, "chatml", "llama3", inline)}
    assert len(labels) == 4  # each a different fingerprint
    assert ref.template(inline).label.startswith("inline:")


def test_bad_templates_are_one_line_config_errors(ref: ReferenceModel) -> None:
    with pytest.raises(ConfigError, match="not a known template"):
        ref.template("chatml2")
    with pytest.raises(ConfigError, match="chat template inline:"):
        ref.render(CHAT, "openai-chat", "{% for m in messages %}{{ m.content }")
    bare = ref.tokenizer.chat_template
    try:
        ref.tokenizer.chat_template = None
        with pytest.raises(ConfigError, match="has no chat template"):
            resolve_template(ref.tokenizer, "model")
        assert resolve_template(ref.tokenizer, None).source == NAMED_TEMPLATES["transcript"]
    finally:
        ref.tokenizer.chat_template = bare


def test_token_bytes_and_top_keys_by_bytes(ref: ReferenceModel) -> None:
    # Byte-level BPE: every token's bytes, through the GPT-2 byte↔unicode map.
    assert len(unicode_to_byte()) == 256
    ids = encode_prompt(ref.tokenizer, "héllo ไทย")
    raw = b"".join(b for i in ids if (b := ref.token_bytes(i)) is not None)
    assert raw == "héllo ไทย".encode()
    assert ref.token_bytes(ref.tokenizer.bos_token_id) is None  # special: no bytes
    partial = [i for i in ids if ref.token_text(i) == "\ufffd"]
    assert partial, "the é of héllo is split over two byte tokens"
    for i in partial:
        assert ref.token_key(i).startswith("<0x")
        assert ref.token_key(i) == token_key("\ufffd", ref.token_bytes(i))
    out = ref.generate_greedy(["The Thai word ไ"], max_tokens=8, top_logprobs=5)[0]
    for tok in out.tokens:
        assert tok.token_id is not None and tok.bytes == ref.token_bytes(tok.token_id)
        assert token_key(tok.token, tok.bytes) in tok.top
        assert "\ufffd" not in "".join(tok.top)  # partial alternatives are keyed by bytes


def test_dtype_is_in_the_fingerprint_and_a_missing_gpu_is_one_line() -> None:
    import torch

    fp32 = ReferenceModel.load(SHIPPED_MODEL)
    bf16 = ReferenceModel.load(SHIPPED_MODEL, dtype="bfloat16")
    assert bf16.model.dtype == torch.bfloat16 and fp32.model.dtype == torch.float32
    assert fp32.fingerprint != bf16.fingerprint
    assert bf16.generate_greedy(["Return the"], max_tokens=3)[0].tokens
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device") as info:
            ReferenceModel.load(SHIPPED_MODEL, device="cuda")
        assert "\n" not in str(info.value)
