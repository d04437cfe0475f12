"""Migrate the sentiment fine-tuning example from `local` to AWS, step by step.

    python examples/migrate-to-cloud/migrate.py --bucket s3://my-bucket            # plan, upload, write spec
    python examples/migrate-to-cloud/migrate.py --bucket s3://my-bucket --dry-run  # only the plan
    python examples/migrate-to-cloud/migrate.py --bucket s3://my-bucket --submit   # ... and run it

The example is copied to a working folder first (``--workdir``, default ``./migrated-sentiment``), so
the repository stays untouched; ``job.aws.yaml`` is written there. Credentials and region come from
the usual AWS chain (or ``CLOUDBRIDGE_AWS_*``); the tests run this script against a moto server.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "finetune-sentiment"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Migrate the sentiment example to AWS.")
    parser.add_argument("--bucket", required=True, help="s3://BUCKET[/PREFIX] to upload to")
    parser.add_argument("--workdir", default="migrated-sentiment", help="where to copy the example")
    parser.add_argument("--to", default="aws", help="target provider (default: aws)")
    parser.add_argument("--dry-run", action="store_true", help="show the plan only")
    parser.add_argument("--submit", action="store_true", help="submit the migrated job and stream its logs")
    args = parser.parse_args(argv)

    import cloudbridge as cb
    from cloudbridge.errors import CloudbridgeError

    work = Path(args.workdir).resolve()
    if not work.exists():
        shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("*.aws.yaml", "__pycache__"))
        # The data goes to the bucket as an input; keep it out of the code package.
        (work / ".cloudbridgeignore").write_text("data/\n")
    try:
        plan = cb.migrate(work / "job.yaml", args.to, bucket=args.bucket, dry_run=args.dry_run, submit=args.submit)
    except CloudbridgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(plan.summarize())
    if args.dry_run:
        return 0
    print(f"\n--- {plan.spec_path} ---")
    print(Path(plan.spec_path).read_text())
    if plan.job is not None:
        job = plan.job
        print(f"submitted {job.id} ({job.native_id})")
        for line in job.logs(follow=True):
            print(line)
        job.refresh()
        print(f"{job.id}: {job.state}" + (f" ({job.reason})" if job.reason else ""))
        return 0 if str(job.state) == "SUCCEEDED" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
