"""``python -m geogrpo`` is the same as the ``geogrpo`` command."""

from geogrpo.cli import main

raise SystemExit(main())
