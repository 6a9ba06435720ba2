"""Errors of the importer.

ImporterError
├── ConfigError            a setting is missing or malformed (fix the deployment)
├── StaleGenerationError   the object changed under us (412); the newer
│                          generation has its own event
└── LeanplumError          Leanplum refused or was unreachable (tree in leanplum.py)
"""


class ImporterError(Exception):
    """Base of every error the importer raises on purpose."""


class ConfigError(ImporterError):
    """A setting is missing or malformed; the message names each one."""


class StaleGenerationError(ImporterError):
    """The object's generation is no longer the one the event named."""
