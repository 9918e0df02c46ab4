"""The web page: choose images and settings, press Start, watch the run, download the result.

Run by Streamlit (`nst ui`), top to bottom on every interaction. A thin skin over nstcli.api: it
collects inputs, calls api.stylize and shows what comes back; nothing here optimises anything.
"""

from __future__ import annotations

import io
import json
import math
import tempfile
import traceback
from pathlib import Path

import streamlit as st

from nstcli import api
from nstcli.api import (OPTIMIZERS, SPECS, ImageError, NSTError, describe, first_line, load_config,
                        prefer_sleeping_openmp_threads, resolve_device, resolve_precision, tensor_to_pil)

# Before anything imports torch: a page started by `streamlit run` directly, not by `nst ui`, gets
# the thread policy too (torch reads it once, when it first loads in the server process).
prefer_sleeping_openmp_threads()

from nstcli.ui.inputs import (  # noqa: E402
    EXAMPLE_CONTENT, EXAMPLE_STYLE, UPLOAD_TYPES, accept_upload, as_upload, thumbnail)
from nstcli.ui.live import LivePreview  # noqa: E402
from nstcli.ui.server import config_from_env, config_to_env  # noqa: E402

UPLOAD = "Upload my own"
EXAMPLES = "Use the bundled examples"


@st.cache_resource(show_spinner="Loading the VGG19 network (once for this server)...")
def load_network(config_json: str):
    # api.stylize finds this network again in its own per-process cache. Loading it here, when the
    # page first opens, means a download or a bad weights file shows up before anyone presses Start.
    return api.load_network(load_config(None, json.loads(config_json)))


def upload_folder() -> Path:
    """A temporary folder per browser session; removed when the session is dropped."""
    if "upload_folder" not in st.session_state:
        st.session_state["upload_folder"] = tempfile.TemporaryDirectory(prefix="nstcli-ui-")
    return Path(st.session_state["upload_folder"].name)


def field_help(name: str) -> str:
    return SPECS[name].help


def field_limit(name: str, which: str, fallback=None):
    value = getattr(SPECS[name], which)
    return fallback if value is None else value


def weight_step(value: float) -> float:
    """The +/- step of a loss-weight input: a power of ten no larger than a third of the starting value.

    Weights mean different things per objective (90 for the normalised default, 1e5 or 0.03 in
    recipes with raw formulas), so a fixed step fits none: this gives 10 for 90, 100 for 1e3, 0.1 for 1.
    """
    return 10.0 ** math.floor(math.log10(value / 3)) if value > 0 and math.isfinite(value) else 1.0


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    tensor_to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


st.set_page_config(page_title="nstcli: neural style transfer", layout="wide")
st.title("Neural style transfer")
st.caption("Repaint a photo in the style of one or more paintings by optimising its pixels so that "
           "VGG19 sees the photo's content and the paintings' style (Gatys, Ecker & Bethge, 2016).")

try:
    server = config_from_env()
    device = resolve_device(server.device)
    precision = resolve_precision(server.precision, device)
except NSTError as exc:
    st.error(f"Error: {exc}")
    st.stop()

if server.weights == "random":
    st.warning("**Untrained network (weights: random).** Results are textures, not style transfer: "
               "use this for trying the page offline. For real results start `nst ui` without "
               "`--weights random`.")
st.caption(f"Network: VGG19 with weights **{describe(server.weights)}**, on **{device}** in **{precision}**.")

try:
    load_network(config_to_env(server))
except NSTError as exc:
    st.error(f"Error: {exc}")
    st.stop()

inputs_column, result_column = st.columns(2, gap="large")

