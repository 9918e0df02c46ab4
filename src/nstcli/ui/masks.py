"""The page's optional masks: one upload per style (where it paints) and one for the content.

A style without a mask upload makes the run refuse (one mask per style, as on the command line), so
the page asks for all of them or none; the library checks the files and names them, and the page
shows the names the person uploaded.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from nstcli import api
from nstcli.ui.inputs import UPLOAD_TYPES, accept_upload


def mask_uploads(style_count: int, folder: Path, limit: int, uploaded: dict[Path, str]):
    """A collapsed section with the mask uploaders; returns a SpatialControl, or None without masks."""
    style_masks, content_mask = [], None
    with st.expander("Masks (optional): which style paints where"):
        st.caption("Grayscale images, white = applies; resized to the photo. Give a mask for every style "
                   "or for none; pixels no mask covers keep the photo's content only.")
        for index in range(style_count):
            file = st.file_uploader(f"Mask for style {index + 1}", type=list(UPLOAD_TYPES),
                                    key=f"style-mask-{index}")
            if file is not None:
                try:
                    path = accept_upload(file.name, file.getvalue(), folder, f"style-mask-{index}", limit)
                    uploaded[path] = file.name
                    style_masks.append(path)
                except api.ImageError as exc:
                    st.error(f"Error: {exc}")
        file = st.file_uploader("Content weight map (white = keep the photo here)", type=list(UPLOAD_TYPES),
                                key="content-mask")
        if file is not None:
            try:
                content_mask = accept_upload(file.name, file.getvalue(), folder, "content-mask", limit)
                uploaded[content_mask] = file.name
            except api.ImageError as exc:
                st.error(f"Error: {exc}")
    if not style_masks and content_mask is None:
        return None
    return api.SpatialControl(style_masks, content_mask=content_mask)


def name_uploads(message: str, uploaded: dict[Path, str]) -> str:
    """Mask errors name a mask by its path and a style by its file name ("style 2 (NAME)"); show the
    names the files were uploaded as instead."""
    for path, name in uploaded.items():
        message = message.replace(str(path), f"'{name}'").replace(f"({Path(path).name})", f"({name})")
    return message
