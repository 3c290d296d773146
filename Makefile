# Two commands do all set-up: `make train` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: train test test-slow test-cuda mutation bench-quick benchmark clean studies study-imm-nose-tip study-imm-kernels study-300w-regression study-ytf68-cnn study-kaggle15

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	$(PY) -c "from heatnet.experiment import write_help_cache; write_help_cache()"  # experiments' --help at once
	touch $(STAMP)

train: $(STAMP)
	$(PY) tools/train.py experiments/unet_kl.py

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-cuda: $(STAMP)
	$(PY) -m pytest -q -m cuda

# mutation testing of the modules where a half-pixel or sign slip is silent (setup.cfg [mutmut];
# docs/mutation.md); incremental: a rerun re-tests only the functions changed since
mutation: $(STAMP)
	$(PY) -m pip install -q "mutmut==3.8.1"
	HEATNET_DATA=$${HEATNET_DATA:-$(abspath ../shared/datasets)} $(VENV)/bin/mutmut run --max-children 2  # tests run in mutants/
	$(PY) tools/mutation_table.py

bench-quick: $(STAMP)
	$(PY) tools/benchmark.py --quick

benchmark: $(STAMP)
	$(PY) tools/benchmark.py

# The studies of docs/README.md, each one command (HEATNET_DATA must name the data folder).
# Sweeps skip finished runs; a single run is skipped once its metrics.json exists.
S := results/studies
FIGURES := docs/studies
VIS := $(PY) tools/visualize.py

studies: study-imm-nose-tip study-imm-kernels study-300w-regression study-ytf68-cnn study-kaggle15

study-imm-nose-tip: $(STAMP)
	$(PY) tools/sweep.py experiments/imm_nose_tip_cnn.py --grid lr=1e-5,5e-5,1e-3 --grid batch_size=4,16 \
		--report-test --out $(S)/imm_nose_tip_sweep --no-progress
	test -f $(S)/imm_nose_tip_heatmap/metrics.json || \
		$(PY) tools/train.py experiments/imm_nose_tip_heatmap.py --run-dir $(S)/imm_nose_tip_heatmap --no-progress
	$(VIS) learning --runs $(S)/imm_nose_tip_sweep/runs/*/seed0 $(S)/imm_nose_tip_heatmap --out $(FIGURES)/imm_nose_tip_learning.png
	$(VIS) predictions --checkpoint $(S)/imm_nose_tip_sweep/runs/lr=1e-3_batch_size=4/seed0/best.pt --split test \
		--count 8 --out $(FIGURES)/imm_nose_tip_cnn_predictions.jpg
	$(VIS) predictions --checkpoint $(S)/imm_nose_tip_heatmap/best.pt --split test --count 8 \
		--out $(FIGURES)/imm_nose_tip_heatmap_predictions.jpg

# the settings the studies ran with (128 px, KL, sigma 1.5, no flip test), pinned since the recipes moved on
STUDY_300W = --input_size=128 --flip_test=false --lr=2e-3
STUDY_HEATMAP = $(STUDY_300W) --sigma=1.5 --loss=HeatmapKL

study-imm-kernels: $(STAMP)
	$(PY) tools/sweep.py experiments/imm_points_cnn.py --grid first_kernel=3,5,7,9 --seeds 2 --report-test \
		--out $(S)/imm_kernel_sweep --no-progress
	test -f $(S)/imm_unet_js/metrics.json || \
		$(PY) tools/train.py experiments/imm_unet_js.py --run-dir $(S)/imm_unet_js --no-progress $(STUDY_HEATMAP)
	for k in 3 9; do $(VIS) filters --checkpoint $(S)/imm_kernel_sweep/runs/first_kernel=$$k/seed0/best.pt \
		--out $(FIGURES)/imm_filters_$$k.png; done
	$(VIS) learning --runs $(S)/imm_kernel_sweep/runs/*/seed0 $(S)/imm_unet_js --out $(FIGURES)/imm_kernels_learning.png
	$(VIS) predictions --checkpoint $(S)/imm_kernel_sweep/runs/first_kernel=7/seed0/best.pt --split test --count 8 \
		--out $(FIGURES)/imm_cnn_predictions.jpg
	$(VIS) predictions --checkpoint $(S)/imm_unet_js/best.pt --split test --count 8 --out $(FIGURES)/imm_heatmap_predictions.jpg

