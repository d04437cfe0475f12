"""cloudbridge-finetune on bad input: one clear line naming what and where, exit status 2, before torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_training import TINY_CONFIG, clean_env, finetune_args, write_classification, write_ner

from cloudbridge.training import data as data_mod
from cloudbridge.training.cli import main


@pytest.fixture(autouse=True)
def _no_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("CB_", "SM_", "AIP_", "AZUREML_", "RANK", "WORLD_SIZE", "LOCAL_RANK")):
            monkeypatch.delenv(key)


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_unknown_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_classification(tmp_path / "d")
    args = finetune_args(data, tmp_path / "o")
    args[args.index("text-classification")] = "summarization"
    assert "--task 'summarization' is not a known task" in _run(capsys, args)


def test_label_column_missing_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_classification(tmp_path / "d")
    line = _run(capsys, [*finetune_args(data, tmp_path / "o"), "--label-column", "sentiment"])
    assert f"{data / 'train.csv'}:1: column 'sentiment' is missing (columns: text, label)" in line


def test_eval_labels_unseen_in_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_classification(tmp_path / "d")
    with (data / "test.csv").open("a") as handle:
        handle.write("a brand new kind of review,mixed\n")
    line = _run(capsys, finetune_args(data, tmp_path / "o"))
    assert "label(s) 'mixed' never appear in the training data" in line and "test.csv" in line


def test_empty_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_classification(tmp_path / "d")
    (data / "train.csv").write_text("text,label\n")
    assert f"{data / 'train.csv'}: the dataset is empty" in _run(capsys, finetune_args(data, tmp_path / "o"))


def test_model_path_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_classification(tmp_path / "d")
    args = finetune_args(data, tmp_path / "o")
    args[args.index("--model-config"): args.index("--model-config") + 2] = ["--model", str(tmp_path / "nope")]
    assert f"--model {tmp_path / 'nope'}: model path does not exist" in _run(capsys, args)


def test_checkpoint_dir_not_writable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_classification(tmp_path / "d")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")  # works even as root, unlike chmod
    line = _run(capsys, [*finetune_args(data, tmp_path / "o"), "--checkpoint-dir", str(blocker / "ckpt")])
    assert f"--checkpoint-dir {blocker / 'ckpt'} is not writable" in line


def test_malformed_jsonl_and_conll(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"text": "fine", "label": "pos"}\n{"text": "oops", "label": \n')
    assert f"{bad}:2: not valid JSON" in _run(capsys, finetune_args(bad, tmp_path / "o"))
    conll = tmp_path / "train.conll"
    conll.write_text("Anna B-PER\nlonely\n")
    args = finetune_args(conll, tmp_path / "o2")
    args[args.index("text-classification")] = "token-classification"
    assert f"{conll}:2: expected 'TOKEN ... TAG'" in _run(capsys, args)


def test_no_training_data_anywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = finetune_args(tmp_path, tmp_path / "o")
    del args[args.index("--train"): args.index("--train") + 2]
    assert "no training data: pass --train" in _run(capsys, args)


def test_bad_model_config_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_classification(tmp_path / "d")
    args = finetune_args(data, tmp_path / "o")
    args[args.index(TINY_CONFIG)] = '{"hidden_size": 32,'
    assert "--model-config: not valid JSON" in _run(capsys, args)


def test_readers_conll_jsonl_and_eval_discovery(tmp_path: Path) -> None:
    ner = write_ner(tmp_path / "ner", n_train=3, n_test=2)
    train = data_mod.load_dataset(str(ner / "train.conll"), "token-classification")
    assert len(train.examples) == 3 and train.examples[0].tags[0] == "B-PER"
    assert data_mod.find_data_file(str(ner), "eval", "--train") == str(ner / "test.conll")
    jl = tmp_path / "t.jsonl"
    jl.write_text('{"tokens": ["Anna", "runs"], "tags": ["B-PER", "O"]}\n')
    assert data_mod.load_dataset(str(jl), "token-classification").examples[0].tokens == ["Anna", "runs"]
    labels = data_mod.label_list("token-classification", train, train)
    assert labels[0] == "O" and {"B-PER", "B-ORG", "B-LOC", "B-MISC", "I-ORG"} <= set(labels)


def test_bad_input_imports_no_torch(tmp_path: Path) -> None:
    data = write_classification(tmp_path / "d")
    code = (
        "import sys\nfrom cloudbridge.training.cli import main\n"
        f"rc = main({finetune_args(data, tmp_path / 'o', '--label-column', 'nope')!r})\n"
        "print(rc, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), check=True)
    assert out.stdout.split() == ["2", "False", "False"]


@pytest.mark.slow
def test_bad_input_under_two_processes_is_still_one_line_and_exit_2(tmp_path: Path) -> None:
    """Workers hand the status to cloudbridge-launch instead of letting torchrun print a failure report."""
    data = write_classification(tmp_path / "d")
    cmd = [sys.executable, "-m", "cloudbridge.runtime.launch", "--", "cloudbridge-finetune",
           *finetune_args(data, tmp_path / "o", "--label-column", "nope")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(CB_NUM_PROCESSES="2"), timeout=180,
                          cwd=tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(errors) == 1 and "column 'nope' is missing" in errors[0]
    assert "ChildFailedError" not in proc.stderr
