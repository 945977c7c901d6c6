"""Privacy: export everything about a person, erase them, and audit who read what."""
