"""pyannote's clustering runs on fastcluster's linear-memory linkage, with scipy's results."""

from __future__ import annotations

import numpy as np
import pytest

from stages.compat import linkage as _linkage
from tests.stages.conftest import Reclustering


def _clustered_unit_vectors(n: int) -> np.ndarray:
    # Like pyannote's normalised speaker embeddings: a few speakers, much spread around each.
    rng = np.random.default_rng(0)
    speakers = rng.normal(size=(5, 192))
    vectors = speakers[rng.integers(0, len(speakers), n)] + 0.8 * rng.normal(size=(n, 192))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("method", ["centroid", "median", "ward", "single"])
def test_same_dendrogram_as_scipy(method: str) -> None:
    from scipy.cluster import hierarchy

    vectors = _clustered_unit_vectors(2000)
    ours = _linkage.linkage(vectors, method=method, metric="euclidean")
    scipys = hierarchy.linkage(vectors, method=method, metric="euclidean")
    assert np.array_equal(ours[:, [0, 1, 3]], scipys[:, [0, 1, 3]])  # merges and sizes
    np.testing.assert_allclose(ours[:, 2], scipys[:, 2], rtol=1e-12, atol=1e-12)


def test_what_fastcluster_cannot_do_is_left_to_scipy() -> None:
    from scipy.cluster import hierarchy

    vectors = _clustered_unit_vectors(50)
    for method, metric in (("average", "cosine"), ("complete", "euclidean")):
        assert np.array_equal(_linkage.linkage(vectors, method=method, metric=metric),
                              hierarchy.linkage(vectors, method=method, metric=metric))
    vectors[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):  # scipy's error, not fastcluster's
        _linkage.linkage(vectors, method="centroid")


@pytest.mark.models
def test_pyannote_diarizes_as_with_scipy(conversation_reclustering: Reclustering,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pyannote.audio.pipelines import clustering
    from scipy.cluster import hierarchy

    from stages.diarize import recluster

    assert clustering.linkage is _linkage.linkage
    # pyannote still calls the function by that module-level name (a rename would leave
    # the installed linkage unused and go unnoticed otherwise).
    assert "linkage" in clustering.AgglomerativeClustering.cluster.__code__.co_names
    assert "linkage" in clustering.VBxClustering.__call__.__code__.co_names

    pipeline, file, inputs = (conversation_reclustering.pipeline, conversation_reclustering.file,
                              conversation_reclustering.inputs)
    for speakers in ({}, {"num_speakers": 2}):
        ours = recluster(pipeline, file, inputs, speakers)
        with monkeypatch.context() as patch:
            patch.setattr(clustering, "linkage", hierarchy.linkage)
            scipys = recluster(pipeline, file, inputs, speakers)
        assert ours.speaker_diarization == scipys.speaker_diarization
        np.testing.assert_allclose(ours.speaker_embeddings, scipys.speaker_embeddings)
