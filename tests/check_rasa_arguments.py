"""Parse a `rasa run` command line with Rasa's own argument parser (run in the Rasa venv).

Arguments: the command's arguments after `python -m rasa_ext`. Prints what Rasa read as JSON."""

import json
import sys

from rasa.__main__ import create_argument_parser

if __name__ == "__main__":
    arguments = create_argument_parser().parse_args(sys.argv[1:])
    names = ("auth_token", "port", "cors", "model", "credentials", "endpoints", "enable_api")
    read = {name: getattr(arguments, name) for name in names}
    print(json.dumps(read))
