"""The ``stt`` command: run the whole service on one machine, and a client for its API."""
