"""Customer data platform: profiles, identities, orders and events behind the assistant."""
