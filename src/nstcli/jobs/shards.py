"""Shards: the K-th of N disjoint parts of a job, given by hand or read from a scheduler.

An item belongs to shard K of N when a hash of its output name is K - 1 modulo N. That depends on
nothing but the item, so shards started at different times agree on who does what even if outputs
appear in between. `--shard auto` reads K and N from a scheduler's array index
(`shard_from_environment`), so one job script serves every task of an array.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

from nstcli.errors import ConfigError


def parse_shard(spec: str, environ: Mapping[str, str] | None = None,
                allow_all: bool = False) -> tuple[int | None, int]:
    """--shard's value -> (K, N), or ConfigError (a usage error).

    'K/N' is given by hand; 'auto' and 'auto/N' take K (and N) from the scheduler's environment
    (`shard_from_environment`). With `allow_all` (nst batch --plan), 'all/N' gives (None, N): every
    item, each with its shard of N.
    """
    text = (spec or "").strip().lower()
    shown = _shown(spec)
    counted = re.fullmatch(r"(auto|all)\s*(?:/\s*(\d+))?", text)
    if counted:
        form, count = counted.group(1), _count(counted.group(2), shown) if counted.group(2) else None
        if count == 0:
            raise ConfigError(f"--shard {shown}: N must be at least 1; give the number of tasks, e.g. "
                              f"--shard {form}/8")
        if form == "auto":
            return shard_from_environment(os.environ if environ is None else environ, count)
        if count is None:
            raise ConfigError(f"--shard {shown} needs the number of shards: --shard all/N")
        if not allow_all:
            raise ConfigError(f"--shard {shown} only goes with --plan (to list every item with its shard); "
                              "to run every item, drop --shard")
        return None, count
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if match:
        k, n = _count(match.group(1), shown), _count(match.group(2), shown)
        if 1 <= k <= n:
            return k, n
    raise ConfigError(f"--shard {shown} is not K/N with 1 <= K <= N; e.g. --shard 2/4 runs the "
                      "second quarter of the items (or --shard auto inside a SLURM array or a "
                      "Kubernetes Indexed Job)")


# More shards than this is no cluster; the cap also keeps numbers of thousands of digits (which
# Python's int() refuses beyond 4300) out of int() and out of messages.
MAX_SHARDS = 1_000_000


def _shown(text: str | None) -> str:
    """A typed value as a message quotes it: at most 40 characters of it."""
    text = text or ""
    return repr(text) if len(text) <= 40 else repr(text[:30] + "...") + f" ({len(text)} characters)"


def _count(digits: str, shown: str) -> int:
    """K or N of --shard, or ConfigError when it is beyond MAX_SHARDS."""
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(MAX_SHARDS)) or int(digits) > MAX_SHARDS:
        raise ConfigError(f"--shard {shown}: a shard number or count is at most {MAX_SHARDS:,}; "
                          "give K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(digits)


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):
        raise ConfigError(f"--shard auto: {name}={_shown(value)} is not a whole number; it is set by the "
                          "scheduler, so check the job's environment")
    digits = value.lstrip("0") or "0"
    # A scheduler's index is a few digits; thousands of them (beyond what int() converts) are a
    # broken environment, said as such rather than as Python's limit.
    if len(digits) > 18:
        raise ConfigError(f"--shard auto: {name}={_shown(value)} has {len(digits)} digits, more than any "
                          "scheduler's index; it is set by the scheduler, so check the job's environment")
    return int(digits)


def shard_from_environment(environ: Mapping[str, str], count: int | None = None) -> tuple[int, int]:
    """K and N from a SLURM job array or a Kubernetes Indexed Job; `count` is N when given (auto/N).

    - SLURM (`sbatch --array=1-8`): K is the task's place in the array, N the array's size, from
      SLURM_ARRAY_TASK_ID, _MIN and _MAX (or _COUNT when MIN and MAX are missing, the array then
      numbered from 1), so --array=0-7 works as well as 1-8. With auto/N the task ID itself is K
      (1..N): that lets a re-submission run only some tasks, e.g. --array=3,5 of 8.
    - Kubernetes (`completionMode: Indexed`): JOB_COMPLETION_INDEX (0-based) + 1 is K. Kubernetes
      does not tell the pod how many completions there are, so N must be given: auto/N.
    """
    task = _env_int(environ, "SLURM_ARRAY_TASK_ID")
    if task is not None:
        if count is not None:
            if not 1 <= task <= count:
                raise ConfigError(f"--shard auto/{count}: SLURM_ARRAY_TASK_ID is {task}, not 1..{count}; "
                                  f"number the array from 1 (sbatch --array=1-{count})")
            return task, count
        low, high = _env_int(environ, "SLURM_ARRAY_TASK_MIN"), _env_int(environ, "SLURM_ARRAY_TASK_MAX")
        size = _env_int(environ, "SLURM_ARRAY_TASK_COUNT")
        if low is not None and high is not None:
            # A list or a step (--array=1,3,8 or 0-15:4) leaves holes: K would not run 1..N.
            if size is not None and size != high - low + 1:
                raise ConfigError(f"--shard auto: the SLURM array has {size} tasks numbered {low} to {high} "
                                  "with gaps; submit a plain range (--array=1-N), or number the tasks 1..N "
                                  "and give the count: --shard auto/N")
            if low <= task <= high:
                return task - low + 1, high - low + 1
            raise ConfigError(f"--shard auto: SLURM_ARRAY_TASK_ID is {task}, outside the array's "
                              f"SLURM_ARRAY_TASK_MIN..MAX ({low}..{high}); check the job's environment, or "
                              "number the tasks 1..N and give the count: --shard auto/N")
        elif size is not None:
            if 1 <= task <= size:
                return task, size
            raise ConfigError(f"--shard auto: SLURM_ARRAY_TASK_ID is {task}, outside 1..{size} "
                              f"(SLURM_ARRAY_TASK_COUNT is {size}); check the job's environment, or give the "
                              "count: --shard auto/N")
        raise ConfigError(f"--shard auto: SLURM_ARRAY_TASK_ID is {task} but the array's size is not known "
                          "from SLURM_ARRAY_TASK_MIN/MAX/COUNT; give it: --shard auto/N")
    index = _env_int(environ, "JOB_COMPLETION_INDEX")
    if index is not None:
        if count is None:
            raise ConfigError(f"--shard auto: JOB_COMPLETION_INDEX is {index} (a Kubernetes Indexed Job), "
                              "which does not tell the pod the number of completions; give it: "
                              "--shard auto/N with N the Job's completions")
        if index >= count:
            raise ConfigError(f"--shard auto/{count}: JOB_COMPLETION_INDEX is {index}, not 0..{count - 1}; "
                              "make N the Job's completions")
        return index + 1, count
    raise ConfigError("--shard auto found no scheduler index: neither SLURM_ARRAY_TASK_ID (sbatch --array) "
                      "nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, with --shard auto/N) is set; "
                      "outside a scheduler give --shard K/N")


def shard_of(name: str, count: int) -> int:
    """The shard (1..count) an output name belongs to: stable across runs, machines and Pythons."""
    # sha256 rather than hash(): Python salts str hashes per process.
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
