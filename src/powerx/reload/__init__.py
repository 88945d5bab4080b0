"""The developer side of hot reload: watch -> build -> push -> report."""
