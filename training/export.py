"""Export a trained net to a self-contained ONNX file and prove ORT agrees with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from training.nets import WithSoftmax

OPSET = 17
PARITY_TOLERANCE = 1e-4


def export_onnx(
    net: torch.nn.Module, path: Path, input_shape: tuple[int, int, int], metadata: dict[str, str]
) -> WithSoftmax:
    """Write `path` (input `input`, output `probabilities`, dynamic batch); return the graph."""
    graph = WithSoftmax(net).eval()
    dummy = torch.zeros(2, *input_shape)
    torch.onnx.export(
        graph,
        (dummy,),
        str(path),
        input_names=["input"],
        output_names=["probabilities"],
        dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )
    model = onnx.load(str(path))
    model.doc_string = ""
    model.producer_name = "mlserve-training"
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))  # small model: weights stay inside the file
    return graph


def parity_check(graph: torch.nn.Module, path: Path, batch: np.ndarray) -> float:
    """Max |ORT - PyTorch| over a batch of probabilities; raises if above the tolerance."""
    with torch.no_grad():
        expected = graph(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"input": batch})[0]
    diff = float(np.abs(got - expected).max())
    if diff > PARITY_TOLERANCE:
        raise AssertionError(
            f"ONNX Runtime differs from PyTorch by {diff:.2e} > {PARITY_TOLERANCE}"
        )
    return diff


def metadata_for(labels: list[str], **extra: object) -> dict[str, str]:
    """ONNX metadata: labels plus the training provenance, all as strings."""
    return {"labels": json.dumps(labels), **{k: str(v) for k, v in extra.items()}}
