"""LitServe peer: models/mnist behind LitServe, run from its own venv (.venv-litserve).

LitServe parses the multipart form in its API server process(es) and hands it to its
inference worker process(es), where decode_request -> (batch) -> predict -> encode_response
run. The knobs the benchmark tries are flags here; `bench/peers/targets.py` names the
combinations and says which one is the best on 2 cores.

    python -m bench.peers.servers.litserve_app --port 8000 --workers 2 --batch 1
"""

from __future__ import annotations

import argparse
import warnings

import litserve as ls
import numpy as np

from bench.peers.servers.model import OnnxModel


class MnistAPI(ls.LitAPI):
    """The four-step contract; batching (max_batch_size > 1) stacks decoded images."""

    def __init__(self, workers: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.workers = workers

    def setup(self, device: str) -> None:
        self.model = OnnxModel("mnist", workers=self.workers)

    def decode_request(self, request) -> np.ndarray:
        return self.model.prepare(request["file"].file.read())[0]

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.run(x if x.ndim == 4 else x[None])

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, output: np.ndarray) -> dict:
        return self.model.answer(output if output.ndim == 1 else output[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="workers_per_device (CPU)")
    parser.add_argument("--api-servers", type=int, default=None, help="default: = workers")
    parser.add_argument("--batch", type=int, default=1, help="max_batch_size")
    parser.add_argument("--batch-timeout", type=float, default=0.002, help="seconds")
    parser.add_argument("--fast-queue", action="store_true", help="ZeroMQ instead of mp queues")
    args = parser.parse_args()
    # One class serves both ways; batch/unbatch are simply unused without batching.
    warnings.filterwarnings("ignore", message="The LitServer has both batch and unbatch")
    batching = {"max_batch_size": args.batch, "batch_timeout": args.batch_timeout}
    api = MnistAPI(args.workers, **(batching if args.batch > 1 else {}))
    server = ls.LitServer(
        api,
        accelerator="cpu",
        devices=1,
        workers_per_device=args.workers,
        fast_queue=args.fast_queue,
    )
    server.run(
        host="127.0.0.1",
        port=args.port,
        num_api_servers=args.api_servers,
        log_level="warning",
        generate_client_file=False,
    )


if __name__ == "__main__":
    main()
