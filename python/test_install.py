"""pip install . from the checkout into a fresh virtual environment, offline, as a Python user
installs pareng (pyproject.toml, meson-python); then `import pareng` there, with no PYTHONPATH,
runs a function of its own on the workers, and the pareng command runs. Run by `meson test`
(argument: the source root); exit 77 (skipped) without meson-python (Debian: python3-mesonpy)
or venv (python3-venv).
"""
import os
import subprocess
import sys
import tempfile

source = sys.argv[1]
try:
    import ensurepip  # noqa: F401  (Debian's python3-venv)
    import mesonpy  # noqa: F401
except ImportError as e:
    print(f"skipped: {e.name} is missing (Debian: python3-mesonpy, python3-venv)")
    sys.exit(77)

env = {k: v for k, v in os.environ.items()
       if not k.startswith(("PYTHON", "PARENG_", "PIP_", "LD_PRELOAD", "ASAN_", "MESON"))}
with tempfile.TemporaryDirectory() as tmp:
    venv = os.path.join(tmp, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    r = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                        "--no-cache-dir", "--quiet", source], env=env, cwd=tmp,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"pip install failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    code = """
import pareng
def square(x):
    return x * x
print(pareng.__file__)
print(pareng.map(square, range(5), cores=1))
print(pareng.map("fib", [10], cores=1))
"""
    r = subprocess.run([python, "-c", code], env=env, cwd=tmp, capture_output=True, text=True,
                       timeout=60)
    lines = r.stdout.splitlines()
    expected = [os.path.join(venv, "lib"), "[0, 1, 4, 9, 16]", "[55]"]
    if r.returncode != 0 or len(lines) != 3 or not lines[0].startswith(expected[0]) \
            or lines[1:] != expected[1:]:
        sys.exit(f"the installed package did not work:\n{r.stdout}\n{r.stderr}")
    # the pareng command the wheel carries (linked dynamically: pyproject.toml)
    r = subprocess.run([os.path.join(venv, "bin", "pareng"), "run", "fib", "20", "--cores", "1"],
                       env=env, cwd=tmp, capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or r.stdout.splitlines()[:1] != ["fib(20) = 6765"]:
        sys.exit(f"the installed pareng command did not work ({r.returncode}):\n{r.stdout}\n"
                 f"{r.stderr}")
    print("installed and imported from", lines[0])
