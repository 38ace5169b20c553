"""Tag -> quadrant mapping files (package data, selectable by name)."""
