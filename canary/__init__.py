"""canary: a continuous production quality canary for LLM serving fleets."""

__version__ = "0.1.0"
