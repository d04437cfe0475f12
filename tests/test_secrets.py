"""Secrets never show: not in ``run --dry-run`` (text or JSON), spec reprs, settings errors, job
records, or anything a local job leaves under ``CLOUDBRIDGE_HOME`` -- while the job itself still
receives the real values."""

from __future__ import annotations

import hashlib
import json
import sys
import traceback
from pathlib import Path

import pytest
from fixtures_cli import run_cli
from fixtures_local import local_compute
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cloudbridge.errors import InvalidSpec
from cloudbridge.jobstore.redact import REDACTED
from cloudbridge.records import JobState
from cloudbridge.settings import ProviderSettings, resolve_settings
from cloudbridge.specs import EndpointSpec, JobSpec

HF = "hf_SuperSecretValue123abc"
AWS = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
OVERRIDE = "awsOverrideSecret999xyz"
SECRETS = (HF, AWS, OVERRIDE)

SPEC = f"""\
name: secrets
provider: local
workdir: null
run: echo hi
env:
  HF_TOKEN: {HF}
  AWS_SECRET_ACCESS_KEY: {AWS}
  PLAIN: visible-value
overrides:
  aws:
    secret_access_key: {OVERRIDE}
    region: eu-west-1
"""


def assert_no_secret(text: str, *secrets: str) -> None:
    """None of ``secrets`` (default: every secret of this module) occurs in ``text``."""
    for secret in secrets or SECRETS:
        assert secret not in text, f"secret {secret[:6]}... leaked in:\n{text}"


