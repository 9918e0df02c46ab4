"""The web page: `nst ui`, the upload checks, the live preview, the page's flows (AppTest), and one
end-to-end run in headless Chromium."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import error_line, free_port, make_image
from nstcli.cli.main import nst
from nstcli.config.fields import FIELDS, Config
from nstcli.optim.engine import StepReport
from nstcli.extras import install_command
from nstcli.errors import ImageError
from nstcli.ui import server
from nstcli.ui.inputs import EXAMPLE_CONTENT, EXAMPLE_STYLE, accept_upload
from nstcli.ui.live import LivePreview

REPO = Path(__file__).resolve().parents[2]
REAL_REQUIRE_STREAMLIT = server.require_streamlit
MB = 2**20


def require(module: str):
    """Import `module`, or skip the test; under CI (env CI set) a missing module fails it instead."""
    try:
        return __import__(module)
    except ImportError:
        message = f"{module} is not installed (pip install -e '.[test,ui]')"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run this test")
        pytest.skip(message)


class FakeServer:
    """Stands in for the Streamlit child process: records how it was started and how it was stopped."""

    started: list = []

    def __init__(self, command, env, exit_code=0, interrupt=False):
        self.command, self.env = command, env
        self.exit_code, self.interrupt = exit_code, interrupt
        self.signals: list[int] = []
        self.returncode = None
        FakeServer.started.append(self)

    def wait(self, timeout=None):
        if self.interrupt and not self.signals:
            raise KeyboardInterrupt  # Ctrl-C while `nst ui` waits for the server
        self.returncode = self.exit_code
        return self.exit_code

    def poll(self):
        return self.returncode

    def send_signal(self, number):
        self.signals.append(number)

    def kill(self):
        self.signals.append(signal.SIGKILL)


@pytest.fixture
def fake_popen(monkeypatch):
    """Streamlit is never really started; a test sets options (exit_code, interrupt) in the dict returned."""
    FakeServer.started = []
    options = {}

    def popen(command, env):
        return FakeServer(command, env, **options)

    monkeypatch.setattr(server.subprocess, "Popen", popen)
    monkeypatch.setattr(server, "require_streamlit", lambda: None)
    return options


# --- nst ui ---------------------------------------------------------------------------------------

def test_ui_without_streamlit_says_how_to_install(runner, monkeypatch, fake_popen):
    """It exits 1 with one Error line naming the extra to install when streamlit cannot be imported."""
    monkeypatch.setattr(server, "require_streamlit", REAL_REQUIRE_STREAMLIT)
    monkeypatch.setitem(sys.modules, "streamlit", None)  # makes `import streamlit` raise ImportError
    result = runner.invoke(nst, ["ui", "--port", str(free_port())])
    assert result.exit_code == 1
    assert error_line(result) == ("Error: the web page needs Streamlit, which is not installed; install it "
                                  f"with: {install_command('ui')}")
    assert FakeServer.started == []


def test_ui_starts_streamlit_on_localhost_with_the_config(runner, fake_popen, tmp_path):
    """It runs the page with Streamlit bound to 127.0.0.1:PORT, headless, and hands over the config."""
    config = tmp_path / "page.yaml"
    config.write_text("size: 64\nsteps: 7\n")
    port = free_port()
    result = runner.invoke(nst, ["ui", "--port", str(port), "--weights", "random", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (started,) = FakeServer.started
    command = started.command
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(server.APP)]
    options = dict(zip(command[5::2], command[6::2]))
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.port"] == str(port)
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"
    handed = server.config_from_env(started.env)
    assert handed == Config(weights="random", size=64, steps=7)
    assert json.loads(started.env[server.CONFIG_ENV])["weights"] == "random"


def test_ui_server_lets_idle_threads_sleep(runner, fake_popen, monkeypatch):
    """It starts the server with OMP_WAIT_POLICY=PASSIVE, the thread policy `nst` runs with."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    result = runner.invoke(nst, ["ui", "--port", str(free_port()), "--weights", "random"])
    assert result.exit_code == 0, result.output
    assert FakeServer.started[0].env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_ui_server_keeps_a_thread_policy_the_user_set(runner, fake_popen, monkeypatch):
    """It hands the server the OMP_WAIT_POLICY the user chose."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    result = runner.invoke(nst, ["ui", "--port", str(free_port()), "--weights", "random"])
    assert result.exit_code == 0, result.output
    assert FakeServer.started[0].env["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.e2e
def test_page_sets_the_thread_policy_before_torch_loads(tmp_path):
    """It sets OMP_WAIT_POLICY=PASSIVE before torch is imported when started without `nst ui`."""
    require("streamlit")
    import nstcli

    probe = (
        "import os, sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "class Watch:\n"  # records the policy at the moment torch is first imported
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and 'torch' not in sys.modules:\n"
        "            print('policy at import:', os.environ.get('OMP_WAIT_POLICY'))\n"
        "sys.meta_path.insert(0, Watch())\n"
        f"at = AppTest.from_file({str(server.APP)!r}, default_timeout=120).run()\n"
        "assert not at.exception, at.exception\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    env.pop(server.CONFIG_ENV, None)
    env[server.CONFIG_ENV] = server.config_to_env(Config(weights="random", device="cpu"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(nstcli.__file__).resolve().parents[1]),
                                                      os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["policy at import: PASSIVE"]


def test_ui_ctrl_c_stops_the_server_and_exits_0(runner, fake_popen):
    """It stops the Streamlit child (SIGTERM) on Ctrl-C and exits 0 without an error line."""
    fake_popen["interrupt"] = True
    result = runner.invoke(nst, ["ui", "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    assert "Error" not in result.stderr
    assert FakeServer.started[0].signals == [signal.SIGTERM]


def test_ui_reports_a_server_that_fails(runner, fake_popen):
    """It exits 1 with an Error line when Streamlit itself exits with an error."""
    fake_popen["exit_code"] = 3
    result = runner.invoke(nst, ["ui", "--port", str(free_port())])
    assert result.exit_code == 1
    assert error_line(result) == ("Error: the Streamlit server stopped with exit code 3; see its messages "
                                  "above")


def test_ui_refuses_a_port_in_use(runner, fake_popen):
    """It exits 1 naming the address when the port is taken, before starting Streamlit."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(nst, ["ui", "--port", str(port)])
    assert result.exit_code == 1
    assert error_line(result).startswith(f"Error: cannot listen on 127.0.0.1:{port} (")
    assert error_line(result).endswith("); choose another --port or --host")
    assert FakeServer.started == []


