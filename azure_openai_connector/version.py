"""The package version, in one place: pyproject.toml reads it, the User-Agent sends it, and a test
holds connector.yaml's `connector.version` to it."""

__version__ = "0.1.0"
