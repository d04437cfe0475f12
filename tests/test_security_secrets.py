"""Secrets are not shipped and not shown (issue 12, item 2).

The oracle here is independent of ``cloudbridge.jobstore.redact``: names are built from a list of
secret suffixes and a vocabulary of harmless words, values from the token formats' own shapes.
"""

from __future__ import annotations

import copy
import json
import string
import sys
from pathlib import Path

import pytest
from fixtures_cli import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudbridge.jobstore.redact import REDACTED, redact_spec, redact_text

#: Each of these, after any harmless prefix, names a secret.
SECRET_SUFFIXES = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD", "PASSPHRASE", "API_KEY", "KEY",
                   "CONNECTION_STRING", "CREDENTIALS", "AUTH_TOKEN", "ACCESS_KEY", "PRIVATE_KEY"]
#: Whole names that are secrets.
SECRET_NAMES = ["DATABASE_URL", "HF_TOKEN", "secretAccessKey", "apiKey", "DB_PASS", "SMTP_PWD", "GPG_PASSPHRASE",
                "AZURE_STORAGE_CONNECTION_STRING", "AzureStorageConnectionString", "aws_secret_access_key"]
#: Harmless words (some contain a secret word as a substring, which must not count).
HARMLESS_WORDS = ["MONKEY", "COUNT", "KEYWORDS", "TOKENIZERS", "PARALLELISM", "AUTHOR", "LR", "BATCH", "SIZE",
                  "DATA", "DIR", "PASSAGE", "TURKEY", "COMPASS", "EPOCHS", "MODEL", "NAME", "HOCKEY", "SEED"]


def _tokens() -> st.SearchStrategy[str]:
    alnum = string.ascii_letters + string.digits
    upper = string.ascii_uppercase + string.digits
    b64 = alnum + "-_"
    return st.one_of(
        st.text(alnum, min_size=30, max_size=40).map(lambda s: "hf_" + s),
        st.text(upper, min_size=16, max_size=16).map(lambda s: "AKIA" + s),
        st.text(alnum, min_size=36, max_size=36).map(lambda s: "ghp_" + s),
        st.text(alnum, min_size=40, max_size=48).map(lambda s: "sk-" + s),
        st.tuples(st.text(b64, min_size=10, max_size=20), st.text(b64, min_size=10, max_size=30),
                  st.text(b64, min_size=10, max_size=40)).map(lambda t: f"eyJ{t[0]}.eyJ{t[1]}.{t[2]}"),
        st.tuples(st.text(string.ascii_lowercase, min_size=1, max_size=8),
                  st.text(alnum, min_size=4, max_size=16)).map(lambda t: f"postgres://{t[0]}:{t[1]}@db:5432/x"),
    )


_harmless_value = st.text(string.ascii_lowercase + string.digits + "./-", min_size=0, max_size=12)
_harmless_name = st.lists(st.sampled_from(HARMLESS_WORDS), min_size=1, max_size=3).map("_".join)
_secret_name = st.one_of(
    st.sampled_from(SECRET_NAMES),
    st.tuples(st.lists(st.sampled_from(HARMLESS_WORDS), min_size=1, max_size=2), st.sampled_from(SECRET_SUFFIXES))
    .map(lambda t: "_".join([*t[0], t[1]])),
)


@settings(max_examples=150, deadline=None)
@given(
    secret_named=st.dictionaries(_secret_name, st.text(string.printable, min_size=1, max_size=10), max_size=4),
    harmless=st.dictionaries(_harmless_name, _harmless_value, max_size=4),
    shaped=st.dictionaries(_harmless_name, _tokens(), max_size=3),
)
def test_redaction_against_an_independent_oracle(secret_named, harmless, shaped) -> None:
    env = {**harmless, **shaped, **secret_named}
    expected = {}
    for name, value in env.items():
        if name in secret_named or name in shaped:
            expected[name] = REDACTED
        else:
            expected[name] = value
    before = copy.deepcopy(env)
    safe = redact_spec({"env": env, "run": "x"})
    assert safe["env"] == expected
    assert env == before, "the input is not modified"


