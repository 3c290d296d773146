"""heatnet-fast on 300-W: the 300-W recipe (experiments/w300_unet_js.py: Jensen-Shannon loss, sigma 1,
windowed soft-argmax, flip test) on a network a tenth of the shipped model's cost, for CPUs.

A Unet over timm's MobileNetV4-conv-small encoder cut after its stride-16 stage, with a narrow
decoder ending at stride 4 and a 1 x 1 output convolution: 112 px crops -> 28 x 28 heatmaps. Chosen
by onnxruntime latency among light encoders (docs/fast_model.md); float16 weights under 3 MB."""
from dataclasses import replace

import segmentation_models_pytorch as smp

from experiments.w300_unet_js import RECIPE, settings as w300_settings
from heatnet.method import HeatmapSettings, Method, smp_method

settings: HeatmapSettings = replace(w300_settings, **{**RECIPE, "input_size": 112}, encoder="tu-mobilenetv4_conv_small",
                                    architecture=smp.Unet, epochs=90)
DECODER_CHANNELS = (64, 32, 32, 16)  # the last two (finer than stride 4) are trimmed away


def build(s: HeatmapSettings, scheme) -> Method:
    options = ({"encoder_depth": 4, "decoder_channels": DECODER_CHANNELS, "head_kernel_size": 1}
               if s.architecture is smp.Unet else {})
    return smp_method(s, scheme.num_points, **options)
