"""``cloudbridge-finetune``: options, input checks, then the training loop.

Paths default from :class:`cloudbridge.runtime.RuntimeContext`: the ``train`` (or ``data``) input
channel, the platform's model, output and checkpoint directories; so one command runs unchanged on
every platform. All input checks run before torch is imported; a problem is one line on stderr and
exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudbridge.errors import CloudbridgeError, UserError

__all__ = ["FinetuneConfig", "build_parser", "main", "prepare"]

TASKS = ("text-classification", "token-classification")
PRECISIONS = ("no", "fp16", "bf16")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UserError(f"cloudbridge-finetune: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The option parser (also used to document the options)."""
    p = _Parser(prog="cloudbridge-finetune", description="Fine-tune a BERT-style model with accelerate.")
    p.add_argument("--task", required=True, help="text-classification | token-classification")
    p.add_argument("--model", help="from_pretrained path, hub id, or 'minilm' (the bundled MiniLM)")
    p.add_argument("--model-config", help="JSON (file or inline) of a tiny BERT config: random init, data tokenizer")
    p.add_argument("--train", help="training file, directory or storage URI (default: input channel train/data)")
    p.add_argument("--eval", help="evaluation file or URI (default: eval/dev/test file or channel, else a split)")
    p.add_argument("--eval-fraction", type=float, default=0.1, help="held-out share when there is no eval file")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--tokens-column", default="tokens")
    p.add_argument("--tags-column", default="tags")
    p.add_argument("--max-seq-len", type=int, default=128)
    p.add_argument("--max-train-samples", type=int, help="use only the first N training examples")
    p.add_argument("--max-eval-samples", type=int, help="use only the first N evaluation examples")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (overrides --epochs)")
    p.add_argument("--batch-size", type=int, default=16, help="per process")
    p.add_argument("--eval-batch-size", type=int, default=64, help="per process")
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.1, help="linear warm-up share of all steps, then decay")
    p.add_argument("--gradient-accumulation-steps", type=int, default=1)
    p.add_argument("--mixed-precision", default="no", help="no | fp16 | bf16")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--checkpoint-steps", type=int, default=0, help="checkpoint every N steps (0: every epoch)")
    p.add_argument("--keep-checkpoints", type=int, default=2)
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--log-steps", type=int, default=10)
    p.add_argument("--output-dir", help="metrics.json and TensorBoard logs (default: the platform's output dir)")
    p.add_argument("--model-dir", help="final model + tokenizer (default: the platform's model dir)")
    p.add_argument("--checkpoint-dir", help="checkpoints (default: the platform's checkpoint dir)")
    p.add_argument("--tensorboard-dir", help="TensorBoard event files (default: <output-dir>/tensorboard)")
    return p


@dataclass
class FinetuneConfig:
    """Every resolved option of one run (paths absolute, data loaded and checked)."""

    args: argparse.Namespace
    output_dir: str
    model_dir: str
    checkpoint_dir: str
    tensorboard_dir: str
    model_source: Any
    train: Any
    evaluation: Any
    labels: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        """Every command-line option is also an attribute: ``cfg.batch_size`` is ``cfg.args.batch_size``."""
        return getattr(self.__dict__["args"], name)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.task not in TASKS:
        raise UserError(f"--task {args.task!r} is not a known task; choose one of {', '.join(TASKS)}")
    if args.mixed_precision not in PRECISIONS:
        raise UserError(f"--mixed-precision {args.mixed_precision!r}: choose one of {', '.join(PRECISIONS)}")
    for name in ("epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps", "max_seq_len",
                 "log_steps", "keep_checkpoints"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if args.checkpoint_steps < 0:
        raise UserError("--checkpoint-steps must be 0 (every epoch) or positive")
    if not 0 < args.eval_fraction < 1:
        raise UserError("--eval-fraction must be between 0 and 1")


def prepare(argv: Sequence[str], environ: dict[str, str] | None = None) -> FinetuneConfig:
    """Parse and check everything that can be checked without torch."""
    from cloudbridge.runtime import RuntimeContext
    from cloudbridge.training import data
    from cloudbridge.training.checkpointing import check_writable
    from cloudbridge.training.models import resolve_model

    args = build_parser().parse_args(list(argv))
    _check_numbers(args)
    ctx = RuntimeContext.detect(environ, gpu_count=0)  # only the directories are needed here
    output_dir = os.path.abspath(args.output_dir or ctx.output_dir)
    model_dir = os.path.abspath(args.model_dir or ctx.model_dir)
    checkpoint_dir = os.path.abspath(args.checkpoint_dir or ctx.checkpoint_dir or os.path.join(output_dir, "ckpt"))
    tensorboard_dir = os.path.abspath(args.tensorboard_dir or ctx.tensorboard_dir or os.path.join(output_dir, "tb"))
    source = resolve_model(args.model, args.model_config)
    check_writable(checkpoint_dir, "--checkpoint-dir")
    check_writable(output_dir, "--output-dir")
    check_writable(model_dir, "--model-dir")

    train_arg = args.train or ctx.input_dir("train", "training", "data")
    if not train_arg:
        raise UserError("no training data: pass --train or give the job an input channel named 'train' or 'data'")
    cache = os.path.join(output_dir, ".cache", "inputs")
    train_root = data.fetch(train_arg, cache)
    train_file = data.find_data_file(train_root, "train", "--train")
    columns = {"text_col": args.text_column, "label_col": args.label_column,
               "tokens_col": args.tokens_column, "tags_col": args.tags_column}
    train = data.load_dataset(train_file, args.task, **columns)
    eval_arg = args.eval or ctx.input_dir("eval", "validation", "dev", "test")
    eval_file = None
    if eval_arg:
        eval_file = data.find_data_file(data.fetch(eval_arg, cache), "eval", "--eval")
    elif os.path.isdir(train_root):
        eval_file = data.find_data_file(train_root, "eval", "--train")
    if eval_file:
        evaluation = data.load_dataset(eval_file, args.task, **columns)
    else:
        train, evaluation = data.split_eval(train, args.eval_fraction, args.seed)
    if args.max_train_samples:
        train.examples = train.examples[: args.max_train_samples]
    if args.max_eval_samples:
        evaluation.examples = evaluation.examples[: args.max_eval_samples]
    labels = data.label_list(args.task, train, evaluation)
    return FinetuneConfig(args, output_dir, model_dir, checkpoint_dir, tensorboard_dir, source, train, evaluation,
                          labels)


def _report_user_error(exc: CloudbridgeError) -> int:
    """Print ``exc`` once (rank 0) and choose the exit status (see cloudbridge-launch's status file)."""
    rank = os.environ.get("RANK", "0")
    if rank == "0":
        print(f"error: {exc}", file=sys.stderr, flush=True)
    status_file = os.environ.get("CB_LAUNCH_STATUS_FILE")
    launched = int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
    if status_file and launched:
        if rank == "0":
            with open(status_file, "w", encoding="utf-8") as handle:
                handle.write(f"{exc.exit_code} {exc}\n")
        return 0  # the launcher exits with the status written above
    return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``cloudbridge-finetune``."""
    if os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("LOCAL_RANK"):
        from cloudbridge.runtime.launch import die_with_parent

        die_with_parent()  # torchrun puts workers in their own session; never outlive the launcher
    try:
        config = prepare(sys.argv[1:] if argv is None else argv)
        from cloudbridge.training.loop import train

        train(config)
    except CloudbridgeError as exc:
        return _report_user_error(exc)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
