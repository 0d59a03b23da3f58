"""The integrations import their framework only when used, and say which extra to install when it is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = ("lightning", "pytorch_lightning", "transformers", "keras", "accelerate")


def test_importing_the_integrations_imports_no_framework() -> None:
    code = (
        "import sys, torchscope, torchscope.integrations.lightning, torchscope.integrations.transformers, "
        "torchscope.integrations.keras\n"
        f"print(sorted(set({FRAMEWORKS!r}) & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "attribute", "hidden", "extra"),
    [
        ("lightning", "TorchscopeLogger", ("lightning", "lightning.pytorch", "pytorch_lightning"), "lightning"),
        ("transformers", "TorchscopeCallback", ("transformers",), "transformers"),
        ("keras", "TorchscopeCallback", ("keras",), "keras"),
    ],
)
def test_a_missing_framework_names_the_extra_to_install(
    module: str, attribute: str, hidden: tuple[str, ...], extra: str
) -> None:
    code = (
        "import sys, importlib\n"
        f"for name in {hidden!r}: sys.modules[name] = None\n"  # as if not installed
        f"integration = importlib.import_module('torchscope.integrations.{module}')\n"
        "try:\n"
        f"    getattr(integration, {attribute!r})\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert f"pip install 'torchscope[{extra}]'" in out.stdout
