#!/usr/bin/env bash
# Stylize a folder on a SLURM cluster: one array task per shard, each loading the network once.
#
#   sbatch --array=1-8 examples/slurm_array.sh photos/ starry.jpg results/ [more nst options]
#
# Every task runs the same command with --shard auto: nst takes its K of N from the task's
# SLURM_ARRAY_TASK_ID within the array's range, so the tasks split the items between them without
# talking to each other. --array on the sbatch line overrides the #SBATCH line below.
#
# An output is written only when its item is finished, and outputs that exist are skipped: if tasks
# fail, are cancelled or time out, submit the same job again and only the missing items are computed.
# To see what is left, and re-submit only the tasks that have work (here of an 8-task array):
#
#   nst batch photos/ --recursive --style starry.jpg -o results/ --shard all/8 --plan
#       (stderr ends with e.g. "shards with work left: 3,5")
#   NST_SHARD=auto/8 sbatch --array=3,5 examples/slurm_array.sh photos/ starry.jpg results/
#
# (A partial array does not say how many tasks the full one had, so auto/8 gives the count and the
# task ID itself is K: number such arrays from 1.) The nst command is the first `nst` on PATH, or
# $NST (e.g. NST="/opt/venvs/nst/bin/python -m nstcli"); sbatch passes the submitting shell's
# environment to the tasks.
#SBATCH --job-name=nst-batch
#SBATCH --array=1-8
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --output=nst-batch-%A_%a.log
## For GPUs, uncomment (and the flags below pick CUDA automatically with --device auto):
##SBATCH --gres=gpu:1
set -euo pipefail
usage="usage: sbatch slurm_array.sh IN_DIR STYLE OUT_DIR [nst options]"
in_dir=${1:?$usage}
style=${2:?$usage}
out_dir=${3:?$usage}
shift 3

# torch starts one thread per core it sees; keep to the cores this task was given.
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

# Progress and the summary go to the log (stderr); one JSON line per item goes to a file per task.
# Compute nodes without internet: run `nst weights import FILE` once on a shared home, or pass
# --weights /path/to/vgg19-dcbb9e9d.pth.
# exec: scancel's and the time limit's SIGTERM reach nst itself, which stops with the current item
# unwritten (exit 130). $NST is left unquoted on purpose: "python -m nstcli" is three words.
exec ${NST:-nst} batch "$in_dir" --recursive --style "$style" -o "$out_dir" \
    --shard "${NST_SHARD:-auto}" --json "$@" \
    > "nst-batch-${SLURM_ARRAY_JOB_ID:-local}_${SLURM_ARRAY_TASK_ID:-0}.jsonl"
