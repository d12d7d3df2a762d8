"""The prepared GPU check (``scripts/gpu_check.sh``): every GPU path, each step bounded, one table.

``python scripts/gpu_check.py`` runs each step of :data:`STEPS` in its own subprocess
(``--step NAME``, with a time limit), so a CUDA failure in one (FSDP, compile) cannot stop the
others. A step prints one ``GPUCHECK {json}`` line; the parent collects those lines into a table
and ``$OUT/gpu_check.json``. Written for a lent H200 (see docs/results/gpu.md); on a machine
without CUDA every step reports ``skipped``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

MARK = "GPUCHECK "
# A small HD-digits set: one epoch of the default recipe in seconds on an H200.
DATA = [
    "data.source.num_train=1024",
    "data.source.num_val=128",
    "data.source.num_test=128",
    "data.source.workers=8",
    "data.num_workers=8",
    "trainer.max_epochs=1",
    "extras.print_config=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.rich_model_summary=null",
    "callbacks.val_images=null",
    "callbacks.training_report=null",
    "logger=csv",
    "extras.cost_report=false",
]
RECIPE = ["experiment=effnet_hd", *DATA]
BASE = [*RECIPE, "trainer=gpu"]
SHORT = ["trainer.devices=1", "+trainer.limit_train_batches=20"]
# name -> (overrides, time limit in seconds); the whole check stops starting steps after BUDGET_S.
STEPS: dict[str, tuple[list[str], int]] = {
    "precision_32": ([*BASE, "trainer.precision=32"], 75),
    "precision_16-mixed": ([*BASE, "trainer.precision=16-mixed"], 60),
    "precision_bf16-mixed": ([*BASE, "trainer.precision=bf16-mixed"], 60),
    "ddp_1_device": ([*RECIPE, "trainer=ddp", *SHORT], 60),
    "fsdp_1_device": ([*RECIPE, "trainer=fsdp", *SHORT], 60),
    "compile": ([*BASE, "model.compile=true", "trainer.precision=bf16-mixed"], 120),
    "loader_workers": (BASE, 60),
    "stem_vs_none": ([*BASE, "trainer.precision=bf16-mixed"], 90),
    "predict_cuda": ([], 45),
}
BUDGET_S = 420
_EPOCH_SECONDS: list[float] = []


class EpochTimer(pl.Callback):
    """Wall time of each training epoch (validation and precise BN excluded)."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _EPOCH_SECONDS.append(time.perf_counter() - self.start)


def report(step: str, **values: Any) -> None:
    print(MARK + json.dumps({"step": step, **values}), flush=True)


def parse_output(text: str) -> list[dict[str, Any]]:
    """The ``GPUCHECK`` records in a step's (or the whole script's) output, in order."""
    return [json.loads(line[len(MARK) :]) for line in text.splitlines() if line.startswith(MARK)]


def format_table(records: list[dict[str, Any]]) -> str:
    lines = [f"{'step':22s} {'status':8s} result"]
    for r in records:
        values = {k: v for k, v in r.items() if k not in ("step", "status")}
        cells = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
        )
        lines.append(f"{r['step']:22s} {r.get('status', '?'):8s} {cells}")
    return "\n".join(lines)


# -- the steps (run inside the subprocess) ---------------------------------------------------
def _fit(overrides: list[str], root: Path) -> dict[str, Any]:
    import torch

    from hdvision.cli.configs import compose
    from hdvision.cli.train import train

    os.environ.setdefault("HDVISION_ROOT", str(root))
    # This file runs as a script in each step's process: its classes are __main__'s.
    timer = ["+callbacks.epoch_timer._target_=__main__.EpochTimer"]
    cfg = compose([*overrides, *timer, f"paths.root_dir={root}", "test=false"])
    torch.cuda.reset_peak_memory_stats()
    metrics, objects = train(cfg)
    trainer = objects["trainer"]
    images = trainer.global_step * cfg.data.batch_size
    loss = metrics.get("train/loss_epoch", metrics.get("train/loss", math.nan))
    return {
        "status": "ok" if math.isfinite(loss) else "failed",
        "train_img_s": images / sum(_EPOCH_SECONDS) if _EPOCH_SECONDS else math.nan,
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30,
        "final_loss": loss,
        "strategy": type(trainer.strategy).__name__,
        "ckpt": trainer.checkpoint_callback.best_model_path,
    }


def _loader_workers(overrides: list[str], root: Path) -> dict[str, Any]:
    from hdvision.cli.configs import set_up_datamodule
    from hdvision.tools.data_pipeline import time_loader

    os.environ.setdefault("HDVISION_ROOT", str(root))
    result: dict[str, Any] = {"status": "ok"}
    for workers in (2, 8, 14):
        dm = set_up_datamodule(
            [*overrides, f"paths.root_dir={root}", f"data.num_workers={workers}"]
        )
        result[f"img_s_{workers}_workers"] = time_loader(dm.train_dataloader(), 30)["img_s"]
    return result


