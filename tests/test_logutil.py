"""Jobs' output, Python's and native libraries', lands in the job's log file."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from dfdetect.logutil import log_to


def test_everything_goes_to_the_log(tmp_path):
    path = tmp_path / "logs" / "job.log"
    with log_to(path) as log:
        log.info("from logging")
        print("from print")
        sys.stderr.write("from sys.stderr\n")
        os.write(2, b"from a native library\n")
    text = path.read_text()
    for expected in ("from logging", "from print", "from sys.stderr", "from a native library"):
        assert expected in text


def test_failure_is_logged_with_traceback_and_reraised(tmp_path):
    path = tmp_path / "job.log"
    with pytest.raises(ValueError, match="broken input"):
        with log_to(path):
            raise ValueError("broken input")
    text = path.read_text()
    assert "job failed" in text and "Traceback" in text and "broken input" in text
    logging.getLogger("after").warning("outside")  # handlers were restored: no write to a closed file


def test_named_loggers_also_reach_the_console_the_job_started_with(tmp_path, capfd):
    path = tmp_path / "job.log"
    with log_to(path, console=["dfdetect.training.train"]):
        logging.getLogger("dfdetect.training.train").info("cnn epoch 1/6: loss=0.5")
        logging.getLogger("dfdetect.training.progress").info("cnn epoch 1: step 3/9")
        logging.getLogger("dfdetect.training.trainer_like").info("a name that only starts alike")
    console = capfd.readouterr().err
    assert "dfdetect cnn epoch 1/6: loss=0.5" in console
    assert "step 3/9" not in console and "starts alike" not in console
    text = path.read_text()
    assert "cnn epoch 1/6" in text and "step 3/9" in text  # the job's log has every line
