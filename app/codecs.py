"""Request bodies in, response bodies out, by ``Content-Type`` and ``Accept``.

Inputs: ``application/json`` (the Hugging Face format), ``application/jsonlines`` (one
``{"inputs": "..."}`` or one JSON string per line), ``text/csv`` (one text per line; a line
that starts with ``"`` is one CSV-quoted field) and ``text/plain`` (the whole body is one text).
Outputs: ``application/json``, ``application/jsonlines`` and ``text/csv`` (``label,score`` per
input, then more ``label,score`` pairs when ``top_k`` > 1). A JSON body is answered in the
shapes of the transformers text-classification pipeline, which the Hugging Face format is
(docs/api.md has the table; tests/app/test_hf_compat.py checks it against the pipeline).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from app.errors import BadRequestError, NotAcceptableError, UnsupportedMediaTypeError
from app.schemas import PredictRequest, ScoreFunction
from app.scoring import Ranked

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
PLAIN = "text/plain"

_JSONLINES_ALIASES = frozenset({JSONLINES, "application/x-jsonlines", "application/jsonl"})
_LINE_BREAK = re.compile(r"\r\n|\n|\r")


@dataclass(frozen=True)
class Invocation:
    """A decoded request: the texts and how to answer them.

    ``top_k`` None means every label; ``top_k_given`` says the request set it. A JSON body
    (``hugging_face``) is answered in the pipeline's shapes, which depend on both and on
    whether its ``inputs`` was one string (``single``) or a list.
    """

    texts: list[str]
    top_k: int | None = 1
    top_k_given: bool = False
    function: ScoreFunction = "softmax"
    hugging_face: bool = False
    single: bool = False
    # Line-oriented bodies: the positions of their blank lines, each answered with an empty
    # line (JSON Lines, CSV) or null (JSON), so that output line i answers input line i.
    blank_lines: tuple[int, ...] = ()

    def with_top_k(self, top_k: int | Literal["all"] | None) -> Invocation:
        """``top_k`` from outside the body (CustomAttributes: a count, ``"all"``, or None where
        it says nothing), unless the body set its own."""
        if top_k is None or self.top_k_given:
            return self
        return replace(self, top_k=None if top_k == "all" else top_k, top_k_given=True)


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """``"Text/CSV; charset=UTF-8"`` -> ``("text/csv", {"charset": "utf-8"})``."""
    if not header:
        return "", {}
    kind, *raw_params = header.split(";")
    params: dict[str, str] = {}
    for raw in raw_params:
        name, _, value = raw.partition("=")
        params[name.strip().lower()] = value.strip().strip('"').lower()
    return kind.strip().lower(), params


Decoder = Callable[[bytes], "Invocation"]


def decoder_for(content_type: str | None) -> Decoder:
    """The body parser for a ``Content-Type``; raise 415 when there is none."""
    kind, params = media_type(content_type)
    if kind == "":
        kind = JSON  # SageMaker and curl callers often omit it; JSON is the documented default
    decoder = _DECODERS.get(JSONLINES if kind in _JSONLINES_ALIASES else kind)
    if decoder is None:
        raise UnsupportedMediaTypeError(
            f"Content-Type {kind[:100]!r} is not supported; use one of {', '.join(_DECODERS)}"
        )
    charset = params.get("charset", "utf-8")
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaTypeError(f"charset {charset[:40]!r} is not supported; send UTF-8")
    return decoder


def check_inputs(invocation: Invocation) -> None:
    """Refuse requests without texts, or with an empty one (400)."""
    if not invocation.texts:
        raise BadRequestError("the request holds no inputs")
    for index, text in enumerate(invocation.texts):
        if not text.strip():
            raise BadRequestError(f"input {index} is empty")


def _decode_json(body: bytes) -> Invocation:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(_json_error(exc)) from None
    try:
        request = PredictRequest.model_validate(raw)
    except ValidationError as exc:
        raise BadRequestError(_validation_message(exc)) from None
    single = isinstance(request.inputs, str)
    parameters = request.parameters
    return Invocation(
        texts=[request.inputs] if isinstance(request.inputs, str) else request.inputs,
        top_k=parameters.top_k,
        top_k_given="top_k" in parameters.model_fields_set,
        function=parameters.score_function,
        hugging_face=True,
        single=single,
    )


def _lines(body: bytes) -> list[str]:
    """The body's lines; a line break at the very end ends the last line, it starts none."""
    lines = _LINE_BREAK.split(_utf8(body))
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def _decode_jsonlines(body: bytes) -> Invocation:
    texts: list[str] = []
    blank: list[int] = []
    for number, line in enumerate(_lines(body), start=1):
        if not line.strip():
            blank.append(number - 1)
            continue
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise BadRequestError(f"line {number} is not valid JSON") from None
        if isinstance(raw, dict) and set(raw) == {"inputs"}:
            raw = raw["inputs"]
        if not isinstance(raw, str):
            raise BadRequestError(f'line {number} must be a JSON string or {{"inputs": "<text>"}}')
        texts.append(raw)
    return Invocation(texts=texts, blank_lines=_unless_all(blank, texts))


