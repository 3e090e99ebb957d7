"""What can go wrong, by kind: callers catch the class that says what they can handle."""


class BotError(Exception):
    """Base class of every error this package raises on purpose; its message is meant for users."""


class ConfigError(BotError):
    """A setting is missing or invalid."""


class ModelError(BotError):
    """The embedding model could not be loaded."""


class ModelIntegrityError(ModelError):
    """The bundled model's weights are not the ones this project was built and tested with."""


class ArticleError(BotError):
    """A corpus file cannot be read as an article; the message is the reason it was skipped."""


class ArticleGoneError(ArticleError):
    """The file was deleted after the corpus folder was scanned: it is no longer part of the corpus."""


class IndexStoreError(BotError):
    """The index on disk cannot be used."""


class IndexMissingError(IndexStoreError):
    """No index has been built yet."""


class IndexCorruptError(IndexStoreError):
    """The index files are damaged or incomplete."""


class IndexMismatchError(IndexStoreError):
    """The index was built with another model, dimension or format than the one configured."""


class IndexFormatError(IndexMismatchError):
    """The index was written by another version of this program; a rebuild from the corpus loses nothing."""


class BuildError(BotError):
    """The index could not be rebuilt; the previous one is still in place."""
