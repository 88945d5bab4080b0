"""PowerX DevKit: run, reload and debug PowerX plugins locally."""

from powerx.errors import PowerXError

__version__ = "0.1.0"
__all__ = ["PowerXError", "__version__"]
