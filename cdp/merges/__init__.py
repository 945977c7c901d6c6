"""Merging two profiles of one person when a verified identifier links them, and undoing it."""
