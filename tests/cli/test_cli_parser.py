"""The command line's own behaviour: help for every command, options before or after the
subcommand's name, and the download folder option."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from p2pchat.cli import build_parser, main
from p2pchat.node import Node, NodeConfig
from p2pchat.node.service import SETTING_DOWNLOAD_DIR
from p2pchat.profile import open_profile


def all_commands() -> list[list[str]]:
    """Every subcommand path, e.g. ["send"], ["room", "create"]."""

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append([*prefix, name])
                    found += walk(sub, [*prefix, name])
        return found

    return walk(build_parser(), [])


def test_there_are_many_commands() -> None:
    names = {" ".join(c) for c in all_commands()}
    assert {"send", "serve", "get", "files", "room", "room create", "doctor"} <= names


@pytest.mark.parametrize("command", all_commands(), ids=" ".join)
def test_help_of_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: p2pchat")
    assert "--profile" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--no-mdns", "serve"], {"no_mdns": True}),
        (["serve", "--no-mdns"], {"no_mdns": True}),
        (["--port", "7002", "--profile", "bob", "get", "abcd"], {"port": 7002, "profile": "bob"}),
        (
            ["--peer", "127.0.0.1:7001", "send", "bob", "x"],
            {"peer_addresses": [("127.0.0.1", 7001)]},
        ),
        (
            ["--no-announce", "--interface", "lo", "serve"],
            {"no_announce": True, "interface": ["lo"]},
        ),
        (["serve"], {"no_mdns": False, "port": 0, "peer_addresses": [], "profile": "default"}),
    ],
)
def test_node_options_work_before_and_after_the_command(
    argv: list[str], expected: dict[str, object]
) -> None:
    args = build_parser().parse_args(argv)
    for key, value in expected.items():
        assert getattr(args, key) == value, key


def test_download_folder_is_kept_in_the_profile(p2pchat_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "Received files"
    assert main(["--profile", "pat", "--download-dir", str(folder), "files"]) == 0

    async def stored() -> str:
        node = Node(open_profile("pat"), NodeConfig(network=False))
        await node.start()
        try:
            return node.text_setting(SETTING_DOWNLOAD_DIR)
        finally:
            await node.stop()

    assert asyncio.run(stored()) == str(folder.resolve())


def test_download_folder_must_be_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--download-dir", str(a_file), "files"])
    assert exit_.value.code == 2
    assert "is not a folder" in capsys.readouterr().err


def test_output_into_a_closed_pipe_is_not_an_error(p2pchat_home: Path) -> None:
    """`p2pchat files | head -1`: the reader leaves early; no traceback, no complaint."""
    env = {**os.environ, "P2PCHAT_HOME": str(p2pchat_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2pchat", "--profile", "pat", "files"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # before it writes anything: its output meets a closed pipe
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert b"Error" not in err, err
