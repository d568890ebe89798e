"""The service's benchmark suite: ``python -m benchmark [PART ...] [--json FILE] [--full]``.

Every figure that matters is a ratio of two measurements taken side by side in one run
(the machines this runs on are small and noisy), next to the target it is held to.
"""
