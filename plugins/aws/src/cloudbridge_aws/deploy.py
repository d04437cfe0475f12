"""SageMaker real-time endpoints: model + endpoint config + endpoint, auto scaling, invoke, delete.

Requests are built by :mod:`cloudbridge_aws.deploy_request`; this module resolves the model archive
(a local directory is packed and uploaded, content-addressed), makes the calls, waits for
``InService`` and cleans up everything it created when a step fails or the endpoint is deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from cloudbridge.errors import ConflictError, InvalidSpec, NotFound, ProviderError, StageTimeout
from cloudbridge.interfaces import Deploy
from cloudbridge.records import Endpoint
from cloudbridge.specs import EndpointSpec
from cloudbridge_aws.deploy_request import (
    EndpointNames,
    choose_endpoint_instance,
    endpoint_names,
    scaling_requests,
    to_endpoint_config_request,
    to_endpoint_request,
    to_model_request,
    validate_endpoint_spec,
)
from cloudbridge_aws.errors import aws_errors
from cloudbridge_aws.session import AwsSession
from cloudbridge_aws.storage import S3Storage
from cloudbridge_aws.training_request import bucket_prefix, secret_env_warning

__all__ = ["SageMakerDeploy", "pack_model_dir"]

_OURS = "-cb"  # marks models/configs cloudbridge created: <endpoint>-cb<time><hex>


def pack_model_dir(model_dir: str | os.PathLike[str], target: str, handler: str | None = None) -> str:
    """Write ``model_dir`` (plus ``handler`` as ``code/inference.py``) as a reproducible ``model.tar.gz``.

    Returns the sha256 of the archive. Entries are sorted, with fixed mtimes and owners. Files are
    streamed into the archive (never read whole into memory). A symlink that resolves outside
    ``model_dir`` (``~/.aws/credentials``, ``/etc/passwd``) is refused with its path: it would upload
    that file to S3.
    """
    root = Path(model_dir)
    real_root = root.resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        real = path.resolve()
        if real_root not in real.parents:
            raise InvalidSpec(f"{path} is a symlink to {real}, outside the model directory; refused",
                              source=str(path))
    with open(target, "wb") as raw:
        import gzip

        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
            for path in files:
                rel = path.relative_to(root).as_posix()
                if handler and rel == "code/inference.py":
                    continue
                _add(tar, rel, path)
            if handler:
                _add(tar, "code/inference.py", Path(handler))
    return _sha256_file(Path(target))


def _add(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    with open(path, "rb") as handle:
        info.size, info.mtime, info.mode, info.uid, info.gid = os.fstat(handle.fileno()).st_size, 0, 0o644, 0, 0
        tar.addfile(info, handle)  # streamed in blocks by tarfile.copyfileobj


class SageMakerDeploy(Deploy):
    """:class:`~cloudbridge.interfaces.Deploy` on SageMaker real-time endpoints."""

    poll_interval = 15.0

    def __init__(self, session: AwsSession, storage: S3Storage) -> None:
        self.session = session
        self.storage = storage
        self.settings = session.settings
        self._known: set[str] = set()

    @property
    def sagemaker(self) -> Any:
        """The boto3 SageMaker client."""
        return self.session.client("sagemaker")

    # ---- model archive and image -----------------------------------------------------------------
    def model_data_url(self, spec: EndpointSpec) -> str:
        """The ``model.tar.gz`` URI to serve: uploaded from a local directory, or checked in S3."""
        model = spec.model.strip()
        if model.startswith("s3://"):
            if spec.handler:
                raise InvalidSpec(
                    "a handler can only be added to a local model directory",
                    field="handler",
                    hint="put inference.py in the archive's code/ directory instead",
                )
            uri = model if model.endswith((".tar.gz", ".tgz")) else model.rstrip("/") + "/model.tar.gz"
            try:
                self.storage.stat(uri)
            except NotFound as exc:
                raise NotFound(f"model archive does not exist: {uri}", hint=exc.hint) from exc
            return uri
        if "://" in model:
            raise InvalidSpec(f"SageMaker serves models from S3, not {model!r}", field="model")
        path = Path(model.removeprefix("file://")).expanduser()
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
            archive, digest = str(path), _sha256_file(path)
            return self._upload_model(archive, digest)
        if not path.is_dir():
            raise NotFound(f"model directory does not exist: {path}")
        if spec.handler and not Path(spec.handler).is_file():
            raise NotFound(f"handler file does not exist: {spec.handler}")
        with tempfile.TemporaryDirectory(prefix="cb-aws-model-") as tmp:
            archive = os.path.join(tmp, "model.tar.gz")
            digest = pack_model_dir(path, archive, spec.handler)
            return self._upload_model(archive, digest)

    def _upload_model(self, archive: str, digest: str) -> str:
        uri = f"{bucket_prefix(self.settings)}/models/{digest[:32]}/model.tar.gz"
        if not self.storage.exists(uri):
            self.storage.upload(archive, uri)
        return uri

    def serving_image(self) -> str:
        """``serving_image``, else ``<account>.dkr.ecr.<region>.<domain>/cloudbridge-serve:<version>``."""
        if self.settings.serving_image:
            return self.settings.serving_image
        from cloudbridge import __version__

        registry = f"{self.session.account_id()}.dkr.ecr.{self.session.region}.{self.session.partition_domain()}"
        return f"{registry}/cloudbridge-serve:{__version__}"

    # ---- Deploy ----------------------------------------------------------------------------------
    def deploy(self, spec: EndpointSpec) -> Endpoint:
        """Create model, endpoint config and endpoint; wait for ``InService``; register auto scaling.

        On any failure the resources created so far are deleted again.
        """
        validate_endpoint_spec(spec)
        region = self.session.region
        if self._describe(spec.name, missing_ok=True) is not None:
            raise ConflictError(
                f"endpoint {spec.name!r} already exists in {region}",
                hint=f"delete it first (cloudbridge undeploy {spec.name}) or choose another name",
            )
        instance_type = choose_endpoint_instance(spec, self.settings, region)
        model_url = self.model_data_url(spec)
        image = self.serving_image()
        suffix = f"cb{time.strftime('%y%m%d%H%M%S', time.gmtime())}{secrets.token_hex(2)}"
        names = endpoint_names(spec.name, suffix)
        created: list[tuple[str, str]] = []
        try:
            with aws_errors("create the SageMaker model", resource=names.model):
                self.sagemaker.create_model(
                    **to_model_request(spec, self.settings, names=names, model_data_url=model_url, image=image)
                )
            created.append(("model", names.model))
            with aws_errors("create the endpoint config", resource=names.config):
                self.sagemaker.create_endpoint_config(
                    **to_endpoint_config_request(spec, self.settings, names=names, instance_type=instance_type)
                )
            created.append(("config", names.config))
            with aws_errors("create the endpoint", resource=spec.name):
                self.sagemaker.create_endpoint(**to_endpoint_request(spec, self.settings, names=names))
            created.append(("endpoint", names.endpoint))
            desc = self._wait_in_service(spec.name)
            self._register_scaling(spec, names, created)
        except BaseException:
            self._cleanup(names, created)
            raise
        self._known.add(spec.name)
        endpoint = self._endpoint(desc)
        endpoint.model = model_url
        secret_env = secret_env_warning(spec, what="endpoint")
        if secret_env:
            endpoint.extra.setdefault("warnings", []).append(secret_env)
        endpoint.extra.update(
            {
                "model_name": names.model,
                "config_name": names.config,
                "instance_type": instance_type,
                "min_replicas": spec.min_replicas,
                "max_replicas": spec.max_replicas,
                "image": image,
            }
        )
        return endpoint

    def get(self, name: str) -> Endpoint:
        """The endpoint's current record; :class:`NotFound` when absent."""
        desc = self._describe(name)
        assert desc is not None
        return self._endpoint(desc)

    def list(self) -> list[Endpoint]:
        """Every SageMaker endpoint in the region (one ``ListEndpoints`` pass)."""
        endpoints: list[Endpoint] = []
        with aws_errors("list endpoints"):
            for page in self.sagemaker.get_paginator("list_endpoints").paginate():
                for item in page.get("Endpoints", []):
                    endpoints.append(self._endpoint(item))
        return sorted(endpoints, key=lambda e: e.name)

    def invoke(self, name: str, payload: Any) -> Any:
        """``InvokeEndpoint`` with a JSON body; the decoded JSON reply (text when it is not JSON)."""
        if name not in self._known:
            desc = self._describe(name)
            assert desc is not None
            if desc.get("EndpointStatus") != "InService":
                raise ProviderError(f"endpoint {name!r} is {desc.get('EndpointStatus')}, not InService", provider="aws")
            self._known.add(name)
        body = json.dumps(payload).encode()
        with aws_errors("invoke the endpoint", resource=name):
            response = self.session.client("sagemaker-runtime").invoke_endpoint(
                EndpointName=name, ContentType="application/json", Accept="application/json", Body=body
            )
        raw = response["Body"].read()
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", errors="replace")

    def delete(self, name: str) -> None:
        """Delete the endpoint, its auto scaling, and the config and model cloudbridge created for it."""
        desc = self._describe(name)
        assert desc is not None
        config_name = desc.get("EndpointConfigName", "")
        models: list[str] = []
        if config_name:
            try:
                with aws_errors("describe the endpoint config", resource=config_name):
                    config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            except NotFound:
                config = {}
            models = [v["ModelName"] for v in config.get("ProductionVariants", []) if v.get("ModelName")]
        names = EndpointNames(endpoint=name, model="", config=config_name)
        created = [("scaling", names.scaling_resource_id), ("endpoint", name)]
        if _OURS in config_name:
            created.append(("config", config_name))
        created += [("model", m) for m in models if _OURS in m]
        self._known.discard(name)
        self._cleanup(names, created, strict=True)

    # ---- helpers ---------------------------------------------------------------------------------
    def _describe(self, name: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        try:
            with aws_errors("describe the endpoint", resource=name):
                return self.sagemaker.describe_endpoint(EndpointName=name)
        except NotFound as exc:
            if missing_ok:
                return None
            raise NotFound(f"no SageMaker endpoint {name!r} in {self.session.region}") from exc.__cause__

    def _endpoint(self, desc: dict[str, Any]) -> Endpoint:
        name = desc["EndpointName"]
        region = self.session.region
        url = f"https://runtime.sagemaker.{region}.{self.session.partition_domain()}/endpoints/{name}/invocations"
        extra = {k: desc[k] for k in ("EndpointConfigName", "FailureReason") if desc.get(k)}
        return Endpoint(
            name=name,
            provider="aws",
            state=desc.get("EndpointStatus", "Unknown"),
            url=url,
            native_id=desc.get("EndpointArn"),
            extra=extra,
        )

    def _wait_in_service(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.deploy_timeout
        while True:
            desc = self._describe(name)
            assert desc is not None
            status = desc.get("EndpointStatus")
            if status == "InService":
                return desc
            if status in ("Failed", "OutOfService"):
                raise ProviderError(
                    f"endpoint {name!r} failed to start: {desc.get('FailureReason', status)}", provider="aws"
                )
            if time.monotonic() >= deadline:
                raise StageTimeout(
                    f"endpoint {name!r} still {status} after {self.settings.deploy_timeout}s", stage="deploy"
                )
            time.sleep(self.poll_interval)

    def _register_scaling(self, spec: EndpointSpec, names: EndpointNames, created: list[tuple[str, str]]) -> None:
        """Register the scalable target, then its policy; the target goes into ``created`` at once,
        so a refused policy still gets the target deregistered by :meth:`_cleanup`."""
        requests = scaling_requests(spec, names)
        if requests is None:
            return
        target, policy = requests
        client = self.session.client("application-autoscaling")
        with aws_errors("register endpoint auto scaling", resource=names.scaling_resource_id):
            client.register_scalable_target(**target)
        created.append(("scaling", names.scaling_resource_id))
        with aws_errors("put the endpoint scaling policy", resource=names.scaling_resource_id):
            client.put_scaling_policy(**policy)

    def _deregister_scaling(self, names: EndpointNames) -> None:
        client = self.session.client("application-autoscaling")
        with aws_errors("remove endpoint auto scaling", resource=names.scaling_resource_id):
            policies = client.describe_scaling_policies(
                ServiceNamespace="sagemaker", ResourceId=names.scaling_resource_id
            ).get("ScalingPolicies", [])
            for policy in policies:
                client.delete_scaling_policy(
                    PolicyName=policy["PolicyName"],
                    ServiceNamespace="sagemaker",
                    ResourceId=names.scaling_resource_id,
                    ScalableDimension=policy["ScalableDimension"],
                )
            targets = client.describe_scalable_targets(
                ServiceNamespace="sagemaker", ResourceIds=[names.scaling_resource_id]
            ).get("ScalableTargets", [])
            for target in targets:
                client.deregister_scalable_target(
                    ServiceNamespace="sagemaker",
                    ResourceId=names.scaling_resource_id,
                    ScalableDimension=target["ScalableDimension"],
                )

    def _cleanup(self, names: EndpointNames, created: list[tuple[str, str]], *, strict: bool = False) -> None:
        """Delete ``created`` resources, newest first; errors are raised only when ``strict``."""
        calls = {
            "scaling": lambda n: self._deregister_scaling(names),
            "endpoint": lambda n: self.sagemaker.delete_endpoint(EndpointName=n),
            "config": lambda n: self.sagemaker.delete_endpoint_config(EndpointConfigName=n),
            "model": lambda n: self.sagemaker.delete_model(ModelName=n),
        }
        order = {"scaling": 0, "endpoint": 1, "config": 2, "model": 3}
        labels = {"scaling": "endpoint auto scaling", "endpoint": "endpoint", "config": "endpoint config",
                  "model": "model"}
        for kind, name in sorted(created, key=lambda item: order[item[0]]):
            try:
                with aws_errors(f"delete the {labels[kind]}", resource=name):
                    calls[kind](name)
            except NotFound:
                continue
            except Exception:
                if strict:
                    raise


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
