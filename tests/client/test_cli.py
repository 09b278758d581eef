"""``python -m client``: files and stdin in, JSON Lines or CSV out, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from client.cli import EXIT_OK, EXIT_SERVICE_ERROR, EXIT_USAGE, main
from devtools.artifacts import LABELS
from devtools.processes import ServerProcess, free_port

HEADLINES = ["Fed raises interest rates", "Ebola outbreak spreads", "New Marvel trailer"]


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_lines_file_to_jsonl_with_progress(
    model_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "headlines.txt"
    source.write_text("\n".join(HEADLINES) + "\n\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["--server-url", model_server.url, str(source), "-o", str(out)]
    assert main([*argv, "--batch-size", "2", "--progress"]) == EXIT_OK
    records = read_jsonl(out)
    assert [r["text"] for r in records] == HEADLINES
    assert all(r["label"] in LABELS and set(r) == {"text", "label", "score"} for r in records)
    assert "classified 3/3" in capsys.readouterr().err


def test_csv_column_to_csv_with_top_k(model_server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "news.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title"])
        writer.writerows([[i, title] for i, title in enumerate(HEADLINES)] + [[9, 'Say "hi", all']])
    out = tmp_path / "out.csv"
    argv = ["--server-url", model_server.url, str(source), "--column", "title", "-o", str(out)]
    assert main([*argv, "--top-k", "2"]) == EXIT_OK
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["text"] for r in rows] == [*HEADLINES, 'Say "hi", all']
    assert all(r["label"] in LABELS and r["label_2"] in LABELS for r in rows)
    assert all(float(r["score"]) >= float(r["score_2"]) for r in rows)


def test_csv_output_keeps_formulas_inert(model_server: ServerProcess, tmp_path: Path) -> None:
    # OWASP "CSV injection": a cell starting with = + - @ (or tab, CR) runs in a spreadsheet.
    hostile = ['=HYPERLINK("http://x.invalid","click")', "+1+2", "-3", "@SUM(A1)"]
    source = tmp_path / "hostile.txt"
    source.write_text("\n".join([*hostile, HEADLINES[0]]) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["--server-url", model_server.url, str(source), "-o", str(out)]) == EXIT_OK
    with out.open(newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    assert texts == [*("'" + text for text in hostile), HEADLINES[0]]
    # JSON Lines output is data, not a spreadsheet: texts stay as they were.
    jsonl = tmp_path / "out.jsonl"
    assert main(["--server-url", model_server.url, str(source), "-o", str(jsonl)]) == EXIT_OK
    assert [r["text"] for r in read_jsonl(jsonl)] == [*hostile, HEADLINES[0]]


def test_jsonl_from_stdin_to_stdout(
    model_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [json.dumps({"headline": text}) for text in HEADLINES]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines)))
    argv = ["--server-url", model_server.url, "--input-format", "jsonl", "--column", "headline"]
    assert main(argv) == EXIT_OK
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == HEADLINES


def test_bad_input_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "news.csv"
    source.write_text("id,title\n1,Fed\n", encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["--server-url", url, str(source), "--column", "headline"]) == EXIT_USAGE
    assert "no column 'headline'" in capsys.readouterr().err
    empty_row = tmp_path / "gap.csv"
    empty_row.write_text('title\nFed\n""\n', encoding="utf-8")
    assert main(["--server-url", url, str(empty_row), "--column", "title"]) == EXIT_USAGE
    assert main(["--server-url", url, str(tmp_path / "missing.txt")]) == EXIT_USAGE
    with pytest.raises(SystemExit) as info:  # argparse: no target given
        main([str(source)])
    assert info.value.code == EXIT_USAGE


def test_service_errors_exit_1_with_code_and_request_id(
    model_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "one.txt"
    source.write_text("Fed raises rates\n", encoding="utf-8")
    down = f"http://127.0.0.1:{free_port()}"
    assert main(["--server-url", down, str(source), "--retries", "0"]) == EXIT_SERVICE_ERROR
    assert "connect_error" in capsys.readouterr().err
    # The API path does not exist on a model server: a 404 from the real server.
    assert main(["--api-url", model_server.url, str(source), "--retries", "0"]) == (
        EXIT_SERVICE_ERROR
    )
    assert "HTTP 404" in capsys.readouterr().err


def test_endpoint_mode_without_a_region_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    source = tmp_path / "one.txt"
    source.write_text("Fed raises rates\n", encoding="utf-8")
    assert main(["--endpoint-name", "news-classifier", str(source)]) == EXIT_USAGE
    assert "no AWS region" in capsys.readouterr().err
