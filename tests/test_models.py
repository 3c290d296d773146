import pytest
import segmentation_models_pytorch as smp
import torch

from heatnet import models
from heatnet.models import (EncoderRegressor, HeatmapModel, ModelConfigError, face_points_cnn, kaggle_cnn,
                            nose_tip_cnn, youtube_faces_cnn)

ARCHITECTURES = [smp.Unet, smp.FPN, smp.UnetPlusPlus, smp.Linknet, smp.MAnet, smp.PAN, smp.DeepLabV3Plus]


@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("architecture", ARCHITECTURES, ids=lambda a: a.__name__)
def test_heatmap_model_shapes_forward_backward(architecture, stride):
    model = HeatmapModel(5, architecture, "resnet18", in_channels=1, stride=stride)
    size = 128 if architecture is smp.PAN else 64  # PAN's pyramid pooling needs 128 px
    model.check_input_size(size)
    x = torch.rand(2, 1, size, size, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 5, size // stride, size // stride)
    y.square().mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_other_encoder_and_three_channels():
    model = HeatmapModel(3, smp.FPN, "mobilenet_v2", in_channels=3, stride=4)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 16, 16)


@pytest.mark.parametrize("stride", [1, 4])
def test_a_unet_takes_a_one_by_one_head_on_a_timm_encoder_cut_at_stride_16(stride):
    # the fast model's build (experiments/w300_fast.py): timm's MobileNetV4 through smp, 4 stages
    model = HeatmapModel(5, smp.Unet, "tu-mobilenetv4_conv_small", stride=stride, encoder_depth=4,
                         decoder_channels=(64, 32, 32, 16), head_kernel_size=1)
    head = model.net.segmentation_head[0]
    assert head.kernel_size == (1, 1) and head.out_channels == 5
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 5, 64 // stride, 64 // stride)
    with pytest.raises(ModelConfigError, match="head_kernel_size must be 3, or 1 with smp.Unet.*FPN"):
        HeatmapModel(5, smp.FPN, "resnet18", head_kernel_size=1)


def test_unknown_option_and_bad_sizes_are_clear_errors():
    with pytest.raises(ModelConfigError, match="does not take.*decoder_chanels"):
        HeatmapModel(5, smp.Unet, "resnet18", decoder_chanels=(8, 8, 8, 8, 8))
    with pytest.raises(ModelConfigError, match="stride must be"):
        HeatmapModel(5, smp.Unet, "resnet18", stride=3)
    with pytest.raises(ModelConfigError, match="resnet1800"):
        HeatmapModel(5, smp.Unet, "resnet1800")
    model = HeatmapModel(5, smp.Unet, "resnet18")
    with pytest.raises(ModelConfigError, match="not a multiple of 32.*try 128"):
        model.check_input_size(100)
    with pytest.raises(ModelConfigError, match="PAN cannot take 64 px inputs"):
        HeatmapModel(5, smp.PAN, "resnet18").check_input_size(64)


def test_imagenet_weights_offline_fail_at_once(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    attempts = []

    def unreachable(address, timeout=None):
        attempts.append((address, timeout))
        raise OSError("Name or service not known")

    monkeypatch.setattr(models.socket, "create_connection", unreachable)
    with pytest.raises(ModelConfigError, match="cannot be reached.*from scratch.*heatnet checkpoint"):
        HeatmapModel(5, smp.Unet, "resnet18", encoder_weights="imagenet")
    # at once: one short connection attempt, before any download and its retries
    assert len(attempts) == 1 and attempts[0][0][1] == 443 and attempts[0][1] <= 5


@pytest.mark.parametrize("blurpool", [False, True])
def test_encoder_regressor(blurpool):
    model = EncoderRegressor(7, "resnet18", in_channels=3, blurpool=blurpool)
    y = model(torch.rand(2, 3, 64, 64))
    assert y.shape == (2, 7, 2)
    y.sum().backward()
    has_blur = any(isinstance(m, models.BlurPool) for m in model.modules())
    assert has_blur == blurpool


def test_an_anti_aliased_regressor_exports_to_onnx_with_any_batch():
    """BlurPool's depthwise kernel has a fixed shape in the graph (a kernel shaped from the input's
    channel count at run time is not exportable), so onnxruntime gives PyTorch's outputs, at a batch
    other than the exported one too."""
    import io

    from heatnet.runtime import cpu_session

    model = EncoderRegressor(7, "resnet18", in_channels=3, blurpool=True).eval()
    graph = io.BytesIO()
    torch.onnx.export(model, (torch.rand(2, 3, 64, 64),), graph, input_names=["images"], opset_version=17,
                      dynamo=False, dynamic_axes={"images": {0: "batch"}})
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
    (onnx_points,) = cpu_session(graph.getvalue()).run(None, {"images": images.numpy()})
    assert abs(onnx_points - expected.numpy()).max() < 1e-4


def test_antialias_sizes_each_blurpool_to_its_input():
    """Before a stride-2 conv: the conv's input channels; after a stride-2 max-pool: the last conv's
    output channels. A max-pool with no conv before it has no known width: an error naming it."""
    stem = models.antialias(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                                                torch.nn.MaxPool2d(3, stride=2, padding=1)))
    assert [m.channels for m in stem.modules() if isinstance(m, models.BlurPool)] == [3, 8]
    assert stem(torch.rand(1, 3, 32, 32)).shape == (1, 8, 8, 8)
    with pytest.raises(ModelConfigError, match=r"max-pool \(0\) before any convolution"):
        models.antialias(torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.Conv2d(3, 8, 3)))


def test_blurpool_is_shift_stable():
    """Anti-aliasing: shifting 1-pixel stripes by one pixel flips a plain stride-2 subsampling
    completely, but barely changes the blurred one."""
    x = (torch.arange(32.0) % 2).view(1, 1, 1, 32).expand(1, 1, 32, 32)
    shifted = x.roll(1, -1)
    assert (x[..., ::2, ::2] - shifted[..., ::2, ::2]).abs().mean() == 1
    pool = models.BlurPool(1)
    assert (pool(x) - pool(shifted)).abs().mean() < 0.05


@pytest.mark.parametrize("make,k,c,size", [(nose_tip_cnn, 1, 1, 64), (face_points_cnn, 58, 1, 96),
                                           (youtube_faces_cnn, 68, 1, 224), (kaggle_cnn, 15, 1, 96)])
def test_seed_cnns(make, k, c, size):
    model = make(k, c, size)
    y = model(torch.rand(2, c, size, size))
    assert y.shape == (2, k, 2)
    y.sum().backward()
    with pytest.raises(ModelConfigError):
        model.check_input_size(size + 32)
