"""The HTTP gateway: accepts uploads, queues jobs on the pipeline and serves their results."""

from gateway.app import create_app

__all__ = ["create_app"]
