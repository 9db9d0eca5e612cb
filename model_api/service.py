"""One served model version: its session, its prediction path, its metadata."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from model_api import metrics
from model_api.cache import PredictionCache
from model_api.config import Settings
from model_api.inference import ModelRunner
from model_api.model_config import ModelConfig, TensorSpec
from model_api.predictor import DecodeLimits, Predictor
from model_api.schemas import ModelMetadata, TensorMetadata


@dataclass
class ModelService:
    settings: Settings
    runner: ModelRunner
    cache: PredictionCache
    predictor: Predictor
    version: str
    """The version's folder name ("1" for a model folder without versions)."""

    @classmethod
    async def open(
        cls,
        settings: Settings,
        cache: PredictionCache,
        config: ModelConfig,
        version: str,
        path: Path,
    ) -> ModelService:
        """Load the session in a thread (other models keep serving meanwhile)."""
        runner = await asyncio.to_thread(
            ModelRunner,
            config,
            path,
            settings.execution_provider,
            settings.intra_op_threads,  # type: ignore[arg-type]  # set by Settings' validator
            version,
        )
        predictor = Predictor(
            runner,
            cache,
            DecodeLimits(
                max_pixels=settings.max_image_pixels,
                max_bytes=settings.max_decode_bytes,
                large_bytes=settings.large_decode_bytes,
                large_threads=settings.large_decode_threads,
                inline_pixels=settings.inline_max_pixels,
            ),
            settings.inference_workers,
            settings.singleflight_lease_ms,
        )
        predictor.start()
        return cls(settings, runner, cache, predictor, version)

    def mark_served(self, served: bool = True) -> None:
        """Say in the metrics whether this digest answers for its model version now."""
        config = self.runner.config
        metrics.SERVED.labels(config.name, self.version, self.runner.digest).set(int(served))

    async def close(self) -> None:
        """Let in-flight inferences finish."""
        await self.predictor.close()
        self.mark_served(False)

    def metadata(self) -> ModelMetadata:
        config = self.runner.config
        return ModelMetadata(
            name=config.name,
            version=self.version,
            digest=self.runner.digest,
            description=config.description,
            inputs=[_tensor(config.input)],
            outputs=[_tensor(config.output)],
            labels=config.labels,
            provider=self.runner.provider,
            preprocess=[step.model_dump() for step in config.preprocess],
        )


def _tensor(spec: TensorSpec) -> TensorMetadata:
    return TensorMetadata(name=spec.name, datatype=spec.datatype, shape=spec.protocol_shape)
