"""The training corpus of the tiny reference model, built on the fly from this machine's stdlib.

No downloads: English prose comes from the docstrings of the Python standard library, code from
its function sources, and a small literal Thai/CJK slice makes sure Thai and Han characters are
whole tokens in the vocabulary. That matters for the canary: the simulated `corrupt_logits` fault
boosts exactly those tokens (the "สวัสดี in an English answer" incident), so the healthy model
must have them in its vocabulary yet almost never emit them.

Files are walked in sorted order and every choice is seeded, so the same Python build gives the
same corpus; `Corpus.sha256` records which one a model was trained on.
"""

from __future__ import annotations

import ast
import hashlib
import os
import random
import sysconfig
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (BOS, EOS, PAD)

DocKind = Literal["prose", "code", "multilingual"]

# Directories of the stdlib that are tests, vendored packages or demos rather than library code.
_SKIP_DIRS = frozenset(
    {
        "test",
        "tests",
        "idle_test",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "turtledemo",
        "lib2to3",
        "config-3.11-x86_64-linux-gnu",
    }
)

_MAX_FUNCTION_CHARS = 1600
_MIN_PROSE_CHARS = 40

# Common Thai words (greetings, pronouns, everyday nouns and verbs).
_THAI_WORDS_TEXT = (
    "สวัสดี ขอบคุณ ครับ ค่ะ ใช่ ไม่ ฉัน คุณ เขา เรา พวกเรา ที่ นี่ นั่น อะไร ทำไม อย่างไร "
    "เมื่อไร ที่ไหน ใคร กิน ข้าว น้ำ ไป มา ดู ฟัง พูด อ่าน เขียน เรียน ทำงาน บ้าน โรงเรียน "
    "เมือง ประเทศ ไทย ภาษา หนังสือ คอมพิวเตอร์ โทรศัพท์ รถ ถนน ตลาด ร้าน อาหาร อร่อย ดี มาก "
    "น้อย ใหญ่ เล็ก ใหม่ เก่า ร้อน เย็น วัน คืน เวลา ปี เดือน สัปดาห์ วันนี้ พรุ่งนี้ "
    "เมื่อวาน เช้า เย็น ครอบครัว พ่อ แม่ ลูก พี่ น้อง เพื่อน คน รัก ชอบ ต้องการ มี เป็น อยู่ "
    "ได้ จะ แล้ว กำลัง และ หรือ แต่ เพราะ ถ้า ก็ ด้วย กับ ของ ใน บน ใต้ ข้าง หน้า หลัง "
    "ระหว่าง ทุก บาง หนึ่ง สอง สาม สี่ ห้า หก เจ็ด แปด เก้า สิบ ร้อย พัน ล้าน ฝน ฟ้า ทะเล "
    "ภูเขา ต้นไม้ ดอกไม้ แมว สุนัข นก ปลา ช้าง ความสุข ความรัก สบายดี ยินดี ขอโทษ ไม่เป็นไร "
    "ช่วย เข้าใจ รู้ คิด ถาม ตอบ เปิด ปิด ซื้อ ขาย เงิน ราคา ถูก แพง ฉัน ชื่อ "
    "ยินดีที่ได้รู้จัก"
)
THAI_WORDS = tuple(_THAI_WORDS_TEXT.split())

# Common Han characters (Chinese/Japanese) and the hiragana syllabary.
HAN_CHARS = (
    "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家"
    "学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经"
    "头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者"
    "向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气"
    "信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活"
    "难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清"
    "物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功"
    "指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强"
    "步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版"
)
HIRAGANA = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
    "がぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽ"
)
_JAPANESE_PHRASES_TEXT = (
    "こんにちは ありがとう すみません おはよう さようなら はい いいえ わたし あなた "
    "これ それ 日本 日本語 学生 先生 東京 時間 今日 明日 友達 水 山 川 花 本"
)
JAPANESE_PHRASES = tuple(_JAPANESE_PHRASES_TEXT.split())
_CHINESE_PHRASES_TEXT = (
    "你好 谢谢 再见 我们 他们 中国 中文 学生 老师 时间 今天 明天 朋友 工作 学习 "
    "问题 因为 所以 但是 已经 可以 知道 现在 什么 没有 一个 这个 那个 自己 国家 "
    "世界 生活 电话 电脑"
)
CHINESE_PHRASES = tuple(_CHINESE_PHRASES_TEXT.split())


@dataclass(frozen=True)
class Document:
    """One training document: a docstring, a function, or a multilingual paragraph."""

    kind: DocKind
    text: str
    source: str = ""


