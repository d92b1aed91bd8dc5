"""The README's usage example runs as written."""

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_runs(tmp_path):
    text = README.read_text(encoding="utf-8")
    usage = text[text.index("## Usage"):]
    code = re.search(r"```python\n(.*?)```", usage, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    mse = float(re.search(r"query MSE after 5 steps: ([0-9.]+)", result.stdout).group(1))
    assert mse < 2.0, result.stdout[-2000:]
    assert (tmp_path / "sinusoid_maml.keras").stat().st_size > 0
