"""ytf68 fine-tuned from the shipped 300-W model (heatnet/data/heatnet_300w_68.pt) with the 300-W
recipe's settings (160 px, sigma 1, JS loss, flip test): both use the iBUG 68-point layout and the
same network, so every tensor, the head included, is copied. Measured (docs/recipes.md): 15 epochs,
ytf68 val 4.39 % / test 4.32 %; 5 epochs, 4.49 / 4.49 %; the same at 128 px with KL and sigma 1.5
from the previous shipped model, 5 epochs, 4.90 / 4.90 %; 2 epochs from scratch, 6.46 / 6.47 %."""
from dataclasses import replace

from experiments.w300_unet_kl import RECIPE
from experiments.ytf68_unet_kl import build, settings  # noqa: F401
from heatnet.predict import PRETRAINED

settings = replace(settings, init_from=str(PRETRAINED), epochs=15, **RECIPE)