def _decode_csv(body: bytes) -> Invocation:
    texts: list[str] = []
    blank: list[int] = []
    for number, line in enumerate(_lines(body), start=1):
        if not line.strip():
            blank.append(number - 1)
            continue
        if line.startswith('"'):
            try:
                fields = next(csv.reader([line]))
            except csv.Error:  # a field over csv.field_size_limit() (128 KiB), or bad quoting
                raise BadRequestError(
                    f"line {number} is not one CSV-quoted text of at most 128 KiB"
                ) from None
            if len(fields) != 1:
                raise BadRequestError(
                    f"line {number} must hold one (quoted) text, not {len(fields)}"
                )
            line = fields[0]
        texts.append(line)
    return Invocation(texts=texts, blank_lines=_unless_all(blank, texts))


def _unless_all(blank: list[int], texts: list[str]) -> tuple[int, ...]:
    # A body of blank lines only holds no inputs: check_inputs refuses it (400).
    return tuple(blank) if texts else ()


def _decode_plain(body: bytes) -> Invocation:
    return Invocation(texts=[_utf8(body)])


_DECODERS: dict[str, Callable[[bytes], Invocation]] = {
    JSON: _decode_json,
    JSONLINES: _decode_jsonlines,
    CSV: _decode_csv,
    PLAIN: _decode_plain,
}
ENCODABLE = (JSON, JSONLINES, CSV)


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"the body is not valid UTF-8 (byte {exc.start})") from None


def _json_error(exc: orjson.JSONDecodeError) -> str:
    if "UTF-8" in str(exc) or "surrogate" in str(exc):
        return "the body is not valid UTF-8"
    return f"the body is not valid JSON (line {exc.lineno}, column {exc.colno})"


def _validation_message(exc: ValidationError) -> str:
    # loc and msg only: pydantic's "input" would echo the caller's text back.
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "invalid request: " + "; ".join(parts)


def negotiate(accept: str | None) -> str:
    """Pick the response media type from an ``Accept`` header; raise 406 when none fits."""
    if not accept or not accept.strip():
        return JSON
    ranges: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept.split(",")):
        kind, params = media_type(item)
        if not kind:
            continue
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            ranges.append((-quality, position, kind))
    for _, _, kind in sorted(ranges):
        if kind in ("*/*", "application/*"):
            return JSON
        if kind == "text/*":
            return CSV
        if kind in _JSONLINES_ALIASES:
            return JSONLINES
        if kind in ENCODABLE:
            return kind
    raise NotAcceptableError(f"Accept {accept[:100]!r} allows none of {', '.join(ENCODABLE)}")


def encode_response(ranked: Sequence[Ranked], invocation: Invocation, kind: str) -> bytes:
    """The answer to ``invocation`` from its texts' ranked labels, as ``kind``.

    One element per input: ``{"label", "score"}``, or a best-first list of them. For a JSON
    body, as the pipeline answers: lists exactly when the request set ``top_k``, and one string
    with ``top_k`` set gets its list alone. Other bodies (no ``parameters`` to set): lists when
    ``top_k`` (CustomAttributes) is not 1.
    """
    as_lists = invocation.top_k_given if invocation.hugging_face else invocation.top_k != 1
    items: list[Any] = []
    for pairs in ranked:
        dicts = [{"label": label, "score": score} for label, score in pairs]
        items.append(dicts if as_lists else dicts[0])
    if kind == JSON:
        unwrap = invocation.hugging_face and invocation.single and as_lists
        return orjson.dumps(items[0] if unwrap else _with_blanks(items, invocation, None))
    if kind == JSONLINES:
        lines = [orjson.dumps(item) for item in items]
        return b"".join(line + b"\n" for line in _with_blanks(lines, invocation, b""))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    rows = [[field for label, score in pairs for field in (label, repr(score))] for pairs in ranked]
    writer.writerows(_with_blanks(rows, invocation, []))
    return out.getvalue().encode("utf-8")


def _with_blanks(items: list[Any], invocation: Invocation, blank: Any) -> list[Any]:
    """``items`` with ``blank`` at the positions of the body's blank lines."""
    if not invocation.blank_lines:
        return items
    blanks = set(invocation.blank_lines)
    answers = iter(items)
    return [blank if line in blanks else next(answers) for line in range(len(items) + len(blanks))]