def test_ui_bad_config_is_a_usage_error(runner, fake_popen, tmp_path):
    """It exits 2 on a bad config key without starting Streamlit."""
    config = tmp_path / "page.yaml"
    config.write_text("stpes: 7\n")
    result = runner.invoke(nst, ["ui", "--config", str(config)])
    assert result.exit_code == 2
    assert "'stpes'" in error_line(result) and "did you mean 'steps'?" in error_line(result)
    assert FakeServer.started == []


def test_config_from_env_defaults_without_nst_ui():
    """It gives the default config when the page is started by `streamlit run` directly."""
    assert server.config_from_env({}) == Config()


# --- uploads and examples ----------------------------------------------------------------------------

def test_accept_upload_writes_a_readable_image(tmp_path):
    """It writes a good upload as STEM.EXT in the folder and returns that path."""
    source = make_image(tmp_path / "mine.png", size=(40, 30))
    folder = tmp_path / "uploads"
    folder.mkdir()
    path = accept_upload("holiday photo.PNG", source.read_bytes(), folder, "content", 10 * MB)
    assert path == folder / "content.png"
    assert path.read_bytes() == source.read_bytes()


def test_accept_upload_names_the_upload_when_it_is_not_an_image(tmp_path):
    """It raises ImageError naming the uploaded file (not the temporary path) and keeps no file."""
    with pytest.raises(ImageError) as caught:
        accept_upload("notes.jpg", b"these are my notes", tmp_path, "content", 10 * MB)
    assert str(caught.value) == ("upload 'notes.jpg' is not an image Pillow can read; give a PNG, JPEG, "
                                 "WebP, TIFF, BMP or GIF file")
    assert list(tmp_path.iterdir()) == []


