"""Study: the Kaggle notebook's CCMP CNN ((conv-BN-LeakyReLU) x 2 + max-pool blocks, 96 px grayscale,
Wing loss) on Kaggle's 15 keypoints with Kaggle's missing labels, emulated on 300-W (dataset
300w_kaggle15: 7 training faces in 10 keep 4 points). Missing points are masked out of the loss;
`--complete_only=true` instead drops the incomplete faces, as the notebooks did (docs/kaggle15.md).
On the real data: --dataset=kaggle, then tools/kaggle_submission.py."""
from dataclasses import replace

from experiments.regression_cnn import build, settings  # noqa: F401

settings = replace(settings, dataset="300w_kaggle15", train_limit=0, epochs=12, box_scale=1.1)
