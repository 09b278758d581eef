"""The data report's token lengths come from the chosen base model's own tokenizer.

A directory is read as it is; a Hub id is loaded with ``AutoTokenizer`` (as the SageMaker
prepare step and training job do); when it cannot be loaded (offline here) the report is
still written, without token lengths, and says why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devtools.artifacts import minilm_dir
from devtools.paths import REPO_ROOT, SAMPLE_DATA
from devtools.processes import offline_env
from training.chunk_tokenize import count_tokens, count_tokens_with
from training.data import load_input
from training.eda import load_tokenizer, write_eda_report


def test_a_loaded_tokenizer_counts_as_its_directory_does() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    tokenizer.backend_tokenizer.enable_truncation(max_length=4)
    texts = ["Fed raises rates", "", "Apple's new iPhone sells 10 million units"]
    assert count_tokens_with(texts, tokenizer) == count_tokens(texts, minilm_dir())
    # The caller's tokenizer keeps its own settings (the job trains with it afterwards).
    assert tokenizer.backend_tokenizer.truncation["max_length"] == 4


def test_a_directory_is_used_as_it_is() -> None:
    assert load_tokenizer(minilm_dir()) == (minilm_dir(), None)
    tokenizer, reason = load_tokenizer("./no/such/dir")
    assert tokenizer is None and reason is not None and "not a tokenizer directory" in reason


def test_the_report_names_the_base_model_whose_tokenizer_counted(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    splits, _ = load_input(SAMPLE_DATA)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    write_eda_report(
        splits, tmp_path / "eda", tokenizer=tokenizer, tokenizer_name="hub/model", max_length=32
    )
    report = json.loads((tmp_path / "eda" / "report.json").read_text())
    assert report["tokenizer"] == "hub/model"
    assert report["title_tokens"]["max"] > 0
    assert "32" in report["truncated_share"]


def test_a_hub_id_that_cannot_be_loaded_leaves_token_lengths_out_and_says_why(
    tmp_path: Path,
) -> None:
    out = tmp_path / "prepared"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.prepare",
            "--input",
            str(SAMPLE_DATA),
            "--output",
            str(out),
            "--tokenizer",
            "distilbert-base-uncased",
        ],
        cwd=REPO_ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads((out / "eda" / "report.json").read_text())
    assert "title_tokens" not in report
    assert "distilbert-base-uncased" in report["token_lengths_missing"]
    markdown = (out / "eda" / "report.md").read_text()
    assert "Token lengths are not reported: the tokenizer of 'distilbert-base-uncased'" in markdown
