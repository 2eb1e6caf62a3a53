"""Errors the project raises on purpose: each message names the problem and the way out."""


class FakeNewsError(Exception):
    """Base class: anything the CLI may print as a one-line error instead of a traceback."""


class DataSourceError(FakeNewsError):
    """A source cannot be read: missing file, bad URI, failed download, checksum mismatch."""


class SchemaError(FakeNewsError):
    """A source was read but its columns or values are not what a reader expects."""


class ValidationFailed(FakeNewsError):
    """The data-quality suite failed; ``result`` holds the structured details."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class LeakageError(FakeNewsError):
    """A normalised title appears in more than one split."""


class BundleError(FakeNewsError):
    """A model bundle is missing, incomplete or unsafe to load."""


class StorageConfigError(FakeNewsError):
    """A store's URL cannot be used here: an unknown backend, or its database driver is not installed."""


class InputError(FakeNewsError):
    """Bad input to the predictor: empty, not a string, or over the size limits."""


class PromotionRefused(FakeNewsError):
    """A challenger may not replace the champion: the gate failed or the evidence is stale."""


class ChampionMoved(PromotionRefused):
    """The champion is no longer the one a promotion expected to replace (another promotion won)."""
