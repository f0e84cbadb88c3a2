#!/usr/bin/env bash
# Download, HERE (a machine with a package registry), the runtime packages the CUDA machine lacks, as
# wheels for its Python (3.12, x86-64 Linux), into ./wheels (ignored by git, carried to the GPU run).
#
#   bash benchmarks/gpu_wheels.sh            # then run benchmarks/gpu_check.sh there with `wheels` carried
#
# The CUDA machine's image already has torch, torchvision, numpy, pillow, opencv-python-headless, click,
# pluggy, safetensors, tqdm, requests, scikit-learn, scikit-image, pyarrow, pandas, matplotlib, pytest and
# hypothesis. Of counterface's runtime dependencies it lacks lpips and platformdirs. Not needed there:
# gdown (downloads only), face-alignment and dlib (the GPU check skips alignment), opencv-python (the
# headless build provides cv2). All wheels here are pure Python (py3-none-any), well under 1 MB.
set -euo pipefail
dest=${1:-wheels}
mkdir -p "$dest"
exclude=.git/info/exclude
if [ -f "$exclude" ] && ! grep -qx "/$dest/" "$exclude"; then echo "/$dest/" >> "$exclude"; fi
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" "lpips>=0.1.4" "platformdirs>=3"
ls -l "$dest"