def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def test_dry_run_text_redacts_env_and_overrides(tmp_path: Path) -> None:
    result = run_cli("run", str(spec_path(tmp_path)), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert_no_secret(result.stdout + result.stderr)
    assert f"HF_TOKEN: '{REDACTED}'" in result.stdout
    assert f"AWS_SECRET_ACCESS_KEY: '{REDACTED}'" in result.stdout
    assert f"secret_access_key: '{REDACTED}'" in result.stdout
    assert "PLAIN: visible-value" in result.stdout and "region: eu-west-1" in result.stdout


def test_dry_run_json_redacts_env_and_overrides(tmp_path: Path) -> None:
    result = run_cli("run", str(spec_path(tmp_path)), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    assert_no_secret(result.stdout + result.stderr)
    spec = json.loads(result.stdout)["spec"]
    assert spec["env"] == {"HF_TOKEN": REDACTED, "AWS_SECRET_ACCESS_KEY": REDACTED, "PLAIN": "visible-value"}
    assert spec["overrides"] == {"aws": {"secret_access_key": REDACTED, "region": "eu-west-1"}}


def test_spec_repr_and_str_redact_but_dump_keeps_values() -> None:
    spec = JobSpec(
        name="j",
        run="echo",
        env={"HF_TOKEN": HF, "AWS_SECRET_ACCESS_KEY": AWS, "TOKENIZERS_PARALLELISM": "false"},
        overrides={"aws": {"secret_access_key": OVERRIDE, "region": "eu-west-1"}},
    )
    for text in (repr(spec), str(spec), f"{spec}", repr([spec])):
        assert_no_secret(text)
        assert REDACTED in text and "eu-west-1" in text and "TOKENIZERS_PARALLELISM': 'false'" in text
    # the job needs the real values: dumps and attributes are untouched
    assert spec.model_dump()["env"]["HF_TOKEN"] == HF
    assert spec.model_dump(mode="json")["overrides"]["aws"]["secret_access_key"] == OVERRIDE
    assert spec.env["AWS_SECRET_ACCESS_KEY"] == AWS

    endpoint = EndpointSpec(name="e", model="/m", env={"API_KEY": HF}, overrides={"aws": {"session_token": AWS}})
    assert_no_secret(repr(endpoint) + str(endpoint))
    assert endpoint.model_dump()["env"]["API_KEY"] == HF


class TokenSettings(ProviderSettings):
    """A provider settings model with a constrained secret, as a plugin would write it."""

    model_config = SettingsConfigDict(env_prefix="CBTEST_TOK_", extra="forbid", env_ignore_empty=True)

    api_token: SecretStr = Field(..., min_length=30, description="API token (at least 30 characters).")
    region: str = "here"


def _all_text(exc: BaseException) -> str:
    """``str``, ``repr`` and the full formatted traceback (chained causes included) of ``exc``."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(type(exc), exc, exc.__traceback__)])


@pytest.mark.parametrize("route", ["overrides", "env", "profile"])
def test_settings_error_never_shows_the_secret(route: str, monkeypatch: pytest.MonkeyPatch, cb_home: Path) -> None:
    short = "tok_short_secret_42"  # too short: fails min_length
    overrides = None
    if route == "overrides":
        overrides = {"api_token": short}
    elif route == "env":
        monkeypatch.setenv("CBTEST_TOK_API_TOKEN", short)
    else:
        (cb_home / "config.toml").write_text(f'[tok]\napi_token = "{short}"\n', encoding="utf-8")
    with pytest.raises(InvalidSpec) as info:
        resolve_settings(TokenSettings, "tok", overrides=overrides, source="job.yaml")
    where = "overrides" if route == "overrides" else "settings"
    assert f"{where}.tok.api_token" in str(info.value) and "at least 30" in str(info.value)
    assert_no_secret(_all_text(info.value), short)

    # an unknown setting next to the secret: the message lists fields, never values
    with pytest.raises(InvalidSpec) as info:
        resolve_settings(TokenSettings, "tok", overrides={"api_token": HF + "x" * 10, "regoin": "x"})
    assert "unknown setting" in str(info.value)
    assert_no_secret(_all_text(info.value), HF)

    good = resolve_settings(TokenSettings, "tok", overrides={"api_token": HF + "x" * 10})
    assert good.api_token.get_secret_value() == HF + "x" * 10
    assert_no_secret(repr(good) + str(good) + good.model_dump_json(), HF)


def test_local_job_gets_the_secret_but_records_and_logs_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cb_home: Path
) -> None:
    import cloudbridge.sdk as sdk
    from cloudbridge.jobstore.store import JobStore

    local_compute(monkeypatch)
    code = tmp_path / "code"
    code.mkdir()
    (code / "show.py").write_text(
        "import hashlib, os\n"
        "for name in ('HF_TOKEN', 'AWS_SECRET_ACCESS_KEY'):\n"
        "    print(name, hashlib.sha256(os.environ[name].encode()).hexdigest(), flush=True)\n",
        encoding="utf-8",
    )
    spec = JobSpec(
        name="secret-job",
        workdir=str(code),
        run=f"{sys.executable} show.py",
        env={"HF_TOKEN": HF, "AWS_SECRET_ACCESS_KEY": AWS},
        overrides={"local": {}, "aws": {"secret_access_key": OVERRIDE}},
    )
    job = sdk.run(spec, wait=True, timeout=120)
    lines = list(sdk.logs(job.id))
    assert job.state == JobState.SUCCEEDED, lines
    # the job saw the real values (proved by their digests, so the log itself holds no secret)
    for name, value in (("HF_TOKEN", HF), ("AWS_SECRET_ACCESS_KEY", AWS)):
        assert f"{name} {hashlib.sha256(value.encode()).hexdigest()}" in lines

    record = JobStore.default().get(job.id)
    assert_no_secret(repr(record) + json.dumps(record.to_dict(), default=str))
    assert_no_secret(repr(job) + repr(sdk.get_job(job.id)) + "\n".join(lines))
    status = run_cli("status", job.id, "--json")
    assert status.returncode == 0, status.stderr
    assert_no_secret(status.stdout + status.stderr)
    logs = run_cli("logs", job.id)
    assert logs.returncode == 0 and "HF_TOKEN " in logs.stdout
    assert_no_secret(logs.stdout + logs.stderr)
    # nothing the job left behind -- SQLite file (and its WAL), logs, run dirs -- holds a secret
    scanned = 0
    for path in cb_home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += 1
            for secret in SECRETS:
                assert secret.encode() not in data, f"secret {secret[:6]}... found in {path}"
    assert scanned >= 2
