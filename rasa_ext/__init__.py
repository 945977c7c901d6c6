"""Code that runs inside the Rasa server process (the Rasa venv), never in the action server.

`python -m rasa_ext ARGS` is `rasa ARGS` with the fixes of `rasa_ext.patches` applied first.
"""
