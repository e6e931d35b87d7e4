import sys

from kpolicy.cli import main

sys.exit(main())
