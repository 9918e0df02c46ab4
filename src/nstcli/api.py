"""The library's public face: what the skins (cli/, ui/), scripts and notebooks call.

It defines nothing: each name lives in the family that does the work, and is handed on here so
`from nstcli import api; api.stylize(...)` keeps working whatever the layout below it.
"""

from nstcli.config.fields import Config, load_config  # noqa: F401
from nstcli.network.load import layers_needed, load_network, min_side  # noqa: F401
from nstcli.optim.run import StylizeResult  # noqa: F401
from nstcli.stylize.masks import SpatialControl  # noqa: F401
from nstcli.stylize.reconstruct import reconstruct  # noqa: F401
from nstcli.stylize.single import plan_scales, psnr, stylize  # noqa: F401
from nstcli.stylize.styles import PreparedStyle  # noqa: F401