def test_accept_upload_refuses_too_many_bytes(tmp_path):
    """It refuses an upload over the byte limit before writing it."""
    with pytest.raises(ImageError) as caught:
        accept_upload("big.png", b"x" * (3 * MB), tmp_path, "content", 2 * MB)
    assert str(caught.value) == "upload 'big.png' is 3.0 MB, more than the 2 MB limit; shrink it first"
    assert list(tmp_path.iterdir()) == []


def test_accept_upload_refuses_too_many_pixels(tmp_path):
    """It refuses an image declaring more than 100 megapixels, naming the upload."""
    huge = tmp_path / "source" / "huge.png"
    huge.parent.mkdir()
    Image.new("1", (10_001, 10_001)).save(huge)  # ~100 MP, a few kB on disk
    folder = tmp_path / "uploads"
    folder.mkdir()
    with pytest.raises(ImageError) as caught:
        accept_upload("huge.png", huge.read_bytes(), folder, "style-0", 10 * MB)
    assert str(caught.value).startswith("upload 'huge.png' declares")
    assert list(folder.iterdir()) == []


def test_accept_upload_keeps_hostile_names_inside_the_folder(tmp_path):
    """It ignores path parts of an uploaded file's name."""
    source = make_image(tmp_path / "a.png")
    folder = tmp_path / "uploads"
    folder.mkdir()
    path = accept_upload("../../etc/passwd.png", source.read_bytes(), folder, "style-0", 10 * MB)
    assert path == folder / "style-0.png"


def test_bundled_examples_are_the_repository_examples():
    """It ships byte-identical copies of examples/content.jpg and examples/style.jpg in the package."""
    assert filecmp.cmp(EXAMPLE_CONTENT, REPO / "examples" / "content.jpg", shallow=False)
    assert filecmp.cmp(EXAMPLE_STYLE, REPO / "examples" / "style.jpg", shallow=False)


# --- live preview ---------------------------------------------------------------------------------

class Recorder:
    """Stands in for a Streamlit placeholder: records progress and image calls."""

    def __init__(self):
        self.calls = []

    def progress(self, value, text=None):
        self.calls.append(("progress", value, text))

    def image(self, image, caption=None):
        self.calls.append(("image", image.size, caption))


class Clock:
    """A stand-in for time.monotonic that the test moves on by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_preview(steps: int, seconds_per_step: float, terms=None) -> tuple[Recorder, Recorder, LivePreview]:
    """Feed LivePreview `steps` reports, `seconds_per_step` apart on a fake clock."""
    bar, picture, clock = Recorder(), Recorder(), Clock()
    preview = LivePreview(bar, picture, progress_interval=0.5, image_interval=2.0, clock=clock)
    preview.on_start(steps)
    image = torch.rand(1, 3, 8, 12)
    for step in range(1, steps + 1):
        clock.now = step * seconds_per_step
        preview.on_step(StepReport(step=step, total=steps, loss=3.0,
                                   terms=terms or {"content": 1.0, "style": 2.0}, image=image))
    return bar, picture, preview


def test_live_preview_paces_updates_by_the_clock():
    """It updates the text every half second and the image every 2 s of a run, and always at the end."""
    bar, picture, preview = run_preview(40, 0.25)  # 10 s: exact binary fractions, no rounding
    assert bar.calls[0] == ("progress", 0.0, "Step 0 / 40")
    assert [text for _, _, text in bar.calls[1:]] == [
        f"Step {step} / 40 · content 1 · style 2" for step in range(2, 41, 2)]
    assert bar.calls[-1][1] == 1.0
    assert picture.calls == [("image", (12, 8), f"Step {step}") for step in (8, 16, 24, 32, 40)]
    assert preview.shown == [8, 16, 24, 32, 40]


def test_live_preview_does_not_push_every_step_of_a_fast_run():
    """It sends 2 images and 6 texts for 192 steps in 3 s (paced by steps, it sent 22 and 192)."""
    bar, picture, _ = run_preview(192, 1 / 64)
    assert [caption for _, _, caption in picture.calls] == ["Step 128", "Step 192"]
    assert [text.split(" · ")[0] for _, _, text in bar.calls[1:]] == [
        f"Step {step} / 192" for step in (32, 64, 96, 128, 160, 192)]


def test_live_preview_shows_every_step_of_a_slow_run():
    """It shows the text and the image of every step when each step takes longer than the intervals."""
    bar, picture, _ = run_preview(3, 2.5)
    assert [caption for _, _, caption in picture.calls] == ["Step 1", "Step 2", "Step 3"]
    assert len(bar.calls) == 4


def test_live_preview_shows_every_loss_term():
    """It lists every term the run reports in the progress text, in the run's order."""
    bar, _, _ = run_preview(1, 1.0, terms={"content": 1.0, "style": 20.0, "tv": 0.5, "temporal": 0.25})
    assert bar.calls[-1] == ("progress", 1.0, "Step 1 / 1 · content 1 · style 20 · tv 0.5 · temporal 0.25")


