#!/usr/bin/env bash
# Issue 25's GPU check: every speed figure and the CUDA test leg, in one command on a lent
# GPU machine (see /work/.library/device). Its image has torch 2.11, numpy 2, scipy,
# pytest and pytest-xdist on Python 3.12; the rest travels as wheels in .whl/ (ignored by
# git), fetched here first:
#
#   bash tools/gpu_check.sh wheels    # here: download the Python 3.12 wheels into .whl/
#   bash tools/gpu_check.sh run       # there (carry: [".whl"]); prints everything, ~5 min
#
# Figures print as they come; the test leg's log and a summary go to $OUT when it is set.
set -uo pipefail
WHEELS=(
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0 pyloudnorm==0.2.0
    librosa==0.10.2.post1 audioread==3.1.0 pooch==1.9.0 platformdirs==4.14.8
    decorator==5.3.1 pretty-midi==0.2.11.post0 mido==1.3.3 laion-clap==1.1.7
    torchlibrosa==0.1.0 ftfy==6.3.1 braceexpand==0.1.7 webdataset==1.0.2
)
SDISTS=(wget==3.2 progressbar==2.5)  # pure Python, published as sources only: built here
SRC=packages/cae/src:packages/latent-diffusion/src:packages/clap-bridge/src:packages/metrics/src:packages/pipeline/src

case "${1:-}" in
wheels)
    mkdir -p .whl
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >>.git/info/exclude
    for wheel in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform any -d .whl "$wheel" || exit 1
    done
    for sdist in "${SDISTS[@]}"; do
        python3 -m pip wheel -q --no-deps -w .whl "$sdist" || exit 1
    done
    du -sh .whl
    ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$SRC PYTHONUNBUFFERED=1
    out=${OUT:-/tmp/gpu-check}
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
    # The CUDA test leg in the background while the benchmarks share the GPU would skew
    # the figures: benchmarks first (about 3 minutes), then the leg.
    step() { echo "== $*"; timeout 240 "$@" 2>&1 | tee -a "$out/benchmarks.txt"; }
    step python3 packages/pipeline/benchmarks/speed.py --device cuda --seconds 95 600
    step python3 packages/pipeline/benchmarks/speed.py --device cuda --models paper-dit --seconds 95 --compile
    step python3 packages/pipeline/benchmarks/speed.py --device cuda --models shipped --seconds 18 95
    step python3 packages/latent-diffusion/benchmarks/speed.py --device cuda
    step python3 packages/cae/benchmarks/speed.py --device cuda --seconds 95 --window-batch 1 0
    step python3 packages/latent-diffusion/benchmarks/train_speed.py --device cuda
    echo "== CUDA test leg"
    start=$(date +%s)
    timeout 300 python3 -m pytest -q -p no:cacheprovider -n 14 --device cuda \
        packages/latent-diffusion/tests packages/cae/tests packages/pipeline/tests/test_generate.py \
        >"$out/cuda-tests.txt" 2>&1
    status=$?
    tail -n 25 "$out/cuda-tests.txt"
    echo "CUDA test leg: exit $status in $(($(date +%s) - start)) s"
    ;;
*)
    echo "usage: $0 wheels | run" >&2
    exit 2
    ;;
esac
