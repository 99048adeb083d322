"""Serve plotly.js from the pinned plotly package as ``plotly/plotly.min.js``.

The file ships inside the Python package (``plotly/package_data``), so the
admin's charts work offline with the exact JS version the figures are built
for, and no 4 MB copy lives in git. Only that one file is exposed (the
package folder also holds datasets and templates).
"""

from __future__ import annotations

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_STATIC_PATH = "plotly/plotly.min.js"
_PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"


class _PrefixedStorage(FileSystemStorage):
    # collectstatic copies to storage.prefix + path.
    prefix = "plotly"


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs):
        from django.core import checks

        if not (_PACKAGE_DATA / "plotly.min.js").is_file():
            return [checks.Error(f"plotly.min.js not found in {_PACKAGE_DATA}",
                                 hint="reinstall the pinned plotly package",
                                 id="core.E001")]
        return []

    def find(self, path, find_all=False, **kwargs):
        # Django 5.2 renamed ``all`` to ``find_all`` (keyword ``all`` still sent by some callers).
        find_all = find_all or kwargs.get("all", False)
        if path != PLOTLY_STATIC_PATH:
            return [] if find_all else None
        match = str(_PACKAGE_DATA / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield "plotly.min.js", _PrefixedStorage(location=str(_PACKAGE_DATA))
