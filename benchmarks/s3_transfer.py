"""Benchmark: ``cloudbridge storage cp -r`` vs ``aws s3 cp --recursive`` uploading to one moto server.

Data: 500 files of 4 KB plus 2 files of 32 MB (64 MB + 2 MB). Both tools run as the command a user
types (a subprocess, start-up included) against the same moto server on 127.0.0.1, each into a fresh
prefix, alternating which goes first. Each measurement is repeated ``--repeat`` times; the median is
reported with the ratio ``aws time / cloudbridge time`` (above 1: cloudbridge is faster). Both uploads
are then checked: same keys, same sizes. cloudbridge verifies every object (sha256/MD5 of single
PUTs from the reply, a HEAD with the full-object CRC32 after each multipart upload); the AWS CLI sends
its default CRC32 checksums.

    python benchmarks/s3_transfer.py [--repeat 3] [--json]

``--startup`` measures start-up instead: ``cloudbridge storage ls s3://...`` vs ``aws s3 ls s3://...``
on a prefix holding one object (what every short S3 command pays before its first byte moves),
``--repeat`` runs each, alternating; medians and the same ratio.

    python benchmarks/s3_transfer.py --startup --repeat 15
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import uuid
from pathlib import Path

from _common import LARGE_FILES, SMALL_FILES, console_script, make_data, timed, versus

BUCKET = "cb-bench"


def listing(client: object, prefix: str) -> dict[str, int]:
    """``{relative key: size}`` under ``prefix`` in the benchmark bucket."""
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):  # type: ignore[attr-defined]
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1 :]] = item["Size"]
    return found


def startup(args: argparse.Namespace, aws: str, cloudbridge: str) -> None:
    """``storage ls`` vs ``aws s3 ls`` of a one-object prefix: start-up plus one listing request."""
    from cloudbridge.testing.emulators import moto_server

    times: dict[str, list[float]] = {"cloudbridge": [], "aws": []}
    with tempfile.TemporaryDirectory(prefix="cb-s3-bench-") as tmp, moto_server() as server:
        env = {**os.environ, **server.env(), "CLOUDBRIDGE_HOME": tmp}
        client = server.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="ls/one.txt", Body=b"1")
        commands = {
            "cloudbridge": [cloudbridge, "storage", "ls", f"s3://{BUCKET}/ls/"],
            "aws": [aws, "s3", "ls", f"s3://{BUCKET}/ls/"],
        }
        for round_ in range(args.repeat):
            for tool in (["cloudbridge", "aws"] if round_ % 2 == 0 else ["aws", "cloudbridge"]):
                times[tool].append(timed(commands[tool], env))
    cb, ref, fields = versus(times, "_ls_s")
    result = {"repeat": args.repeat, **fields}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"start-up: list a one-object prefix on moto ({args.repeat} runs each, median)")
    print(f"  cloudbridge storage ls      {cb:7.3f} s")
    print(f"  aws s3 ls                   {ref:7.3f} s")
    print(f"  ratio aws / cloudbridge     {ref / cb:7.2f}x  (above 1: cloudbridge is faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--startup", action="store_true", help="measure `storage ls` start-up instead")
    args = parser.parse_args()

    from cloudbridge.testing.emulators import moto_server

    aws, cloudbridge = console_script("aws"), console_script("cloudbridge")
    if args.startup:
        startup(args, aws, cloudbridge)
        return
    times: dict[str, list[float]] = {"cloudbridge": [], "aws": []}
    with tempfile.TemporaryDirectory(prefix="cb-s3-bench-") as tmp, moto_server() as server:
        data = Path(tmp) / "data"
        total = make_data(data)
        home = Path(tmp) / "home"
        home.mkdir()
        env = {**os.environ, **server.env(), "CLOUDBRIDGE_HOME": str(home)}
        client = server.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for round_ in range(args.repeat):
            order = ["cloudbridge", "aws"] if round_ % 2 == 0 else ["aws", "cloudbridge"]
            for tool in order:
                prefix = f"{tool}-{uuid.uuid4().hex[:8]}"
                target = f"s3://{BUCKET}/{prefix}/"
                if tool == "cloudbridge":
                    cmd = [cloudbridge, "storage", "cp", "-r", str(data), target]
                else:
                    cmd = [aws, "s3", "cp", "--recursive", "--only-show-errors", str(data), target]
                times[tool].append(timed(cmd, env))
                uploaded = listing(client, prefix)
                if len(uploaded) != SMALL_FILES + LARGE_FILES or sum(uploaded.values()) != total:
                    raise SystemExit(f"{tool} uploaded {len(uploaded)} objects, {sum(uploaded.values())} bytes")
    cb, ref, fields = versus(times, "_s")
    result = {"files": SMALL_FILES + LARGE_FILES, "bytes": total, "repeat": args.repeat, **fields}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"upload {result['files']} files, {total / 2**20:.1f} MiB to moto ({args.repeat} runs, median)")
    print(f"  cloudbridge storage cp -r   {cb:7.2f} s   runs: {result['all_cloudbridge_s']}")
    print(f"  aws s3 cp --recursive       {ref:7.2f} s   runs: {result['all_aws_s']}")
    print(f"  ratio aws / cloudbridge     {ref / cb:7.2f}x  (above 1: cloudbridge is faster)")


if __name__ == "__main__":
    main()
