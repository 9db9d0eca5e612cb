"""How the page shows the model, an image, a prediction and an error (Streamlit calls only)."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import streamlit as st
from PIL import Image, UnidentifiedImageError

from mlserve_common.wire import image_formats
from web_api.ui.client import PredictOutcome, UiError

DIGEST_CHARS = 12  # a short digest, like git's short hashes


def short_digest(digest: str | None) -> str:
    """The first characters of the model's digest (SHA-256 over everything that shapes its
    answers): enough to tell two models apart."""
    return (digest or "unknown")[:DIGEST_CHARS]


def model_identity(metadata: dict[str, Any]) -> str:
    """Which model answers, in markdown: its version (folder) and its short digest."""
    return f"version `{metadata['version']}` · digest `{short_digest(metadata.get('digest'))}`"


def model_header(model_name: str, metadata: dict[str, Any] | None) -> None:
    """Title, what the model does, and which version answers."""
    st.title(f"MLServe · {model_name}")
    if metadata is None:
        st.caption(f"Model **{model_name}** (version unknown: the model service is not reachable)")
        return
    st.markdown(metadata.get("description", ""))
    st.caption(
        f"Serving model **{metadata['name']}** · {model_identity(metadata)} "
        f"· runs on `{metadata['provider']}` · classes: {', '.join(metadata['labels'])}"
    )


def sidebar(metadata: dict[str, Any] | None, can_draw: bool) -> None:
    """How to use the page, and the model's details for the curious."""
    with st.sidebar:
        st.header("How to use")
        st.markdown(
            f"1. Upload a picture ({image_formats.NAMES})"
            + (" or draw on the canvas" if can_draw else "")
            + ".\n2. Press **Predict**.\n3. Read the answer, its confidence and how long it took."
            "\n\nPredicting the same image twice answers from the cache, without running the "
            "model again."
        )
        st.header("Model")
        if metadata is None:
            st.warning("The model service is not reachable right now.")
        else:
            st.markdown(
                f"- **Name:** {metadata['name']}\n"
                f"- **Version:** `{metadata['version']}`\n"
                f"- **Digest:** `{short_digest(metadata.get('digest'))}`\n"
                f"- **Runs on:** `{metadata['provider']}`\n"
                f"- **Classes:** {len(metadata['labels'])}"
            )
        st.caption(
            "Predictions come from MLServe's model service; this page never loads the model."
        )


def receipt(result: dict[str, Any]) -> str:
    """Which model answered which image, in markdown: the model's version and short digest,
    and the short SHA-256 of the image's bytes (the cache keeps the answer under both)."""
    answered = f"Answered by **{result.get('model', '?')}**"
    if "version" not in result:
        return answered
    image = short_digest(result.get("sha256"))
    return f"{answered} · {model_identity(result)} · image SHA-256 `{image}`"


def image_preview(image: bytes, caption: str) -> None:
    """The picture as the user sent it; a note instead when it cannot be displayed."""
    try:
        with Image.open(io.BytesIO(image)) as picture:
            picture.load()
            preview = picture.convert("RGBA")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        st.warning("This file cannot be displayed; it may be damaged or not an image.")
        return
    st.image(preview, caption=caption, width=260)


def prediction(outcome: PredictOutcome) -> None:
    """Label, confidence, cache hit, latency and every class's probability."""
    result = outcome.prediction
    timings = result.get("timings", {})
    st.subheader(f"Prediction: {result['label']}")
    label, confidence, source, latency = st.columns(4)
    label.metric("Predicted label", result["label"])
    confidence.metric("Confidence", f"{result['confidence']:.1%}")
    source.metric("Answered from", "cache" if result["cached"] else "model")
    latency.metric(
        "Latency",
        f"{outcome.round_trip_ms:.0f} ms",
        help=f"Round trip from this page; the model service itself took "
        f"{timings.get('total_ms', 0):.1f} ms (inference {timings.get('inference_ms', 0):.1f} ms).",
    )
    st.caption(receipt(result))
    if result["cached"]:
        st.success("Served from the cache: this image was seen before, so the model did not run.")
    else:
        st.info("Computed by the model: the first time this image was seen.")
    probabilities = pd.DataFrame(
        list(result["probabilities"].items()), columns=["class", "probability"]
    )
    st.bar_chart(
        probabilities,
        x="class",
        y="probability",
        horizontal=True,
        sort=False,
        height=max(160, 60 + 24 * len(probabilities)),
    )
    with st.expander("Timings (ms)"):
        st.table(pd.DataFrame([timings]).T.rename(columns={0: "ms"}))


def error(problem: UiError) -> None:
    """A friendly message; the technical reason folded away, never a traceback."""
    st.error(problem.message)
    if problem.detail:
        with st.expander("Technical details"):
            st.code(problem.detail, language=None)
