"""--shard: K/N, auto from a SLURM array or a Kubernetes Indexed Job, all/N for plans; and every number
or variable it cannot use (thousands of digits, a task outside its array) a usage error naming what to
check, before any computing."""

from __future__ import annotations

import pytest

from helpers import error_line, make_image, no_network, scheduler_environment
from nstcli.cli.main import nst
from nstcli.jobs.shards import parse_shard


def batch_with_shard(runner, tmp_path, monkeypatch, style, spec, environment):
    """`nst batch` of one photo with --shard SPEC under exactly these scheduler variables; computing fails the
    test."""
    no_network(monkeypatch)
    scheduler_environment(monkeypatch, **environment)
    make_image(tmp_path / "photos" / "a.png")
    return runner.invoke(nst, ["batch", str(tmp_path / "photos"), "--style", str(style), "-o", str(tmp_path / "out"),
                               "--shard", spec])


@pytest.mark.parametrize("spec, env, expected", [
    ("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3",
              "SLURM_ARRAY_TASK_COUNT": "3"}, (2, 3)),
    ("auto", {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "7"}, (1, 8)),
    ("auto", {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, (4, 4)),
    ("AUTO", {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_MAX": "6"}, (1, 2)),
    ("auto/8", {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_MAX": "5",
                "SLURM_ARRAY_TASK_COUNT": "2"}, (5, 8)),
    ("auto/4", {"JOB_COMPLETION_INDEX": "0"}, (1, 4)),
    ("auto / 4", {"JOB_COMPLETION_INDEX": "3"}, (4, 4)),
    ("all/3", {}, (None, 3)),
])
def test_shard_auto_reads_the_scheduler(spec, env, expected):
    """It takes K and N from a SLURM array or a Kubernetes Indexed Job's index (N given), and all/N for plans."""
    assert parse_shard(spec, env, allow_all=True) == expected


@pytest.mark.parametrize("spec, env, message", [
    ("auto", {}, "--shard auto found no scheduler index: neither SLURM_ARRAY_TASK_ID (sbatch --array) nor "
                 "JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, with --shard auto/N) is set; outside a "
                 "scheduler give --shard K/N"),
    ("auto", {"JOB_COMPLETION_INDEX": "2"}, "--shard auto: JOB_COMPLETION_INDEX is 2 (a Kubernetes Indexed Job), "
                                            "which does not tell the pod the number of completions; give it: "
                                            "--shard auto/N with N the Job's completions"),
    ("auto/2", {"JOB_COMPLETION_INDEX": "2"}, "--shard auto/2: JOB_COMPLETION_INDEX is 2, not 0..1; make N the "
                                              "Job's completions"),
    ("auto/3", {"SLURM_ARRAY_TASK_ID": "0"}, "--shard auto/3: SLURM_ARRAY_TASK_ID is 0, not 1..3; number the "
                                             "array from 1 (sbatch --array=1-3)"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8",
              "SLURM_ARRAY_TASK_COUNT": "3"},
     "--shard auto: the SLURM array has 3 tasks numbered 1 to 8 with gaps; submit a plain range "
     "(--array=1-N), or number the tasks 1..N and give the count: --shard auto/N"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "3"}, "--shard auto: SLURM_ARRAY_TASK_ID is 3 but the array's size is not "
                                           "known from SLURM_ARRAY_TASK_MIN/MAX/COUNT; give it: --shard auto/N"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "x"}, "--shard auto: SLURM_ARRAY_TASK_ID='x' is not a whole number; it is "
                                           "set by the scheduler, so check the job's environment"),
    ("auto/0", {"JOB_COMPLETION_INDEX": "0"}, "--shard 'auto/0': N must be at least 1; give the number of tasks, "
                                              "e.g. --shard auto/8"),
    ("all/3", {}, "--shard 'all/3' only goes with --plan (to list every item with its shard); to run every "
                  "item, drop --shard"),
    ("all", {}, "--shard 'all' needs the number of shards: --shard all/N"),
    ("all/0", {}, "--shard 'all/0': N must be at least 1; give the number of tasks, e.g. --shard all/8"),
])
def test_shard_auto_without_a_usable_index_is_a_usage_error(runner, style, tmp_path, monkeypatch, spec, env,
                                                            message):
    """It stops with exit 2 and says which variable is missing or wrong, before loading anything."""
    result = batch_with_shard(runner, tmp_path, monkeypatch, style, spec, env)
    assert result.exit_code == 2
    assert error_line(result) == f"Error: {message}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", ["1/" + "9" * 5000, "9" * 5000 + "/2", "auto/" + "9" * 5000, "1/2000000"])
def test_shard_with_a_huge_number_is_a_usage_error(runner, style, tmp_path, monkeypatch, spec):
    """It refuses --shard with a number of thousands of digits (beyond int()) with exit 2, quoting it short."""
    result = batch_with_shard(runner, tmp_path, monkeypatch, style, spec, {"SLURM_ARRAY_TASK_ID": "1"})
    assert result.exit_code == 2
    shown = repr(spec) if len(spec) <= 40 else f"{spec[:30] + '...'!r} ({len(spec)} characters)"
    assert error_line(result) == (f"Error: --shard {shown}: a shard number or count is at most 1,000,000; give "
                                  "K/N with 1 <= K <= N, e.g. --shard 2/4")


@pytest.mark.parametrize("variable", ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MAX", "JOB_COMPLETION_INDEX"])
def test_scheduler_variable_with_thousands_of_digits_is_a_usage_error(runner, style, tmp_path, monkeypatch,
                                                                       variable):
    """It refuses a scheduler index of 5000 digits with exit 2 naming the variable."""
    environment = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}
    if variable == "JOB_COMPLETION_INDEX":
        environment = {}
    environment[variable] = "7" * 5000
    spec = "auto/4" if variable == "JOB_COMPLETION_INDEX" else "auto"
    result = batch_with_shard(runner, tmp_path, monkeypatch, style, spec, environment)
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: --shard auto: {variable}={'7' * 30 + '...'!r} (5000 characters) has "
                                  "5000 digits, more than any scheduler's index; it is set by the scheduler, so "
                                  "check the job's environment")


@pytest.mark.parametrize("environment, message", [
    ({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8"},
     "SLURM_ARRAY_TASK_ID is 9, outside the array's SLURM_ARRAY_TASK_MIN..MAX (1..8); check the job's environment, "
     "or number the tasks 1..N and give the count: --shard auto/N"),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4"},
     "SLURM_ARRAY_TASK_ID is 5, outside 1..4 (SLURM_ARRAY_TASK_COUNT is 4); check the job's environment, or give "
     "the count: --shard auto/N"),
])
def test_slurm_task_outside_its_array_says_so(runner, style, tmp_path, monkeypatch, environment, message):
    """It says the task ID is outside MIN..MAX (or 1..COUNT), not that the array's size is unknown."""
    result = batch_with_shard(runner, tmp_path, monkeypatch, style, "auto", environment)
    assert result.exit_code == 2
    assert error_line(result) == f"Error: --shard auto: {message}"
