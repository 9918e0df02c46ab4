"""The web page's run against the library call with the same settings: seconds and their ratio.

The page is served as people start it (`nst ui --weights random`, a separate Streamlit process) and
driven in headless Chromium: open the page, choose the bundled examples, press Start, wait until the
result's caption shows. Its time runs from the click to that caption, so it includes everything the
page adds to the computation: the rerun, the live preview (encoding, sending and drawing each image),
the progress text and the browser's own work on the same cores. The library's time is one
`api.stylize` call with the same images and config in this process. Both have the network loaded
before they are timed (the page loads it when it first opens), and the two alternate round by round
so that load from other processes hits them alike. Target: page / library at most 1.2.

Wall-clock seconds on a shared machine swing with the load; CPU seconds do not. The table also gives
the CPU time of the library call, of the server process during the page's run, and of the browser
(Chromium, every process): their ratio is the work the page adds, whatever the load.

Without Chromium (or with --driver apptest) the page runs in Streamlit's AppTest in this process
instead: the page's script and live preview, without the server, the browser or the server's threads.

    python benchmarks/ui/ui_speed.py [--size 192] [--steps 40] [--rounds 3] [--driver browser|apptest]
                                  [--serve-with nst|streamlit]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

# The environment as the person running this gave it, before common.py sets torch's thread policy.
GIVEN_ENV = dict(os.environ)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, where common.py is
import common  # noqa: E402
from nstcli import api  # noqa: E402
from nstcli.config.fields import Config  # noqa: E402
from nstcli.ui import server  # noqa: E402
from nstcli.ui.inputs import EXAMPLE_CONTENT, EXAMPLE_STYLE  # noqa: E402

EXAMPLES = "Use the bundled examples"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1400,1400",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT = 900.0


def wait_for(condition, what: str, seconds: float = TIMEOUT, poll: float = 0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    sys.exit(f"timed out after {seconds:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by process `root` and its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    family, grew = {root}, True
    while grew:
        grown = family | {pid for pid, (ppid, _) in stats.items() if ppid in family}
        grew, family = grown != family, grown
    return sum(stats[pid][1] for pid in family if pid in stats) / ticks


class BrowserPage:
    """`nst ui` in its own process, driven by headless Chromium; one fresh browser session per run."""

    def __init__(self, config: Config, folder: Path, serve_with: str):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.port = free_port()
        self.log = open(folder / "server.log", "wb")
        # The server gets the environment this script was given, not what common.py set for torch
        # here: the page must choose its own thread policy, as it does for a person starting it.
        env = dict(GIVEN_ENV)
        if serve_with == "nst":
            config_file = folder / "page.yaml"
            config_file.write_text(f"size: {config.size}\nsteps: {config.steps}\ndevice: {config.device}\n")
            command = [sys.executable, "-m", "nstcli", "ui", "--port", str(self.port), "--weights", config.weights,
                       "--config", str(config_file)]
        else:  # the page started by `streamlit run` directly, without `nst`
            command = server.streamlit_command("127.0.0.1", self.port)
            env[server.CONFIG_ENV] = server.config_to_env(config)
        self.process = subprocess.Popen(
            command,
            # Same session as this process: the kernel's autogroup scheduling gives each session its
            # own share of the CPUs, and a server in a session of its own would be favoured over
            # the library call on a loaded machine.
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: healthy(self.port) or self.process.poll() is not None, "the server", poll=0.5)
        if self.process.poll() is not None:
            sys.exit(f"nst ui exited with {self.process.returncode}: {(folder / 'server.log').read_text()}")
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in CHROMIUM_FLAGS + [f"--user-data-dir={folder / 'profile'}"]:
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(chromedriver()), options=options)

    def captions(self) -> list[str]:
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=\"stImageCaption\"]'))"
            ".map(e => e.textContent.trim())")

    def click(self, selector: str, text: str) -> bool:
        # Found and clicked in one script call: the page re-renders as it reruns, and an element
        # handle fetched one call earlier can already be stale.
        return self.driver.execute_script(
            "const hit = [...document.querySelectorAll(arguments[0])].find(e => e.innerText.trim() == arguments[1]);"
            "if (hit) { hit.click(); } return Boolean(hit);", selector, text)

    def run(self) -> tuple[float, str]:
        """(seconds from pressing Start to the result's caption, that caption)."""
        self.driver.get(f"http://127.0.0.1:{self.port}/")  # a new session: no result from the last round
        wait_for(lambda: self.click("label", EXAMPLES), "the image choice")
        wait_for(lambda: self.captions() == ["content", "style 1"], "the thumbnails")
        server_cpu, browser_cpu = cpu_seconds(self.process.pid), cpu_seconds(self.driver.service.process.pid)
        started = time.perf_counter()
        wait_for(lambda: self.click("button", "Start"), "the Start button")
        caption = wait_for(lambda: next((c for c in self.captions() if c.startswith("Result:")), None), "the result")
        seconds = time.perf_counter() - started
        self.cpu = (cpu_seconds(self.process.pid) - server_cpu, cpu_seconds(self.driver.service.process.pid) - browser_cpu)
        return seconds, caption

    def close(self) -> None:
        self.driver.quit()
        self.process.send_signal(signal.SIGINT)  # Ctrl-C: `nst ui` stops its Streamlit child, Streamlit itself
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class AppTestPage:
    """The page's script in Streamlit's AppTest, in this process."""

    def __init__(self, config: Config):
        os.environ[server.CONFIG_ENV] = server.config_to_env(config)

    def run(self) -> tuple[float, str]:
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(server.APP), default_timeout=TIMEOUT)  # a new session
        at.run()
        at.radio(key="source").set_value(EXAMPLES).run()
        started = time.perf_counter()
        at.button[0].click().run()
        seconds = time.perf_counter() - started
        elements = at.image if hasattr(at, "image") else at.get("imgs")
        captions = [image.caption for element in elements for image in element.proto.imgs]
        return seconds, next((c for c in captions if c.startswith("Result:")), "no result")

    def close(self) -> None:
        pass


