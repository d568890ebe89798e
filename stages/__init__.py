"""The model stages of the speech service: decode, diarize, transcribe.

Importing any stage module imports this package first, so pyannote's telemetry is switched
off before pyannote can read its setting (it reads it at import time).
"""

import os

os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
