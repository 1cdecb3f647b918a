"""callqa: speech analytics for contact-centre quality assurance."""

__version__ = "0.1.0"
PIPELINE_VERSION = __version__
