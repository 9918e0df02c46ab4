"""nstcli: neural style transfer from the command line (Gatys, Ecker & Bethge)."""

__version__ = "0.1.0"
