"""Default container images: the AWS Deep Learning Containers (DLC) for PyTorch, per region.

The DLC registries live in one AWS account per region (most regions share ``763104351884``); the
table below is the registry map AWS publishes for its PyTorch DLCs (the same one the SageMaker Python
SDK ships). Override with ``training_image`` / ``serving_image`` in the ``aws`` settings.
"""

from __future__ import annotations

from cloudbridge.errors import InvalidSpec

__all__ = ["DLC_ACCOUNTS", "PYTORCH_VERSION", "training_image_uri", "dlc_image_uri"]

#: PyTorch version of the default images, and the tags of its SageMaker DLCs.
PYTORCH_VERSION = "2.3.0"
_TAGS = {
    "gpu": f"{PYTORCH_VERSION}-gpu-py311-cu121-ubuntu20.04-sagemaker",
    "cpu": f"{PYTORCH_VERSION}-cpu-py311-ubuntu20.04-sagemaker",
}

DLC_ACCOUNTS: dict[str, str] = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-south-2": "772153158452",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-7": "590183813437",
    "ca-central-1": "763104351884",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-1": "763104351884",
    "eu-central-2": "380420809688",
    "eu-north-1": "763104351884",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
}


def dlc_image_uri(repository: str, region: str, *, gpu: bool) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>`` for a PyTorch DLC."""
    account = DLC_ACCOUNTS.get(region)
    if account is None:
        raise InvalidSpec(
            f"no PyTorch Deep Learning Container is known for region {region!r}",
            field="settings.aws.training_image",
            hint="set training_image (and serving_image) in the aws settings to an image in that region",
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{repository}:{_TAGS['gpu' if gpu else 'cpu']}"


def training_image_uri(region: str, *, gpu: bool) -> str:
    """The PyTorch training DLC for ``region`` (GPU or CPU build)."""
    return dlc_image_uri("pytorch-training", region, gpu=gpu)
