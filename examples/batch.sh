#!/usr/bin/env sh
# Stylize every image in a folder with one style, one `nst stylize` per file.
# (`nst batch` does the same while loading the network once; this loop is the plain-shell version.)
#
#   sh examples/batch.sh photos/ examples/style.jpg results/ [extra nst options...]
set -eu
in_dir=${1:?usage: batch.sh IN_DIR STYLE OUT_DIR [nst options]}
style=${2:?usage: batch.sh IN_DIR STYLE OUT_DIR [nst options]}
out_dir=${3:?usage: batch.sh IN_DIR STYLE OUT_DIR [nst options]}
shift 3
mkdir -p "$out_dir"
status=0
for image in "$in_dir"/*; do
    [ -f "$image" ] || continue
    name=$(basename "$image")
    out="$out_dir/${name%.*}.png"
    if [ -e "$out" ]; then
        echo "skip $out (exists)" >&2
        continue
    fi
    # stdout of nst is the written path; a failed file is reported and the loop goes on.
    nst stylize "$image" "$style" -o "$out" --quiet "$@" || { echo "failed: $image" >&2; status=1; }
done
exit $status
