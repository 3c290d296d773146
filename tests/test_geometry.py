import numpy as np
import pytest

from heatnet.geometry import apply_affine, crop_affine, invert_affine, landmark_box, warp_to_crop


@pytest.mark.parametrize("angle,mirror", [(0, False), (17, False), (-30, True)])
def test_crop_then_inverse_returns_points(rng, angle, mirror):
    points = rng.uniform(0, 500, (68, 2))
    m = crop_affine(np.array([250.3, 240.7]), 180.5, 128, angle, mirror)
    back = apply_affine(apply_affine(points, m), invert_affine(m))
    assert np.abs(back - points).max() < 1e-4


def test_batched_affines_map_each_set_of_points_through_its_own(rng):
    points = rng.uniform(0, 500, (3, 68, 2))
    matrices = np.stack([crop_affine(rng.uniform(100, 400, 2), 150.0 + 20 * i, 112, 10.0 * i, i == 1) for i in range(3)])
    one_by_one = np.stack([apply_affine(p, m) for p, m in zip(points, matrices)])
    np.testing.assert_allclose(apply_affine(points, matrices), one_by_one)
    np.testing.assert_allclose(invert_affine(matrices), np.stack([invert_affine(m) for m in matrices]))
    assert np.abs(apply_affine(apply_affine(points, matrices), invert_affine(matrices)) - points).max() < 1e-4


def test_box_edges_map_to_pixel_edges():
    m = crop_affine(np.array([50.0, 50.0]), 20.0, 10)
    np.testing.assert_allclose(apply_affine(np.array([[40.0, 40.0], [60.0, 60.0]]), m), [[-0.5, -0.5], [9.5, 9.5]])
    mirrored = crop_affine(np.array([50.0, 50.0]), 20.0, 10, mirror=True)
    np.testing.assert_allclose(apply_affine(np.array([[41.0, 45.0]]), mirrored)[0, 0],
                               10 - 1 - apply_affine(np.array([[41.0, 45.0]]), m)[0, 0])


def _spot(size: int, centre, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return (255 * np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma**2))).astype(np.float32)


def _centroid(image: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return np.array([(xx * image).sum(), (yy * image).sum()]) / image.sum()


@pytest.mark.parametrize("size,side", [(400, 200.0), (2000, 1500.0)])  # the second goes through area reduction
def test_pixels_land_where_the_points_do(size, side):
    centre = np.array([size * 0.52 + 0.3, size * 0.47 - 0.2])
    image = _spot(size, centre, sigma=side / 25)
    m = crop_affine(np.array([size / 2, size / 2]), side, 64, angle_deg=20)
    crop = warp_to_crop(image, m, 64)
    np.testing.assert_allclose(_centroid(crop), apply_affine(centre, m), atol=0.05)


def test_landmark_box_uses_visible_points_only():
    points = np.array([[0, 0], [10, 20], [100, 100.0]])
    np.testing.assert_allclose(landmark_box(points, np.array([1, 1, 0])), [0, 0, 10, 20])
    with pytest.raises(ValueError):
        landmark_box(points, np.zeros(3))


def test_roll_is_the_eye_line_turned_counter_clockwise_on_screen():
    from heatnet.geometry import roll_degrees

    eyes = np.array([[10.0, 50.0], [30.0, 50.0]])  # the subject's right eye on the image's left
    assert roll_degrees(eyes, (0, 1)) == 0.0
    assert np.isclose(roll_degrees(np.array([[10.0, 50.0], [10.0, 30.0]]), (0, 1)), 90.0)  # left eye above: turned ccw
    assert np.isclose(abs(roll_degrees(eyes[::-1], (0, 1))), 180.0)  # upside down
    np.testing.assert_allclose(roll_degrees(np.stack([eyes, eyes[:, ::-1]]), (0, 1)), [0.0, -90.0])


@pytest.mark.parametrize("angle", [90, 180, 270, -90, 37.5, 200])
def test_a_turned_image_carries_every_pixel_to_where_its_affine_maps_it(rng, angle):
    from heatnet.geometry import roll_degrees, turn_image

    h, w = 41, 60
    image = np.zeros((h, w, 3), np.uint8)
    dots = np.array([[7, 5], [52, 33], [30, 20]])  # (x, y) pixel centres
    image[dots[:, 1], dots[:, 0]] = 255
    turned, matrix = turn_image(image, angle)
    mapped = apply_affine(dots.astype(np.float64), matrix)
    # every pixel is kept: the canvas holds the turned image's corners
    corners = apply_affine(np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]]), matrix)
    assert corners.min() > -1.01 and (corners.max(axis=0) < np.array(turned.shape[1::-1]) + 0.01).all()
    if angle % 90 == 0:  # an exact permutation of the pixels
        assert turned.shape[:2] == ((h, w) if angle % 180 == 0 else (w, h))
        assert np.abs(mapped - np.round(mapped)).max() < 1e-9
        assert (turned[np.round(mapped[:, 1]).astype(int), np.round(mapped[:, 0]).astype(int)] == 255).all()
        assert turned.sum() == image.sum()
    else:  # bilinear: each dot's brightness is centred where its point maps (well under the half pixel of an offset bug)
        gray = turned[..., 0].astype(np.float64)
        for x, y in mapped:
            x0, y0 = int(round(x)), int(round(y))
            patch = gray[y0 - 2:y0 + 3, x0 - 2:x0 + 3]
            ys, xs = np.mgrid[y0 - 2:y0 + 3, x0 - 2:x0 + 3]
            centre = np.array([(xs * patch).sum(), (ys * patch).sum()]) / patch.sum()
            assert np.abs(centre - [x, y]).max() < 0.15
    # the points' roll grows by the angle
    eyes = np.array([[10.0, 20.0], [40.0, 22.0]])
    expected = (roll_degrees(eyes, (0, 1)) + angle + 180) % 360 - 180
    got = roll_degrees(apply_affine(eyes, matrix), (0, 1))
    assert abs((got - expected + 180) % 360 - 180) < 1e-9


