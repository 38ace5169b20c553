"""Readers for real datasets that users bring (MTG-Jamendo, MoisesDB).

Each source module parses a dataset's own on-disk format into typed records and
exposes audio access separately, so metadata-only stages run without the audio.
"""
