__version__ = '0.2.0'  # 0.2: method settings moved out of Settings (heatnet.method)


def load_pretrained(model: str = "accurate", device: str = "cpu", detector=None, runtime: str = "auto",
                    threads: int = 0):
    """A 68-point model shipped with heatnet, "accurate" (the default: Unet-ResNet18, 160 px) or
    "fast" (MobileNetV4-conv-small, 112 px, a few ms per face on a CPU), both trained by heatnet on the 300-W
    training images (300-W is for research use only), with a face detector (BlazeFace at any roll by
    default), as a heatnet.predict.FacePredictor: `load_pretrained().predict_image(rgb_image)`.
    `runtime`: "auto" runs the network in onnxruntime on a CPU when it is installed (faster in
    every case measured), else PyTorch; "pytorch" or "onnxruntime" choose; `threads` its threads
    (0: all cores). `predictor.runtime` tells which runs. `detector`: a FaceDetector, or the name
    of one in heatnet.detect.DETECTORS."""
    from heatnet.detect import make_detector
    from heatnet.predict import FacePredictor, Runtime, ShippedModel  # here, so that `import heatnet` stays light

    detector = make_detector(detector) if isinstance(detector, str) else detector
    predictor = FacePredictor.from_checkpoint(ShippedModel.named(model).path, device, detector)
    predictor.use_runtime(Runtime(runtime), threads)
    return predictor
