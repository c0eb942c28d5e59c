"""Build step: a built package carries its manifest as JSON as well, so a worker starts without a YAML parser.

Everything else about the package is declared in pyproject.toml. connector.yaml stays the only
source: the JSON is written into the build directory (never into the source tree), records the
sha256 of the YAML it was made from, and the package reads it only while that hash still matches
the YAML beside it (see `manifest.load_packaged`). An editable install has no build directory of
its own and reads the YAML, as a source checkout does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PACKAGE_DATA = Path("azure_openai_connector") / "data"
MANIFEST = "connector.yaml"
COMPILED_MANIFEST = "connector.json"


class BuildPyWithCompiledManifest(build_py):
    """`build_py`, then the manifest parsed once into `data/connector.json` beside the YAML."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        data = Path(self.build_lib) / PACKAGE_DATA
        source = (data / MANIFEST).read_text(encoding="utf-8")  # as the package reads it
        import yaml  # a build requirement (pyproject.toml), and a runtime dependency anyway

        document = yaml.load(source, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe
        compiled = {"source_sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(), "manifest": document}
        # allow_nan=False: a manifest that JSON cannot hold fails the build, not a worker's start.
        text = json.dumps(compiled, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        (data / COMPILED_MANIFEST).write_text(text, encoding="utf-8")

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib) / PACKAGE_DATA / COMPILED_MANIFEST))
        return outputs


setup(cmdclass={"build_py": BuildPyWithCompiledManifest})
