"""heatnet's MTCNN cascade: its parts (pyramid, non-maximum suppression, box arithmetic, crops)
on boxes whose answers are known; whole-photo detection is checked in test_predict.py."""
import numpy as np
import torch

from heatnet.mtcnn import WEIGHTS, Mtcnn, OutputNet, ProposalNet, RefineNet, _crops, _shifted, _squared, nms, pyramid_scales


def test_the_shipped_weights_fill_every_layer_of_the_three_nets():
    weights = torch.load(WEIGHTS, weights_only=True)
    for name, net in (("pnet", ProposalNet()), ("rnet", RefineNet()), ("onet", OutputNet())):
        assert set(weights[name]) == set(net.state_dict())


def test_the_nets_give_probabilities_and_offsets_of_the_right_shapes():
    detector = Mtcnn()
    with torch.inference_mode():
        probability, offsets = detector.pnet(torch.zeros(2, 3, 30, 40))
        assert probability.shape == (2, 10, 15) and offsets.shape == (2, 4, 10, 15)  # (30 - 2) / 2 - 4 = 10
        for net, size in ((detector.rnet, 24), (detector.onet, 48)):
            probability, offsets, *keypoints = net(torch.zeros(3, 3, size, size))
            assert probability.shape == (3,) and offsets.shape == (3, 4)
            assert ((probability >= 0) & (probability <= 1)).all()
        assert keypoints[0].shape == (3, 10)  # O-Net: five x, then five y


def test_the_pyramid_runs_from_the_smallest_face_to_the_whole_image():
    scales = pyramid_scales(300, 400, min_face=20)
    assert scales[0] == 12 / 20 and np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert 300 * scales[-1] >= 12 > 300 * scales[-1] * 0.709
    assert pyramid_scales(10, 400, min_face=20) == []  # shorter than the smallest face's window


def test_nms_keeps_the_best_of_overlapping_boxes_and_by_smaller_drops_nested_ones():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [2, 2, 6, 6]], np.float64)
    scores = np.array([0.8, 0.9, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 3]  # box 0 overlaps box 1 by 9/11; box 3 by 16/100
    assert nms(boxes, scores, 0.5, by_smaller=True).tolist() == [1, 2]  # box 3 lies inside box 1
    assert nms(boxes, scores, 0.95).tolist() == [1, 0, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_offsets_are_fractions_of_the_box_and_squares_keep_the_centre():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0]])
    assert _shifted(boxes, np.array([[0.5, -0.25, 0.0, 0.5]])).tolist() == [[20.0, 10.0, 30.0, 80.0]]
    assert _squared(boxes).tolist() == [[0.0, 20.0, 40.0, 60.0]]


def test_crops_cover_their_box_and_are_black_outside_the_image():
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:20, 10:20] = 255  # a white square, pixels 10..19
    inside, outside = _crops(image, np.array([[10.0, 10.0, 20.0, 20.0], [-12.0, -12.0, 8.0, 8.0]]), 24)
    # pixel edges 10..20 are exactly the square: white but for the bilinear rim, and centred on it
    assert inside[1:-1, 1:-1].min() == 255 and np.array_equal(inside, inside[::-1, ::-1])
    assert outside.max() == 0  # the image's black corner and the black beyond it
