"""Local mode starts the backend in a clean environment, not in Slicer's Python environment.

Slicer's launcher sets PYTHONHOME, PYTHONPATH and PYTHONNOUSERSITE for its own Python
(SuperBuild/External_python.cmake). Here they point at a bogus standard library, as they
would for another interpreter: started with them, the backend's Python cannot even start;
started through the module's launch path (Connection in local mode), it runs.
"""

import os
import sys
import types
from pathlib import Path

import pytest

from slicerfm_client import errors
from slicerfm_client.launcher import (PYTHON_RUNTIME_VARIABLES, LocalBackend, clean_environment,
                                      hidden_console_options)
from SlicerFMLib.connection import LOCAL, Connection, ConnectionSettings, launch_environment

BACKEND = str(Path(sys.executable).with_name("slicerfm-backend"))


@pytest.fixture
def slicers_python_variables(tmp_path, monkeypatch):
    """PYTHONHOME/PYTHONPATH of 'another Python' whose standard library cannot load here."""
    home = tmp_path / "Slicer-5.8" / "lib" / "Python"
    stdlib = home / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    (stdlib / "encodings").mkdir(parents=True)
    (stdlib / "encodings" / "__init__.py").write_text(
        "raise ImportError('this is the standard library of Slicer\\'s Python')\n")
    monkeypatch.setenv("PYTHONHOME", str(home))
    monkeypatch.setenv("PYTHONPATH", str(stdlib))
    monkeypatch.setenv("PYTHONNOUSERSITE", "1")
    return home


def test_a_backend_given_slicers_python_variables_does_not_start(slicers_python_variables, tmp_path):
    """The failure the module's launch path avoids (this test fails if the bogus
    environment were harmless, and so shows the next one is meaningful)."""
    backend = LocalBackend([BACKEND], env=dict(os.environ), startup_timeout_s=60,
                           log_path=str(tmp_path / "polluted.log"))
    with pytest.raises(errors.ServerUnreachableError, match="exited with code"):
        backend.start()
    backend.stop()
    assert "encodings" in (tmp_path / "polluted.log").read_text()


def test_the_modules_local_mode_starts_the_backend_despite_them(slicers_python_variables, tmp_path):
    connection = Connection()
    status = connection.connect(ConnectionSettings(mode=LOCAL, backend=BACKEND,
                                                   log_path=str(tmp_path / "clean.log")))
    try:
        assert status.url.startswith("http://127.0.0.1:") and connection.connected
        assert [engine["name"] for engine in status.engines] == ["classic"]
    finally:
        connection.disconnect()


def test_outside_slicer_the_launch_environment_is_this_one_without_pythons_variables(
        slicers_python_variables, monkeypatch):
    monkeypatch.setenv("SLICERFM_TEST_MARKER", "kept")
    environment = launch_environment()
    assert environment["SLICERFM_TEST_MARKER"] == "kept" and environment["PATH"] == os.environ["PATH"]
    assert not set(environment) & set(PYTHON_RUNTIME_VARIABLES)
    assert clean_environment({"pythonpath": "x", "HOME": "/h"}) == {"HOME": "/h"}


def test_inside_slicer_the_launch_environment_is_slicers_startup_environment(monkeypatch):
    """slicer.util.startupEnvironment(): the environment Slicer was started in, without what
    its launcher added (a fake ``slicer`` application module stands in for Slicer)."""
    startup = {"PATH": "/usr/bin", "HOME": "/home/me", "PYTHONPATH": "/user/set/it"}
    fake = types.SimpleNamespace(app=object(), modules=object(),
                                 util=types.SimpleNamespace(startupEnvironment=lambda: dict(startup)))
    monkeypatch.setitem(sys.modules, "slicer", fake)
    assert launch_environment() == {"PATH": "/usr/bin", "HOME": "/home/me"}


def test_on_windows_the_backends_console_window_is_hidden():
    """As slicer.util.launchConsoleProcess does: STARTUPINFO with STARTF_USESHOWWINDOW and
    SW_HIDE (a stand-in for Windows' subprocess module records what is set)."""
    class StartupInfo:
        dwFlags = 0
        wShowWindow = 1

    windows = types.SimpleNamespace(STARTUPINFO=StartupInfo)
    options = hidden_console_options("win32", windows)
    info = options["startupinfo"]
    assert info.dwFlags & 0x1 and info.wShowWindow == 0
    assert hidden_console_options("linux") == {} and hidden_console_options("darwin") == {}
