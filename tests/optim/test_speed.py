"""The fast paths compute what the plain ones do: hand-written backwards, L-BFGS, lazy imports."""

import os
import subprocess
import sys

import pytest
import torch

from nstcli import runtime
from nstcli.optim import engine
from nstcli.terms import content as content_terms
from nstcli.terms import gram as gram_terms
from nstcli.optim.lbfgs import LBFGS


def _features(layout):
    torch.manual_seed(0)
    features = torch.rand(2, 5, 4, 3, dtype=torch.float64)
    return features.contiguous(memory_format=layout).requires_grad_(True)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_style_loss_matches_autograd(layout):
    """It gives the same value and gradient as style_loss(gram_matrix(F), A), in F's memory layout."""
    features = _features(layout)
    target = gram_terms.gram_matrix(torch.rand(2, 5, 4, 3, dtype=torch.float64))
    fast = gram_terms.gram_style_loss(features, target)
    (fast_grad,) = torch.autograd.grad(fast * 3.0, features)
    plain = gram_terms.style_loss(gram_terms.gram_matrix(features), target)
    (plain_grad,) = torch.autograd.grad(plain * 3.0, features)
    assert torch.allclose(fast, plain, rtol=1e-12)
    assert torch.allclose(fast_grad, plain_grad, rtol=1e-10)
    assert fast_grad.is_contiguous(memory_format=layout)
    assert torch.autograd.gradcheck(lambda f: gram_terms.gram_style_loss(f, target), (features,))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_content_loss_matches_autograd(layout):
    """It gives the same value and gradient as 0.5 * mean((F - P)^2) through autograd."""
    features = _features(layout)
    target = torch.rand(2, 5, 4, 3, dtype=torch.float64)
    (fast_grad,) = torch.autograd.grad(content_terms.content_loss(features, target), features)
    (plain_grad,) = torch.autograd.grad(0.5 * torch.mean((features - target) ** 2), features)
    assert torch.allclose(fast_grad, plain_grad, rtol=1e-12)
    assert torch.autograd.gradcheck(lambda f: content_terms.content_loss(f, target), (features,))


def _trajectory(make, history, steps=30):
    torch.manual_seed(0)
    n = 40
    a = torch.randn(n, n, dtype=torch.float64)
    a = a @ a.T / n + 0.1 * torch.eye(n)
    b = torch.randn(n, dtype=torch.float64)
    x = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = make(x, history)

    def closure():
        opt.zero_grad()
        loss = 0.5 * x @ a @ x - b @ x + 0.1 * (x**4).sum()
        loss.backward()
        return loss

    points = []
    for _ in range(steps):
        opt.step(closure)
        points.append(x.detach().clone())
    return torch.stack(points)


@pytest.mark.parametrize("history", [100, 4])
def test_lbfgs_takes_torchs_steps(history):
    """It moves exactly as torch.optim.LBFGS(max_iter=1) does, also once the history is full."""
    ours = _trajectory(lambda x, h: LBFGS([x], lr=1.0, history_size=h), history)
    theirs = _trajectory(lambda x, h: torch.optim.LBFGS(
        [x], lr=1.0, max_iter=1, history_size=h, tolerance_grad=0.0, tolerance_change=0.0), history)
    assert torch.allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(ours[-1], ours[0])


def test_lbfgs_keeps_at_most_history_pairs():
    """It never stores more pairs than its history size."""
    x = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    opt = LBFGS([x], history_size=3)

    def closure():
        opt.zero_grad()
        loss = ((x - 1.0) ** 2 + 0.1 * x**4).sum()
        loss.backward()
        return loss

    for _ in range(12):
        opt.step(closure)
    steps, changes = opt.pairs
    assert steps.shape == changes.shape == (3, 10)


def test_lbfgs_refuses_several_tensors():
    """It says so when given more than the one tensor it optimises."""
    with pytest.raises(ValueError, match="exactly one tensor"):
        LBFGS([torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)])


def test_optimize_leaves_the_callers_image_alone(tmp_path):
    """It optimises a copy: a channels_last init tensor is not overwritten."""
    from nstcli import api
    from nstcli.terms import builder, objective
    from nstcli.terms.settings import LossSettings
    from nstcli.config.fields import Config
    from nstcli.image.io import prepare
    from nstcli.optim.optimizers import OptimizerSettings

    config = Config(weights="random", size=32)
    network = api.load_network(config, torch.device("cpu"))
    content = prepare(torch.rand(1, 3, 32, 32), torch.device("cpu"))
    before = content.clone()
    loss = config.pick(LossSettings)
    terms = [builder.content_term(loss, network, content),
             objective.style_term_for(loss, network, [torch.rand(1, 3, 32, 32)], [1.0])]
    result = engine.optimize(network, content, terms, OptimizerSettings("lbfgs", 1.0), steps=2)
    assert torch.equal(content, before)
    assert not torch.equal(result.image, before)


def _python(code: str, **env) -> str:
    """Run `code` in a fresh interpreter with this checkout's nstcli; env values None are unset."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "src"))
    for key, value in env.items():
        environment.pop(key, None)
        if value is not None:
            environment[key] = value
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.mark.e2e
def test_cli_import_does_not_import_torch():
    """It keeps `nst --help` fast: importing the CLI module loads neither torch nor torchvision."""
    out = _python("import sys, nstcli.cli.main; print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    assert out == "[]"


@pytest.mark.e2e
def test_progress_bars_import_no_torch():
    """It defines the CLI's bars and the step report without torch, so `nst batch --plan` stays instant."""
    out = _python("import sys, nstcli.cli.progress, nstcli.reports; print('torch' in sys.modules)")
    assert out == "False"


@pytest.mark.e2e
def test_nst_sets_passive_openmp_before_torch():
    """It asks for sleeping OpenMP threads before any command imports torch, unless the user chose."""
    code = ("import os, sys; sys.argv = ['nst', '--version']\n"
            "from nstcli.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    assert _python(code, OMP_WAIT_POLICY=None).splitlines()[-1] == "PASSIVE False"
    assert _python(code, OMP_WAIT_POLICY="ACTIVE").splitlines()[-1] == "ACTIVE False"


def test_cudnn_autotuning_only_for_cuda(monkeypatch):
    """It switches cuDNN's algorithm search on for CUDA devices and leaves it alone otherwise."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    runtime.tune_for(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    runtime.tune_for(torch.device("cuda"))
    assert torch.backends.cudnn.benchmark is True