# --- the page (AppTest) ------------------------------------------------------------------------------

@pytest.fixture
def page(monkeypatch):
    """The page as AppTest runs it, with an untrained network and tiny runs."""
    require("streamlit")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(server.CONFIG_ENV, server.config_to_env(
        Config(weights="random", size=32, steps=3, device="cpu")))
    return AppTest.from_file(str(server.APP), default_timeout=120)


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def image_captions(at) -> list[str]:
    elements = at.image if hasattr(at, "image") else at.get("imgs")
    return [img.caption for element in elements for img in element.proto.imgs]


def test_page_renders_its_controls(page):
    """It shows the random-weights banner, the image choices and every setting with the config's values."""
    at = page.run()
    assert not at.exception
    assert len(at.warning) == 1 and "Untrained network (weights: random)" in at.warning[0].value
    assert at.radio(key="source").options == ["Upload my own", "Use the bundled examples"]
    assert [uploader.label for uploader in at.file_uploader] == [
        "Content image (the photo)", "Style images (one or more paintings, blended equally)"]
    assert at.number_input(key="size").value == 32
    assert at.number_input(key="steps").value == 3
    assert at.number_input(key="style_weight").value == 90.0
    # Steps scaled to the starting values: +/- moves the default style weight 90 by 10, not 100.
    assert at.number_input(key="style_weight").step == 10.0
    assert at.number_input(key="content_weight").value == 1.0
    assert at.number_input(key="content_weight").step == 0.1
    assert at.number_input(key="seed").value == 0
    assert at.selectbox(key="optimizer").options == ["lbfgs", "adam"]
    # The colour control follows the config: present exactly when the key exists.
    assert ("preserve_color" in [box.key for box in at.selectbox]) == ("preserve_color" in FIELDS)
    # The built-in styles (nst styles) are trained networks the page always offers, in a form of their own.
    assert [button.label for button in at.button] == ["Start", "Apply network"]
    assert at.get("download_button") == []


def test_page_runs_the_bundled_examples(page):
    """It stylises the bundled examples on Start and shows the result, a download and the loss curve."""
    at = page.run()
    at.radio(key="source").set_value("Use the bundled examples").run()
    assert image_captions(at) == ["content", "style 1"]
    at.button[0].click().run()
    assert not at.exception
    assert texts(at.error) == []
    captions = image_captions(at)
    assert captions[:2] == ["content", "style 1"]
    assert captions[2].startswith("Result: 32x21 px, 3 steps in ")
    assert captions[2].endswith(" s on cpu, weights random")
    (download,) = at.get("download_button")
    assert download.label == "Download PNG"
    assert download.proto.url  # the PNG is served
    # The loss curve (the element's name changed across Streamlit versions).
    assert len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart")) == 1


def test_page_steps_replace_a_recipes_first_steps(monkeypatch):
    """It runs the steps set on the page, not the server config's first_steps, once they differ."""
    require("streamlit")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(server.CONFIG_ENV, server.config_to_env(
        Config(weights="random", size=32, steps=3, first_steps=1000, start_size=None, device="cpu")))
    at = AppTest.from_file(str(server.APP), default_timeout=120).run()
    at.radio(key="source").set_value("Use the bundled examples").run()
    at.number_input(key="steps").set_value(2)
    at.button[0].click().run()
    assert not at.exception
    assert texts(at.error) == []
    assert image_captions(at)[2].startswith("Result: 32x21 px, 2 steps in ")


