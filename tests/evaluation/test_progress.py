"""evaluation.progress.Counter: a log (no terminal) gets a line at most every heartbeat_s seconds and one at the
end; without heartbeat_s, and under a bar's request off a terminal, nothing else is printed."""

import io

from evaluation.progress import Counter


def run(total, heartbeat_s, steps_s):
    clock = [0.0]
    stream = io.StringIO()  # not a terminal: no bar even when one is asked for
    c = Counter(total, "render orbit", "frame", bar=True, heartbeat_s=heartbeat_s, stream=stream,
                clock=lambda: clock[0])
    for dt in steps_s:
        clock[0] += dt
        c.update()
    c.close()
    return stream.getvalue().splitlines()


def test_lines_every_heartbeat_and_at_the_end():
    lines = run(6, 30.0, [10, 10, 10, 10, 25, 5])  # done at 10, 20, 30, 40, 65, 70 s
    assert lines == ["render orbit: 3/6 frame(s), eta 0m30s",   # 30 s after the start: 10 s a frame, 3 to go
                     "render orbit: 5/6 frame(s), eta 0m13s",   # 65 s: 35 s since the last line; 13 s a frame
                     "render orbit: 6/6 frame(s), 1m10s"]       # the end, with the time taken


def test_iterate_counts_each_item_after_its_body():
    clock = [0.0]
    stream = io.StringIO()
    c = Counter(2, "clipscore", "video", heartbeat_s=30.0, stream=stream, clock=lambda: clock[0])
    for _ in c.iterate(["a", "b"]):
        clock[0] += 40.0  # the body's time, counted when the next item is asked for
    assert stream.getvalue().splitlines() == ["clipscore: 1/2 video(s), eta 0m40s", "clipscore: 2/2 video(s), 1m20s"]


def test_no_heartbeat_prints_nothing():
    assert run(3, None, [100, 100, 100]) == []
