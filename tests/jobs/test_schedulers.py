"""nst batch under real schedulers: a one-node SLURM cluster started here, and GNU parallel.

Both run the example scripts as a user would (examples/slurm_array.sh, examples/parallel.sh), over
six tiny images split two per shard, and check that every output is written exactly once with no
temporary file left, and that a shard killed in the middle of an item is finished by a re-run
without redoing anything. They need root and Debian's slurmd, slurmctld, slurm-client, munge and
parallel packages: without them they are skipped, except under CI, where they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import nstcli
from nstcli.jobs.shards import shard_of

from helpers import free_port, make_image

pytestmark = pytest.mark.e2e  # a SLURM cluster and GNU parallel, started here

ROOT = Path(__file__).parents[2]
SLURM_SCRIPT = ROOT / "examples" / "slurm_array.sh"
PARALLEL_SCRIPT = ROOT / "examples" / "parallel.sh"
SRC = str(Path(nstcli.__file__).parents[1])  # jobs run the code under test, not an installed copy
SHARDS = 3
# Tiny and quick; SLOW makes an item last a few seconds, long enough to stop a shard inside one (every
# step run: no plateau stop).
QUICK = ["--weights", "random", "--size", "32", "--steps", "2", "--checkpoint-every", "0", "--quiet"]
SLOW = ["--weights", "random", "--size", "32", "--steps", "100", "--stop-tolerance", "0", "--checkpoint-every", "0",
        "--quiet"]
TIMEOUT = 120.0  # seconds any one wait may take before the test gives up (and says what it saw)


def need(*programs: str) -> None:
    """Skip when a program is missing (or we are not root), but fail under CI, where they must run."""
    missing = [name for name in programs if shutil.which(name) is None]
    problem = ""
    if missing:
        problem = f"missing {' '.join(missing)} (apt-get install slurmd slurmctld slurm-client munge parallel)"
    elif os.geteuid() != 0:
        problem = "the scheduler tests run the SLURM daemons as root"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the scheduler tests")
        pytest.skip(problem)


def job_environment() -> dict:
    """The test's environment, with this Python's `nst` first on PATH and the source under test."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    env.pop("OMP_NUM_THREADS", None)  # the scripts choose it
    return env


