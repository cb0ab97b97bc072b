"""Build hook: compiles privaudit's optional C modules.

* privaudit/source/_tnet.c, the flow record reader: reading a capture's flow
  records is a third of ``privaudit analyze``'s time in pure Python; the C
  parser does the same parse about four times faster (see
  privaudit/source/fast.py, which uses it when it is there).
* privaudit/detect/_walk.c, the decoder's JSON walk: the same Fields as
  privaudit/detect/decode.py's Python walk, in about half the decoder's time.

They need only the Python headers and the C compiler the interpreter was
built with. If either is missing, or compiling one fails, the build goes on
with a warning and privaudit runs its pure-Python code there: same results,
slower. ``PRIVAUDIT_NO_EXTENSION=1`` skips them on purpose.

For an editable install a module is compiled next to its source, where the
editable package is imported from (one file per Python version, so 3.11 and
3.12 environments share a checkout); for a wheel it is also included in the
wheel, which then carries the platform's tag.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: (source, what it is for the warning), relative to the project root
EXTENSIONS = (
    ("privaudit/source/_tnet.c", "C reader", "pure-Python reader"),
    ("privaudit/detect/_walk.c", "C decoder walk", "pure-Python decoder"),
)


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or os.environ.get("PRIVAUDIT_NO_EXTENSION"):
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
        built = False
        for rel, what, fallback in EXTENSIONS:
            src = Path(self.root) / rel
            out = src.with_name(src.stem + suffix)
            tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
            cmd = [*cc, "-shared", "-fPIC", "-O2", "-I", sysconfig.get_paths()["include"], str(src), "-o", str(tmp)]
            try:
                subprocess.run(cmd, check=True, capture_output=True, timeout=300)
                os.replace(tmp, out)
            except (OSError, subprocess.SubprocessError) as e:
                detail = getattr(e, "stderr", b"") or b""
                self.app.display_warning(
                    f"privaudit: the optional {what} was not built ({e}; {detail.decode(errors='replace')[-500:]}); "
                    f"the {fallback} will be used"
                )
                tmp.unlink(missing_ok=True)
                continue
            built = True
            if version != "editable":
                build_data["force_include"][str(out)] = str(Path(rel).with_name(out.name))
        if built:
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
