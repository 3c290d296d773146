"""ytf68_unet_kl fine-tuned from the shipped 300-W model (heatnet/data/heatnet_300w_68.pt): both use
the iBUG 68-point layout and the same network, so every tensor, the head included, is copied.
Measured (docs/recipes.md): 5 epochs from the previous shipped model (16 epochs of 300-W at
128 px) gave ytf68 val 4.90 % / test 4.90 %, against 6.46 / 6.47 % for 2 epochs from scratch."""
from dataclasses import replace

from experiments.ytf68_unet_kl import build, settings  # noqa: F401
from heatnet.predict import PRETRAINED

settings = replace(settings, init_from=str(PRETRAINED), epochs=5)
