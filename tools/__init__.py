"""Development and operations tooling: train, start the stack, chat, benchmark.

Runs in the actions venv and drives the Rasa venv only through its executables, so neither
venv imports the other's packages.
"""
