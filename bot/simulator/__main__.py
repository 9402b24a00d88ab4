"""`python -m bot.simulator`: run the Uplynk simulator alone."""

import sys

from bot.simulator.server import main

sys.exit(main())
