"""The core's public surface: what stage and gateway code may import from `pipeline`."""

import pipeline


def test_every_public_name_is_importable_and_listed() -> None:
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None, name
    public = {n for n in vars(pipeline) if not n.startswith("_")} - {
        "errors", "files", "settings", "stage", "store", "types", "keys", "connection",
        "embedded", "logs", "runtime", "worker", "replay", "allocator", "janitor", "metrics",
        "addresses", "compat", "voiceprints"}
    assert public == set(pipeline.__all__)
