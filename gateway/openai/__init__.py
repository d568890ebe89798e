"""OpenAI-compatible endpoints (/v1/audio/transcriptions, /v1/audio/translations,
/v1/models): OpenAI's clients use the service unchanged, through the same pipeline."""

from gateway.openai.routes import openai_router

__all__ = ["openai_router"]
