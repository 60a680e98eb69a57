"""RunLogger: a run owns its log; a resumed run continues it."""

from geogrpo.train.logging import RunLogger, read_jsonl


def test_a_fresh_run_replaces_the_log_and_a_resumed_one_continues_it(tmp_path):
    def rows():
        return [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "metrics.jsonl")]

    with RunLogger(tmp_path, tensorboard=False) as log:
        for step in (1, 2, 3):
            log.log(step, {"loss": step})
    with RunLogger(tmp_path, tensorboard=False, resume_after=2) as log:  # stopped after 3
        log.log(3, {"loss": 30.0})
    assert rows() == [(1, 1.0), (2, 2.0), (3, 30.0)]
    with RunLogger(tmp_path, tensorboard=False) as log:  # a new run in the same folder
        log.log(1, {"loss": float("nan")})
    assert rows() == [(1, None)]
