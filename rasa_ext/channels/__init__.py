"""Input and output channels that run inside the Rasa server (see docs/channels.md).

`render` and `guard` are pure and import nothing from Rasa, so the actions venv tests them too.
"""
