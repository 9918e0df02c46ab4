#!/usr/bin/env bash
# Stylize a folder with N shards at once on one machine, with GNU parallel (Debian: apt install parallel).
#
#   bash examples/parallel.sh 3 photos/ starry.jpg results/ [more nst options] > results.jsonl
#
# Each shard is one `nst batch --shard K/N` process that loads the network once; together they run
# every item exactly once. Worth it when one process leaves cores idle (many small images); for one
# big image, a single process with all the threads is faster. Outputs that exist are skipped, so
# running the same command again (after a crash or Ctrl-C) computes only the missing items.
#
# stdout: one JSON line per item from every shard (whole lines, interleaved); stderr: each shard's
# progress and summary. The exit code is the number of shards that failed (0: all good). The nst
# command is the first `nst` on PATH, or $NST (e.g. NST="/opt/venvs/nst/bin/python -m nstcli").
set -euo pipefail
usage="usage: parallel.sh N IN_DIR STYLE OUT_DIR [nst options]"
shards=${1:?$usage}
in_dir=${2:?$usage}
style=${3:?$usage}
out_dir=${4:?$usage}
shift 4

# Split the cores between the shards rather than letting every process start one thread per core.
cores=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( cores / shards > 0 ? cores / shards : 1 ))}

# -q quotes every argument for parallel's shell, so paths with spaces survive; {} is the shard's K.
# $NST is left unquoted on purpose: "python -m nstcli" is three words.
exec parallel --will-cite --jobs "$shards" --line-buffer -q \
    ${NST:-nst} batch "$in_dir" --recursive --style "$style" -o "$out_dir" --shard "{}/$shards" --json "$@" \
    ::: $(seq 1 "$shards")
