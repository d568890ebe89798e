"""Identifying a job's speakers: each speaker's centroid embedding against voiceprints.

Speakers and voiceprints are paired one to one (two speakers of one job are never the same
person, and one voice never names two speakers) by the assignment that maximises the total
cosine similarity (scipy's linear_sum_assignment); a pair below SPEAKER_MATCH_THRESHOLD
leaves its speaker unnamed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from pipeline.errors import PermanentError
from pipeline.voiceprints import Candidate, Candidates
from stages import artifacts
from stages.table import Context
from stages.types import SpeakerName


def identified(ctx: Context, diarization: artifacts.Diarization) -> artifacts.Diarization:
    """``diarization`` with its speakers named by the voiceprints the gateway gave the job,
    if it asked to identify them."""
    if ctx.job.options.identify is False:
        return diarization
    if not ctx.files.voiceprints.exists():
        raise PermanentError("identify: the job has no voiceprints to compare with; submit "
                             "it through the gateway, which gives it the caller's")
    candidates = artifacts.read(ctx.files.voiceprints, Candidates).voiceprints
    names, warnings = identify(
        diarization.embeddings, diarization.speakers, candidates,
        ctx.settings.diarization_identity, ctx.settings.speaker_match_threshold)
    ctx.log.info("identified %s among %d voiceprints", ", ".join(
        f"{n.label} as {n.name} ({n.similarity:.3f})" for n in names
        if n.similarity is not None) or "nobody", len(candidates))
    return msgspec.structs.replace(diarization, names=names, warnings=warnings)


def identify(embeddings: Mapping[str, Sequence[float]], speakers: Sequence[str],
             candidates: Sequence[Candidate], model: str,
             threshold: float) -> tuple[list[SpeakerName], list[str]]:
    """A name per speaker (its label when unmatched), and warnings: voiceprints of another
    embedding model skipped, speakers without an embedding (too short to embed)."""
    from scipy.optimize import linear_sum_assignment

    warnings: list[str] = []
    foreign = [c for c in candidates if c.model != model]
    if foreign:
        warnings.append(
            f"identify: {len(foreign)} voiceprint{'s' if len(foreign) > 1 else ''} ("
            + ", ".join(c.name for c in foreign) + f") made with the diarization model "
            f"{foreign[0].model!r}, not this job's {model!r}, never match: enroll them again")
    usable = [c for c in candidates if c.model == model]
    embedded = [s for s in speakers if s in embeddings]
    if len(embedded) < len(speakers):
        warnings.append("identify: " + ", ".join(s for s in speakers if s not in embeddings)
                        + " spoke too little to compare with voiceprints")
    names = {s: SpeakerName(label=s, name=s) for s in speakers}
    if usable and embedded:
        similarity = _unit(np.array([embeddings[s] for s in embedded])) @ _unit(
            np.array([c.embedding for c in usable])).T
        for row, column in zip(*linear_sum_assignment(similarity, maximize=True), strict=True):
            score = float(similarity[row, column])
            if score >= threshold:
                names[embedded[row]] = SpeakerName(
                    label=embedded[row], name=usable[column].name,
                    similarity=round(score, 4), voiceprint=usable[column].id)
    return [names[s] for s in speakers], warnings


def similarities(embeddings: Mapping[str, Sequence[float]],
                 candidates: Sequence[Candidate]) -> dict[str, dict[str, float]]:
    """Every speaker's cosine similarity with every voiceprint, by label and name (for the
    benchmark's margins)."""
    labels = list(embeddings)
    if not labels or not candidates:
        return {label: {} for label in labels}
    matrix = _unit(np.array([embeddings[s] for s in labels])) @ _unit(
        np.array([c.embedding for c in candidates])).T
    return {label: {c.name: float(matrix[i, j]) for j, c in enumerate(candidates)}
            for i, label in enumerate(labels)}


def _unit(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)
