"""Dependency audit of the installed environment with pip-audit (README, "Dependency audit").

Fails (exit 1) when an installed distribution has a known advisory that is not ignored in
IGNORED_ADVISORIES. A distribution the vulnerability service could not look up is not a pass: the
summary names how many were audited and how many not, and with LAKE_AUDIT_STRICT=1 any that could not
be looked up fails the audit too. Without it an audit that could look nothing up is reported loudly
but does not fail CI, because some build machines reach only a package mirror, not PyPI's advisories.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

# advisory id -> why it does not apply; each one is also in the README's triage table.
IGNORED_ADVISORIES: dict[str, str] = {}


def main() -> int:
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        command = [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off",
                   "--format", "json",
                   "--output", report.name]
        for advisory in IGNORED_ADVISORIES:
            command += ["--ignore-vuln", advisory]
        # Its own "No known vulnerabilities found" also prints when nothing could be looked up: the summary
        # below says what was audited instead.
        finished = subprocess.run(command, check=False, capture_output=True, text=True)
        try:
            with open(report.name, encoding="utf-8") as handle:
                dependencies = json.load(handle)["dependencies"]
        except (OSError, ValueError, KeyError):
            print(f"Dependency audit: pip-audit wrote no report (exit {finished.returncode}):\n{finished.stderr}")
            return 1
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = len(dependencies) - len(skipped)
    for dependency in vulnerable:
        ids = ", ".join(v["id"] for v in dependency["vulns"])
        print(f"Dependency audit: {dependency['name']} {dependency['version']} has known advisories: {ids}")
    print(f"Dependency audit: {audited} of {len(dependencies)} installed distributions audited, "
          f"{len(vulnerable)} with known advisories, {len(skipped)} could not be looked up")
    if skipped and not audited:
        print("Dependency audit: NOTHING COULD BE AUDITED here (no vulnerability service reachable), e.g. "
              f"{skipped[0]['skip_reason']}")
    if vulnerable:
        return 1
    return 1 if skipped and os.environ.get("LAKE_AUDIT_STRICT") == "1" else 0


if __name__ == "__main__":
    sys.exit(main())
