#!/usr/bin/env bash
# Run the default-model recipe on a lent GPU machine (see /work/.library/device), whose
# Python already has torch, numpy, scipy, safetensors, tqdm and matplotlib; soundfile, soxr
# and cffi travel as wheels in .whl/ (ignored by git; `carry: [".whl"]`).
#
#   bash tools/device_recipe.sh start [--set KEY=VALUE ...]  # starts in the background, waits
#   bash tools/device_recipe.sh wait                          # waits again (call within 30 s)
#   bash tools/device_recipe.sh fetch                         # bundle + logs into $OUT
#
# One command may run 10 minutes and a machine goes back 30 s after a call returns, so the
# recipe runs detached (setsid) and `wait` calls follow each other. `fetch` packs the bundle
# as tar parts under 16 MiB (the limit on files coming back); rejoin them here with
#   cat OUT/bundle.tar.part-* | tar x -C DEST
set -euo pipefail
RUN=/tmp/openriff-run
BUNDLE=/tmp/openriff-bundle
LIMIT=${LIMIT:-540}

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:packages/cae/src:packages/latent-diffusion/src:packages/clap-bridge/src:packages/metrics/src:packages/pipeline/src
export PYTHONUNBUFFERED=1

wait_for_recipe() {
    local waited=0
    while [ ! -f "$RUN/done" ] && [ $waited -lt "$LIMIT" ]; do
        sleep 10
        waited=$((waited + 10))
    done
    tail -n 5 "$RUN/recipe.out" || true
    if [ -f "$RUN/done" ]; then echo "recipe finished: $(cat "$RUN/done")"; else echo "still running"; fi
}

case "${1:-}" in
start)
    shift
    mkdir -p "$RUN"
    nvidia-smi --query-gpu=name --format=csv,noheader || true
    sets=()
    for item in "$@"; do sets+=("$item"); done
    setsid bash -c "python3 -m openriff.pipeline.cli train recipe --run $RUN --install $BUNDLE \
        --device cuda --quiet ${sets[*]:-} > $RUN/recipe.out 2>&1; echo \$? > $RUN/done" &
    wait_for_recipe
    ;;
wait)
    wait_for_recipe
    ;;
fetch)
    out=${OUT:?OUT is set by the device tool}
    tar cf - -C "$BUNDLE" . | split -b 15M - "$out/bundle.tar.part-"
    cp "$RUN/recipe-log.json" "$RUN/recipe.out" "$out/"
    python3 -m openriff.pipeline.cli evaluate synthetic --bundle "$BUNDLE" --device cuda \
        --quiet --json "$out/evaluation.json" | tee "$out/evaluation.md"
    ls -la "$out"
    ;;
*)
    echo "usage: $0 start [--set KEY=VALUE ...] | wait | fetch" >&2
    exit 2
    ;;
esac
