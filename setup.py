"""Build hook: a built wheel carries a copy of the top-level sql/, seeds/ and dagster.yaml.

The SQL models (sql/), the sample landing files (seeds/) and the production instance's
settings (dagster.yaml, whose run queue `elt-assets quickstart` copies) live at the top of
the repository, outside the package, and stay the only copy in the repository; an editable
install reads them there. An installed wheel (`pip install .`, the container image) has no
repository next to it, so build_py copies them into the build's elt_assets/_bundled/, where
elt_assets/settings.py looks when the repository's are absent. They are also listed as
source files, so that an sdist has them and a wheel built from the sdist does too.
Everything else about the package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("sql", "seeds", "dagster.yaml")  # repository folders and files copied into the wheel
TARGET = Path("elt_assets", "_bundled")


class BuildPyWithBundledFolders(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's folders in place
        target = Path(self.build_lib, TARGET)
        shutil.rmtree(target, ignore_errors=True)  # nothing left over from an earlier build
        target.mkdir(parents=True)
        for name in BUNDLED:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", ".*"))
            else:
                shutil.copyfile(ROOT / name, target / name)

    def get_source_files(self):
        paths = [ROOT / name for name in BUNDLED if (ROOT / name).is_file()]
        paths += [path for name in BUNDLED for path in sorted((ROOT / name).rglob("*")) if path.is_file()]
        files = [path.relative_to(ROOT).as_posix() for path in paths if not path.name.startswith(".")]
        return [*super().get_source_files(), *files]


setup(cmdclass={"build_py": BuildPyWithBundledFolders})