def chromedriver() -> str | None:
    return shutil.which("chromedriver") or next(
        (path for path in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if Path(path).is_file()), None)


def browser_available() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return bool(shutil.which("chromium") and chromedriver())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--driver", choices=["auto", "browser", "apptest"], default="auto")
    parser.add_argument("--serve-with", choices=["nst", "streamlit"], default="nst",
                        help="start the page with `nst ui` or with `streamlit run` directly (browser only)")
    args = parser.parse_args()
    driver = args.driver
    if driver == "auto":
        driver = "browser" if browser_available() else "apptest"
    warnings.simplefilter("ignore")  # the untrained-network warning, once per run

    config = Config(weights="random", size=args.size, steps=args.steps, device="cpu")
    # What the page hands api.stylize for these settings (app.py turns checkpoints off).
    run_config = config.replace(checkpoint_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        page = BrowserPage(config, Path(tmp), args.serve_with) if driver == "browser" else AppTestPage(config)
        try:
            # The network is loaded before anything is timed: the page loads it when it first opens.
            api.load_network(run_config)

            def one_round(label):
                started, cpu = time.perf_counter(), time.process_time()
                result = api.stylize(EXAMPLE_CONTENT, [EXAMPLE_STYLE], config=run_config)
                library, library_cpu = time.perf_counter() - started, time.process_time() - cpu
                page_seconds, caption = page.run()
                summary = result.summary()
                if not caption.startswith(f"Result: {summary['width']}x{summary['height']} px, {args.steps} steps"):
                    sys.exit(f"the page did not show the expected result: {caption!r}")
                if not hasattr(page, "cpu"):  # AppTest: no server process, no browser
                    return [label, library, page_seconds, page_seconds / library, library_cpu, "-", "-", "-"]
                server_cpu, browser_cpu = page.cpu
                return [label, library, page_seconds, page_seconds / library, library_cpu, server_cpu, browser_cpu,
                        (server_cpu + browser_cpu) / library_cpu]

            # Each process's first run pays one-off costs (kernel set-up for the shapes, first imports);
            # shown, but kept out of the median.
            first = one_round("first run")
            rows = [one_round(round_) for round_ in range(1, args.rounds + 1)]
        finally:
            page.close()
    served = f"served by {args.serve_with}, " if driver == "browser" else ""
    print(f"{args.size} px, {args.steps} steps, --weights random, page {served}driven by {driver}; "
          f"{common.machine()}")
    print()
    median = ["median"] + [common.median([row[i] for row in rows]) if isinstance(rows[0][i], float) else "-"
                           for i in range(1, 8)]
    # For the ratio columns this is the median of the rounds' ratios, not the ratio of the medians.
    rows = [first] + rows + [median]
    print(common.table(["round", "library s", "page s", "page / library", "library CPU s", "server CPU s",
                        "browser CPU s", "page CPU / library CPU"], rows))


if __name__ == "__main__":
    main()
