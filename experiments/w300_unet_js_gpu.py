"""The 300-W recipe (experiments/w300_unet_js.py) at full size, for a GPU: 256 px crops (64 x 64
heatmaps; sigma 1.6 keeps the Gaussian at the same share of the face as sigma 1 at 160 px), batch
64 with the learning rate scaled by its square root, 60 epochs (the literature's schedule length).
On CUDA the device input path (auto) crops and augments on the GPU; the 1839 training canvases
(536 px, 1.6 GB) are cut once and kept there.

    python tools/train.py experiments/w300_unet_js_gpu.py --data-root ../shared/datasets

Not yet measured on a GPU (docs/speed.md says what has been)."""
from dataclasses import replace

from experiments.w300_unet_js import build, settings as w300_settings  # noqa: F401

settings = replace(w300_settings, input_size=256, sigma=1.6, batch_size=64, lr=4e-3, epochs=60, workers=8,
                   warmup_epochs=2)
