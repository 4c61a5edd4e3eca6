"""Big Three: a self-hosted service that runs and orchestrates LLM agents."""

__version__ = "0.1.0"
