#!/usr/bin/env bash
# Stylize a folder on a SLURM cluster: one array task per shard, each loading the network once.
#
#   sbatch examples/slurm_array.sh photos/ starry.jpg results/ [more nst options]
#
# Every task runs the same command with its own --shard K/N, so the tasks split the items between
# them without talking to each other. Outputs that exist are skipped: if tasks fail or time out,
# submit the same job again and only the missing outputs are computed.
#
# The array must be numbered from 1 (K runs from 1 to N). N is taken from SLURM_ARRAY_TASK_COUNT;
# change --array to change the number of tasks.
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
nst batch "$in_dir" --recursive --style "$style" -o "$out_dir" \
    --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}" --json "$@" \
    > "nst-batch-${SLURM_ARRAY_JOB_ID:-local}_${SLURM_ARRAY_TASK_ID}.jsonl"
