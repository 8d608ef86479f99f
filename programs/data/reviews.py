"""Writes reviews.npz: 2,400 token sequences standing in for short reviews, for seq_embed.model.

Ids 1-9 are "positive" words, 10-18 "negative" ones, 19-49 neutral, 0 pads each sequence of
6 to 24 words to length 24. The label is 1 when a sequence has more positive than negative
words, else 0 (sequences with as many of each are redrawn), flipped for one sample in ten (the
reviewer who means the opposite), so about 90% is the best accuracy to expect. Deterministic:
NumPy's PCG64 from seed 17. Run: python3 programs/data/reviews.py
"""

from pathlib import Path

import numpy as np

SAMPLES, LENGTH, VOCABULARY = 2400, 24, 50
rng = np.random.default_rng(17)
x = np.zeros((SAMPLES, LENGTH), dtype=np.int32)
y = np.zeros(SAMPLES, dtype=np.int32)
for i in range(SAMPLES):
    while True:
        words = rng.integers(1, VOCABULARY, size=rng.integers(6, LENGTH + 1))
        positive = np.count_nonzero(words <= 9)
        negative = np.count_nonzero((words >= 10) & (words <= 18))
        if positive != negative:
            break
    x[i, : len(words)] = words
    y[i] = int(positive > negative) ^ int(rng.random() < 0.1)
np.savez_compressed(Path(__file__).with_name("reviews.npz"), x=x, y=y)