def wait_for(condition, what: str, timeout: float = TIMEOUT, details=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{details()}")


def six_images(folder: Path) -> dict[int, list[str]]:
    """Six content images named so that each of the three shards gets two; {shard: [output names]}."""
    by_shard: dict[int, list[str]] = {k: [] for k in range(1, SHARDS + 1)}
    index = 0
    while any(len(names) < 2 for names in by_shard.values()):
        name = f"p{index}__style.png"
        shard = shard_of(name, SHARDS)
        if len(by_shard[shard]) < 2:
            make_image(folder / f"p{index}.png", size=(40, 28), seed=index)
            by_shard[shard].append(name)
        index += 1
    return by_shard


def in_plan_order(names: list[str]) -> list[str]:
    """Output names in the order a batch runs them: by content file name (p10.png before p2.png)."""
    return sorted(names, key=lambda name: name.split("__")[0] + ".png")


def stamps(out: Path) -> dict[str, tuple[int, int]]:
    """Every entry of the output folder (temporary files included) with its inode and mtime."""
    return {entry.name: (entry.stat().st_ino, entry.stat().st_mtime_ns) for entry in out.iterdir()}


def json_rows(*files: Path) -> list[dict]:
    return [json.loads(line) for file in files for line in file.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------ SLURM


class OneNodeSlurm:
    """munged, slurmctld and slurmd in the foreground as our own children, all state in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.node = socket.gethostname().split(".")[0]
        self.conf = folder / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.daemons: list[subprocess.Popen] = []

    def start(self) -> None:
        folder = self.folder
        for sub in ("state", "spool"):
            (folder / sub).mkdir()
        key = folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        socket_path = folder / "munge.socket"
        self._daemon(["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={socket_path}",
                      f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
                      f"--seed-file={folder / 'munged.seed'}"], "munged")
        wait_for(socket_path.exists, "munged's socket", 30, self.logs)
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        self.conf.write_text("\n".join([
            "ClusterName=nsttest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", f"AuthInfo=socket={socket_path}", "CredType=cred/munge",
            # No cgroups inside a test machine or container: track processes by parent, bind nothing.
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'slurmd.log'}",
            "SchedulerType=sched/builtin", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "ReturnToService=2", "MpiDefault=none", "JobCompType=jobcomp/none",
            "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
            "KillWait=10",
            # The node is what this machine has; config_overrides keeps slurmd from draining it when
            # the detected sockets or memory differ slightly from these numbers.
            "SlurmdParameters=config_overrides",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb} "
            "State=UNKNOWN",
            f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")
        self._daemon(["slurmctld", "-D", "-f", str(self.conf)], "slurmctld")
        self._daemon(["slurmd", "-D", "-N", self.node, "-f", str(self.conf)], "slurmd")
        wait_for(lambda: self._node_state() == "idle", "the node to be idle (sinfo)", 60, self.logs)

    def _daemon(self, command: list[str], name: str) -> None:
        with open(self.folder / f"{name}.out", "wb") as log:
            self.daemons.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env))

    def _node_state(self) -> str:
        for daemon in self.daemons:
            if daemon.poll() is not None:
                raise AssertionError(f"{daemon.args[0]} exited with {daemon.returncode}\n{self.logs()}")
        done = self.run(["sinfo", "-h", "-N", "-o", "%t"], check=False)
        return done.stdout.strip()

    def run(self, command: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        done = subprocess.run(command, capture_output=True, text=True, env=kwargs.pop("env", self.env),
                              timeout=60, **kwargs)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {done.returncode}: {done.stderr}\n{self.logs()}")
        return done

    def jobs(self) -> list[str]:
        return self.run(["squeue", "-h", "-o", "%i"]).stdout.split()

    def wait_until_gone(self, job: str) -> None:
        """Until no task of `job` (e.g. '7' or '7_1') is pending or running."""
        wait_for(lambda: not any(j == job or j.startswith(f"{job}_") or j.startswith(f"{job}_[")
                                 for j in self.jobs()), f"job {job} to end", details=self.logs)

    def logs(self) -> str:
        tails = []
        for name in ("slurmctld.log", "slurmd.log", "munged.log", "slurmctld.out", "slurmd.out"):
            path = self.folder / name
            if path.exists():
                tails.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(tails)

    def stop(self) -> None:
        """Cancel what is left, then stop the daemons (newest first), each by its own pid."""
        try:
            if any(d.poll() is None for d in self.daemons[1:]):
                for job in self.jobs():
                    self.run(["scancel", job], check=False)
                wait_for(lambda: not self.jobs(), "cancelled jobs to end", 30)
        except (AssertionError, OSError, subprocess.SubprocessError):
            pass  # stop the daemons whatever state the cluster is in
        finally:
            for daemon in reversed(self.daemons):
                if daemon.poll() is None:
                    daemon.send_signal(signal.SIGTERM)
                    try:
                        daemon.wait(15)
                    except subprocess.TimeoutExpired:
                        daemon.kill()
                        daemon.wait(5)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    need("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "scontrol")
    cluster = OneNodeSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        assert all(d.poll() is not None for d in cluster.daemons), "a SLURM daemon is still running"


def submit(slurm: OneNodeSlurm, jobs: Path, photos: Path, style: Path, out: Path, options: list[str]) -> str:
    """The README's sbatch line (with a node-sized task), run from `jobs`; the array's job id."""
    done = slurm.run(["sbatch", "--parsable", f"--array=1-{SHARDS}", "--cpus-per-task=1", "--mem=256M",
                      str(SLURM_SCRIPT), str(photos), str(style), str(out), *options],
                     cwd=jobs, env={**job_environment(), "SLURM_CONF": str(slurm.conf)})
    return done.stdout.strip().split(";")[0]


def task_files(jobs: Path, job: str, suffix: str) -> list[Path]:
    return sorted(jobs.glob(f"nst-batch-{job}_*.{suffix}"))


def test_slurm_array_writes_every_output_once(slurm, style, tmp_path):
    """It runs examples/slurm_array.sh as a 3-task array: each task its two items, every output once."""
    photos, out, jobs = tmp_path / "photos", tmp_path / "out", tmp_path / "jobs"
    by_shard = six_images(photos)
    jobs.mkdir()

    job = submit(slurm, jobs, photos, style, out, QUICK)
    slurm.wait_until_gone(job)

    logs = "\n".join(path.read_text() for path in task_files(jobs, job, "log"))
    reports = task_files(jobs, job, "jsonl")
    assert [path.name for path in reports] == [f"nst-batch-{job}_{k}.jsonl" for k in (1, 2, 3)], logs
    for k, report in enumerate(reports, start=1):
        rows = json_rows(report)
        assert [(Path(row["output"]).name, row["status"]) for row in rows] == [
            (name, "done") for name in in_plan_order(by_shard[k])], logs
    everything = sorted(sum(by_shard.values(), []))
    assert sorted(stamps(out)) == everything  # nothing else: no temporary file, no checkpoint folder
    assert sorted(Path(row["output"]).name for row in json_rows(*reports)) == everything  # each once


def test_slurm_cancelled_task_is_finished_by_resubmission(slurm, style, tmp_path):
    """It leaves a task cancelled mid-item unwritten; the re-submitted array computes just that item."""
    photos, out, jobs = tmp_path / "photos", tmp_path / "out", tmp_path / "jobs"
    by_shard = six_images(photos)
    jobs.mkdir()
    first_of_1, second_of_1 = in_plan_order(by_shard[1])

    job = submit(slurm, jobs, photos, style, out, SLOW)
    # Task 1 has reported its first item (written, then a JSON line), so it is now inside its second:
    # cancel it there. The output file alone appears a moment before the item is over.
    report_1 = jobs / f"nst-batch-{job}_1.jsonl"
    wait_for(lambda: report_1.exists() and str(out / first_of_1) in report_1.read_text(),
             f"task 1 to report {first_of_1}", details=slurm.logs)
    slurm.run(["scancel", f"{job}_1"])
    slurm.wait_until_gone(job)

    log_1 = (jobs / f"nst-batch-{job}_1.log").read_text()
    second_content = photos / f"{second_of_1.split('__')[0]}.png"
    assert (f"Error: interrupted during {second_content} with style {style}; its output was not written; "
            "run the same command again to resume") in log_1
    assert "JobState=CANCELLED" in slurm.run(["scontrol", "show", "job", f"{job}_1"]).stdout
    before = stamps(out)
    assert sorted(before) == sorted(set(sum(by_shard.values(), [])) - {second_of_1})  # no partial file

    again = submit(slurm, jobs, photos, style, out, SLOW)
    slurm.wait_until_gone(again)

    after = stamps(out)
    assert sorted(after) == sorted(sum(by_shard.values(), []))
    assert {name: after[name] for name in before} == before  # nothing finished was written again
    rows = json_rows(*task_files(jobs, again, "jsonl"))
    assert sorted((Path(row["output"]).name, row["status"]) for row in rows) == sorted(
        [(second_of_1, "done")] + [(name, "skipped") for name in before])


# ---------------------------------------------------------------------------------------- GNU parallel


def nst_processes(marker: str, shard: str) -> list[int]:
    """Pids of the `nst batch ... --shard <shard>` processes whose arguments mention `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue  # ended meanwhile
            if b"batch" in args and marker.encode() in args and b"--shard" in args and shard.encode() in args:
                found.append(int(entry.name))
    return found


class ParallelRun:
    """examples/parallel.sh running in the background, its stdout and stderr read line by line as they come."""

    def __init__(self, photos: Path, style: Path, out: Path, options: list[str]):
        self.process = subprocess.Popen(
            ["bash", str(PARALLEL_SCRIPT), str(SHARDS), str(photos), str(style), str(out), *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=job_environment(),
            start_new_session=True)  # its own process group: parallel and every shard, to stop together
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        """Kill parallel and the shards it started (their process group is the script's pid)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def finish(self) -> tuple[int, list[dict], str]:
        """Wait for the end: exit code, the JSON lines, stderr."""
        try:
            self.process.wait(TIMEOUT)
        finally:
            self.stop()
        for reader in self.readers:
            reader.join(10)
        return self.process.returncode, [json.loads(line) for line in self.stdout], "\n".join(self.stderr)


def test_gnu_parallel_three_shards_every_output_once(style, tmp_path):
    """It runs examples/parallel.sh with three shards: every item once, by its own shard, nothing else left."""
    need("parallel")
    photos, out = tmp_path / "photos", tmp_path / "out"
    by_shard = six_images(photos)

    code, rows, stderr = ParallelRun(photos, style, out, QUICK).finish()

    assert code == 0, stderr
    everything = sorted(sum(by_shard.values(), []))
    assert sorted(Path(row["output"]).name for row in rows) == everything  # each exactly once
    assert all(row["status"] == "done" for row in rows)
    assert sorted(stamps(out)) == everything
    for k in range(1, SHARDS + 1):
        assert f"batch: 2 done, 0 skipped, 0 failed of 2 items in shard {k}/{SHARDS}" in stderr.splitlines()


def test_gnu_parallel_killed_shard_is_finished_by_rerun(style, tmp_path):
    """It leaves a shard killed (SIGTERM) mid-item unwritten; running the script again does only that item."""
    need("parallel")
    photos, out = tmp_path / "photos", tmp_path / "out"
    by_shard = six_images(photos)
    first_of_1, second_of_1 = in_plan_order(by_shard[1])

    run = ParallelRun(photos, style, out, SLOW)
    try:
        # Shard 1 has reported its first item, so it is now inside its second: stop it there.
        wait_for(lambda: any(str(out / first_of_1) in line for line in run.stdout),
                 f"shard 1 to report {first_of_1}", details=lambda: "\n".join(run.stderr))
        victims = nst_processes(str(out), f"1/{SHARDS}")
        assert len(victims) == 1, victims
        os.kill(victims[0], signal.SIGTERM)  # as a scheduler stops a task
    except BaseException:
        run.stop()
        raise
    code, rows, stderr = run.finish()

    assert code == 1, stderr  # parallel: the number of shards that failed
    second_content = photos / f"{second_of_1.split('__')[0]}.png"
    assert (f"Error: interrupted during {second_content} with style {style}; its output was not written; "
            "run the same command again to resume") in stderr.splitlines(), stderr
    before = stamps(out)
    assert sorted(before) == sorted(set(sum(by_shard.values(), [])) - {second_of_1})  # no partial file

    code, rows, stderr = ParallelRun(photos, style, out, SLOW).finish()

    assert code == 0, stderr
    after = stamps(out)
    assert sorted(after) == sorted(sum(by_shard.values(), []))
    assert {name: after[name] for name in before} == before
    assert sorted((Path(row["output"]).name, row["status"]) for row in rows) == sorted(
        [(second_of_1, "done")] + [(name, "skipped") for name in before])