@dataclass
class Corpus:
    """The documents, in a fixed order, and the hash that identifies them."""

    documents: list[Document]
    sha256: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha256:
            digest = hashlib.sha256()
            for doc in self.documents:
                digest.update(doc.kind.encode())
                digest.update(b"\0")
                digest.update(doc.text.encode("utf-8"))
                digest.update(b"\0")
            self.sha256 = digest.hexdigest()

    def texts(self, kind: DocKind | None = None) -> list[str]:
        return [d.text for d in self.documents if kind is None or d.kind == kind]

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.documents:
            out[f"{d.kind}_docs"] = out.get(f"{d.kind}_docs", 0) + 1
            out[f"{d.kind}_chars"] = out.get(f"{d.kind}_chars", 0) + len(d.text)
        return out


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def iter_stdlib_files(root: Path | None = None) -> Iterator[Path]:
    """Library `.py` files under the stdlib, sorted, without tests, demos or site-packages."""
    base = root or stdlib_dir()
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("test_"):
                yield Path(dirpath) / name


def _clean_prose(doc: str) -> str | None:
    """Keep the prose paragraphs of a docstring; drop doctests, tables and non-ASCII text."""
    paragraphs = []
    for para in doc.split("\n\n"):
        lines = [ln.strip() for ln in para.strip().splitlines()]
        if not lines or any(ln.startswith((">>>", "...", "|", "+-", "==", "--")) for ln in lines):
            continue
        text = " ".join(lines)
        if not text.isascii() or sum(c.isalpha() for c in text) < 0.6 * len(text):
            continue
        paragraphs.append(text)
    prose = "\n\n".join(paragraphs)
    return prose if len(prose) >= _MIN_PROSE_CHARS else None


def _function_source(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    # Slicing pre-split lines: ast.get_source_segment re-splits the file per call (quadratic).
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    end = node.end_lineno or node.lineno
    segment = "".join(lines[start - 1 : end])
    if len(segment) > _MAX_FUNCTION_CHARS or not segment.isascii():
        return None
    code = textwrap.dedent(segment).rstrip() + "\n"
    return code if code.strip() else None


def documents_from_source(source: str, origin: str = "") -> list[Document]:
    """Docstrings (prose) and function definitions (code) of one module, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    docs: list[Document] = []
    lines = source.splitlines(keepends=True)
    nodes: list[ast.AST] = [tree]
    nodes.extend(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    )
    nodes.sort(key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
    for node in nodes:
        assert isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        doc = ast.get_docstring(node)
        if doc:
            prose = _clean_prose(doc)
            if prose:
                docs.append(Document("prose", prose, origin))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            code = _function_source(lines, node)
            if code:
                docs.append(Document("code", code, origin))
    return docs


def multilingual_documents(n_docs: int = 200, seed: int = 0) -> list[Document]:
    """Short Thai, Chinese and Japanese paragraphs made from the literal word lists above."""
    rng = random.Random(seed)
    han = list(HAN_CHARS)
    kana = list(HIRAGANA)
    docs = []
    for i in range(n_docs):
        which = i % 3
        if which == 0:
            words = [rng.choice(THAI_WORDS) for _ in range(rng.randint(12, 30))]
            text = " ".join(words)
        elif which == 1:
            parts = [
                rng.choice(CHINESE_PHRASES) if rng.random() < 0.4 else "".join(rng.sample(han, 2))
                for _ in range(rng.randint(10, 25))
            ]
            text = "".join(parts) + "。"
        else:
            parts = [
                rng.choice(JAPANESE_PHRASES)
                if rng.random() < 0.4
                else "".join(rng.sample(kana, 2)) + rng.choice(han)
                for _ in range(rng.randint(8, 20))
            ]
            text = "、".join(parts) + "。"
        docs.append(Document("multilingual", text, "literal"))
    # Every character at least a few times, so no Thai/Han character is left as loose bytes.
    docs.append(Document("multilingual", " ".join(THAI_WORDS), "literal"))
    docs.append(Document("multilingual", HAN_CHARS + HIRAGANA, "literal"))
    return docs


def build_corpus(
    root: Path | None = None,
    *,
    max_files: int | None = None,
    multilingual_docs: int = 300,
    seed: int = 0,
) -> Corpus:
    """The whole corpus: stdlib prose and code, then the multilingual slice."""
    docs: list[Document] = []
    base = root or stdlib_dir()
    for i, path in enumerate(iter_stdlib_files(base)):
        if max_files is not None and i >= max_files:
            break
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        docs.extend(documents_from_source(source, str(path.relative_to(base))))
    docs.extend(multilingual_documents(multilingual_docs, seed=seed))
    return Corpus(docs)


def train_tokenizer(corpus: Corpus, vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with `<|bos|>`, `<|eos|>`, `<|pad|>`.

    The multilingual slice is repeated in the tokenizer's training stream (not in the model's) so
    the merges reach whole Thai and Han characters while the model still sees mostly English.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    multilingual = corpus.texts("multilingual")

    def stream() -> Iterator[str]:
        yield from corpus.texts("prose")
        yield from corpus.texts("code")
        for _ in range(_MULTILINGUAL_TOKENIZER_REPEAT):
            yield from multilingual

    tok.train_from_iterator(stream(), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    # Every encoded text starts with bos, in training and at inference, so prompts look like the
    # start of a document to the model.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


_MULTILINGUAL_TOKENIZER_REPEAT = 8