@pytest.mark.parametrize("scale,angle", [(1.3, 0.0), (0.7, 25.0), (0.4, 0.0), (0.4, -35.0), (0.12, 60.0)])
def test_a_crop_of_a_ramp_is_the_ramp_at_each_crop_pixels_original_point(scale, angle):
    """Bilinear sampling and area averaging both reproduce a linear image exactly, so every pixel
    of the crop, edges included, must hold the ramp's value at the original point its centre maps
    back to: an independent oracle for the sampling convention, the reduction branch's region of
    interest and its offsets (scale < 0.5), to 0.02 grey levels."""
    size = 48
    side = size / scale
    h = w = int(side * 1.6) + 40
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    image = 0.31 * xs + 0.17 * ys + 5.0  # (h, w) float32, a linear ramp
    m = crop_affine(np.array([w / 2 + 0.3, h / 2 - 0.7]), side, size, angle_deg=angle)
    crop = warp_to_crop(image, m, size)
    qy, qx = np.mgrid[0:size, 0:size].astype(np.float64)
    original = apply_affine(np.stack([qx, qy], axis=-1), invert_affine(m))  # (S, S, 2)
    np.testing.assert_allclose(crop, 0.31 * original[..., 0] + 0.17 * original[..., 1] + 5.0, atol=0.02 * (1 + 1 / scale))


def test_a_strongly_shrunk_crop_averages_fine_detail_instead_of_aliasing():
    """A one-pixel checkerboard shrunk 8x must come out as its mean grey (area averaging first),
    not as a pattern of whichever pixels the bilinear taps hit."""
    board = ((np.indices((800, 800)).sum(axis=0) % 2) * 255).astype(np.uint8)
    crop = warp_to_crop(board, crop_affine(np.array([400.0, 400.0]), 512.0, 64, angle_deg=10), 64).astype(np.float64)
    assert abs(crop.mean() - 127.5) < 2 and crop.std() < 3


def test_a_turned_image_has_black_corners_and_the_right_angles_are_pixel_permutations():
    from heatnet.geometry import turn_image

    white = np.full((30, 50, 3), 255, np.uint8)
    turned, _ = turn_image(white, 45.0)
    assert (turned[0, 0] == 0).all() and (turned[-1, -1] == 0).all()  # outside the photo: black
    assert (turned[turned.shape[0] // 2, turned.shape[1] // 2] == 255).all()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    for angle, quarters in ((90.0, 1), (180.0, 2), (-90.0, 3), (450.0, 1)):
        np.testing.assert_array_equal(turn_image(image, angle)[0], np.rot90(image, quarters))


def test_landmark_box_without_visibility_uses_every_point_and_says_why_it_fails():
    points = np.array([[3.0, 4.0], [10.5, 2.0], [7.0, 9.0]])
    box = landmark_box(points)
    assert box.dtype == np.float64
    np.testing.assert_array_equal(box, [3.0, 2.0, 10.5, 9.0])
    np.testing.assert_array_equal(landmark_box(points[:1], np.ones(1)), [3.0, 4.0, 3.0, 4.0])  # one point: a zero box
    with pytest.raises(ValueError, match="^no visible points to make a face box from$"):
        landmark_box(points, np.zeros(3))


@pytest.mark.parametrize("corner", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_a_shrunk_crop_across_an_image_corner_is_the_ramp_inside_and_black_outside(corner):
    """A crop shrunk 6x (the area-reduction branch) that hangs over one corner of the photo, turned
    20 degrees: its region of interest is cut at the photo's edges, so where the crop's pixels map
    a few pixels inside the photo they must hold the ramp exactly (a region cut one pixel short, or
    one of the wrong size, blends them with black), and where they map well outside, black."""
    h, w = 300, 400
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    image = 0.31 * xs + 0.17 * ys + 5.0
    size, side = 40, 240.0
    centre = np.array([w * corner[0] + (40 if corner[0] == 0 else -40), h * corner[1] + (30 if corner[1] == 0 else -30)])
    m = crop_affine(centre, side, size, angle_deg=20.0)
    crop = warp_to_crop(image, m, size)
    qy, qx = np.mgrid[0:size, 0:size].astype(np.float64)
    original = apply_affine(np.stack([qx, qy], axis=-1), invert_affine(m))
    x, y = original[..., 0], original[..., 1]
    inside = (x > 2.5) & (x < w - 3.5) & (y > 2.5) & (y < h - 3.5)
    outside = (x < -8) | (x > w + 7) | (y < -8) | (y > h + 7)
    assert inside.sum() > 200 and outside.sum() > 200
    np.testing.assert_allclose(crop[inside], (0.31 * x + 0.17 * y + 5.0)[inside], atol=0.02 * 7)
    assert (crop[outside] == 0).all()
