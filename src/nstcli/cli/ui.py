"""nst ui: serve the web page."""

from __future__ import annotations

import click

from nstcli.cli.options import PATH, build_config
from nstcli.api import SPECS

@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines reach the page.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to listen on.")
@click.option("--weights", default=None, metavar=SPECS["weights"].placeholder, help=SPECS["weights"].help)
@click.option("--device", default=None, metavar=SPECS["device"].placeholder, help=SPECS["device"].help)
@click.option("--precision", default=None, metavar=SPECS["precision"].placeholder, help=SPECS["precision"].help)
@click.option("--config", "config_file", type=PATH, default=None,
              help="YAML file of config keys: the page's starting values, weights, device and precision.")
@click.option("--models", type=PATH, default=None, metavar="DIR",
              help="Folder of networks from nst train (.safetensors) the page offers for instant results.")
def ui(host, port, weights, device, precision, config_file, models):
    """Serve the web page (Streamlit) on http://HOST:PORT until Ctrl-C. Needs: pip install 'nstcli[ui]'.

    The network is loaded once for the server, so weights, device and precision are chosen here; the page has
    controls for everything else, starting from --config's values.
    """
    config = build_config(config_file, {"weights": weights, "device": device, "precision": precision})
    from nstcli.ui.server import serve

    serve(config, host=host, port=port, models=models)
