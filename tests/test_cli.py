import subprocess
import sys

from xner.cli import main


def test_stats_of_builtin_sample(capsys):
    assert main(["corpus", "stats", "xner-sample"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "xner-sample"
    assert out[1].split() == ["split", "sentences", "tokens", "LOC", "MISC", "ORG", "PER", "entities"]
    assert out[2].split() == ["train", "18", "181", "14", "4", "10", "8", "36"]


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["corpus", "stats", "conll2002", "--lang", "es", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xner corpus: error: conll2002 (es): missing file(s)")
    assert "Traceback" not in err


def test_console_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "xner", "corpus", "list"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "masakhaner2" in done.stdout and "PER/ORG/LOC/DATE" in done.stdout
