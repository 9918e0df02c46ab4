"""Allows `python -m nstcli`."""

from nstcli.cli import main

if __name__ == "__main__":
    main()
