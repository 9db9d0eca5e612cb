"""The model repository: every model (and each of its versions) one model_api serves, loaded
and unloaded while the others keep serving.

At start each worker loads `MLSERVE_MODELS` (default: `MODEL_NAME` alone). `load` and
`unload` change the set of wanted models for the whole service: it is kept in a small file
in the folder the worker processes share (see `mlserve_common.runtime.server`), and every worker
follows that file within `WATCH_SECONDS`. A worker that has not loaded a wanted model yet
answers 503 `model_not_ready` with Retry-After for it; the models it serves meanwhile are
untouched. Replicas (other containers) do not share the file: load there with their own
`MLSERVE_MODELS`.

A load of a model already served is a reload: it reaches every worker of this service and
of every replica on the same Redis (`model_api.reload_bus`), each of which reloads the model
when its folder no longer gives the digest it serves, and the call answers once all have.
Without Redis, the workers of this service still follow it, through the shared file.
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

from redis.exceptions import RedisError

from mlserve_common.runtime.server import SHARED_DIR_ENV
from model_api import reload_bus
from model_api.cache import PredictionCache
from model_api.config import Settings
from model_api.errors import (
    InvalidParameterError,
    ModelNotFoundError,
    ModelNotReadyError,
    ProtectedModelError,
    ReloadNotFollowedError,
)
from model_api.model_config import (
    ServedVersion,
    available_models,
    load_model_config,
    served_versions,
)
from model_api.model_identity import folder_digests
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
        self._reloads: dict[str, int] = {}  # name -> reloads announced in the shared file
        self._seen_mtime = 0
        self._watcher: asyncio.Task | None = None
        self.bus = reload_bus.ReloadBus(
            settings.redis_url,
            self._refresh,
            self.digests,
            settings.redis_timeout_seconds,
        )

    # life
    async def start(self) -> None:
        """Load the wanted models (the shared list, if a load or unload changed it), then
        follow reloads."""
        self._wanted, self._reloads = self._read_wanted() or (self._wanted, {})
        for name in self._wanted:
            await self._load_here(name)
        if self._file is not None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        await self.bus.start()

    async def close(self) -> None:
        await self.bus.close()
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
            digest=runner.digest,
            provider=runner.provider,
            cache=self.cache.state.value,
        )

    def digests(self) -> dict[str, str]:
        """The digest each served model's latest version answers with, by name."""
        return {service.runner.config.name: service.runner.digest for service in self.services()}

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
        """Load `name`, or reload it from its folder when it is served already; answers once
        every worker (and, through Redis, every replica) serves what the folder holds now."""
        if name not in available_models(self.settings.models_dir):
            raise ModelNotFoundError(
                f"no model {name!r} in the repository; available: "
                f"{', '.join(available_models(self.settings.models_dir))}"
            )
        await self._load_here(name)
        self._change_wanted(add=name, reload=name)
        if self.bus.enabled and name in self.served():
            await self._announce(name)

    async def _announce(self, name: str) -> None:
        digest = self.get(name).runner.digest
        wait = self.settings.reload_timeout_seconds
        try:
            followed = await self.bus.announce(name, digest, wait)
        except reload_bus.ReloadNotFollowedError as exc:
            raise ReloadNotFollowedError(
                f"model {name!r} was reloaded here, but {exc} within {wait:g} s; "
                "call load again to make sure"
            ) from None
        except RedisError as exc:  # the workers of this service follow the shared file
            log.warning("reload of %s not announced to other replicas (Redis: %s)", name, exc)
            return
        others = [d for d in followed.digests if d is not None and d != digest]
        log.info(
            "model %s reloaded as %s; %d workers followed%s",
            name,
            digest[:12],
            followed.listeners,
            f", {len(others)} of them serve another digest" if others else "",
        )

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

    async def _refresh(self, name: str) -> str | None:
        """Reload `name` if its folder no longer gives the digests served here (a reload
        announced elsewhere); the digest its latest version answers with after, None when
        it is not served here."""
        if name not in self._loaded:
            return None
        with contextlib.suppress(InvalidParameterError):  # logged; the old model serves on
            await self._load_here(name, only_if_changed=True)
        return self.get(name).runner.digest if name in self.served() else None

    def _served_digests(self, name: str) -> dict[str, str]:
        return {v: s.runner.digest for v, s in self._loaded.get(name, {}).items()}

    async def _load_here(self, name: str, only_if_changed: bool = False) -> None:
        async with self._lock(name):
            if only_if_changed:
                try:
                    if folder_digests(self.settings.models_dir, name) == self._served_digests(name):
                        return
                except (ModelNotFoundError, ValueError, OSError):
                    pass  # the load below says what is wrong
            self._states[name] = ("LOADING", "")
            services: dict[str, ModelService] = {}
            try:
                config = load_model_config(self.settings.models_dir, name)
                for version, found in served_versions(self.settings.models_dir, config).items():
                    services[version] = await self._open(version, found)
            except (ModelNotFoundError, ValueError, OSError, RuntimeError) as exc:
                for opened in services.values():
                    await opened.close()
                if name in self._loaded:  # a failed reload: what was served serves on
                    self._states[name] = ("READY", f"reload failed, previous model kept: {exc}")
                    for kept in self._loaded[name].values():
                        kept.mark_served()
                else:
                    self._states[name] = ("UNAVAILABLE", f"failed to load: {exc}")
                log.exception("model %s failed to load", name)
                raise InvalidParameterError(f"model {name!r} failed to load: {exc}") from exc
            old, self._loaded[name] = self._loaded.get(name), services
            self._states[name] = ("READY", "")
            log.info("model %s loaded (versions %s)", name, ", ".join(services))
            for service in (old or {}).values():  # a reload: the old sessions drain
                await service.close()
            for service in services.values():  # after: a reload may keep the digest
                service.mark_served()

    async def _unload_here(self, name: str) -> None:
        async with self._lock(name):
            services = self._loaded.pop(name, {})
            self._states[name] = ("UNAVAILABLE", "unloaded")
            for service in services.values():
                await service.close()  # in-flight requests finish first
            if services:
                log.info("model %s unloaded", name)

    async def _open(self, version: str, found: ServedVersion) -> ModelService:
        return await ModelService.open(self.settings, self.cache, found.config, version, found.path)

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # the shared list
    def _change_wanted(
        self, add: str | None = None, remove: str | None = None, reload: str | None = None
    ) -> None:
        """Add or remove a model in the list every worker follows, or count a reload of one
        (read, changed and written under a file lock, so two workers changing it at once
        lose nothing)."""
        with self._shared_lock():
            wanted, reloads = self._read_wanted() or (list(self._wanted), dict(self._reloads))
            if add and add not in wanted:
                wanted.append(add)
            if remove:
                wanted = [n for n in wanted if n != remove]
            if reload:
                reloads[reload] = reloads.get(reload, 0) + 1
            self._wanted, self._reloads = wanted, reloads
            if self._file is not None:
                temporary = self._file.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(json.dumps({"models": wanted, "reloads": reloads}))
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

    def _read_wanted(self) -> tuple[list[str], dict[str, int]] | None:
        """The shared list of wanted models and the reloads counted for each."""
        if self._file is None or not self._file.is_file():
            return None
        self._seen_mtime = self._file.stat().st_mtime_ns
        shared = json.loads(self._file.read_text())
        reloads = {str(k): int(v) for k, v in shared.get("reloads", {}).items()}
        return list(shared["models"]), reloads

    async def _watch(self) -> None:
        """Follow loads, reloads and unloads that other workers received."""
        assert self._file is not None
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                if self._file.stat().st_mtime_ns == self._seen_mtime:
                    continue
                before = self._reloads
                self._wanted, self._reloads = self._read_wanted() or (self._wanted, before)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            for name, count in self._reloads.items():
                if count != before.get(name) and name in self._loaded:
                    await self._refresh(name)
            for name in [n for n in self._wanted if n not in self._loaded]:
                with contextlib.suppress(InvalidParameterError):
                    await self._load_here(name)
            for name in [n for n in self._loaded if n not in self._wanted]:
                await self._unload_here(name)
