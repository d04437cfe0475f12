"""The training loop: accelerate DDP, gradient accumulation, linear warm-up/decay, per-epoch eval.

Resume is exact: the data order depends only on the seed and the epoch
(:class:`~cloudbridge.training.features.EpochSampler`), ``accelerator.save_state`` stores the model,
optimizer, scheduler and every process's RNG, and ``trainer_state.json`` the step counters and the
metric history; a restarted job skips the batches it already trained on and continues.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from cloudbridge.errors import UserError
from cloudbridge.runtime.metrics import configure as configure_metrics
from cloudbridge.training.checkpointing import CheckpointManager
from cloudbridge.training.cli import FinetuneConfig
from cloudbridge.training.features import IGNORE_INDEX, Collator, EpochSampler, encode
from cloudbridge.training.metrics import classification_metrics, ner_metrics
from cloudbridge.training.reporting import Reporter, write_json_atomic

__all__ = ["evaluate", "train"]


def _accelerator(cfg: FinetuneConfig) -> Any:
    from accelerate import Accelerator

    try:
        return Accelerator(mixed_precision=cfg.mixed_precision,
                           gradient_accumulation_steps=cfg.gradient_accumulation_steps)
    except ValueError as exc:  # e.g. fp16 requested on a CPU-only machine
        raise UserError(f"--mixed-precision {cfg.mixed_precision}: {exc}") from exc


def evaluate(accelerator: Any, model: Any, loader: Any, cfg: FinetuneConfig) -> tuple[dict[str, Any], str | None]:
    """Metrics of ``model`` on ``loader``, gathered from every process (padding duplicates dropped)."""
    import torch

    model.eval()
    preds: list[Any] = []
    golds: list[Any] = []
    losses = []
    for batch in loader:
        with torch.no_grad():
            out = model(**batch)
        losses.append(accelerator.gather_for_metrics(out.loss.detach().reshape(1)).mean().item())
        pred = out.logits.argmax(dim=-1)
        gold = batch["labels"]
        if cfg.task == "token-classification":
            pred = accelerator.pad_across_processes(pred, dim=1, pad_index=IGNORE_INDEX)
            gold = accelerator.pad_across_processes(gold, dim=1, pad_index=IGNORE_INDEX)
        pred, gold = accelerator.gather_for_metrics((pred, gold))
        preds.extend(pred.tolist())
        golds.extend(gold.tolist())
    model.train()
    eval_loss = sum(losses) / max(len(losses), 1)
    if cfg.task == "text-classification":
        return {"eval_loss": eval_loss, **classification_metrics(preds, golds, cfg.labels)}, None
    pred_tags, gold_tags = [], []
    for p_row, g_row in zip(preds, golds, strict=True):
        keep = [i for i, g in enumerate(g_row) if g != IGNORE_INDEX]
        gold_tags.append([cfg.labels[g_row[i]] for i in keep])
        pred_tags.append([cfg.labels[p_row[i]] if p_row[i] >= 0 else "O" for i in keep])
    metrics, table = ner_metrics(pred_tags, gold_tags)
    return {"eval_loss": eval_loss, **metrics}, table


def _optimizer(model: Any, cfg: FinetuneConfig) -> Any:
    import torch

    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate)


def train(cfg: FinetuneConfig) -> dict[str, Any]:
    """Run the whole fine-tune; returns the metrics written to ``metrics.json``."""
    import torch
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    from cloudbridge.training.models import load_model

    hf_logging.disable_progress_bar()
    accelerator = _accelerator(cfg)
    set_seed(cfg.seed)
    corpus = (ex.text if ex.text is not None else " ".join(ex.tokens) for ex in cfg.train.examples)
    model, tokenizer = load_model(cfg.model_source, cfg.task, cfg.labels, corpus, cfg.max_seq_len)
    train_rows = encode(cfg.train.examples, cfg.task, tokenizer, cfg.labels, cfg.max_seq_len)
    eval_rows = encode(cfg.evaluation.examples, cfg.task, tokenizer, cfg.labels, cfg.max_seq_len)
    collate = Collator(tokenizer.pad_token_id or 0)
    sampler = EpochSampler(len(train_rows), cfg.seed)
    # Own generators: a DataLoader without one draws its base seed from the global RNG on every
    # iter(), which would shift dropout masks between an uninterrupted and a resumed run.
    train_loader = DataLoader(train_rows, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                              generator=torch.Generator().manual_seed(cfg.seed))
    eval_loader = DataLoader(eval_rows, batch_size=cfg.eval_batch_size, shuffle=False, collate_fn=collate,
                             generator=torch.Generator().manual_seed(cfg.seed))
    optimizer = _optimizer(model, cfg)
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)

    steps_per_epoch = math.ceil(len(train_loader) / cfg.gradient_accumulation_steps)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    epochs = math.ceil(total_steps / steps_per_epoch)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * cfg.warmup_ratio), total_steps)
    accelerator.register_for_checkpointing(scheduler)
    checkpoint_every = cfg.checkpoint_steps or steps_per_epoch
    manager = CheckpointManager(cfg.checkpoint_dir, cfg.keep_checkpoints)

    state: dict[str, Any] = {"global_step": 0, "epoch": 0, "batches_in_epoch": 0, "history": []}
    resumed_from = None
    if not cfg.no_resume:
        loaded = manager.load_latest(accelerator)
        if loaded is not None:
            state, resumed_from = loaded, loaded["checkpoint_step"]
    report = Reporter(accelerator.is_main_process, total_steps, state["global_step"])
    if resumed_from is not None:
        report.line(f"resuming from checkpoint step {resumed_from} (epoch {state['epoch'] + 1}, "
                    f"{state['batches_in_epoch']} batches into it)")
    report.line(
        f"cloudbridge-finetune: task={cfg.task} model={cfg.model_source.name} processes={accelerator.num_processes} "
        f"train={len(train_rows)} eval={len(eval_rows)} labels={len(cfg.labels)} steps={total_steps} "
        f"accumulation={cfg.gradient_accumulation_steps} precision={accelerator.mixed_precision}"
    )
    # the series (metrics.jsonl) and TensorBoard scalars, written by rank 0 only
    series = configure_metrics(cfg.output_dir, cfg.tensorboard_dir, enabled=accelerator.is_main_process)

    global_step = state["global_step"]
    samples = 0
    train_time = 0.0
    running_loss = torch.zeros((), device=accelerator.device)
    running_count = 0
    table = None
    metrics: dict[str, Any] | None = None
    model.train()
    for epoch in range(state["epoch"], epochs):
        skip = state["batches_in_epoch"] if epoch == state["epoch"] else 0
        loader = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
        # accelerate's loaders re-seed their sampler with their own iteration count on iter();
        # pin it to the real epoch so a resumed job replays exactly the same order.
        loader.set_epoch(epoch)
        started = time.perf_counter()
        for index, batch in enumerate(loader, start=skip):
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            samples += batch["input_ids"].shape[0] * accelerator.num_processes
            running_loss += loss.detach()
            running_count += 1
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            if global_step % cfg.log_steps == 0 or global_step == total_steps:
                mean_loss = accelerator.reduce(running_loss / running_count, "mean").item()
                running_loss.zero_()
                running_count = 0
                lr = scheduler.get_last_lr()[0]
                report.line(f"step {global_step}/{total_steps} epoch {epoch + 1} loss {mean_loss:.4f} lr {lr:.2e}")
                series.log(global_step, epoch + 1, loss=mean_loss, lr=lr)
            report.advance(global_step, f"epoch {epoch + 1}")
            done = global_step >= total_steps
            if global_step % checkpoint_every == 0 and not done and (index + 1) < len(train_loader):
                train_time += time.perf_counter() - started
                manager.save(accelerator, global_step, {**state, "global_step": global_step, "epoch": epoch,
                                                        "batches_in_epoch": index + 1})
                started = time.perf_counter()
            if done:
                break
        train_time += time.perf_counter() - started
        metrics, table = evaluate(accelerator, model, eval_loader, cfg)
        record = {"epoch": epoch + 1, "step": global_step, **{k: v for k, v in metrics.items() if k != "entities"}}
        state["history"].append(record)
        series.log(global_step, epoch + 1, **{k: v for k, v in record.items() if isinstance(v, float)})
        if metrics.get("entities"):  # NER: precision, recall and F1 per tag
            series.table("ner_per_tag", metrics["entities"], step=global_step, epoch=epoch + 1)
        report.line("eval epoch {}: {}".format(
            epoch + 1, " ".join(f"{k}={v:.4f}" for k, v in record.items() if isinstance(v, float))))
        if table:
            report.line(table.rstrip())
        state.update(global_step=global_step, epoch=epoch + 1, batches_in_epoch=0)
        if global_step < total_steps:
            manager.save(accelerator, global_step, state)
        if global_step >= total_steps:
            break
    report.close()
    if metrics is None:  # resumed after the last epoch had already been trained
        metrics, table = evaluate(accelerator, model, eval_loader, cfg)

    result = {
        "task": cfg.task,
        "model": cfg.model_source.name,
        "labels": cfg.labels,
        "num_processes": accelerator.num_processes,
        "device": accelerator.device.type,  # "cpu" or "cuda": planner throughput refuses CPU rates
        "seed": cfg.seed,
        "mixed_precision": accelerator.mixed_precision,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "global_step": global_step,
        "resumed_from_step": resumed_from,
        "epochs": state["history"],
        "final": metrics,
        "train_samples": samples,
        "train_runtime_s": round(train_time, 3),
        "train_samples_per_second": round(samples / train_time, 3) if train_time else None,
    }
    _save_final(accelerator, model, tokenizer, cfg, result)
    series.close()
    accelerator.end_training()  # destroys the process group
    return result


def _save_final(accelerator: Any, model: Any, tokenizer: Any, cfg: FinetuneConfig, result: dict[str, Any]) -> None:
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(
        cfg.model_dir, is_main_process=accelerator.is_main_process, save_function=accelerator.save
    )
    if accelerator.is_main_process:
        tokenizer.save_pretrained(cfg.model_dir)
        write_json_atomic(os.path.join(cfg.model_dir, "cloudbridge.json"), {"task": cfg.task, "labels": cfg.labels})
        write_json_atomic(os.path.join(cfg.output_dir, "metrics.json"), result)
        if os.environ.get("CB_METRICS_FILE"):  # the local backend turns this into Job.metrics
            summary = {k: v for k, v in result["final"].items() if isinstance(v, (int, float))}
            summary["global_step"] = result["global_step"]
            summary["train_samples_per_second"] = result["train_samples_per_second"]
            summary["device"] = result["device"]
            write_json_atomic(os.environ["CB_METRICS_FILE"], summary)
        print(f"model saved to {cfg.model_dir}; metrics in {os.path.join(cfg.output_dir, 'metrics.json')}", flush=True)
    accelerator.wait_for_everyone()
