"""The bubblewrap command line of process containers."""

import os
from pathlib import Path

from invoker.containers.sandbox import bwrap_argv


def test_the_sandbox_is_read_only_with_a_private_tmp_and_namespaces():
    argv = bwrap_argv("/usr/bin/bwrap", Path("/var/sock/c1"), 256 * 1024 * 1024, [])
    text = " ".join(argv)
    assert argv[0] == "/usr/bin/bwrap"
    assert "--ro-bind / /" in text
    assert "--perms 1777 --size 268435456 --tmpfs /tmp" in text
    assert "--bind /var/sock/c1 /var/sock/c1" in text
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert "--unshare-net" not in argv
    assert argv[-3:] == ["--cap-drop", "ALL", "--"]


def test_as_root_setpriv_drops_to_the_container_uid_with_no_capabilities():
    argv = bwrap_argv("bwrap", Path("/var/sock/c1"), 1, [], drop_to_uid=200_001, setpriv="/usr/bin/setpriv")
    drop = argv[argv.index("/usr/bin/setpriv") :]
    assert drop == [
        "/usr/bin/setpriv",
        "--reuid=200001",
        "--regid=200001",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
    assert "--cap-drop" not in argv


def test_directories_above_a_socket_in_tmp_are_created_searchable():
    argv = bwrap_argv("bwrap", Path("/tmp/pywhisk-invoker3/c1"), 1, [])
    text = " ".join(argv)
    assert "--perms 0755 --dir /tmp/pywhisk-invoker3 --bind /tmp/pywhisk-invoker3/c1" in text


def test_home_directories_are_hidden_and_needed_paths_bound_back():
    hidden = [d for d in ("/root", "/home") if os.path.isdir(d)]
    visible = [Path("/usr/lib"), *(Path(d) for d in hidden)]
    argv = bwrap_argv("bwrap", Path("/var/sock/c1"), 1, visible)
    text = " ".join(argv)
    for directory in hidden:
        assert f"--tmpfs {directory}" in text
        assert f"--ro-bind {directory} {directory}" in text
    assert "--ro-bind /usr/lib /usr/lib" not in text


def test_a_checkout_or_virtualenv_under_tmp_is_bound_back_into_the_private_tmp(tmp_path: Path) -> None:
    venv = Path("/tmp") / tmp_path.name / "venv"
    venv.mkdir(parents=True)
    try:
        argv = bwrap_argv("bwrap", Path("/var/sock/c1"), 1, [venv])
        tmpfs = argv.index("/tmp", argv.index("--tmpfs"))
        bind = argv.index("--ro-bind", tmpfs)
        assert argv[bind + 1:bind + 3] == [str(venv), str(venv)]
        made = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--dir"]
        assert str(venv.parent) in made
    finally:
        venv.rmdir()
        venv.parent.rmdir()