def chart_series(at) -> dict[str, list[int]]:
    """The loss chart's lines: series name -> the steps it has points at (decoded from its Arrow data)."""
    pyarrow, pandas = require("pyarrow"), require("pandas")
    (chart,) = at.get("vega_lite_chart") + at.get("arrow_vega_lite_chart")
    blobs = [dataset.data.data for dataset in chart.proto.datasets] + [chart.proto.data.data]
    (frame,) = [pyarrow.ipc.open_stream(blob).read_all().to_pandas() for blob in blobs if blob]
    # st.line_chart melts the columns into (step, series name, value) rows.
    (names,) = [column for column in frame.columns if not pandas.api.types.is_numeric_dtype(frame[column])]
    return {name: sorted(rows["step"]) for name, rows in frame.groupby(names)}


def test_page_charts_every_loss_term_of_the_run(monkeypatch):
    """It draws one loss line per term the run has (tv too, when the config weights it) and names them."""
    require("streamlit")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(server.CONFIG_ENV, server.config_to_env(
        Config(weights="random", size=32, steps=3, device="cpu", tv_weight=1e-3)))
    at = AppTest.from_file(str(server.APP), default_timeout=120).run()
    at.radio(key="source").set_value("Use the bundled examples").run()
    at.button[0].click().run()
    assert not at.exception and texts(at.error) == []
    assert chart_series(at) == {"content": [1, 2, 3], "style": [1, 2, 3], "tv": [1, 2, 3]}
    assert "Loss per step: the weighted terms (content, style, tv)." in texts(at.caption)


def test_page_passes_every_setting_to_the_run(page, monkeypatch):
    """It builds the run's config from the controls, on top of the server's config."""
    from nstcli import api

    seen = []
    real_stylize = api.stylize

    def recording_stylize(content, styles, *args, config, **kwargs):
        seen.append((Path(content).name, [Path(style).name for style in styles], config))
        return real_stylize(content, styles, *args, config=config, **kwargs)

    monkeypatch.setattr(api, "stylize", recording_stylize)
    at = page.run()
    at.radio(key="source").set_value("Use the bundled examples").run()
    at.number_input(key="size").set_value(40)
    at.number_input(key="steps").set_value(2)
    at.selectbox(key="optimizer").set_value("adam")
    at.number_input(key="style_weight").set_value(5.0)
    at.number_input(key="content_weight").set_value(2.0)
    at.number_input(key="seed").set_value(7)
    colour = {}
    if "preserve_color" in FIELDS:  # the control exists exactly when the config key does
        at.selectbox(key="preserve_color").set_value("luminance")
        colour = {"preserve_color": "luminance"}
    at.button[0].click().run()
    assert not at.exception and texts(at.error) == []
    (content, styles, config), = seen
    assert (content, styles) == ("content.jpg", ["style.jpg"])
    assert config == Config(weights="random", device="cpu", size=40, steps=2, optimizer="adam", style_weight=5.0,
                            content_weight=2.0, seed=7, checkpoint_every=0, **colour)
    assert image_captions(at)[2].startswith("Result: 40x27 px, 2 steps in ")


def test_page_shows_a_bad_upload_as_an_error(page):
    """It shows an error naming a non-image upload, and Start then asks for images instead of failing."""
    at = page.run()
    if not hasattr(at.file_uploader[0], "upload"):
        pytest.skip("this streamlit's AppTest cannot upload files (accept_upload is tested directly)")
    at.file_uploader(key="content").upload("photo.jpg", b"not a picture", "image/jpeg").run()
    assert not at.exception
    assert texts(at.error) == ["Error: upload 'photo.jpg' is not an image Pillow can read; give a PNG, "
                               "JPEG, WebP, TIFF, BMP or GIF file"]
    at.button[0].click().run()
    assert not at.exception
    assert "Error: choose a content image and at least one style image first (or use the bundled examples)" \
        in texts(at.error)
    assert at.get("download_button") == []


