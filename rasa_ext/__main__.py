"""`python -m rasa_ext run ...`: Rasa's command line, with `rasa_ext.patches` applied."""

import sys

from rasa_ext.patches import apply_patches

if __name__ == "__main__":
    apply_patches()
    from rasa.__main__ import main

    sys.argv[0] = "rasa"
    main()
