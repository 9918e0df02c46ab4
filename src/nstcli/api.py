"""The library's public face: what the skins (cli/, ui/), scripts and notebooks call.

One entry point per command family, each taking its settings and a sequence of watchers
(`reports.Callback`: the engine's steps, the weights' download, a batch's items, a video's frames):

    stylize, reconstruct, batch, video, video_with_model, train, apply, export,
    fetch_weights, import_weights, weights_path

and what their callers need around them (settings, plans, the library's errors, the inputs' checks).
Each name lives in the family that does the work and is handed on here, so `from nstcli import api`
keeps working whatever the layout below it. Importing this module loads neither torch nor PIL:
the names whose homes need them are imported on first use (`__getattr__`), so `nst --help` and a
mistyped path answer at once.
"""

from __future__ import annotations

import importlib

from nstcli.config.fields import FIELDS, SPECS, Config, as_dict, flag_name, load_config
from nstcli.config.commands import TRAIN_CONFIG_DEFAULTS, ApplySettings, TrainSettings, VideoSettings
from nstcli.config.commands import specs as setting_specs
from nstcli.config.files import read_yaml, recipe_names
from nstcli.config.layers import check_layers
from nstcli.config.specs import DEVICES, FAST_PRECISIONS, MAX_STEPS, OPTIMIZERS
from nstcli.errors import (ConfigError, ImageError, Interrupted, ModelError, NSTError, NSTWarning, RunError,
                           WeightsError, WriteError, first_line)
from nstcli.extras import require
from nstcli.jobs.shards import parse_shard
from nstcli.network.sources import NAMED, canonical, describe
from nstcli.network.weight_files import check_weights_file
from nstcli.outputs import IMAGE_FORMATS, check_name
from nstcli.reports import Callback, StepReport
from nstcli.runtime import prefer_sleeping_openmp_threads, resolve_device, resolve_precision

# Handed on when first asked for: public name -> (module, name there).
_ON_USE = {
    # nst stylize, nst reconstruct
    "stylize": ("nstcli.stylize.single", "stylize"),
    "StylizeResult": ("nstcli.optim.run", "StylizeResult"),
    "PreparedStyle": ("nstcli.stylize.styles", "PreparedStyle"),
    "SpatialControl": ("nstcli.stylize.masks", "SpatialControl"),
    "reconstruct": ("nstcli.stylize.reconstruct", "reconstruct"),
    "load_network": ("nstcli.stylize.single_plan", "load_network_for"),
    # nst batch
    "batch": ("nstcli.stylize.batch", "run_batch"),
    "plan_batch": ("nstcli.stylize.batch_plan", "plan_batch"),
    "plan_status": ("nstcli.stylize.batch_plan", "plan_status"),
    "PlannedItem": ("nstcli.stylize.batch_plan", "PlannedItem"),
    "ItemSummary": ("nstcli.jobs.items", "ItemSummary"),
    # nst video (by optimisation, or through a trained network)
    "video": ("nstcli.video.loop", "stylize_video"),
    "video_with_model": ("nstcli.fast.video", "stylize_video"),
    "frame_rate": ("nstcli.video.formats", "frame_rate"),
    "MIN_RATE": ("nstcli.video.formats", "MIN_RATE"),
    "MAX_RATE": ("nstcli.video.formats", "MAX_RATE"),
    # nst train, nst apply, nst export, nst styles
    "train": ("nstcli.fast.train", "train"),
    "apply": ("nstcli.fast.apply", "run"),
    "plan_apply": ("nstcli.fast.apply", "plan"),
    "check_apply_outputs": ("nstcli.fast.apply", "check_outputs"),
    "apply_to_file": ("nstcli.fast.apply", "apply_to_file"),
    "export": ("nstcli.fast.export", "export"),
    "read_model_header": ("nstcli.fast.modelfile", "read_header"),
    "builtin_styles": ("nstcli.fast.builtin", "available"),
    # nst weights
    "fetch_weights": ("nstcli.network.weights", "fetch_weights"),
    "import_weights": ("nstcli.network.cache", "import_file"),
    "weights_path": ("nstcli.network.weights", "installed_path"),
    # inputs and outputs, checked as the library checks them
    "check_input_file": ("nstcli.image.io", "check_input_file"),
    "check_output_name": ("nstcli.image.io", "check_output_name"),
    "refuse_overwriting_inputs": ("nstcli.image.io", "refuse_overwriting_inputs"),
    "open_image": ("nstcli.image.io", "open_image"),
    "tensor_to_pil": ("nstcli.image.io", "tensor_to_pil"),
    "write_file": ("nstcli.writes", "write_file"),
}

__all__ = [
    # settings: stylize's keys, and the commands' own
    "Config", "FIELDS", "SPECS", "as_dict", "flag_name", "load_config", "read_yaml", "recipe_names", "check_layers",
    "TrainSettings", "ApplySettings", "VideoSettings", "TRAIN_CONFIG_DEFAULTS", "setting_specs",
    "DEVICES", "FAST_PRECISIONS", "MAX_STEPS", "OPTIMIZERS", "IMAGE_FORMATS",
    # the library's errors
    "NSTError", "ConfigError", "ImageError", "Interrupted", "ModelError", "RunError", "WeightsError", "WriteError",
    "NSTWarning", "first_line",
    # watchers
    "Callback", "StepReport",
    # checks made before any work, and where a run computes
    "check_name", "check_weights_file", "parse_shard", "require", "NAMED", "canonical", "describe",
    "prefer_sleeping_openmp_threads", "resolve_device", "resolve_precision",
    *_ON_USE,
]


def __getattr__(name: str):
    try:
        module, attribute = _ON_USE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
