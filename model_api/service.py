"""What a running model_api holds: settings, the model, its cache, the prediction path."""

from __future__ import annotations

from dataclasses import dataclass

from model_api.cache import PredictionCache
from model_api.config import Settings
from model_api.inference import ModelRunner
from model_api.model_config import load_model_config
from model_api.predictor import DecodeLimits, Predictor
from model_api.schemas import ModelMetadata, TensorMetadata


@dataclass
class ModelService:
    settings: Settings
    runner: ModelRunner
    cache: PredictionCache
    predictor: Predictor

    @classmethod
    async def open(cls, settings: Settings) -> ModelService:
        """Load the model (unknown names raise) and connect the cache."""
        config = load_model_config(settings.models_dir, settings.model_name)
        runner = ModelRunner(
            config,
            settings.models_dir,
            settings.execution_provider,
            settings.intra_op_threads,  # type: ignore[arg-type]  # set by Settings' validator
        )
        cache = PredictionCache(
            settings.redis_url,
            settings.cache_ttl_seconds,
            settings.redis_timeout_seconds,
            settings.redis_retry_seconds,
        )
        await cache.start()
        predictor = Predictor(
            runner,
            cache,
            DecodeLimits(
                max_pixels=settings.max_image_pixels,
                max_bytes=settings.max_decode_bytes,
                large_bytes=settings.large_decode_bytes,
                large_threads=settings.large_decode_threads,
            ),
            settings.inference_workers,
            settings.singleflight_lease_ms,
        )
        predictor.start()
        return cls(settings, runner, cache, predictor)

    async def close(self) -> None:
        """Let in-flight inferences finish, then close the cache connection."""
        await self.predictor.close()
        await self.cache.close()

    def metadata(self) -> ModelMetadata:
        config = self.runner.config
        return ModelMetadata(
            name=config.name,
            version=self.runner.version,
            description=config.description,
            inputs=[_tensor(config.input)],
            outputs=[_tensor(config.output)],
            labels=config.labels,
            provider=self.runner.provider,
            preprocess=[step.model_dump() for step in config.preprocess],
        )


def _tensor(spec) -> TensorMetadata:
    return TensorMetadata(
        name=spec.name, datatype="FP32", shape=[-1 if d is None else d for d in spec.shape]
    )
