"""The ``powerx`` command line: parse, call a service, render with rich."""
