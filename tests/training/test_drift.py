"""``python -m training.drift`` on captured-format files against a real EDA report.

The captured files follow SageMaker's data-capture format as AWS's Model Monitor guide shows
it: one JSON object per line with ``captureData.endpointInput`` / ``endpointOutput``, each
with ``observedContentType``, ``mode``, ``data`` and ``encoding`` (``JSON``, ``CSV`` or
``BASE64``), plus ``eventMetadata`` and ``eventVersion``; files under
``<endpoint>/<variant>/YYYY/MM/DD/HH/``. The reference is what ``training.eda`` writes for the
committed sample, and a model folder with the offline MiniLM tokenizer and an artifact.json.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from devtools.artifacts import minilm_dir
from model_artifact import INFO_FILE, ArtifactInfo
from training.captured_traffic import read_traffic
from training.data import load_datasets
from training.drift import EXIT_DRIFT, EXIT_UNUSABLE, main
from training.eda import write_eda_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_LENGTH = 24


@pytest.fixture(scope="module")
def reference(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A model folder (tokenizer + artifact.json), the sample's EDA report, its titles."""
    splits, summary = load_datasets({"train": sample_data})
    root = tmp_path_factory.mktemp("reference")
    write_eda_report(
        splits, root / "eda", tokenizer_path=minilm_dir(), max_length=MAX_LENGTH, summary=summary
    )
    model = root / "model"
    model.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir() / name, model / name)
    info = ArtifactInfo(labels=tuple(splits.labels), max_length=MAX_LENGTH, base_model="minilm")
    (model / INFO_FILE).write_text(info.to_json(), encoding="utf-8")
    return {
        "model": model,
        "eda": root / "eda" / "report.json",
        "test": [(e.text, e.label) for e in splits.test],
        "labels": list(splits.labels),
    }


def _part(mode: str, media: str, body: str, encoding: str) -> dict[str, str]:
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    return {"observedContentType": media, "mode": mode, "data": data, "encoding": encoding}


def _record(request: str, response: str, encoding: str, n: int, media: str = "application/json"
            ) -> str:  # fmt: skip
    return json.dumps(
        {
            "captureData": {
                "endpointInput": _part("INPUT", media, request, encoding),
                "endpointOutput": _part("OUTPUT", "application/json", response, encoding),
            },
            "eventMetadata": {
                "eventId": f"00000000-0000-0000-0000-{n:012d}",
                "inferenceTime": "2026-03-04T05:06:07Z",
            },
            "eventVersion": "0",
        }
    )


def _write_capture(folder: Path, pairs: list[tuple[str, str]]) -> Path:
    """Requests of two texts each, alternating JSON-encoded and base64-encoded records."""
    hour = folder / "news-classifier" / "AllTraffic" / "2026" / "03" / "04" / "05"
    hour.mkdir(parents=True)
    lines = []
    for n in range(0, len(pairs), 2):
        chunk = pairs[n : n + 2]
        request = json.dumps({"inputs": [text for text, _ in chunk]})
        response = json.dumps([{"label": label, "score": 0.93} for _, label in chunk])
        lines.append(_record(request, response, "BASE64" if n % 4 else "JSON", n))
    (hour / "06-07-123-abcd.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _run(reference: dict[str, Any], captured: Path, out: Path, *extra: str) -> int:
    return main(
        [str(captured), "--reference", str(reference["model"]), "--eda", str(reference["eda"]),
         "--output", str(out), *extra]
    )  # fmt: skip


def test_traffic_like_the_test_split_is_within_the_thresholds(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    captured = _write_capture(tmp_path / "capture", reference["test"])
    out = tmp_path / "drift"

    assert _run(reference, captured, out) == 0

    report = json.loads((out / "drift.json").read_text())
    assert report["texts"] == len(reference["test"])
    assert report["unreadable_records"] == 0
    assert not report["drift"], report["checks"]
    assert set(report["checks"]) == {
        "class_mix_distance", "unknown_token_share", "token_p50_ratio",
        "truncated_share_increase",
    }  # fmt: skip
    assert (out / "drift.png").read_bytes().startswith(PNG_MAGIC)
    assert "within thresholds" in (out / "drift.md").read_text()


def test_one_class_long_texts_and_unknown_tokens_are_drift(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    first = reference["labels"][0]
    long_odd = " ".join(["\u2603\u2604 quarterly results beat forecasts"] * 8)
    pairs = [(f"{text} {long_odd}", first) for text, _ in reference["test"]]
    captured = _write_capture(tmp_path / "capture", pairs)
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps({"test": {"accuracy": 0.99}}))
    out = tmp_path / "drift"

    assert _run(reference, captured, out, "--evaluation", str(evaluation)) == EXIT_DRIFT

    checks = json.loads((out / "drift.json").read_text())["checks"]
    over = {name for name, check in checks.items() if check["over"]}
    assert over == {
        "class_mix_distance", "unknown_token_share", "token_p50_ratio",
        "truncated_share_increase",
    }  # fmt: skip
    # 0.93 against an accuracy of 0.99: a drop under the 0.10 threshold.
    assert checks["confidence_drop"]["value"] == pytest.approx(0.06)
    assert "drift above thresholds" in (out / "drift.md").read_text()


def test_csv_and_jsonlines_bodies_are_read_and_broken_records_counted() -> None:
    records = [
        _record('"Fed, again, raises rates"\nNew vaccine\n', '[{"label": "b", "score": 0.8}, '
                '{"label": "m", "score": 0.7}]', "CSV", 1, media="text/csv"),
        _record('{"inputs": "Stocks rally"}\n"Oil falls"\n', '[[{"label": "b", "score": 0.6},'
                ' {"label": "e", "score": 0.3}], {"label": "b", "score": 0.9}]', "BASE64", 2,
                media="application/jsonlines"),
        _record('{"inputs": ["one", "two"]}', '[{"label": "b", "score": 0.6}]', "JSON", 3),
        '{"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}}}',
    ]  # fmt: skip

    traffic = read_traffic(records)

    assert traffic.texts == ["Fed, again, raises rates", "New vaccine", "Stocks rally", "Oil falls"]
    assert traffic.labels == ["b", "m", "b", "b"]
    assert traffic.scores == [0.8, 0.7, 0.6, 0.9]
    assert (traffic.records, traffic.unreadable) == (4, 2)  # 2 texts, 1 answer; bad base64


def test_an_empty_capture_folder_is_unusable(reference: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "capture").mkdir()
    assert _run(reference, tmp_path / "capture", tmp_path / "drift") == EXIT_UNUSABLE
    assert not (tmp_path / "drift").exists()
