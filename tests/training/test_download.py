"""The downloader against a real HTTP server on 127.0.0.1 serving crafted zips."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.processes import free_port
from training.download import download, main
from training.errors import DataError

CATEGORIES = "bemt"


def news_content(rows: int) -> bytes:
    lines = [
        f"{i}\tHeadline number {i}\thttp://example.com/{i}\tPub\t{CATEGORIES[i % 4]}"
        f"\tstory{i // 3}\texample.com\t1394470370698\n"
        for i in range(1, rows + 1)
    ]
    return "".join(lines).encode()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTP server on a free port serving a few crafted files; yields its base URL."""
    root = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(root / "good.zip", "w") as archive:
        archive.writestr("2pageSessions.csv", "session\n")
        archive.writestr("newsCorpora.csv", news_content(40))
    with zipfile.ZipFile(root / "damaged.zip", "w") as archive:
        archive.writestr("newsCorpora.csv", news_content(40).replace(b"\tb\t", b"\t?\t"))
    with zipfile.ZipFile(root / "no_corpus.zip", "w") as archive:
        archive.writestr("2pageSessions.csv", "session\n")
    (root / "page.zip").write_text("<html>not a zip</html>")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_extracts_and_checks_the_corpus(site: str, tmp_path: Path) -> None:
    dest = tmp_path / "full"
    target = download(dest, url=f"{site}/good.zip", expected_rows=40)
    assert target == dest / "newsCorpora.csv"
    assert target.read_bytes() == news_content(40)
    assert [p.name for p in dest.iterdir()] == ["newsCorpora.csv"]  # no zip, no staging dir


def test_cli_reports_success_and_failure(
    site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "cli"
    assert main(["--dest", str(dest), "--url", f"{site}/good.zip", "--expected-rows", "0"]) == 0
    assert (dest / "newsCorpora.csv").is_file()
    assert main(["--dest", str(tmp_path / "x"), "--url", f"{site}/missing.zip"]) == 1
    assert "HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "expected_rows", "message"),
    [
        ("no_corpus.zip", None, r"holds no newsCorpora\.csv \(it holds: 2pageSessions\.csv\)"),
        ("page.zip", None, "not a zip file"),
        ("good.zip", 422_937, "has 40 lines, expected 422,937"),
        ("missing.zip", None, "HTTP 404"),
        ("damaged.zip", None, "10 malformed lines"),
    ],
)
def test_bad_downloads_leave_nothing_behind(
    site: str, tmp_path: Path, name: str, expected_rows: int | None, message: str
) -> None:
    dest = tmp_path / "full"
    with pytest.raises(DataError, match=message):
        download(dest, url=f"{site}/{name}", expected_rows=expected_rows)
    assert not dest.exists()

    # A destination that existed keeps what it had, and gains nothing.
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(DataError):
        download(existing, url=f"{site}/{name}", expected_rows=expected_rows)
    assert [p.name for p in existing.iterdir()] == ["notes.txt"]


def test_no_network_gets_a_clear_message(tmp_path: Path) -> None:
    # Nothing listens on a just-freed port: the same error path as having no internet.
    url = f"http://127.0.0.1:{free_port()}/news+aggregator.zip"
    with pytest.raises(DataError, match=r"cannot reach .*needs internet access"):
        download(tmp_path / "full", url=url, timeout=5)
    with pytest.raises(DataError, match="http"):
        download(tmp_path / "full", url="file:///etc/passwd")
