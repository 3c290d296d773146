__version__ = '0.2.0'  # 0.2: method settings moved out of Settings (heatnet.method)


def load_pretrained(device: str = "cpu", detector=None):
    """The 68-point model shipped with heatnet (trained by heatnet on the 300-W training images;
    300-W is for research use only), with a face detector (dlib's HOG detector by default), as
    a heatnet.predict.FacePredictor: `load_pretrained().predict_image(rgb_image)`."""
    from heatnet.predict import PRETRAINED, FacePredictor  # here, so that `import heatnet` stays light

    return FacePredictor.from_checkpoint(PRETRAINED, device, detector)
