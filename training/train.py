"""Train a shipped model from scratch on the CPU, export it to ONNX, verify, evaluate, document.

    python -m training.train mnist
    python -m training.train leukemia [--data-dir DIR_WITH_all_AND_hem]

Writes `model.onnx`, `config.json`, `samples/` and the figures block of `README.md` into
`--out` (default `models/<name>/`). Fixed seed, deterministic kernels, pinned thread count.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import torch.nn.functional as F

from model_api.model_config import ModelConfig, file_sha256
from model_api.preprocess import prepare_image
from training import card, evaluate, leukemia_data, mnist_mix, samples
from training.augment import augment_cells, augment_digits
from training.configs import SYNTHETIC_DESCRIPTION, leukemia_config, mnist_config, write_config
from training.export import export_onnx, metadata_for, parity_check
from training.nets import count_parameters, leukemia_net, mnist_net
from training.repro import make_deterministic

MODELS = evaluate.MODELS
DEFAULTS = {  # epochs, batch size, peak learning rate
    "mnist": (20, 64, 4e-3),
    "leukemia": (14, 64, 4e-3),
}


def fit(
    net: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    augment: Callable,
    epochs: int,
    batch: int,
    lr: float,
    gen: torch.Generator,
    pick_view: torch.Tensor | None = None,
) -> list[float]:
    """AdamW + one-cycle schedule with label smoothing; x is uint8 (V, N, C, H, W) views."""
    n = x.shape[1]
    steps = epochs * ((n + batch - 1) // batch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    losses = []
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(n, generator=gen)
        total, started = 0.0, time.perf_counter()
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            view = torch.randint(0, x.shape[0], (len(idx),), generator=gen)
            xb = augment(x[view, idx].float() / 255.0, gen)
            loss = F.cross_entropy(net((xb - mean) / std), y[idx], label_smoothing=0.05)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        losses.append(total / n)
        print(
            f"epoch {epoch + 1:2d}/{epochs}  loss {losses[-1]:.4f}  "
            f"({time.perf_counter() - started:.1f}s)",
            flush=True,
        )
    net.eval()
    return losses


def leukemia_training_set(data_dir: Path | None, max_train: int | None, config: ModelConfig):
    """Synthetic (or real folder) training crops, resized exactly as served, as uint8 NCHW."""
    if data_dir is None:
        images, labels = leukemia_data.synthetic(
            min(max_train or 10**9, leukemia_data.N_TRAIN), test=False
        )
    else:
        pairs = leukemia_data.folder_split(data_dir, config.labels, test=False)
        pairs = pairs[:max_train] if max_train else pairs
        images = [leukemia_data.open_image(p) for p, _ in pairs]
        labels = [label for _, label in pairs]
    arrays = np.stack([np.asarray(prepare_image(im, config)) for im in images])
    return torch.from_numpy(arrays.transpose(0, 3, 1, 2)[None].copy()), torch.tensor(labels)


def train(
    name: str,
    out: Path,
    seed: int,
    threads: int,
    epochs: int | None,
    max_train: int | None,
    max_eval: int | None,
    data_dir: Path | None,
) -> dict:
    """Run the whole pipeline for one model and return the figures written to its card."""
    gen = make_deterministic(seed, threads)
    out.mkdir(parents=True, exist_ok=True)
    default_epochs, batch, lr = DEFAULTS[name]
    epochs = epochs or default_epochs
    started = time.perf_counter()
    if name == "mnist":
        config = mnist_config(*mnist_mix.pixel_statistics())
        x, y, sources = mnist_mix.training_set(max_train, seed, config)
        net, augment = mnist_net(), augment_digits
    else:
        labels = leukemia_data.folder_labels(data_dir) if data_dir else list(leukemia_data.LABELS)
        x, y = leukemia_training_set(
            data_dir, max_train, leukemia_config(labels, [0.5] * 3, [0.25] * 3)
        )
        sources = {}
        flat = x[0].float().div(255.0).transpose(0, 1).reshape(3, -1)
        description = (
            f"Research use only: cell-image classifier retrained on {data_dir.name}"
            f" ({', '.join(labels)}). Not a diagnostic tool."
            if data_dir
            else SYNTHETIC_DESCRIPTION
        )
        config = leukemia_config(
            labels, flat.mean(1).tolist(), flat.std(1).tolist(), description=description
        )
        net, augment = leukemia_net(len(labels)), augment_cells
    step = config.preprocess[-1]
    mean_t = torch.tensor(step.mean).view(1, -1, 1, 1)
    std_t = torch.tensor(step.std).view(1, -1, 1, 1)
    data_seconds = time.perf_counter() - started
    print(
        f"{name}: {x.shape[1]} training images, {count_parameters(net)} parameters, "
        f"data ready in {data_seconds:.1f}s",
        flush=True,
    )

    started = time.perf_counter()
    losses = fit(net, x, y, mean_t, std_t, augment, epochs, batch, lr, gen)
    train_seconds = time.perf_counter() - started

    onnx_path = out / config.file
    shape = (config.channels, config.height, config.width)
    graph = export_onnx(
        net,
        onnx_path,
        shape,
        metadata_for(config.labels, model=name, seed=seed, epochs=epochs, torch=torch.__version__),
    )
    batch_check = ((x[0, :64].float() / 255.0 - mean_t) / std_t).numpy()
    parity = parity_check(graph, onnx_path, batch_check)
    write_config(config, out)
    if data_dir is None:  # samples come from the generator, so only ship them with its model
        samples.write_samples(name, out)

    if name == "mnist":
        figures = evaluate.evaluate_mnist(out, max_eval, confusion_png=out / "confusion.png")
    else:
        figures = evaluate.evaluate_leukemia(
            out, data_dir, min(max_eval or leukemia_data.N_TEST, leukemia_data.N_TEST)
        )
    figures.update(
        {
            "train_n": int(x.shape[1]),
            "epochs": epochs,
            "seed": seed,
            "threads": threads,
            "parameters": count_parameters(net),
            "final_train_loss": round(losses[-1], 4),
            "train_seconds": round(train_seconds + data_seconds, 1),
            "parity_max_abs_diff": float(f"{parity:.2e}"),
            "onnx_bytes": onnx_path.stat().st_size,
            "opset": 17,
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        }
    )
    if sources:
        figures["train_sources"] = sources
    sha = file_sha256(onnx_path)
    readme = out / "README.md"
    block = card.render_block(card_rows(name, figures), figures, sha, per_source=name == "mnist")
    card.write_block(readme, block, template=MODELS / name / "README.md")
    print(f"wrote {onnx_path} ({figures['onnx_bytes']} bytes, sha256 {sha})")
    for key, value in figures.items():
        print(f"  {key}: {value}")
    return figures


def card_rows(name: str, f: dict) -> list[tuple[str, str]]:
    """Human-readable rows of the card's figures table."""
    if name == "mnist":
        counts = ", ".join(f"{n:,} {source}" for source, n in f["train_sources"].items())
        rows = [
            (
                "Training digits",
                f"{counts}; MNIST repeated {mnist_mix.MNIST_REPEAT}x, {f['train_n']:,} per epoch",
            )
        ]
    else:
        rows = [
            ("Held-out images", f"{f['heldout_n']}"),
            ("Held-out accuracy", f"{f['heldout_accuracy']:.2f} %"),
        ]
        rows += [
            (f"Recall of `{k[7:]}`", f"{v:.2f} %") for k, v in f.items() if k.startswith("recall_")
        ]
        rows += [("Held-out data", f"{f['data']}"), ("Training images", f"{f['train_n']}")]
    rows += [
        ("Epochs", f"{f['epochs']}"),
        ("Parameters", f"{f['parameters']:,}"),
        ("Final training loss (label-smoothed)", f"{f['final_train_loss']}"),
        ("Training time (CPU, incl. data)", f"{f['train_seconds']} s on {f['threads']} threads"),
        ("Seed", f"{f['seed']}"),
        ("ONNX size", f"{f['onnx_bytes']:,} bytes (opset {f['opset']})"),
        (
            "Max abs diff ONNX Runtime vs PyTorch (64-image batch)",
            f"{f['parity_max_abs_diff']:.1e}",
        ),
        ("Versions", f"torch {f['torch']}, onnxruntime {f['onnxruntime']}"),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Train, export and document a shipped model.")
    parser.add_argument("model", choices=sorted(DEFAULTS))
    parser.add_argument(
        "--out", type=Path, default=None, help="model folder (default models/<name>)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (pinned)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-train", type=int, default=None, help="cap training images (tests)")
    parser.add_argument("--max-eval", type=int, default=None, help="cap held-out images (tests)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="leukemia: real dataset, one sub-folder per class (C-NMC: all/, hem/)",
    )
    args = parser.parse_args(argv)
    if args.data_dir is not None and args.model != "leukemia":
        parser.error("--data-dir is only for leukemia")
    out = args.out or MODELS / args.model
    train(
        args.model,
        out,
        args.seed,
        args.threads,
        args.epochs,
        args.max_train,
        args.max_eval,
        args.data_dir,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "train"]
