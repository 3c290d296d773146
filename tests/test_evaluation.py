"""Evaluation: predictions mapped back to original pixels, flip test, decoders on one forward pass."""
import numpy as np
import pytest
import torch

from heatnet.augment import Augmentation
from heatnet.samples import LandmarkDataset
from heatnet.schemes import IBUG68
from heatnet.synthetic import SyntheticFaces


def test_flip_test_maps_mirrored_predictions_back():
    from heatnet.evaluation import mirror_predictions

    ds = LandmarkDataset(SyntheticFaces(2), size=64)
    mirrored = LandmarkDataset(SyntheticFaces(2), size=64, augmentation=Augmentation(
        rotation_deg=0, scale_range=(1, 1), shift=0, mirror_prob=1, color_prob=0, blur_prob=0, noise_prob=0,
        occlusion_prob=0, gray_prob=0))
    plain, flipped = ds[0], mirrored[0]
    torch.testing.assert_close(flipped["image"], plain["image"].flip(-1))  # the mirrored crop is the flipped input
    back = mirror_predictions(flipped["points"][None], 64, IBUG68)[0]  # its labels, mapped back
    torch.testing.assert_close(back, plain["points"], atol=1e-4, rtol=0)


def test_merging_shards_gives_what_one_process_gives():
    """Distributed evaluation: each process evaluates every third image (a DistributedSampler's
    shards), one shard may be empty; the merge must hold every array in dataset order, the loss
    weighted by shard size, each extra decoder's errors, and every skipped reason."""
    from heatnet.evaluation import Evaluation, merge_evaluations
    from heatnet.metrics import LandmarkErrors
    from heatnet.schemes import LandmarkScheme

    scheme = LandmarkScheme("tiny", ("a", "b"), (1, 0), (0, 1), {"eyes": (0, 1)})
    rng = np.random.default_rng(0)
    n = 7
    pred, gt = rng.normal(size=(n, 2, 2)), rng.normal(size=(n, 2, 2))
    vis, norm = (rng.random((n, 2)) > 0.2).astype(float), rng.uniform(5, 10, n)
    other = rng.normal(size=(n, 2, 2))  # an extra decoder's points
    losses = np.arange(n, dtype=float) ** 2  # each image's loss (uneven: a mean of shard means would differ)

    def shard(idx: np.ndarray) -> Evaluation:
        errors, extra = LandmarkErrors(scheme), LandmarkErrors(scheme)
        errors.add(pred[idx], gt[idx], vis[idx], norm[idx])
        extra.add(other[idx], gt[idx], vis[idx], norm[idx])
        return Evaluation(errors, float(losses[idx].mean()), pred[idx] + 100, idx, {"argmax": extra},
                          [f"image {i} unreadable" for i in idx if i == 4])

    merged = merge_evaluations([shard(np.arange(r, n, 3)) for r in range(3)] + [None])
    np.testing.assert_array_equal(merged.indices, np.arange(n))
    for got, want in zip(merged.errors.arrays(), (pred, gt, vis, norm)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(merged.by_decoder["argmax"].arrays()[0], other)
    np.testing.assert_array_equal(merged.predictions, pred + 100)
    assert merged.loss == pytest.approx(losses.mean(), abs=1e-12)
    assert merged.summary()["loss"] == merged.loss and merged.summary()["nme_%"] == merged.errors.summary()["nme_%"]
    assert merged.skipped == ["image 4 unreadable"]
    one = shard(np.arange(n))
    assert merge_evaluations([None, one]) is one  # a single shard is the evaluation itself


def _dlib_xml(path, records) -> None:
    """A dlib imglab XML of the records (each with its landmark box as the face box)."""
    images = []
    for r in records:
        x0, y0 = r.points.min(0)
        x1, y1 = r.points.max(0)
        parts = "".join(f"<part name='{i:02d}' x='{x!r}' y='{y!r}'/>" for i, (x, y) in enumerate(r.points.tolist()))
        images.append(f"<image file='{r.image_path.name}'><box top='{y0}' left='{x0}' width='{x1 - x0}' "
                      f"height='{y1 - y0}'>{parts}</box></image>")
    path.write_text(f"<dataset><images>{''.join(images)}</images></dataset>")


def test_a_labelled_folder_scores_as_the_named_dataset_on_the_same_images(data_root, tmp_path):
    """tools/evaluate.py --images: .pts beside the images, a dlib XML or a ytf68-layout CSV give the
    NME of `--dataset 300w --split test` on the same 6 lfpw test faces, in reports named after the folder."""
    import json

    from conftest import ROOT, in_process
    from heatnet.formats import write_ytf_csv

    pts = sorted((data_root / "300w/lfpw/testset").glob("*.pts"))[:6]
    named = tmp_path / "root/300w/lfpw/testset"
    folders = {kind: tmp_path / f"my_{kind}" for kind in ("pts", "xml", "csv")}
    for folder in (named, *folders.values()):
        folder.mkdir(parents=True)
        for p in pts:
            image = next(p.with_suffix(s) for s in (".png", ".jpg") if p.with_suffix(s).is_file())
            (folder / image.name).symlink_to(image)
            if folder in (named, folders["pts"]):
                (folder / p.name).symlink_to(p)
    for other in ("helen/testset", "ibug"):  # the rest of the 300-W test layout, empty
        (tmp_path / "root/300w" / other).mkdir(parents=True)
    from heatnet.datasets import load_folder

    records = load_folder(folders["pts"]).records
    _dlib_xml(folders["xml"] / "labels.xml", records)
    write_ytf_csv(folders["csv"] / "labels.csv", records)

    checkpoint = str(ROOT / "heatnet/assets/heatnet_300w_68.pt")
    out = in_process("tools/evaluate.py", checkpoint, "--dataset", "300w", "--split", "test", "--data-root",
                     str(tmp_path / "root"), "--out", str(tmp_path / "eval_named"), "--no-progress")
    assert out.returncode == 0, out.stderr[-2000:]
    expected = json.loads((tmp_path / "eval_named/metrics.json").read_text())["metrics"]
    assert expected["images"] == 6
    for kind, folder in folders.items():
        out = in_process("tools/evaluate.py", checkpoint, "--images", str(folder), "--out", str(tmp_path / f"eval_{kind}"),
                         "--no-progress")
        assert out.returncode == 0, out.stderr[-2000:]
        report = json.loads((tmp_path / f"eval_{kind}/metrics.json").read_text())
        assert report["data"] == folder.name and f"on {folder.name} (6 images" in out.stdout
        assert report["metrics"]["nme_%"] == pytest.approx(expected["nme_%"], rel=1e-5), kind


def test_a_folder_without_labels_is_refused_naming_what_it_expects(tmp_path):
    from heatnet.datasets import DatasetError, load_folder

    (tmp_path / "a.csv").write_text("")
    (tmp_path / "b.xml").write_text("")
    with pytest.raises(DatasetError, match="expected .pts files beside the images, or one dlib XML file, or one CSV "
                                           "in the ytf68 layout; found no .pts, 1 XML and 1 CSV file"):
        load_folder(tmp_path)


def _edited_fast_checkpoint(path, edit) -> dict:
    """The shipped fast checkpoint, changed in place by `edit(state)`, saved at `path`; its state."""
    from heatnet.checkpoint import load_checkpoint
    from heatnet.shipped import ShippedModel

    state = load_checkpoint(ShippedModel.FAST.path)
    edit(state)
    torch.save(state, path)
    return state


def test_a_live_experiment_names_each_edited_source_and_an_old_checkpoint_says_how_to_load_it(tmp_path):
    """live_experiment rebuilds from the file on disk and warns, per source that differs, with the
    checkpoint's path, at the caller's line; the weights still load. A checkpoint whose settings no
    longer fit, written by another heatnet version, is refused with both versions and the way out."""
    import warnings

    import heatnet.evaluation
    from conftest import ROOT
    from heatnet.checkpoint import CheckpointError
    from heatnet.evaluation import load_trained

    def edit_source(state):
        state["experiment"]["path"] = str(ROOT / "experiments" / "w300_fast.py")
        state["experiment"]["sources"]["experiments.w300_fast"] += "\n# edited after training\n"

    edited = tmp_path / "edited.pt"
    state = _edited_fast_checkpoint(edited, edit_source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        method, settings, _ = load_trained(edited, live_experiment=True)
    assert [str(w.message) for w in caught] == [f"{edited}: experiments.w300_fast: edited since training"]
    assert caught[0].filename != heatnet.evaluation.__file__  # the caller's line, not heatnet's
    loaded = method.model.state_dict()
    assert all(torch.equal(loaded[name], weights.to(loaded[name].dtype)) for name, weights in state["model"].items())
    assert settings.input_size == 112
    conv = next(p for p in method.model.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)

    def stale_settings(version):  # None: the checkpoint does not say (the hint says "?")
        def edit(state):
            state["settings"]["no_such_setting"] = 1
            state["heatnet_version"] = version
            if version is None:
                del state["heatnet_version"]
        return edit

    unknown, same, old = tmp_path / "unknown.pt", tmp_path / "same.pt", tmp_path / "old.pt"
    _edited_fast_checkpoint(unknown, stale_settings(None))
    _edited_fast_checkpoint(same, stale_settings(heatnet.__version__))
    _edited_fast_checkpoint(old, stale_settings("0.0.1"))
    with pytest.raises(CheckpointError, match=r"\(written by heatnet \?, this is "):
        load_trained(unknown)
    with pytest.raises(CheckpointError) as error:
        load_trained(same)
    assert str(error.value) == f"{same}: its settings: unknown field(s) ['no_such_setting'] for HeatmapSettings"
    with pytest.raises(CheckpointError) as error:
        load_trained(old)
    assert str(error.value) == (f"{old}: its settings: unknown field(s) ['no_such_setting'] for HeatmapSettings (written by "
                                f"heatnet 0.0.1, this is {heatnet.__version__}: --live-experiment rebuilds it from the "
                                f"experiment file as it is now)")


def test_the_stored_codec_decodes_and_weights_that_do_not_fit_are_named(tmp_path):
    """A checkpoint whose codec differs from what its experiment builds now decodes with the stored
    one, saying both (at the caller's line); a codec heatnet does not know and weights of another
    shape are refused naming the file (and the experiment module)."""
    import warnings

    import heatnet.evaluation
    from heatnet.checkpoint import CheckpointError, codec_description
    from heatnet.evaluation import load_trained

    built = {}

    def other_sigma(state):
        built.update(state["codec"])
        state["codec"] = {**built, "sigma": 1.7}

    other = tmp_path / "other_codec.pt"
    state = _edited_fast_checkpoint(other, other_sigma)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        method, _, _ = load_trained(other, "cpu")
    assert [str(w.message) for w in caught] == [
        f"{other}: the experiment now builds the codec {built}; decoding with the stored {state['codec']}"]
    assert caught[0].filename != heatnet.evaluation.__file__
    assert method.codec.sigma == 1.7 and codec_description(method.codec) == state["codec"]

    def unknown_codec(state):
        state["codec"] = {**state["codec"], "type": "Simcc"}

    unknown = tmp_path / "unknown_codec.pt"
    _edited_fast_checkpoint(unknown, unknown_codec)
    with pytest.raises(CheckpointError, match=f"^{unknown}: unknown codec 'Simcc' in checkpoint$"):
        load_trained(unknown, "cpu")

    def cut_first_weight(state):
        name = next(iter(state["model"]))
        state["model"][name] = state["model"][name][:1]

    misfit = tmp_path / "misfit.pt"
    _edited_fast_checkpoint(misfit, cut_first_weight)
    with pytest.raises(CheckpointError, match=f"^{misfit}: weights do not fit the model that experiments.w300_fast builds"):
        load_trained(misfit, "cpu")
