"""Stage check_params: params.yaml is validated before DVC touches any other stage's outputs.

Every stage depends on its output (through `prepare`), so DVC runs it first whenever a parameter
changed; see `signkd.param_check` for why, and for the restore after a failed `dvc exp run -S`.
"""

import sys

import _env  # noqa: F401  (first: a clear message outside the virtual environment)

from signkd.param_check import main

if __name__ == "__main__":
    sys.exit(main())
