# SPDX-License-Identifier: MIT
"""The soak uses the integration tests' fixtures and helpers as they are:
their conftest is executed here (one definition, not a copy), and their
folder is importable for the helpers the soak shares with them."""
import sys
from pathlib import Path

_integration = Path(__file__).resolve().parents[1] / "integration"
sys.path.insert(0, str(_integration))
exec(compile((_integration / "conftest.py").read_text(), str(_integration / "conftest.py"), "exec"))
