"""-o and --json FILE never replace what is not a regular file (nasx.util.files): a FIFO or character device
is written through, a symlink is followed (the link kept), a socket is refused; a report whose page is not a
regular file names no PNGs beside it. No test names a real /dev node: code that replaced its target would
replace the machine's /dev/null; a node made in tmp_path (as /dev/null is: char 1,3) stands in for one."""

import json
import os
import socket
import stat
import threading

import optuna
import pytest

from nasx.errors import NasxError
from nasx.util.files import atomic_write_text


def run_main(capsys, *args):
    from nasx.cli.main import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def front_number(url, name):
    from nasx.store.studies import load_study, study_front

    return study_front(load_study(url, name))[0].number


def stored_arch(url, name, number):
    return optuna.load_study(study_name=name, storage=url).trials[number].user_attrs["arch"]


def read_fifo(path):
    got = {}

    def reader():
        with open(path, "rb") as f:  # blocks until the writer opens it
            got["data"] = f.read()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    return t, got


def test_export_writes_through_a_fifo_and_keeps_it(small_study, capsys, tmp_path):
    url, name, _ = small_study
    number = front_number(url, name)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    t, got = read_fifo(fifo)
    rc, out, err = run_main(capsys, "export", "--storage", url, "--study", name, "--trial", number, "-o", fifo)
    t.join(10)
    assert rc == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
    assert json.loads(got["data"])["format"] == "nasx-arch"
    assert os.listdir(tmp_path) == ["pipe"]


def test_export_through_a_symlink_replaces_the_file_it_names_and_keeps_the_link(small_study, capsys, tmp_path):
    url, name, _ = small_study
    number = front_number(url, name)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "arch.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    rc, _, err = run_main(capsys, "export", "--storage", url, "--study", name, "--trial", number, "-o", link)
    assert rc == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["format"] == "nasx-arch"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real"] and os.listdir(tmp_path / "real") == ["arch.json"]


def test_a_symlink_to_stdout_prints_and_stays_a_link(small_study, capfd, tmp_path):
    from nasx.cli.main import main

    url, name, _ = small_study
    number = front_number(url, name)
    link = tmp_path / "out.json"
    link.symlink_to("/proc/self/fd/1")
    capfd.readouterr()
    rc = main(["export", "--storage", url, "--study", name, "--trial", str(number), "-o", str(link)])
    out, err = capfd.readouterr()
    assert rc == 0, err
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    assert json.loads(out)["format"] == "nasx-arch"  # only the arch on stdout: the "wrote" line went to stderr
    assert "wrote" in err


def null_node(path):
    """A character device like /dev/null (1, 3) at `path`; the test is skipped where that needs root."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


def test_report_to_a_device_node_writes_through_it_and_names_no_pngs(small_study, capsys, tmp_path):
    url, name, _ = small_study
    node = null_node(tmp_path / "dev")
    rc, out, err = run_main(capsys, "report", "--storage", url, "--study", name, "--refs", "none", "-o", node)
    assert rc == 0, err
    assert stat.S_ISCHR(os.lstat(node).st_mode), "the device node was replaced"
    assert os.listdir(tmp_path) == ["dev"], "files were named beside a device"
    assert "no PNGs" in err
    rc, out, err = run_main(
        capsys, "report", "--storage", url, "--study", name, "--refs", "none", "--no-png", "-o", node
    )
    assert rc == 0, err
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_json_file_of_validate_score_goes_through_the_same_rules(capsys, tmp_path):
    fifo = tmp_path / "scores"
    os.mkfifo(fifo)
    t, got = read_fifo(fifo)
    rc, out, err = run_main(
        capsys, "validate-score", "--truth", "nas-bench-macro", "--n", "5", "--proxies", "params", "--storage", "none",
        "-o", "none", "--json", fifo,
    )  # fmt: skip
    t.join(10)
    assert rc == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert isinstance(json.loads(got["data"]), dict)


def test_a_socket_is_refused_in_one_line(tmp_path):
    path = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    try:
        with pytest.raises(NasxError, match=r"^cannot write .*sock: it is a socket"):
            atomic_write_text(path, "x")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        s.close()


def test_a_device_is_written_through(tmp_path):
    node = null_node(tmp_path / "null")
    atomic_write_text(node, "discarded")
    assert stat.S_ISCHR(os.lstat(node).st_mode) and os.listdir(tmp_path) == ["null"]
