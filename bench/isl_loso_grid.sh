#!/usr/bin/env bash
# Leave-one-signer-out on the full isl_kinect release for a grid of widths x seeds, many folds at once: one
# bench/isl_loso.py process per (width, seed, held-out signer), JOBS at a time, each training every stream's model
# (--variants) and then scoring them with prediction-time BatchNorm (--sample-norm). Meant for a GPU machine
# (one GPU is shared by all processes: the models are small, so the CPU-side augmentation sets the pace), but runs
# anywhere. Tasks start in grid order (width-major, then seed, then signer; or the order of --points, width:seed
# pairs), so an early grid point is complete first when the time runs out.
#
#   bash bench/isl_loso_grid.sh RAWDATASET OUTDIR [--widths "8 32"] [--seeds "1234 4321"] [--points "32:1234 8:1234"]
#        [--signers "apurve rajat"] [--jobs 16] [--streams joint,bone,motion,bone_motion] [--device auto] [--sample-norm 16] [-- --set key=value ...]
#
# OUTDIR/w<W>_s<S> is a --variants folder (models/, plain/, turns/, adabn/, adabn_turns/, sample_norm_N<N>/);
# score a seed ensemble with `python bench/isl_loso.py --seeds OUTDIR/w32_s1234 OUTDIR/w32_s4321 --set streams=[...]`.
# Logs: OUTDIR/logs/<W>_<S>_<signer>.log. The recipe is docs/validation.md section 4's unless `-- --set` overrides it.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,15p "$0"; exit 2; }
FOLDER=$1 OUTDIR=$2
shift 2
WIDTHS="8" SEEDS="1234" POINTS="" SIGNERS="" JOBS=$(nproc) STREAMS="joint,bone,motion,bone_motion" DEVICE=auto SAMPLE_NORM=16
while [ $# -gt 0 ]; do
  case $1 in
    --widths) WIDTHS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --points) POINTS=$2; shift 2 ;;
    --signers) SIGNERS=$2; shift 2 ;;  # held out in turn (default: every signer); training uses all the others
    --jobs) JOBS=$2; shift 2 ;;
    --streams) STREAMS=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --sample-norm) SAMPLE_NORM=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "isl_loso_grid: unknown option $1" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
[ -d "$FOLDER" ] || { echo "isl_loso_grid: no release folder $FOLDER" >&2; exit 2; }
[ -n "$SIGNERS" ] || SIGNERS=$("$PY" -c 'import sys
from pathlib import Path
from hatl.datasets.isl_kinect import list_files, parse_name
names = (parse_name(n) for n in list_files(Path(sys.argv[1])))
print(" ".join(sorted({f[1] for f in names if f is not None})))' "$FOLDER") || exit 1
RECIPE=(--set frames=32 --set epochs=24 --set batch_size=64 --set lr=0.02 --set "streams=[$STREAMS]"
        --set "device=$DEVICE" "$@")
mkdir -p "$OUTDIR/logs"
if [ -z "$POINTS" ]; then
  for w in $WIDTHS; do for s in $SEEDS; do POINTS+="$w:$s "; done; done
fi
echo "isl_loso_grid: width:seed [$POINTS] signers [$SIGNERS] streams [$STREAMS], $JOBS at a time" >&2

one_task() {  # width seed signer: train every stream's model, then score them with prediction-time BatchNorm
  local log="$OUTDIR/logs/$1_$2_$3.log" variants="$OUTDIR/w$1_s$2" start=$SECONDS
  "$PY" bench/isl_loso.py --folder "$FOLDER" --width "$1" --seed "$2" --held-out "$3" "${RECIPE[@]}" \
      --variants "$variants" >"$log" 2>&1 &&
    "$PY" bench/isl_loso.py --folder "$FOLDER" --width "$1" --seed "$2" --held-out "$3" "${RECIPE[@]}" \
      --variants "$variants" --sample-norm $SAMPLE_NORM >>"$log" 2>&1
  local rc=$?
  echo "isl_loso_grid: width $1 seed $2 held out $3: exit $rc, $((SECONDS - start)) s" >&2
  return $rc
}
export -f one_task
export FOLDER OUTDIR PY SAMPLE_NORM
export RECIPE_FILE="$OUTDIR/logs/recipe.args"
printf '%s\0' "${RECIPE[@]}" >"$RECIPE_FILE"
# bash cannot export arrays: each task reads the recipe back from its NUL-separated file
one_task_with_recipe() { mapfile -d '' RECIPE <"$RECIPE_FILE"; one_task "$@"; }
export -f one_task_with_recipe
for point in $POINTS; do for g in $SIGNERS; do echo "${point%%:*} ${point##*:} $g"; done; done |
  xargs -P "$JOBS" -L 1 bash -c 'one_task_with_recipe "$@"' _
