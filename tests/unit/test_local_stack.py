"""How the local stack is laid out for where the apps run (`HALO_HOST`) and what it keeps (`KEEP=1`)."""

from __future__ import annotations

from pathlib import Path

from emulators.stack import LocalStack, StackPorts


def test_by_default_every_part_listens_on_loopback_only(tmp_path: Path) -> None:
    stack = LocalStack(StackPorts.free(), tmp_path)
    assert stack.bind_host == "127.0.0.1"
    assert stack.app_endpoints()["functions"].startswith("http://127.0.0.1:")


def test_halo_host_opens_the_parts_apps_use_and_names_that_address_in_what_it_hands_out(tmp_path: Path) -> None:
    ports = StackPorts.free()
    stack = LocalStack(ports, tmp_path, public_host="192.168.1.20")

    assert stack.bind_host == "0.0.0.0"  # noqa: S104 - what HALO_HOST asks for
    assert stack.app_endpoints() == {
        "functions": f"http://192.168.1.20:{ports.functions}/<function_name>",
        "openapi": f"http://192.168.1.20:{ports.functions}/openapi.json",
        "firestore": f"192.168.1.20:{ports.firestore}",
        "auth": f"192.168.1.20:{ports.auth}",
        "xendit invoice pages": f"http://192.168.1.20:{ports.xendit}",
    }
    # The functions themselves still reach every part on loopback.
    assert stack.env()["FIRESTORE_EMULATOR_HOST"].startswith("127.0.0.1:") or not stack.has_gcloud
    assert stack.env()["HALO_XENDIT_HOST"] == f"http://127.0.0.1:{ports.xendit}"


def test_kept_auth_users_are_imported_and_exported_and_fresh_runs_keep_nothing(tmp_path: Path) -> None:
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "firebase-export-metadata.json").write_text("{}")
    kept = LocalStack(StackPorts.free(), tmp_path, keep=True)
    fresh = LocalStack(StackPorts.free(), tmp_path)

    kept_command = kept._auth_command()
    assert kept_command[-4:] == ["--import", str(tmp_path / "auth"), "--export-on-exit", str(tmp_path / "auth")]
    assert "--import" not in fresh._auth_command() and "--export-on-exit" not in fresh._auth_command()
