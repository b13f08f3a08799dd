"""The Flask-Smorest application (HTTP API)."""
