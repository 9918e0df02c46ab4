"""Starting the page: Streamlit's own command line in a child process, handed the config as JSON.

Streamlit's documented way to serve a script is `streamlit run`; running it as a child process keeps
its server, threads and signal handlers out of the `nst` process, which only waits and, on Ctrl-C or
SIGTERM, makes sure the server stops too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from nstcli.api import Config, ConfigError, NSTError, as_dict, load_config, prefer_sleeping_openmp_threads, require

APP = Path(__file__).with_name("app.py")
# How `nst ui` tells the page which config (weights, device, starting values) to use.
CONFIG_ENV = "NSTCLI_UI_CONFIG"
# How long a stopping server may take before it is killed.
STOP_TIMEOUT = 10.0


def config_to_env(config: Config) -> str:
    return json.dumps(as_dict(config))


def config_from_env(environ=os.environ) -> Config:
    """The config `nst ui` chose, or the defaults when the page is run by `streamlit run` directly."""
    text = environ.get(CONFIG_ENV)
    return load_config(None, json.loads(text)) if text else Config()


def require_streamlit() -> None:
    require("streamlit", "ui", "the web page", "Streamlit")


def check_address(host: str, port: int) -> None:
    """Fail before starting Streamlit if HOST:PORT cannot be listened on (in use, or no such address)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            # The server sets SO_REUSEADDR too, so a port left in TIME_WAIT is not "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise NSTError(f"cannot listen on {host}:{port} ({reason}); choose another --port or --host") from None


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",  # no browser opened, no first-run e-mail prompt on stdin
        "--browser.gatherUsageStats", "false",  # the page sends nothing anywhere
        "--server.fileWatcherType", "none",  # the installed page does not change while it is served
        "--client.toolbarMode", "minimal",  # no developer menu for people using the page
        "--client.showErrorDetails", "false",  # a bug shows a message, not a traceback
    ]


def _stop(process: subprocess.Popen) -> None:
    # Ctrl-C in a terminal reaches both processes; SIGTERM sent to `nst` reaches only this one.
    # Either way ask Streamlit to stop (it shuts down on SIGTERM), then make sure it has.
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve(config: Config, host: str, port: int, models: str | os.PathLike | None = None) -> None:
    """Serve the page on http://HOST:PORT until Ctrl-C or SIGTERM (a normal stop, not an error).

    `models`: a folder of nst train's model files the page offers for instant results.
    """
    require_streamlit()
    check_address(host, port)
    env = {**os.environ, CONFIG_ENV: config_to_env(config)}
    if models is not None:
        from nstcli.ui.fast import MODELS_ENV

        if not Path(models).is_dir():
            raise ConfigError(f"--models {models} is not a folder; give the folder holding nst train's .safetensors files")
        env[MODELS_ENV] = str(Path(models).resolve())
    # The run happens in the server process, so it needs the thread policy `nst` sets for itself
    # (runtime.py): set here, where serve() is called, whoever calls it.
    prefer_sleeping_openmp_threads(env)
    process = subprocess.Popen(streamlit_command(host, port), env=env)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        _stop(process)
        return
    # Streamlit exits 0 when it stops on a signal of its own (e.g. SIGTERM sent to it directly).
    if code not in (0, -signal.SIGINT, -signal.SIGTERM):
        raise NSTError(f"the Streamlit server stopped with exit code {code}; see its messages above")
