"""The clerk's voice: the persona pack (`pack`: load, validate, render) next to its YAML files."""

from services.chat_agent.persona.pack import (
    DEFAULT_PACK,
    KINDS,
    PRODUCT_CATEGORIES,
    TONES,
    Persona,
    PersonaError,
    product_kind,
    tone_for,
)

__all__ = [
    "DEFAULT_PACK",
    "KINDS",
    "PRODUCT_CATEGORIES",
    "TONES",
    "Persona",
    "PersonaError",
    "product_kind",
    "tone_for",
]