def test_page_runs_uploaded_images(page, tmp_path):
    """It stylises an uploaded content image with two uploaded styles."""
    at = page.run()
    if not hasattr(at.file_uploader[0], "upload"):
        pytest.skip("this streamlit's AppTest cannot upload files (accept_upload is tested directly)")
    content = make_image(tmp_path / "c.png", size=(48, 32), seed=1).read_bytes()
    styles = [make_image(tmp_path / f"s{i}.png", size=(40, 40), seed=i + 2).read_bytes() for i in range(2)]
    at.file_uploader(key="content").upload("cat.png", content, "image/png")
    at.file_uploader(key="styles").upload("a.png", styles[0], "image/png").upload("b.png", styles[1], "image/png")
    at.run()
    assert image_captions(at) == ["content", "style 1", "style 2"]
    at.button[0].click().run()
    assert not at.exception and texts(at.error) == []
    assert image_captions(at)[3].startswith("Result: 32x21 px, 3 steps")
    assert len(at.get("download_button")) == 1


def test_page_shows_a_run_error_naming_the_upload(page, tmp_path):
    """It shows the library's error for an image too thin for the network, naming the uploaded file."""
    at = page.run()
    if not hasattr(at.file_uploader[0], "upload"):
        pytest.skip("this streamlit's AppTest cannot upload files")
    strip = make_image(tmp_path / "strip.png", size=(120, 10)).read_bytes()  # 32x3 px at size 32
    style = make_image(tmp_path / "s.png", size=(40, 40)).read_bytes()
    at.file_uploader(key="content").upload("strip.png", strip, "image/png")
    at.file_uploader(key="styles").upload("s.png", style, "image/png")
    at.run()
    at.button[0].click().run()
    assert not at.exception
    (error,) = texts(at.error)
    assert error.startswith("Error: upload 'strip.png' would be 32x3 px at --size 32; the layers used need at least ")
    assert at.get("download_button") == []


def test_page_reports_a_bug_in_one_line(page, monkeypatch, capsys):
    """It shows an unexpected exception as one error line on the page and the traceback on stderr."""
    from nstcli import api

    def broken(*args, **kwargs):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(api, "stylize", broken)
    at = page.run()
    at.radio(key="source").set_value("Use the bundled examples").run()
    at.button[0].click().run()
    assert not at.exception
    assert texts(at.error) == ["Error: unexpected RuntimeError: something broke (the traceback is in the "
                               "terminal running nst ui; please report it)"]
    assert "Traceback" in capsys.readouterr().err


def test_page_shows_weights_problems_on_load(page, monkeypatch):
    """It shows a failed weights download on the page when it opens, with what to do."""
    from nstcli.network import download

    def offline(url, destination, watchers=()):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(download, "fetch", offline)
    monkeypatch.setenv(server.CONFIG_ENV, server.config_to_env(Config(weights="imagenet", device="cpu")))
    at = page.run()
    assert not at.exception
    (error,) = texts(at.error)
    assert error.startswith("Error: could not download torchvision's VGG19 (no network); download ")
    assert "nst weights import FILE" in error
    assert at.warning == []  # imagenet weights: no "untrained" banner
    assert at.button == []


# --- end to end: `nst ui` in headless Chromium ----------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1400"]


