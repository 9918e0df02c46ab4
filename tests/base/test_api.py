"""nstcli.api is the public face: every name it lists is there, and internals are not."""

import pytest

from nstcli import api


def test_every_public_name_resolves():
    assert [name for name in api.__all__ if not hasattr(api, name)] == []


@pytest.mark.parametrize("internal", ["psnr", "min_side", "layers_needed", "plan_scales"])
def test_internals_are_not_exported(internal):
    assert internal not in api.__all__
    with pytest.raises(AttributeError, match=f"has no attribute '{internal}'"):
        getattr(api, internal)
