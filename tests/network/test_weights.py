"""Where weights come from: files, the cache, and a faked download. No test touches the network."""

import hashlib
import os
import pickle
import subprocess
import sys

import pytest
import torch

from helpers import FAST, SRC, error_line, make_image
from nstcli import api
from nstcli.network import weights
from nstcli.network import download
from nstcli.network import sources
from nstcli.network import weight_files
from nstcli.cli.main import nst
from nstcli.errors import WeightsError
from nstcli.network.features import VGGFeatures

LAYERS = ["relu1_1", "relu3_1", "relu5_1"]


def full_torchvision_style(state):
    """A torchvision-shaped VGG19 state dict: features.* plus (small stand-in) classifier keys."""
    full = {f"features.{k}": v for k, v in state.items()}
    full["classifier.0.weight"] = torch.zeros(4, 4)
    return full


@pytest.mark.parametrize("layout", ["features-only", "full"])
def test_file_round_trip_gives_identical_features(tmp_path, layout):
    """It loads a saved state dict into a network that computes exactly the same features."""
    state = weights.random_state_dict(seed=7)
    path = tmp_path / "vgg.pth"
    torch.save(state if layout == "features-only" else full_torchvision_style(state), path)
    image = torch.rand(1, 3, 40, 40)
    original = VGGFeatures(state, LAYERS)(image)
    loaded = VGGFeatures(weight_files.read_file(path), LAYERS)(image)
    assert all(torch.equal(original[k], loaded[k]) for k in LAYERS)


def test_cli_accepts_weights_file(runner, content, style, tmp_path):
    """It runs stylize from a weights file path without any warning about random weights."""
    path = tmp_path / "vgg.pth"
    torch.save(weights.random_state_dict(seed=1), path)
    args = [a if a != "random" else str(path) for a in FAST]
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *args])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr


def test_other_architecture_names_missing_keys(tmp_path):
    """It says which keys are missing when the file is some other network."""
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(WeightsError, match=r"is not a VGG19 state dict: missing keys 0.weight, 0.bias, 2.weight"):
        weight_files.read_file(path)


def test_wrong_shape_is_named(tmp_path):
    """It names a tensor with the wrong shape (e.g. VGG16 or a different first layer)."""
    state = weights.random_state_dict(0)
    state["0.weight"] = torch.zeros(64, 1, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"wrong shapes 0.weight \(64, 1, 3, 3\) \(expected \(64, 3, 3, 3\)\)"):
        weight_files.read_file(path)


class RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_pickle_that_runs_code_is_not_run(tmp_path, monkeypatch):
    """It refuses a pickle that would execute code instead of executing it."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"0.weight": RunsCode()}, handle)
    with pytest.raises(WeightsError, match="holds Python objects other than tensors"):
        weight_files.read_file(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_corrupt_and_missing_files(runner, content, style, tmp_path):
    """It exits 1 with one Error: line for a missing or corrupt weights file."""
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    for path, message in [(tmp_path / "missing.pth", "does not exist"), (corrupt, "cannot be loaded")]:
        args = [a if a != "random" else str(path) for a in FAST]
        result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), *args])
        assert result.exit_code == 1
        assert error_line(result).startswith(f"Error: weights file {path} {message}")
    assert not (tmp_path / "o.png").exists()


@pytest.fixture
def fake_download(tmp_path, monkeypatch, fresh_network_cache):
    """Point the imagenet URL at a local file:// URL holding a torchvision-shaped VGG19."""
    source = tmp_path / "vgg19-fake.pth"
    state = weights.random_state_dict(seed=11)
    torch.save(full_torchvision_style(state), source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setattr(sources, "IMAGENET_URL", source.as_uri())
    monkeypatch.setattr(sources, "IMAGENET_SHA256_PREFIX", digest[:8])
    return state


def test_fetch_downloads_verifies_and_caches_features(runner, fake_download, isolated_cache):
    """It downloads once, checks the hash and caches only the features."""
    result = runner.invoke(nst, ["weights", "fetch", "torchvision"])
    assert result.exit_code == 0, result.output
    cached = isolated_cache / sources.CACHE_FILE
    assert result.stdout == f"{cached}\n"
    stored = torch.load(cached, weights_only=True)
    assert set(stored) == set(fake_download) and all(torch.equal(stored[k], fake_download[k]) for k in stored)
    assert [p.name for p in isolated_cache.iterdir()] == [sources.CACHE_FILE]  # no download left behind


def test_imagenet_spec_downloads_on_first_use(fake_download, content, style, isolated_cache):
    """It fetches the weights the first time --weights imagenet is used, then reuses the cache."""
    from nstcli.config.fields import Config

    config = Config(weights="imagenet", size=32, steps=1, checkpoint_every=0)
    api.stylize(content, style, config=config)
    assert (isolated_cache / sources.CACHE_FILE).exists()


def test_the_library_draws_no_download_bar(fake_download, isolated_cache, capfd):
    """It downloads without writing a byte to the terminal when the caller passes no watcher."""
    download.download("torchvision")
    assert (isolated_cache / sources.CACHE_FILE).exists()
    assert capfd.readouterr() == ("", "")


class DownloadWatcher:
    """Records what a download tells its watchers (the skins draw a bar from the same calls)."""

    def __init__(self):
        self.heard = []

    def on_download(self, received, total):
        self.heard.append((received, total))

    def on_download_end(self):
        self.heard.append("end")


def test_download_progress_goes_to_the_watchers(fake_download, isolated_cache, tmp_path):
    """It tells every watcher the bytes received, from 0 up to the file's size, then that it ended."""

    watcher = DownloadWatcher()
    download.download("torchvision", [watcher])
    size = (tmp_path / "vgg19-fake.pth").stat().st_size
    assert watcher.heard[0] == (0, size) and watcher.heard[-2:] == [(size, size), "end"]
    assert [received for received, _ in watcher.heard[:-1]] == sorted(received for received, _ in watcher.heard[:-1])


@pytest.mark.parametrize("quiet", [False, True])
def test_stylize_draws_the_download_bar_in_the_cli(runner, fake_download, isolated_cache, content, style, tmp_path,
                                                   quiet):
    """nst stylize's first run with torchvision's weights draws cli/progress.py's download bar, not with -q."""
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                                 "--steps", "1", "--checkpoint-every", "0", "--weights", "torchvision",
                                 *(["-q"] if quiet else [])])
    assert result.exit_code == 0, result.output
    assert ("VGG19 weights" in result.stderr) is not quiet


def test_hash_mismatch_is_refused(runner, fake_download, monkeypatch, isolated_cache):
    """It refuses a download whose hash does not match and caches nothing."""
    monkeypatch.setattr(sources, "IMAGENET_SHA256_PREFIX", "00000000")
    result = runner.invoke(nst, ["weights", "fetch", "torchvision"])
    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith("Error: downloaded VGG19 weights have SHA-256 ")
    assert "expected 00000000..." in line and "nst weights import FILE" in line
    assert not (isolated_cache / sources.CACHE_FILE).exists()
    assert list(isolated_cache.iterdir()) == []


def test_no_network_says_what_to_do(runner, monkeypatch, isolated_cache):
    """It explains a failed download: the URL, the cache path, nst weights import and the offline demo."""
    import urllib.error

    def offline(url, destination, watchers=()):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "fetch", offline)
    result = runner.invoke(nst, ["weights", "fetch", "torchvision"])
    assert result.exit_code == 1
    assert error_line(result) == (
        "Error: could not download torchvision's VGG19 ([Errno -3] Temporary failure in name resolution); "
        f"download {sources.IMAGENET_URL} by other means and run 'nst weights import FILE', "
        f"or use --weights PATH (cache: {isolated_cache / sources.CACHE_FILE}); for an offline demo, "
        "--weights random runs an untrained network (textures, not style transfer)")