def missing(message: str):
    """Skip locally; under CI (env CI set) fail, because CI must run the browser test."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the browser test (apt-get install -y chromium chromium-driver)")
    pytest.skip(message)


def wait_for(condition, seconds: float, what: str, server_process=None, server_log=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if server_process is not None and server_process.poll() is not None:
            pytest.fail(f"nst ui exited with {server_process.returncode} while waiting for {what}:\n"
                        f"{server_log.read_text()}")
        time.sleep(0.5)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.e2e
def test_browser_end_to_end(tmp_path):
    """It serves the page with `nst ui`, stylises two uploaded images in Chromium and stops on Ctrl-C."""
    require("streamlit")
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not browser or not Path(driver_path).is_file():
        missing("chromium and chromedriver are not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        missing("selenium is not installed")
    import nstcli

    # NSTCLI_UPDATE_SCREENSHOT=1 makes a run worth looking at for docs/ui.png; normally the run is tiny.
    update_screenshot = os.environ.get("NSTCLI_UPDATE_SCREENSHOT") == "1"
    size, steps = (192, 40) if update_screenshot else (64, 5)
    # The figure shows what users get, the original VGG19; the routine run checks the untrained
    # network's banner and costs less.
    weights = "original" if update_screenshot else "random"
    config = tmp_path / "page.yaml"
    config.write_text(f"size: {size}\nsteps: {steps}\ndevice: cpu\n")
    port = free_port()
    log = tmp_path / "server.log"
    # The server imports the same nstcli as this test, wherever it comes from.
    source = str(Path(nstcli.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "nstcli", "ui", "--port", str(port), "--weights", weights,
             "--config", str(config)],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
            start_new_session=True)  # its own process group, so Ctrl-C can be sent as a terminal would
    driver = None
    try:
        wait_for(lambda: healthy(port), 120, "the server to answer", process, log)
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        driver.get(f"http://127.0.0.1:{port}/")

        uploaders = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "input[type=file]"), 120,
                             "the file uploaders", process, log)
        assert len(uploaders) == 2
        uploaders[0].send_keys(str(EXAMPLE_CONTENT))
        uploaders[1].send_keys(str(EXAMPLE_STYLE))

        def captions():
            # Read in one script call: the page re-renders while a run progresses, and element handles
            # fetched one call earlier can already be stale.
            return driver.execute_script(
                "return Array.from(document.querySelectorAll('[data-testid=\"stImageCaption\"]'))"
                ".map(e => e.textContent.trim())")

        wait_for(lambda: captions() == ["content", "style 1"], 60, "the thumbnails", process, log)
        # The form renders after the thumbnails on a busy machine: wait for its button, not just look.
        (start,) = wait_for(lambda: [button for button in driver.find_elements(By.TAG_NAME, "button")
                                     if button.text == "Start"], 60, "the Start button", process, log)
        start.click()
        width, height = size, round(341 * size / 512)
        expected = f"Result: {width}x{height} px, {steps} steps in "
        wait_for(lambda: any(text.startswith(expected) for text in captions()), 600, "the result", process, log)

        def result_pixels():
            """The result <img>'s decoded size, once the browser has loaded it."""
            return driver.execute_script(
                "const captions = [...document.querySelectorAll('[data-testid=\"stImageCaption\"]')];"
                "const caption = captions.find(c => c.innerText.startsWith('Result:'));"
                "const img = caption.closest('[data-testid=\"stImageContainer\"]').querySelector('img');"
                "return img.complete && img.naturalWidth ? [img.naturalWidth, img.naturalHeight] : null;")

        assert wait_for(result_pixels, 60, "the result image to load", process, log) == [width, height]
        assert wait_for(lambda: [b.text for b in driver.find_elements(
            By.CSS_SELECTOR, '[data-testid="stDownloadButton"] button')], 60, "the download button", process, log) \
            == ["Download PNG"]
        warnings = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentWarning"]')]
        if weights == "random":
            assert any("Untrained network (weights: random)" in text for text in warnings), warnings
        else:
            assert not any("Untrained network" in text for text in warnings), warnings
        assert driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]') == []

        # The loss curve: vega-embed draws it into a canvas (or an svg) inside the chart element; the
        # screenshot waits until it has drawn something (a canvas with a painted pixel, an svg path).
        drawn = ("const chart = document.querySelector('[data-testid=\"stVegaLiteChart\"]');"
                 "if (!chart) return false;"
                 "if (chart.querySelector('svg path')) return true;"
                 "const canvas = chart.querySelector('canvas');"
                 "if (!canvas || !canvas.width || !canvas.height) return false;"
                 "const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;"
                 "for (let i = 3; i < pixels.length; i += 4) { if (pixels[i]) return true; }"
                 "return false;")
        wait_for(lambda: driver.execute_script(drawn), 60, "the loss curve to be drawn", process, log)
        screenshot = tmp_path / "ui.png"
        assert driver.save_screenshot(str(screenshot))
        with Image.open(screenshot) as shot:
            assert shot.size[0] >= 1000
        if update_screenshot:
            (REPO / "docs").mkdir(exist_ok=True)
            shutil.copyfile(screenshot, REPO / "docs" / "ui.png")
    finally:
        if driver is not None:
            driver.quit()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it to the whole group
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    output = log.read_text()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert f"URL: http://127.0.0.1:{port}" in output
