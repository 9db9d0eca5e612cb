"""`python3 -m stackctl {build,start,stop,health}`: what the *_all.sh scripts run.

Docker mode when an engine answers (or MLSERVE_MODE=docker), else local processes.
The mode a stack was started in is remembered in the run directory, so stop and
health act on the stack that is really there.
"""

from __future__ import annotations

import argparse
import sys

from stackctl import docker_mode, local_mode
from stackctl.settings import APP_TYPES, StackSettings

BACKENDS = {"docker": docker_mode, "local": local_mode}
"""The two modes, one interface: `build(settings)`, `start(settings, app_type, model_name)`,
`stop(settings)` and `health(settings)`, each returning the exit code."""
USAGE = "usage: ./start_all.sh APP_TYPE MODEL_NAME   (APP_TYPE: {apps}; MODEL_NAME: {models})"


def resolve_mode(settings: StackSettings) -> str:
    """The mode to start in: as asked, or Docker when `auto` and an engine is reachable."""
    if settings.mode in ("docker", "local"):
        return settings.mode
    return "docker" if docker_mode.engine_available() else "local"


def recorded_mode(settings: StackSettings) -> str:
    """The mode the running stack was started in (local when nothing is recorded)."""
    marker = settings.run_dir / "mode"
    if settings.mode in ("docker", "local"):
        return settings.mode
    recorded = marker.read_text().strip() if marker.is_file() else "local"
    return recorded if recorded in BACKENDS else "local"


def validate(settings: StackSettings, app_type: str, model_name: str) -> str | None:
    """A message for a wrong APP_TYPE or MODEL_NAME, else None."""
    models = settings.available_models()
    usage = USAGE.format(apps="|".join(APP_TYPES), models="|".join(models) or "(none found)")
    if app_type not in APP_TYPES:
        return f"error: unknown APP_TYPE {app_type!r}\n{usage}"
    if model_name not in models:
        return f"error: unknown MODEL_NAME {model_name!r}\n{usage}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackctl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build images (Docker) or prepare the virtualenv (local)")
    start = sub.add_parser("start", help="start the stack and wait until it is healthy")
    start.add_argument("app_type", nargs="?", default="")
    start.add_argument("model_name", nargs="?", default="")
    sub.add_parser("stop", help="stop everything start started; keep Redis data")
    sub.add_parser("health", help="one line per service; exit 1 unless all are healthy")
    args = parser.parse_args(argv)
    settings = StackSettings()

    if args.command == "start":
        problem = validate(settings, args.app_type, args.model_name)
        if problem:
            print(problem, file=sys.stderr)
            return 2
        mode = resolve_mode(settings)
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        (settings.run_dir / "mode").write_text(mode + "\n")
        return BACKENDS[mode].start(settings, args.app_type, args.model_name)
    if args.command == "build":
        return BACKENDS[resolve_mode(settings)].build(settings)
    backend = BACKENDS[recorded_mode(settings)]
    if args.command == "stop":
        return backend.stop(settings)
    return backend.health(settings)


if __name__ == "__main__":
    sys.exit(main())