def _step_ms(model: Any, size: tuple[int, int], batch: int, steps: int = 5) -> float:
    import torch

    x = torch.randint(0, 255, (batch, 3, *size), dtype=torch.uint8, device="cuda")
    y = torch.zeros(batch, dtype=torch.long, device="cuda")
    optimizer = torch.optim.AdamW(model.parameters())
    for i in range(steps + 2):
        if i == 2:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(model.prepare_input(x)), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000 / (steps * batch)


def _stem_vs_none(overrides: list[str], root: Path) -> dict[str, Any]:
    import torch
    from hydra.utils import instantiate

    from hdvision.cli.configs import compose

    os.environ.setdefault("HDVISION_ROOT", str(root))
    result: dict[str, Any] = {"status": "ok"}
    for name, extra in (("stem", []), ("none", ["model/stem=none", "data.aug_scale=1.0"])):
        cfg = compose([*overrides, *extra, f"paths.root_dir={root}"])
        datamodule = instantiate(cfg.data)
        model = instantiate(cfg.model, num_classes=10).cuda().train()
        best = None
        for batch in (1, 2, 4, 8, 16, 32, 64, 128):
            try:
                torch.cuda.reset_peak_memory_stats()
                ms = _step_ms(model, datamodule.sample_size, batch)
                best = (batch, ms, torch.cuda.max_memory_allocated() / 2**30)
            except torch.OutOfMemoryError:
                break
            finally:
                torch.cuda.empty_cache()
        if best is not None:
            result[f"{name}_batch"], result[f"{name}_ms_per_img"], result[f"{name}_peak_gb"] = best
    if "stem_ms_per_img" in result and "none_ms_per_img" in result:
        result["none_over_stem"] = result["none_ms_per_img"] / result["stem_ms_per_img"]
    return result


def _predict_cuda(ckpt: str, root: Path) -> dict[str, Any]:
    from hdvision.inference.inputs import label_indices, list_inputs
    from hdvision.inference.predict import run_predictions
    from hdvision.inference.predictor import load_predictor

    data = next(Path(root, "data").glob("hd_digits_*"))
    rows = list_inputs([str(data / "test.csv")])
    predictor = load_predictor(ckpt, "cuda")
    start = time.perf_counter()
    logits, errors = run_predictions(predictor, rows, 64, 8, "raise", progress=False)
    seconds = time.perf_counter() - start
    labels = label_indices(rows, predictor.meta["class_names"])
    correct = sum(label == int(z.argmax()) for label, z in zip(labels, logits, strict=True))
    return {"status": "ok", "img_s": len(rows) / seconds, "accuracy": correct / len(rows)}


def run_step(name: str, root: Path, ckpt: str | None) -> None:
    import torch

    if not torch.cuda.is_available():
        report(name, status="skipped", reason="no CUDA device")
        return
    try:
        if name == "predict_cuda":
            values = _predict_cuda(ckpt or "", root)
        elif name == "loader_workers":
            values = _loader_workers(STEPS[name][0], root)
        elif name == "stem_vs_none":
            values = _stem_vs_none(STEPS[name][0], root)
        else:
            values = _fit(STEPS[name][0], root)
    except Exception as err:  # a failed step is a result, not the end of the check
        values = {"status": "failed", "error": f"{type(err).__name__}: {str(err)[:300]}"}
    report(name, **values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step", help="run one step (used by the parent process)")
    parser.add_argument("--root", default="/tmp/hdvision_gpu_check")
    parser.add_argument("--ckpt", help="checkpoint for the predict step")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_check.json")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.step:
        run_step(args.step, root, args.ckpt)
        return 0
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    for name, (_, limit) in STEPS.items():
        if time.perf_counter() - start > BUDGET_S:
            records.append({"step": name, "status": "skipped", "reason": "time budget"})
            continue
        ckpt = next((r["ckpt"] for r in records if r.get("ckpt")), None)
        cmd = [sys.executable, __file__, "--step", name, "--root", str(root)]
        cmd += ["--ckpt", ckpt] if ckpt else []
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
            found = parse_output(done.stdout) or [
                {"step": name, "status": "failed", "error": done.stderr[-300:]}
            ]
        except subprocess.TimeoutExpired:
            found = [{"step": name, "status": "timeout", "limit_s": limit}]
        records.extend(found)
        print(format_table(found).splitlines()[-1], flush=True)
    print(format_table(records))
    if args.out:
        Path(args.out, "gpu_check.json").write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
