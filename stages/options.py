"""What a client may choose per job. The API, the job view and the `stt submit` flags are
all derived from :class:`JobOptions`: its fields and their descriptions."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from pipeline.addresses import parse_url
from pipeline.errors import AddressRefused
from pipeline.settings import doc
from pipeline.types import Options

Speakers = Annotated[int, msgspec.Meta(ge=1, le=64)]


class JobOptions(Options, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client may choose per job."""

    language: Annotated[Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}$")] | None, doc(
        "The language spoken, as an ISO 639 code (e.g. en). Unset: detected.")] = None
    task: Annotated[Literal["transcribe", "translate"], doc(
        "transcribe, or translate into English.")] = "transcribe"
    num_speakers: Annotated[Speakers | None, doc(
        "How many speakers there are, when known.")] = None
    min_speakers: Annotated[Speakers | None, doc("At least this many speakers.")] = None
    max_speakers: Annotated[Speakers | None, doc("At most this many speakers.")] = None
    model: Annotated[Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None, doc(
        "The Whisper model for this job, as WHISPER_MODEL takes it. Unset: "
        "WHISPER_MODEL.")] = None
    diarize: Annotated[bool, doc(
        "Whether to find who speaks when (false: no speakers, and faster).")] = True
    callback_url: Annotated[Annotated[str, msgspec.Meta(max_length=2000)] | None, doc(
        "An http(s) URL the service POSTs a signed event to when the job completes or "
        "fails (a webhook; see the README). Private and loopback addresses are refused "
        "unless ALLOW_PRIVATE_URLS is set.")] = None
    callback_events: Annotated[Literal["job", "stage"], doc(
        "job: an event when the job completes or fails; stage: also one when each stage "
        "finishes.")] = "job"

    def __post_init__(self) -> None:
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError("min_speakers must not exceed max_speakers")
        if self.num_speakers and (self.min_speakers or self.max_speakers):
            raise ValueError("give num_speakers, or min_speakers/max_speakers, not both")
        if self.callback_url is not None:
            try:
                parts = parse_url(self.callback_url)
            except AddressRefused as exc:
                raise ValueError(f"callback_url: {exc}") from None
            if parts.username is not None or parts.password is not None:
                raise ValueError("callback_url must carry no user name or password: the "
                                 "events are signed (webhook-signature) instead")
        elif self.callback_events != "job":
            raise ValueError("callback_events needs a callback_url")

    @classmethod
    def of(cls, options: Options) -> JobOptions:
        """A stored job's options as this type (the store decodes them with the stage
        table's options type, which is this one)."""
        if not isinstance(options, cls):
            raise TypeError(f"not the speech service's job options: {options!r}")
        return options

    def plan(self) -> tuple[str, ...]:
        """The stages a fresh job with these options runs through."""
        from stages.table import TABLE  # the table's module imports this one

        return TABLE.plan(self)
