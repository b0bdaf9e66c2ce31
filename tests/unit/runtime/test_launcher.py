from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from mesoslite.runtime.command import ResolvedCommand
from mesoslite.runtime.launcher import LaunchError, LaunchRequest, PosixLauncher, UserIdentity
from tests.conftest import require_root

pytestmark = pytest.mark.anyio


def _request(sandbox: Path, *argv: str, user: UserIdentity | None = None) -> LaunchRequest:
    return LaunchRequest(
        container_id="c",
        command=ResolvedCommand(argv[0], list(argv)),
        environment={"PATH": "/usr/bin:/bin"},
        sandbox=sandbox,
        user=user,
    )


def test_unknown_user_is_a_launch_error() -> None:
    with pytest.raises(LaunchError, match="unknown user"):
        UserIdentity.lookup("no-such-user-here")


async def test_switching_user_without_root_is_refused(tmp_path: Path) -> None:
    nobody = UserIdentity.lookup("nobody")
    target = nobody
    dropped = os.geteuid() == 0
    if dropped:
        # As root: become `nobody` for real (effective uid only; the saved uid lets us
        # come back) and ask to switch to root.
        target = UserIdentity.lookup("root")
        os.setegid(nobody.gid)
        os.seteuid(nobody.uid)
    try:
        with pytest.raises(LaunchError, match="needs root"):
            await PosixLauncher().launch(_request(tmp_path, "/bin/true", user=target))
    finally:
        if dropped:
            os.seteuid(0)
            os.setegid(0)


async def test_the_current_user_needs_no_switch(tmp_path: Path) -> None:
    me = UserIdentity.lookup(pwd.getpwuid(os.geteuid()).pw_name)
    handle = await PosixLauncher().launch(_request(tmp_path, "/bin/sh", "-c", "id -u", user=me))
    try:
        assert await handle.wait() == 0
    finally:
        handle.close()
    assert (tmp_path / "stdout").read_text().strip() == str(os.geteuid())


async def test_root_runs_the_task_as_the_requested_user(tmp_path: Path) -> None:
    require_root()
    nobody = UserIdentity.lookup("nobody")
    tmp_path.chmod(0o777)
    launcher = PosixLauncher()
    handle = await launcher.launch(
        _request(tmp_path, "/bin/sh", "-c", "id -u; id -g; pwd; ps -o sid= -p $$", user=nobody)
    )
    try:
        assert await handle.wait() == 0
    finally:
        handle.close()
    uid, gid, cwd, sid = (tmp_path / "stdout").read_text().split()
    assert (int(uid), int(gid)) == (nobody.uid, nobody.gid)
    assert cwd == str(tmp_path)
    assert int(sid) == handle.pid


async def test_root_exec_failure_after_the_switch_is_reported(tmp_path: Path) -> None:
    require_root()
    nobody = UserIdentity.lookup("nobody")
    with pytest.raises(LaunchError, match=r"\(E[A-Z]+\)"):
        await PosixLauncher().launch(_request(tmp_path, str(tmp_path / "missing"), user=nobody))
