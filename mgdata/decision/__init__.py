"""Decision module."""