def test_import_installs_into_cache(runner, tmp_path, isolated_cache):
    """It verifies a file and installs it as the imagenet weights for offline use."""
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    state = weights.random_state_dict(seed=5)
    torch.save(full_torchvision_style(state), path)
    result = runner.invoke(nst, ["weights", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{isolated_cache / sources.CACHE_FILE}\n"
    loaded = weights.load_state_dict("imagenet")
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_import_rejects_non_vgg(runner, tmp_path, isolated_cache):
    """It refuses to install a file that is not VGG19 and leaves the cache empty."""
    path = tmp_path / "other.pth"
    torch.save({"x": torch.zeros(1)}, path)
    result = runner.invoke(nst, ["weights", "import", str(path)])
    assert result.exit_code == 1
    assert "is not a VGG19 state dict" in error_line(result)
    assert not (isolated_cache / sources.CACHE_FILE).exists()


def test_path_prints_cache_location(runner, isolated_cache):
    """It prints where the cache file lives."""
    result = runner.invoke(nst, ["weights", "path", "torchvision"])
    assert result.stdout == f"{isolated_cache / sources.CACHE_FILE}\n"


def weights_error(runner, content, style, tmp_path, spec):
    """Run stylize with --weights spec; return the result after checking exit 1 and no output."""
    out = tmp_path / "o.png"
    args = [a if a != "random" else str(spec) for a in FAST]
    result = runner.invoke(nst, ["stylize", str(content), str(style), "-o", str(out), *args])
    assert result.exit_code == 1
    assert not out.exists()
    return result


def test_truncated_pth(runner, content, style, tmp_path):
    """It explains a .pth cut short (an interrupted copy) with one line and exit 1."""
    path = tmp_path / "vgg.pth"
    torch.save(weights.random_state_dict(seed=1), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = error_line(weights_error(runner, content, style, tmp_path, path))
    assert line.startswith(f"Error: weights file {path} cannot be loaded: ")
    assert line.endswith("; give a state dict saved with torch.save(model.state_dict(), FILE)")


def test_safetensors_without_the_package(runner, content, style, tmp_path, monkeypatch):
    """It says which package to install for a .safetensors file when safetensors is missing."""
    import sys

    monkeypatch.setitem(sys.modules, "safetensors", None)  # makes `import safetensors...` fail
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    path = tmp_path / "vgg.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert error_line(weights_error(runner, content, style, tmp_path, path)) == (
        f"Error: {path} is a .safetensors file; install the 'safetensors' package to read it "
        "(pip install safetensors)")


def test_weights_path_is_a_folder(runner, content, style, tmp_path):
    """It refuses a folder given as the weights file."""
    folder = tmp_path / "models"
    folder.mkdir()
    assert error_line(weights_error(runner, content, style, tmp_path, folder)) == (
        f"Error: weights file {folder} is a folder; give a .pth/.pt/.safetensors file")


def test_file_holding_a_bare_tensor(tmp_path):
    """It says what it found when the file holds a tensor instead of a state dict."""
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsError, match=r"does not hold a state dict \(found Tensor\)"):
        weight_files.read_file(path)


def test_nan_weights_are_refused(runner, content, style, tmp_path):
    """It refuses a file with the right shapes but NaN values instead of failing later on the loss."""
    state = weights.random_state_dict(seed=1)
    state["2.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    assert error_line(weights_error(runner, content, style, tmp_path, path)) == (
        f"Error: weights file {path} holds NaN or infinite values (in 2.weight); the file is damaged: replace it")


def test_torch_saved_object_that_runs_code_is_not_run(tmp_path, monkeypatch):
    """It refuses a torch.save'd (zip) checkpoint whose pickle would execute code."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"0.weight": RunsCode()}, path)
    with pytest.raises(WeightsError, match="holds Python objects other than tensors"):
        weight_files.read_file(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_broken_download_leaves_nothing(runner, monkeypatch, isolated_cache):
    """It reports a connection lost mid-download and removes the partial file."""

    def drops(url, destination, watchers=()):
        destination.write_bytes(b"\x00" * 1000)
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(download, "fetch", drops)
    result = runner.invoke(nst, ["weights", "fetch", "torchvision"])
    assert result.exit_code == 1
    assert error_line(result).startswith(
        "Error: could not download torchvision's VGG19 ([Errno 104] Connection reset by peer); download ")
    assert list(isolated_cache.iterdir()) == []


def test_damaged_cache_says_how_to_recover(runner, content, style, isolated_cache, tmp_path, fresh_network_cache):
    """It names the damaged cache file and the command that replaces it."""
    isolated_cache.mkdir(parents=True)
    cached = isolated_cache / sources.CACHE_FILE
    cached.write_bytes(b"garbage")
    line = error_line(weights_error(runner, content, style, tmp_path, "imagenet"))
    assert line.startswith(f"Error: weights file {cached} cannot be loaded: ")
    assert line.endswith(f". The cache is damaged: delete {cached} and run 'nst weights fetch torchvision' again")


def test_unwritable_cache_is_found_before_downloading(runner, monkeypatch, tmp_path):
    """It names an unwritable weights cache without starting the download."""
    import tempfile

    cache = tmp_path / "readonly-cache"
    cache.mkdir()
    monkeypatch.setenv("NSTCLI_CACHE", str(cache))
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if str(dir) == str(cache):
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(download.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("download started"))
    result = runner.invoke(nst, ["weights", "fetch", "torchvision"])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot create the weights cache {cache} (Permission denied); "
                                  "set NSTCLI_CACHE to a writable folder")


def test_cache_write_failure_after_download(runner, fake_download, monkeypatch, isolated_cache):
    """It reports a cache that cannot be written after a good download, and leaves no files behind."""

    from faults import DiskFills

    DiskFills(monkeypatch, isolated_cache / sources.CACHE_FILE)  # the disk fills up while the cache is written
    result = runner.invoke(nst, ["weights", "fetch", "torchvision"])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: cannot write the weights cache {isolated_cache / sources.CACHE_FILE} "
                                  "(No space left on device); free some space or set NSTCLI_CACHE to a writable "
                                  "folder")
    assert list(isolated_cache.iterdir()) == []


@pytest.mark.e2e
def test_weights_fifo_does_not_hang(content, style, tmp_path):
    """It refuses a FIFO as weights at once (a subprocess, so a hang fails the test instead of blocking it)."""
    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "nstcli", "stylize", str(content), str(style), "-o", str(tmp_path / "o.png"),
         "--weights", str(fifo), "--quiet"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 1
    assert done.stderr == (f"Error: weights file {fifo} is not a regular file; give a .pth/.pt/.safetensors "
                           "file\n")


def test_weights_import_of_a_photo_says_it_is_not_weights(runner, tmp_path, isolated_cache):
    """It says a JPEG given to nst weights import is not a weights file, and installs nothing."""
    from PIL import Image

    photo = tmp_path / "photo.jpg"
    Image.open(make_image(tmp_path / "p.png")).save(photo, format="JPEG")
    result = runner.invoke(nst, ["weights", "import", str(photo)])
    assert result.exit_code == 1
    assert error_line(result) == (f"Error: {photo} is not a weights file (it is a JPEG image); give a "
                                  ".pth/.pt/.safetensors file holding a VGG19 state dict")
    assert not (isolated_cache / sources.CACHE_FILE).exists()


def test_weights_path_says_whether_the_file_is_there(runner, tmp_path, isolated_cache):
    """It prints the cache path, exit 1 with what to do while it is missing, exit 0 once it is there."""
    target = isolated_cache / sources.CACHE_FILE
    missing = runner.invoke(nst, ["weights", "path", "torchvision"])
    assert (missing.exit_code, missing.stdout) == (1, f"{target}\n")
    assert error_line(missing) == (f"Error: no weights at {target} yet: run 'nst weights fetch torchvision' "
                                   "(downloads 548 MB once) or 'nst weights import FILE'")
    import torch

    source = tmp_path / "vgg.pth"
    torch.save(weights.random_state_dict(seed=1), source)
    assert runner.invoke(nst, ["weights", "import", str(source)]).exit_code == 0
    present = runner.invoke(nst, ["weights", "path", "torchvision"])
    assert (present.exit_code, present.stdout, present.stderr) == (0, f"{target}\n", "")


def test_reconstruct_draws_nothing_before_a_download_error(runner, content, tmp_path, monkeypatch):
    """It prints only the error line when the weights download fails: no progress bar is drawn first."""
    import urllib.error

    def offline(url, destination, watchers=()):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(download, "fetch", offline)
    for kind in ("content", "style"):
        result = runner.invoke(nst, ["reconstruct", kind, str(content), "-o", str(tmp_path / "o.png"),
                                     "--size", "32", "--steps", "2", "--weights", "torchvision"])
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1, result.stderr
        assert error_line(result).startswith("Error: could not download torchvision's VGG19 (no network)")


def test_download_with_a_huge_content_length_still_downloads(tmp_path, monkeypatch):
    """It downloads from a server whose Content-Length has 5000 digits (the bar just has no total)."""
    import io
    import urllib.request

    class Response(io.BytesIO):
        headers = {"Content-Length": "9" * 5000}

    watcher = DownloadWatcher()
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(b"weights"))
    download.fetch("https://example.invalid/vgg19.pth", tmp_path / "vgg19.pth", [watcher])
    assert (tmp_path / "vgg19.pth").read_bytes() == b"weights"
    assert watcher.heard == [(0, None), (7, None), "end"]
