"""`make dev` refuses to start, saying what to install or free, when a part of the stack cannot run here."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from emulators import dev
from emulators.preflight import problems
from emulators.stack import StackPorts


def _free_ports() -> StackPorts:
    return StackPorts.free()


def test_a_machine_without_java_or_node_is_told_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on the PATH: no java, no gcloud, no node

    found = {problem.part: problem.message for problem in problems(_free_ports())}

    assert "openjdk-17" in found["java"] and "brew install openjdk@17" in found["java"]
    assert "apt-get install nodejs" in found["node"]
    assert "gcloud" not in found, "without java the emulators' own check says nothing more useful"


def test_a_port_in_use_is_named_with_its_part_and_how_to_find_its_holder() -> None:
    ports = _free_ports()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports.functions))
        holder.listen()
        found = [problem for problem in problems(ports) if problem.part == "functions"]
    assert len(found) == 1
    assert f"port {ports.functions} is already in use" in found[0].message
    assert f"sport = :{ports.functions}" in found[0].message


def test_make_dev_exits_before_starting_anything_when_a_part_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(dev, "STATE", tmp_path / "state")

    assert dev.main([]) == 2

    said = capsys.readouterr().err
    assert said.startswith("make dev cannot start:")
    assert "java: Java 11 or newer" in said
    assert not (tmp_path / "state").exists(), "nothing was started or cleaned"
