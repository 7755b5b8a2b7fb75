"""The suite's fixtures are one package, loaded whole here: see tests/fixtures/__init__.py.

Listed so that a module comes before the modules that import it (pytest rewrites the asserts of
a plugin module only if it loads it first).
"""

pytest_plugins = [
    "tests.fixtures.session",
    "tests.fixtures.factories",
    "tests.fixtures.databases",
    "tests.fixtures.services",
    "tests.fixtures.cli",
    # The emulated phones keep their fixtures beside the emulator they drive.
    "tests.emulated_phone.fixtures",
]
