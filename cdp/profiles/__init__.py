"""Customer profiles: standard attributes, default address and custom attributes."""
