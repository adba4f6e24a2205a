"""Sphinx configuration of the sklearn-ispl documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
from the repository root: warnings are errors, and the gallery runs every
example, so a broken example fails the build.
"""

import os
import runpy
from pathlib import Path

import matplotlib

from sklearn_ispl import __version__

# The benchmarks page is written from the committed result files at every
# build, so its numbers cannot drift from them.
runpy.run_path(str(Path(__file__).with_name("_benchmarks.py")), run_name="__main__")

# Figures are rendered to files; never open a window.
matplotlib.use("Agg")
# The examples train small networks: one thread each keeps them from fighting
# over a busy machine's cores (set before torch is first imported by them).
os.environ.setdefault("OMP_NUM_THREADS", "1")

project = "sklearn-ispl"
author = "sklearn-ispl developers"
copyright = "sklearn-ispl developers"  # noqa: A001
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

# No intersphinx: the build must work without network access. References to
# other projects' objects render as plain text.

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
# Members are listed by the class template; numpydoc's own member tables
# would point at pages that autosummary does not generate.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    # Run every example; any error fails the build.
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "doc_module": ("sklearn_ispl",),
    "backreferences_dir": "generated/backreferences",
    "min_reported_time": 1,
    "show_memory": False,
    "remove_config_comments": True,
    "download_all_examples": False,
}

# Methods every estimator or torch module inherits are documented by
# scikit-learn and PyTorch; their docstrings refer to labels of those sites.
_FOREIGN_MODULES = ("torch.", "sklearn.")


def _skip_foreign_member(app, what, name, obj, skip, options):
    if name == "get_metadata_routing" or (
        name.startswith("set_") and name.endswith("_request")
    ):
        return True
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module.startswith(_FOREIGN_MODULES):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_member)


html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-ispl {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
html_show_sourcelink = False