def test_harmless_names_from_the_issue_stay_visible() -> None:
    env = {"KEYWORDS": "a,b", "MONKEY_COUNT": "3", "TOKENIZERS_PARALLELISM": "false", "PWD": "/home/me"}
    assert redact_spec({"env": env})["env"] == env


def test_free_text_redaction() -> None:
    line = ("Error: HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123 refused; connecting to postgres://bob:hunter22@db/x; "
            "db_password: 'plainpw' AKIAABCDEFGHIJKLMNOP and my own s3cr3t-value")
    out = redact_text(line, ["s3cr3t-value"])
    for secret in ("hf_abcdefghijklmnopqrstuvwxyz0123", "hunter22", "plainpw", "AKIAABCDEFGHIJKLMNOP", "s3cr3t-value"):
        assert secret not in out, out
    assert "postgres://bob:" in out and "Error:" in out


def test_stored_failure_detail_is_redacted(cb_home: Path) -> None:
    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.records import Job, JobState

    store = JobStore.default()
    store.insert_job(Job(id="local-d", provider="local", name="d", state=JobState.RUNNING), {"name": "d"})
    token = "ghp_" + "A1b2" * 9
    store.transition("local-d", JobState.FAILED, reason="exit 1", detail=f"last lines:\nusing {token}")
    assert token not in (store.get("local-d").detail or "")
    raw = b"".join(p.read_bytes() for p in cb_home.rglob("*") if p.is_file())
    assert token.encode() not in raw


def test_spec_file_is_not_shipped_and_failure_detail_hides_the_secrets(tmp_path: Path, cb_home: Path) -> None:
    """Default ``workdir: .``: job.yaml (and the job.aws.yaml next to it) stay out of the package; a job
    printing its secrets and failing leaves them neither in its detail nor anywhere under the home."""
    hf = "hf_" + "Zy9" * 10
    plain = "not-token-shaped-secret-42"
    (tmp_path / "show.py").write_text(
        "import os, sys\nprint('token', os.environ['HF_TOKEN'])\nprint('pass', os.environ['DB_PASS'])\nsys.exit(3)\n"
    )
    spec = f"name: leak\nrun: {sys.executable} show.py\nenv:\n  HF_TOKEN: {hf}\n  DB_PASS: {plain}\n"
    (tmp_path / "job.yaml").write_text(spec)
    (tmp_path / "job.aws.yaml").write_text(spec)
    result = run_cli("run", str(tmp_path / "job.yaml"), "--json")
    assert result.returncode == 1, result.stderr
    job = json.loads(result.stdout)
    code = Path(job["extra"]["job_dir"]) / "code"
    assert sorted(p.name for p in code.iterdir()) == ["show.py"]
    assert hf not in json.dumps(job) and plain not in json.dumps(job), job["detail"]
    assert "token" in job["detail"] and REDACTED in job["detail"]
    for path in cb_home.rglob("*"):
        if path.is_file() and path.name != "job.log":  # the job's own log is the job's business
            data = path.read_bytes()
            assert hf.encode() not in data and plain.encode() not in data, path


def test_scan_leaves_out_the_spec_and_its_migrated_copies(tmp_path: Path) -> None:
    from cloudbridge.packaging import scan_workdir
    from cloudbridge.specs import load_job_spec

    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "job.yaml").write_text("name: j\nrun: python train.py\nenv: {HF_TOKEN: x}\n")
    (tmp_path / "job.gcp.yaml").write_text("name: j\n")
    (tmp_path / "other.yaml").write_text("data: 1\n")
    spec = load_job_spec(tmp_path / "job.yaml")
    assert sorted(e.path for e in scan_workdir(tmp_path, spec=spec).entries) == ["other.yaml", "train.py"]
    assert len(scan_workdir(tmp_path).entries) == 4, "without a spec, nothing is left out"


@pytest.mark.parametrize("value", ["hf_" + "x" * 30, "postgres://u:pw12345@h/db"])
def test_value_shaped_secrets_in_overrides_are_fully_redacted(value: str) -> None:
    """A partly redacted value would be replayed as a real override (sdk._usable_overrides drops REDACTED)."""
    safe = redact_spec({"overrides": {"x": {"endpoint": value}}})
    assert safe["overrides"]["x"]["endpoint"] == REDACTED
