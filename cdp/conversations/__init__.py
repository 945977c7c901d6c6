"""Conversations (Rasa sender id + channel) linked to the profile they belong to."""
