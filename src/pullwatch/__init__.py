"""pullwatch: Docker Hub pull rate limits, for every identity, live, without spending a pull."""

__version__ = "0.1.0"
