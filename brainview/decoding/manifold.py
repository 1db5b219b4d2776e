"""Captions of a region on the natural-image manifold (BrainSCUBA, Luo et al., ICLR 2024, on brainview's
linear decoder).

The paper's synthetic pattern (:mod:`brainview.decoding.synthetic`) asks the language model about the
tokens of an indicator pattern that no image ever produced. Here the region's direction in query-token
space is its forward (Haufe et al. 2014) pattern: the covariance over the test trials of the decoder's
predicted tokens with the region's mean response, i.e. how the decoded content moves when the region
is more active. That direction is projected onto a bank of real images' tokens (the bundle's test
images): a softmax over the bank of each image's cosine with the direction (the bank's mean token
removed, which every image shares), at a temperature ``temperature``; the weighted mean of the bank
images' tokens is a point among natural images, which the captioner then describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainview.decoding.language.concept_maps import haufe_pattern
from brainview.decoding.vectors import unit_norm
from brainview.errors import UserError

#: softmax temperature on cosines, chosen on the demo bundle (docs/notes/issue-26.md): the largest of
#: 0.005-0.1 whose captions name all 8 ROIs' planted content (0.05 and 0.1: 7 of 8); 2-4.4 of the
#: 300 bank images carry the weight (1 / sum of squared weights)
TEMPERATURE = 0.02


def region_response(fmri: np.ndarray, voxels: np.ndarray) -> np.ndarray:
    """Per trial, the mean of the region's voxels (n_trials,), float64."""
    voxels = np.unique(np.asarray(voxels, dtype=np.int64))
    if voxels.size == 0:
        raise ValueError("the region is empty: choose at least one voxel")
    return np.asarray(fmri[:, voxels], dtype=np.float64).mean(axis=1)


def region_direction(tokens: np.ndarray, response: np.ndarray) -> np.ndarray:
    """The Haufe pattern of the region in query-token space: cov(tokens, response) / sd(response) over
    trials, (n_query, query_dim), from predicted tokens (n, n_query, query_dim) and the region's response (n,)."""
    tokens = np.asarray(tokens, dtype=np.float32)
    if len(tokens) < 2 or not np.ptp(response) > 0:
        raise UserError("the region responds the same to every test trial: it has no direction to project")
    return haufe_pattern(tokens.reshape(len(tokens), -1), np.asarray(response, dtype=np.float64)
                         ).reshape(tokens.shape[1:]).astype(np.float32)


@dataclass
class ManifoldPoint:
    """The region's direction projected onto an image bank: the weighted mean of the bank's tokens."""

    tokens: np.ndarray  # (n_query, query_dim)
    weights: np.ndarray = field(repr=False)  # (n_bank,) softmax weights, sum 1
    similarity: np.ndarray = field(repr=False)  # (n_bank,) cosine of each (centred) bank image with the direction
    temperature: float = TEMPERATURE

    @property
    def effective_images(self) -> float:
        """How many bank images carry the weight: 1 / Σ w² (the perplexity-like count)."""
        return float(1.0 / np.square(self.weights).sum())

    def closest(self, k: int) -> np.ndarray:
        """The ``k`` bank images closest to the direction, closest first (LaVCa's best images)."""
        return np.argsort(-self.similarity, kind="stable")[:k]


def project_to_bank(direction: np.ndarray, bank: np.ndarray, temperature: float = TEMPERATURE) -> ManifoldPoint:
    """Softmax(cos(bank image − bank mean, direction) / temperature)-weighted mean of the bank's tokens."""
    if not temperature > 0:
        raise ValueError(f"the temperature must be positive, not {temperature}")
    bank = np.asarray(bank, dtype=np.float32)
    flat = bank.reshape(len(bank), -1)
    similarity = unit_norm(flat - flat.mean(axis=0)) @ unit_norm(np.asarray(direction, dtype=np.float32).ravel())
    logits = (similarity - similarity.max()) / temperature
    weights = np.exp(logits.astype(np.float64))
    weights /= weights.sum()
    tokens = np.tensordot(weights, bank, axes=1).astype(np.float32)
    return ManifoldPoint(tokens, weights, similarity.astype(np.float32), float(temperature))


def manifold_point(predicted: np.ndarray, fmri: np.ndarray, bank: np.ndarray, voxels: np.ndarray,
                   temperature: float = TEMPERATURE) -> ManifoldPoint:
    """The region's manifold point from one set of trials: their predicted tokens (n, q, d), their
    normalised fMRI (n, n_voxels) and their images' tokens, the bank (n, q, d)."""
    return project_to_bank(region_direction(predicted, region_response(fmri, voxels)), bank, temperature)