with inputs_column:
    st.subheader("1. Images")
    source = st.radio("Images", [UPLOAD, EXAMPLES], horizontal=True, key="source",
                      label_visibility="collapsed")
    content_path, content_name, style_paths = None, None, []
    uploaded: dict[Path, str] = {}  # where each upload was written -> the name it was uploaded as
    if source == EXAMPLES:
        content_path, content_name, style_paths = EXAMPLE_CONTENT, EXAMPLE_CONTENT.name, [EXAMPLE_STYLE]
    else:
        folder = upload_folder()
        limit = int(st.get_option("server.maxUploadSize")) * 2**20
        content_file = st.file_uploader("Content image (the photo)", type=list(UPLOAD_TYPES), key="content")
        style_files = st.file_uploader("Style images (one or more paintings, blended equally)",
                                       type=list(UPLOAD_TYPES), accept_multiple_files=True, key="styles")
        if content_file is not None:
            try:
                content_path = accept_upload(content_file.name, content_file.getvalue(), folder, "content", limit)
                content_name = uploaded[content_path] = content_file.name
            except ImageError as exc:
                st.error(f"Error: {exc}")
        for index, style_file in enumerate(style_files or []):
            try:
                style_paths.append(
                    accept_upload(style_file.name, style_file.getvalue(), folder, f"style-{index}", limit))
                uploaded[style_paths[-1]] = style_file.name
            except ImageError as exc:
                st.error(f"Error: {exc}")
    masks = None
    if source == UPLOAD and style_paths:
        from nstcli.ui.masks import mask_uploads

        masks = mask_uploads(len(style_paths), folder, limit, uploaded)
    chosen = ([content_path] if content_path else []) + style_paths
    if chosen:
        captions = (["content"] if content_path else []) + [f"style {i + 1}" for i in range(len(style_paths))]
        st.image([thumbnail(path) for path in chosen], caption=captions)

    st.subheader("2. Settings")
    with st.form("settings", border=False):
        left, middle, right = st.columns(3)
        size = left.number_input("Size (longest side, px)", min_value=field_limit("size", "minimum"),
                                 max_value=field_limit("size", "maximum"), value=server.size, step=32,
                                 help=field_help("size"), key="size")
        steps = middle.number_input("Steps", min_value=field_limit("steps", "minimum", 0), value=server.steps,
                                    step=50, help=field_help("steps"), key="steps")
        optimizer = right.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index(server.optimizer),
                                    help=field_help("optimizer"), key="optimizer")
        style_weight = left.number_input("Style weight (beta)", min_value=0.0, value=float(server.style_weight),
                                         step=weight_step(server.style_weight), format="%g",
                                         help=field_help("style_weight"), key="style_weight")
        content_weight = middle.number_input("Content weight (alpha)", min_value=0.0,
                                             value=float(server.content_weight),
                                             step=weight_step(server.content_weight), format="%g",
                                             help=field_help("content_weight"), key="content_weight")
        seed = right.number_input("Seed", min_value=0, value=server.seed, step=1, help=field_help("seed"),
                                  key="seed")
        extra = {}
        # Colour preservation is a config key only in some versions; the control appears with the key.
        if "preserve_color" in SPECS:
            choices = list(SPECS["preserve_color"].choices)
            extra["preserve_color"] = left.selectbox(
                "Preserve colours", choices, index=choices.index(getattr(server, "preserve_color")),
                help=field_help("preserve_color"), key="preserve_color")
        # Steps chosen here are the run's steps, first scale included, as --steps is on the command
        # line: a recipe's first_steps (wasserstein's 1000) gives way once the page's value differs.
        if int(steps) != server.steps:
            extra["first_steps"] = None
        started = st.form_submit_button("Start", type="primary")

    from nstcli.ui.fast import MODELS_ENV, apply_model, find_models

    trained = find_models(__import__("os").environ.get(MODELS_ENV))
    applied = False
    if trained:
        st.subheader("Or: a trained network, instantly")
        st.caption("Networks from `nst train` apply their one style to the content image in a single pass.")
        with st.form("fast", border=False):
            left, middle, right = st.columns(3)
            chosen_model = left.selectbox("Network", trained, format_func=lambda listed: listed.label, key="model")
            strength = middle.slider("Strength", 0.0, 1.0, 1.0, 0.05, key="strength",
                                     help="Blend with the photo: 1 is the network's output, 0 the photo.")
            keep_colours = right.checkbox("Keep the photo's colours", key="fast_colours")
            applied = st.form_submit_button("Apply network", type="primary")

with result_column:
    st.subheader("3. Result")
    if applied:
        st.session_state.pop("result", None)
        if content_path is None:
            st.error("Error: choose a content image first (or use the bundled examples)")
        else:
            try:
                png, summary = apply_model(chosen_model.path, content_path, int(size), float(strength),
                                           bool(keep_colours), device)
            except NSTError as exc:
                st.error(f"Error: {as_upload(str(exc), uploaded)}")
            else:
                st.session_state["result"] = {"png": png, "name": f"{Path(content_name).stem}_stylized.png",
                                              "summary": summary, "log": []}
    if started:
        st.session_state.pop("result", None)
        if content_path is None or not style_paths:
            st.error("Error: choose a content image and at least one style image first (or use the "
                     "bundled examples)")
        else:
            progress = st.progress(0.0, text="Starting...")
            picture = st.empty()
            try:
                config = server.replace(size=int(size), steps=int(steps), optimizer=optimizer,
                                        style_weight=float(style_weight), content_weight=float(content_weight),
                                        seed=int(seed), checkpoint_every=0, **extra)
                result = api.stylize(content_path, style_paths, config=config,
                                     callbacks=[LivePreview(progress, picture)], masks=masks)
            except NSTError as exc:
                from nstcli.ui.masks import name_uploads

                st.error(f"Error: {name_uploads(as_upload(str(exc), uploaded), uploaded)}")
            except Exception as exc:  # a bug, not bad input: one line here, the details in the terminal
                traceback.print_exc()
                st.error(f"Error: unexpected {exc.__class__.__name__}: {first_line(exc, 300)} (the traceback is in the "
                         "terminal running nst ui; please report it)")
            else:
                st.session_state["result"] = {
                    "png": png_bytes(result.image),
                    "name": f"{Path(content_name).stem}_stylized.png",
                    "summary": result.summary(),
                    "log": result.log,
                }
            progress.empty()
            picture.empty()

    shown = st.session_state.get("result")
    if shown is None:
        st.caption("Choose the images, then press Start: the progress and the current image appear here.")
    else:
        summary = shown["summary"]
        st.image(shown["png"], caption=(f"Result: {summary['width']}x{summary['height']} px, "
                                        f"{summary['steps']} steps in {summary['seconds']:.1f} s on "
                                        f"{summary['device']}, weights {summary['weights']}"))
        st.download_button("Download PNG", data=shown["png"], file_name=shown["name"], mime="image/png",
                           key="download")
        if shown["log"]:
            import pandas as pd

            frame = pd.DataFrame(shown["log"]).set_index("step")
            terms = [name for name in frame.columns if name not in ("scale", "loss")]
            st.line_chart(frame[terms], height=220)
            st.caption(f"Loss per step: the weighted terms ({', '.join(terms)}).")
