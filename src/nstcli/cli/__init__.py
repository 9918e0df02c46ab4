"""The `nst` command: one module per command group, registered on the group in main.py.

`main` is the console script's entry point (pyproject.toml names `nstcli.cli:main`).
"""

from nstcli.cli.main import main, nst  # noqa: F401
