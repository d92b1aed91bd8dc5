"""The README's export and serving blocks run as written: the first with
keras_meta, the second in a process where Keras and keras_meta cannot be
imported; both print the same accuracy."""

import os
import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
UNIMPORTABLE = 'import sys\nsys.modules["keras"] = sys.modules["keras_meta"] = None\n'


def run(code, cwd, data_dir):
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TFDS_DATA_DIR": data_dir, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_readme_export_and_serve_blocks(tmp_path, omniglot_data_dir):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Export and serving.**"):]
    export_code, serve_code = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    assert "keras" not in serve_code.replace("keras_meta", "")

    exported = run(export_code, tmp_path, omniglot_data_dir)
    served = run(UNIMPORTABLE + serve_code, tmp_path, omniglot_data_dir)
    accuracy = float(re.search(r"keras_meta predict: ([0-9.]+)", exported).group(1))
    assert float(re.search(r"TensorFlow serve: ([0-9.]+)", served).group(1)) == accuracy
    assert accuracy > 3 / 20  # 20-way tasks: chance is 1/20
