"""The adb wrapper: real adb's output formats, and every failure typed, against emulated phones."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from device_agents.adb import (
    Adb,
    AdbTimeout,
    AdbUnavailable,
    parse_devices,
    parse_getprop,
)
from device_agents.errors import DeviceLost, MeasurementError
from tests.emulated_phone.probes import processes_serving
from tests.emulated_phone.state import MakePhones, PhoneDir

# `adb devices -l` as printed by platform-tools 34/35, daemon start-up lines included.
DEVICES_L = "\n".join(
    [
        "* daemon not running; starting now at tcp:5037",
        "* daemon started successfully",
        "List of devices attached",
        "R58M123ABCD            device usb:1-1 product:beyond1lteeea model:SM_G973F "
        "device:beyond1 transport_id:3",
        "1A2B3C4D               unauthorized usb:1-2 transport_id:4",
        "emulator-5554          offline transport_id:1",
        "0123456789ABCDEF       no permissions (user in plugdev group; are your udev rules "
        "wrong?); see [http://developer.android.com/tools/device.html] usb:1-3 transport_id:5",
        "",
        "",
    ]
)


def test_parse_devices_reads_every_state_and_skips_daemon_chatter() -> None:
    devices = parse_devices(DEVICES_L)
    assert [(d.serial, d.state) for d in devices] == [
        ("R58M123ABCD", "device"),
        ("1A2B3C4D", "unauthorized"),
        ("emulator-5554", "offline"),
        ("0123456789ABCDEF", "no permissions"),
    ]
    first = devices[0]
    assert (first.model, first.product, first.transport_id) == ("SM_G973F", "beyond1lteeea", "3")
    assert first.fields["usb"] == "1-1"
    assert [d.ready for d in devices] == [True, False, False, False]
    # Without -l, adb separates serial and state by a tab.
    assert parse_devices("List of devices attached\nR58M\tdevice\n\n") == [
        parse_devices("R58M device")[0]
    ]


def test_parse_getprop_keeps_values_with_brackets_and_newlines() -> None:
    text = (
        "[ro.product.model]: [Pixel 7]\n"
        "[ro.build.description]: [panther-user 14 [beta]]\n"
        "[persist.sys.multi]: [line one\nline two]\n"
        "[ro.empty]: []\n"
    )
    assert parse_getprop(text) == {
        "ro.product.model": "Pixel 7",
        "ro.build.description": "panther-user 14 [beta]",
        "persist.sys.multi": "line one\nline two",
        "ro.empty": "",
    }


def test_devices_lists_the_emulated_bus(make_phones: MakePhones) -> None:
    ready, locked, unplugged = make_phones(3)
    locked.update(state="unauthorized")
    unplugged.update(offline=True)
    devices = Adb().list_devices()
    assert [(d.serial, d.state) for d in devices] == [
        (ready.serial, "device"),
        (locked.serial, "unauthorized"),
    ]
    assert devices[0].model == "Pixel_7"  # adb writes spaces as underscores
    assert devices[0].transport_id is not None


def test_getprop_shell_and_push(phone: PhoneDir, tmp_path: Path) -> None:
    device = Adb().phone(phone.serial)
    props = device.getprop()
    assert props["ro.product.model"] == "Pixel 7"
    assert props["ro.serialno"] == phone.serial

    local = tmp_path / "model.tflite"
    local.write_bytes(os.urandom(4096))
    device.push(local, "/data/local/tmp/x.tflite")
    assert phone.host_path("/data/local/tmp/x.tflite").read_bytes() == local.read_bytes()
    assert device.shell("ls /data/local/tmp").stdout.split() == ["x.tflite"]

    with pytest.raises(FileNotFoundError):
        device.push(tmp_path / "missing", "/data/local/tmp/y")
    with pytest.raises(MeasurementError, match="Read-only file system") as refused:
        device.push(local, "/system/x.tflite")
    assert not isinstance(refused.value, DeviceLost)


def test_a_failing_remote_command_is_a_measurement_error_not_a_lost_phone(phone: PhoneDir) -> None:
    device = Adb().phone(phone.serial)
    # mksh says "not found" too; only adb's own "device ... not found" means the phone is gone.
    with pytest.raises(MeasurementError, match="inaccessible or not found") as failed:
        device.shell("benchmark_modle --graph=x")
    assert not isinstance(failed.value, DeviceLost)
    result = device.shell("cat /sys/class/thermal/thermal_zone8/temp", check=False)
    assert result.returncode == 1
    assert "Permission denied" in result.stderr


@pytest.mark.parametrize(
    ("control", "message"),
    [
        ({"offline": True}, "not found"),
        ({"state": "unauthorized"}, "unauthorized"),
        ({"state": "offline"}, "offline"),
    ],
)
def test_a_phone_that_is_gone_raises_device_lost(
    phone: PhoneDir, tmp_path: Path, control: dict[str, object], message: str
) -> None:
    device = Adb().phone(phone.serial)
    device.shell("true")
    phone.update(**control)
    with pytest.raises(DeviceLost, match=message):
        device.shell("getprop")
    local = tmp_path / "f"
    local.write_bytes(b"x")
    with pytest.raises(DeviceLost, match=message):
        device.push(local, "/data/local/tmp/f")


def test_an_unknown_serial_is_lost(phone: PhoneDir) -> None:
    with pytest.raises(DeviceLost, match="'NOPE' not found"):
        Adb().phone("NOPE").shell("true")


def test_a_hung_call_times_out_and_leaves_no_process(phone: PhoneDir, adb_home: Path) -> None:
    phone.update(hang_on="dumpsys")
    device = Adb(timeout_s=1.0).phone(phone.serial)
    started = time.monotonic()
    with pytest.raises(AdbTimeout, match="did not finish within 1s"):
        device.shell("dumpsys battery")
    assert time.monotonic() - started < 5
    # The whole process group was killed: nothing still sleeps on the phone's behalf.
    assert processes_serving(adb_home) == []
    # Other commands still answer: the timeout was this call's, not the wrapper's state.
    assert device.shell("true").returncode == 0


def test_a_missing_adb_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(AdbUnavailable, match="platform-tools"):
        Adb(tmp_path / "no-adb").list_devices()
    with pytest.raises(ValueError, match="timeout_s"):
        Adb(timeout_s=0)
