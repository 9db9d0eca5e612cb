"""The Streamlit page (APP_TYPE=ui): upload or draw an image, model_api classifies it.

Streamlit runs this script top to bottom on every interaction, so the HTTP client
is cached for the process and the model's metadata for a short while.
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from mlserve_common.wire import image_formats
from web_api.config import get_settings
from web_api.ui import view
from web_api.ui.client import UiError, UiModelClient

log = logging.getLogger("mlserve.ui")

# Models a person can sensibly draw for: a digit on a canvas is an MNIST input.
DRAWABLE_MODELS = frozenset({"mnist"})
UPLOAD_HINTS = {
    "mnist": (
        "Works best with one digit filling a good part of the frame, dark on light paper:"
        " a phone photo of a notebook page, a scan or a drawing."
    ),
    "leukemia": "A microscope image of one blood cell, roughly centred.",
}
CANVAS_SIZE = 280


@st.cache_resource
def model_client() -> UiModelClient:
    return UiModelClient(get_settings())


@st.cache_data(ttl=30, show_spinner=False)
def model_metadata(model_name: str) -> dict[str, Any]:
    """Cached when it succeeds; a failure is retried on the next rerun."""
    return model_client().metadata(model_name)


@st.cache_data(ttl=10, show_spinner=False)
def served_models() -> list[str]:
    return model_client().models()


def choose_model(default: str) -> str:
    """The model to ask: a choice in the sidebar when model_api serves several."""
    try:
        names = served_models()
    except UiError:
        return default  # the header says the service is unreachable
    if len(names) < 2 or default not in names:
        return default
    return st.sidebar.selectbox(
        "Model", names, index=names.index(default), help="The models model_api serves now."
    )


def predict_section(
    image: bytes, button_label: str, key: str, result_area: Any, model_name: str
) -> None:
    """A predict button for `image`; the answer (or a friendly error) goes to `result_area`."""
    if not st.button(button_label, key=key, type="primary"):
        return
    with result_area:
        try:
            with st.spinner("Asking the model..."):
                outcome = model_client().predict(image, model_name)
        except UiError as problem:
            log.warning("prediction failed: %s", problem.detail or problem.message)
            view.error(problem)
            return
        view.prediction(outcome)


def upload_tab(model_name: str) -> None:
    upload = st.file_uploader(
        f"Choose an image ({image_formats.NAMES})",
        type=list(image_formats.EXTENSIONS),
        help=UPLOAD_HINTS.get(model_name, ""),
    )
    st.caption(UPLOAD_HINTS.get(model_name, "Upload a picture to classify."))
    if upload is None:
        return
    image = upload.getvalue()
    picture, result_area = st.columns([2, 3], gap="large")
    with picture:
        view.image_preview(image, caption=upload.name)
        predict_section(image, "Predict", "predict_upload", result_area, model_name)


def draw_tab(model_name: str) -> None:
    canvas, result_area = st.columns([2, 3], gap="large")
    with canvas:
        st.caption("Draw one digit, large and centred, then press **Predict drawing**.")
        drawing = st_canvas(
            stroke_width=18,
            stroke_color="#000000",
            background_color="#FFFFFF",
            width=CANVAS_SIZE,
            height=CANVAS_SIZE,
            drawing_mode="freedraw",
            return_image_data=True,
            key="digit_canvas",
        )
        strokes = (drawing.json_data or {}).get("objects", [])
        image = drawing.image_bytes if strokes else None
        if not image:
            st.info("The canvas is empty: draw a digit first.")
            return
        predict_section(image, "Predict drawing", "predict_drawing", result_area, model_name)


def page() -> None:
    settings = get_settings()
    st.set_page_config(page_title=f"MLServe · {settings.model_name}", page_icon="🔎", layout="wide")
    model_name = choose_model(settings.model_name)
    metadata: dict[str, Any] | None = None
    try:
        metadata = model_metadata(model_name)
    except UiError as problem:
        view.model_header(model_name, None)
        view.error(problem)
    else:
        view.model_header(model_name, metadata)
    can_draw = model_name in DRAWABLE_MODELS
    view.sidebar(metadata, can_draw)
    if can_draw:
        upload, draw = st.tabs(["Upload an image", "Draw a digit"])
        with upload:
            upload_tab(model_name)
        with draw:
            draw_tab(model_name)
    else:
        upload_tab(model_name)


try:
    page()
except Exception:  # the last line of defence: a message for people, the traceback in the log
    log.exception("the UI page failed")
    st.error("Something went wrong on this page. Reload it; if that does not help, check the logs.")
