"""Integral regression on the 300-W recipe (experiments/w300_unet_js.py): the same Unet-ResNet18's
heatmap logits, their spatial softmax's expectation trained with L1 on the coordinates plus the
DSNT Jensen-Shannon regulariser (Nibali et al. 2018; `--loss=IntegralL1` drops it), decoded by
the same expectation over the whole map. A row of the coordinate-heads table
(docs/coordinate_heads.md)."""
from dataclasses import replace

from experiments.unet_kl import build  # noqa: F401
from experiments.w300_unet_js import settings
from heatnet.codecs import SoftArgmax
from heatnet.losses import IntegralLoss

settings = replace(settings, loss=IntegralLoss, decoder=SoftArgmax(correct_truncation=False))
