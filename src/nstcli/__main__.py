"""Allows `python -m nstcli`."""

from nstcli.cli.main import main

if __name__ == "__main__":
    main()
