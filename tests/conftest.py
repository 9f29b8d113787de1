import os
import sys

# Tests import the top-level modules (k1core, lrl, backends, cli) from the checkout.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
