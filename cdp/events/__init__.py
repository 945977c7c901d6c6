"""Behavioural events (payment failed, password reset...) recorded against a profile."""
