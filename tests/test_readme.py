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


def test_readme_inner_loop_optimizer_example_runs_and_reloads(tmp_path):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Write your own inner-loop optimizer"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    check = (
        "\nimport numpy as np\n"
        "restored = keras.saving.load_model('momentum_maml.keras')\n"
        "inputs, _ = next(iter(test))\n"
        "assert isinstance(restored.inner_rule, Momentum), restored.inner_rule\n"
        "np.testing.assert_allclose(restored.predict_on_batch(inputs),\n"
        "                           model.predict_on_batch(inputs), rtol=1e-5, atol=1e-6)\n"
        "untrained = km.MAML(km.learners.mlp(hidden=(40, 40)), inner_rule=Momentum(0.005),\n"
        "                    inner_steps=3)\n"
        "untrained.compile(loss='mse')\n"
        "print('untrained MSE:', untrained.evaluate(test, steps=5))\n")
    result = subprocess.run(
        [sys.executable, "-c", code + check], cwd=tmp_path, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = float(re.search(r"after 3 momentum steps: ([0-9.]+)", result.stdout).group(1))
    untrained = float(re.search(r"untrained MSE: ([0-9.]+)", result.stdout).group(1))
    assert trained < 0.5 * untrained, result.stdout[-2000:]
