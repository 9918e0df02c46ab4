"""Names of VGG19's feature layers (conv1_1 ... pool5), importable without torch.

torchvision's `vgg19().features` is a flat nn.Sequential; these names map onto its indices so that
state dicts keep torchvision's keys ("0.weight", "2.bias", ...) while users speak in layer names.
"""

# Output channels per convolution, grouped by block; a pooling layer ends each block.
BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256, 256),
    (512, 512, 512, 512),
    (512, 512, 512, 512),
)


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, convs in enumerate(BLOCKS, start=1):
        for i in range(1, len(convs) + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}
# Index of every convolution in the Sequential, and its (in, out) channels: what a state dict must hold.
CONV_SHAPES: dict[int, tuple[int, int]] = {}
_in = 3
for _name, _i in LAYER_INDEX.items():
    if _name.startswith("conv"):
        block, conv = (int(x) for x in _name[4:].split("_"))
        _out = BLOCKS[block - 1][conv - 1]
        CONV_SHAPES[_i] = (_in, _out)
        _in = _out


def closest(name: str, candidates) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return match[0] if match else None


def _quoted(name: str) -> str:
    # A name comes from a flag or a config file: quote a bounded preview so the message stays one line.
    return repr(name if len(name) <= 60 else name[:57] + "...")


def check_layers(names, what: str = "the layer list") -> tuple[str, ...]:
    """`names` as a tuple, checked: at least one, each a VGG19 layer, none twice.

    Otherwise a ConfigError whose message starts with `what` (a config key such as 'style_layers'
    or a flag such as --layers), so the user knows which value to fix.
    """
    from nstcli.errors import ConfigError

    names = tuple(names)
    if not names:
        raise ConfigError(f"{what} needs at least one layer name, e.g. relu4_2")
    for name in names:
        if name not in LAYER_INDEX:
            hint = closest(name, LAYER_NAMES)
            extra = f"did you mean '{hint}'? " if hint else ""
            raise ConfigError(f"{what} has unknown VGG19 layer {_quoted(name)}; {extra}valid layers: "
                              f"{', '.join(LAYER_NAMES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{what} lists a layer twice: {', '.join(names)}")
    return names
