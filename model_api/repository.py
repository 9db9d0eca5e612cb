"""The model repository: every model (and each of its versions) one model_api serves, loaded
and unloaded while the others keep serving.

At start each worker loads `MLSERVE_MODELS` (default: `MODEL_NAME` alone). `load` and
`unload` change the set of wanted models for the whole service: it is kept in a small file
in the folder the worker processes share (see `mlserve_common.server`), and every worker
follows that file within `WATCH_SECONDS`. A worker that has not loaded a wanted model yet
answers 503 `model_not_ready` with Retry-After for it; the models it serves meanwhile are
untouched. Replicas (other containers) do not share the file: load there with their own
`MLSERVE_MODELS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from mlserve_common.server import SHARED_DIR_ENV
from model_api.cache import PredictionCache
from model_api.config import Settings
from model_api.errors import (
    InvalidParameterError,
    ModelNotFoundError,
    ModelNotReadyError,
    ProtectedModelError,
)
from model_api.model_config import available_models, load_model_config, model_versions
from model_api.schemas import Readiness
from model_api.service import ModelService

log = logging.getLogger("model_api")

WATCH_SECONDS = 0.5
WANTED_FILE = "models.json"


class ModelRepository:
    def __init__(self, settings: Settings, cache: PredictionCache) -> None:
        self.settings = settings
        self.cache = cache
        self.default_name = settings.model_name
        self._loaded: dict[str, dict[str, ModelService]] = {}
        self._states: dict[str, tuple[str, str]] = {}  # name -> (state, reason)
        self._locks: dict[str, asyncio.Lock] = {}
        shared = os.environ.get(SHARED_DIR_ENV)
        self._file = Path(shared) / WANTED_FILE if shared else None
        self._wanted: list[str] = settings.models_to_load()
        self._seen_mtime = 0
        self._watcher: asyncio.Task | None = None

    # life
    async def start(self) -> None:
        """Load the wanted models (the shared list, if a load or unload changed it)."""
        self._wanted = self._read_wanted() or self._wanted
        for name in self._wanted:
            await self._load_here(name)
        if self._file is not None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for name in list(self._loaded):
            await self._unload_here(name)

    # lookups
    def get(self, name: str, version: str | None = None) -> ModelService:
        """A served model version (its latest by default); 404 if not served, 503 while
        it loads."""
        versions = self._loaded.get(name)
        if versions is None or name not in self._wanted:
            if name in self._wanted:
                raise ModelNotReadyError(f"model {name!r} is loading; retry shortly")
            raise ModelNotFoundError(
                f"model {name!r} is not served here; served: {', '.join(self.served()) or 'none'}"
            )
        if version is None:
            return versions[max(versions, key=int)]
        if version not in versions:
            raise ModelNotFoundError(
                f"model {name!r} has no version {version!r}; versions: {', '.join(versions)}"
            )
        return versions[version]

    def default(self) -> ModelService:
        """The model `/predict` serves: `MODEL_NAME`."""
        return self.get(self.default_name)

    def readiness(self) -> Readiness:
        """Ready: the model `/predict` serves, its version and provider, the cache's state."""
        runner = self.default().runner
        return Readiness(
            status="ready",
            model=runner.config.name,
            version=runner.version,
            provider=runner.provider,
            cache=self.cache.state.value,
        )

    def served(self) -> list[str]:
        return sorted(name for name in self._loaded if name in self._wanted)

    def services(self) -> list[ModelService]:
        """Every served model's latest version."""
        return [self.get(name) for name in self.served()]

    def versions(self, name: str) -> list[str]:
        return sorted(self._loaded.get(name, {}), key=int)

    def ready(self) -> bool:
        """Every wanted model is loaded here."""
        return all(name in self._loaded for name in self._wanted)

    def index(self) -> list[dict[str, str]]:
        """Every model on disk: name, versions served, state, and why when not ready."""
        entries = []
        for name in available_models(self.settings.models_dir):
            state, reason = self._states.get(name, ("UNAVAILABLE", "not loaded"))
            for version in self.versions(name) or [""]:
                entry = {"name": name, "state": state, "reason": reason}
                if version:
                    entry["version"] = version
                entries.append(entry)
        return entries

    # load / unload, for the whole service
    async def load(self, name: str) -> None:
        if name not in available_models(self.settings.models_dir):
            raise ModelNotFoundError(
                f"no model {name!r} in the repository; available: "
                f"{', '.join(available_models(self.settings.models_dir))}"
            )
        self._change_wanted(add=name)
        await self._load_here(name)

    async def unload(self, name: str) -> None:
        if name == self.default_name:
            raise ProtectedModelError(
                f"model {name!r} is this stack's MODEL_NAME (what /predict serves); "
                "it cannot be unloaded"
            )
        if name not in self._wanted and name not in self._loaded:
            raise ModelNotFoundError(f"model {name!r} is not loaded")
        self._change_wanted(remove=name)
        await self._unload_here(name)

    async def _load_here(self, name: str) -> None:
        async with self._lock(name):
            self._states[name] = ("LOADING", "")
            try:
                config = load_model_config(self.settings.models_dir, name)
                services = {}
                for version, path in model_versions(self.settings.models_dir, config).items():
                    services[version] = await ModelService.open(
                        self.settings, self.cache, config, version, path
                    )
            except (ModelNotFoundError, ValueError, OSError, RuntimeError) as exc:
                self._states[name] = ("UNAVAILABLE", f"failed to load: {exc}")
                log.exception("model %s failed to load", name)
                raise InvalidParameterError(f"model {name!r} failed to load: {exc}") from exc
            old, self._loaded[name] = self._loaded.get(name), services
            self._states[name] = ("READY", "")
            log.info("model %s loaded (versions %s)", name, ", ".join(services))
            for service in (old or {}).values():  # a reload: the old sessions drain
                await service.close()

    async def _unload_here(self, name: str) -> None:
        async with self._lock(name):
            services = self._loaded.pop(name, {})
            self._states[name] = ("UNAVAILABLE", "unloaded")
            for service in services.values():
                await service.close()  # in-flight requests finish first
            if services:
                log.info("model %s unloaded", name)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # the shared list
    def _change_wanted(self, add: str | None = None, remove: str | None = None) -> None:
        """Add or remove a model in the list every worker follows (read, changed and
        written under a file lock, so two workers changing it at once lose nothing)."""
        with self._shared_lock():
            wanted = self._read_wanted() or list(self._wanted)
            if add and add not in wanted:
                wanted.append(add)
            if remove:
                wanted = [n for n in wanted if n != remove]
            self._wanted = wanted
            if self._file is not None:
                temporary = self._file.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(json.dumps({"models": wanted}))
                os.replace(temporary, self._file)
                self._seen_mtime = self._file.stat().st_mtime_ns

    @contextlib.contextmanager
    def _shared_lock(self) -> Iterator[None]:
        if self._file is None:  # one process: nothing to share
            yield
            return
        with self._file.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_wanted(self) -> list[str] | None:
        if self._file is None or not self._file.is_file():
            return None
        self._seen_mtime = self._file.stat().st_mtime_ns
        return list(json.loads(self._file.read_text())["models"])

    async def _watch(self) -> None:
        """Follow loads and unloads that other workers received."""
        assert self._file is not None
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                if self._file.stat().st_mtime_ns == self._seen_mtime:
                    continue
                self._wanted = self._read_wanted() or self._wanted
            except (OSError, ValueError, KeyError):
                continue
            for name in [n for n in self._wanted if n not in self._loaded]:
                with contextlib.suppress(InvalidParameterError):
                    await self._load_here(name)
            for name in [n for n in self._loaded if n not in self._wanted]:
                await self._unload_here(name)
