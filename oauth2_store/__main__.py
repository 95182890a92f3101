"""``python -m oauth2_store``: the ``oauth2-store`` command."""

import sys

from oauth2_store.cli import main

sys.exit(main())