study-300w-regression: $(STAMP)
	$(PY) tools/sweep.py experiments/w300_regression_resnet18.py --grid encoder=resnet18,resnet50 \
		--grid blurpool=true,false --epochs 4 --report-test --out $(S)/study_300w_regression --no-progress $(STUDY_300W)
	$(PY) tools/sweep.py experiments/w300_unet_js.py --grid encoder=resnet18 --epochs 4 --report-test \
		--out $(S)/study_300w_heatmap --no-progress $(STUDY_HEATMAP)
	for run in $(S)/study_300w_regression/runs/*/seed0 $(S)/study_300w_heatmap/runs/*/seed0; do \
		$(PY) tools/evaluate.py $$run/best.pt --split test --shifts 1,2,3,4 --out $$run/shifts --no-progress || exit 1; done
	$(VIS) learning --runs $(S)/study_300w_regression/runs/*/seed0 $(S)/study_300w_heatmap/runs/*/seed0 \
		--out $(FIGURES)/300w_regression_learning.png
	$(VIS) predictions --checkpoint $(S)/study_300w_regression/runs/encoder=resnet18_blurpool=true/seed0/best.pt \
		--split test --count 8 --out $(FIGURES)/300w_regression_predictions.jpg
	$(VIS) predictions --checkpoint $(S)/study_300w_heatmap/runs/encoder=resnet18/seed0/best.pt --split test \
		--count 8 --out $(FIGURES)/300w_heatmap_predictions.jpg

study-ytf68-cnn: $(STAMP)
	test -f $(S)/ytf68_cnn224/metrics.json || \
		$(PY) tools/train.py experiments/ytf68_cnn224.py --epochs=2 --run-dir $(S)/ytf68_cnn224 --no-progress
	test -f $(S)/ytf68_unet_kl/metrics.json || \
		$(PY) tools/train.py experiments/ytf68_unet_kl.py --epochs=2 --run-dir $(S)/ytf68_unet_kl --no-progress
	for run in ytf68_cnn224 ytf68_unet_kl; do $(PY) tools/evaluate.py $(S)/$$run/best.pt --split test --detector haar \
		--out $(S)/$$run/haar --no-progress || exit 1; done
	$(VIS) learning --runs $(S)/ytf68_cnn224 $(S)/ytf68_unet_kl --out $(FIGURES)/ytf68_cnn_learning.png
	for run in ytf68_cnn224 ytf68_unet_kl; do $(VIS) predictions --checkpoint $(S)/$$run/best.pt --split test \
		--count 8 --out $(FIGURES)/$${run}_predictions.jpg || exit 1; done

study-kaggle15: $(STAMP)
	$(PY) tools/sweep.py experiments/kaggle15_cnn.py --grid complete_only=false,true --steps 1000 --report-test \
		--out $(S)/kaggle15_sweep --no-progress
	$(PY) tools/sweep.py experiments/kaggle15_unet_kl.py --grid complete_only=false --steps 1000 --report-test \
		--out $(S)/kaggle15_heatmap --no-progress
	$(VIS) learning --runs $(S)/kaggle15_sweep/runs/*/seed0 $(S)/kaggle15_heatmap/runs/*/seed0 \
		--out $(FIGURES)/kaggle15_learning.png
	$(VIS) predictions --checkpoint $(S)/kaggle15_sweep/runs/complete_only=false/seed0/best.pt --split test --count 8 \
		--out $(FIGURES)/kaggle15_cnn_predictions.jpg

clean:
	rm -rf $(VENV) *.egg-info
