"""The `mlserve` command: predict, health, models (argparse; exit 1 when anything failed)."""

from __future__ import annotations

import argparse
import os

from rich.console import Console

from mlserve_cli import __version__, output
from mlserve_cli.client import MLServeClient, RequestError
from mlserve_cli.files import expand
from mlserve_cli.predict import predict_files

DEFAULT_URL = "http://localhost:5000"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PIPED_WIDTH = 120


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="mlserve", description="Classify images with a running MLServe stack."
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("MLSERVE_URL", DEFAULT_URL),
        help=f"the gateway's address (env MLSERVE_URL; default {DEFAULT_URL})",
    )
    common.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    common.add_argument(
        "--api-key",
        default=os.environ.get("MLSERVE_API_KEY"),
        help="the stack's API key, when it has one (env MLSERVE_API_KEY)",
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser(
        "predict", parents=[common], help="classify image files or every file in folders"
    )
    predict.add_argument("paths", nargs="+", metavar="FILE|DIR")
    predict.add_argument(
        "--model", help="the model to ask (one of `mlserve models`; default: the stack's own)"
    )
    predict.add_argument(
        "--always-upload",
        "--no-ask",
        dest="ask",
        action="store_false",
        help="upload every file; by default each file is first asked for by its SHA-256, "
        "and only the files the stack has no answer for are uploaded",
    )
    predict.add_argument(
        "--trace",
        action="store_true",
        help="send each file's calls in a trace of its own (W3C traceparent) and print its "
        "id, to find it in the tracing backend the stack exports to",
    )
    commands.add_parser("health", parents=[common], help="is the stack up, and which model?")
    commands.add_parser(
        "models", parents=[common], help="every model: its versions and whether it is ready"
    )
    return root


def run(args: argparse.Namespace, stdout: Console, stderr: Console) -> int:
    client = MLServeClient(
        args.url, args.timeout, args.api_key, trace=getattr(args, "trace", False)
    )
    try:
        if args.command == "predict":
            return _predict(client, args, stdout, stderr)
        if args.command == "health":
            return _health(client, args, stdout)
        return _models(client, args, stdout)
    finally:
        client.close()


def _predict(
    client: MLServeClient, args: argparse.Namespace, stdout: Console, stderr: Console
) -> int:
    files = expand(args.paths)
    if not files:
        stderr.print("error: no files to send: the folders are empty", markup=False, soft_wrap=True)
        return EXIT_FAILED
    results = predict_files(client, files, stderr, args.model, ask=args.ask)
    if args.json:
        output.print_json(stdout, [result.as_json() for result in results])
        stderr.print(output.summary(results), markup=False, highlight=False, soft_wrap=True)
    else:
        stdout.print(output.predictions_table(results))
        stdout.print(output.summary(results))
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED


def _health(client: MLServeClient, args: argparse.Namespace, stdout: Console) -> int:
    status_code, body = client.health()
    if args.json:
        output.print_json(stdout, body or {"status": f"HTTP {status_code}"})
    else:
        stdout.print(output.health_table(status_code, body))
    return EXIT_OK if body.get("status") in ("healthy", "degraded") else EXIT_FAILED


def _models(client: MLServeClient, args: argparse.Namespace, stdout: Console) -> int:
    models = client.models()
    if args.json:
        output.print_json(stdout, models)
    else:
        stdout.print(output.models_table(models))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stdout, stderr = Console(), Console(stderr=True)
    if not stdout.is_terminal and "COLUMNS" not in os.environ:
        stdout.width = PIPED_WIDTH  # rich would wrap tables at 80 columns in a pipe or a log
    try:
        return run(args, stdout, stderr)
    except RequestError as problem:
        stderr.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        stderr.print("interrupted", markup=False)
        return 130
