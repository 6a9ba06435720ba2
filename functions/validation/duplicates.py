"""Drop rows that repeat an earlier row exactly, where the grouping put them side by side.

Why here and not with a set of every row: a set of a 1 GB file's lines would hold the file in
memory. The grouping (``sorting``) already orders each user's rows by time, input order on
ties, and two rows that are identical after normalisation have the same user and the same
canonical time text, hence the same seconds. So every repeat lies in a *run*: consecutive
rows of one user at one instant. Runs are found with C-level comparisons of neighbours;
only their rows go into a set, one per batch (a batch is one bucket, within the sort's
memory budget, or 4,096 rows of a merged bucket), plus the last run when it may continue in
the next batch; rows are walked one by one only when that set shows a repeat. The first row
of each kind is kept, later ones dropped. Memory is therefore bounded by the batch and by
the largest run, part of one user's rows (which must fit in one 100 MB part anyway, see
``split``). On the benchmark file this pass costs about 1% of the run.

Identical means identical after normalisation: ``1748600000`` and ``2025-05-30T10:13:20Z``
are the same time, ``usd`` and ``USD`` the same currency. But the time compared is the time
as read: two events older than 365 days that ``old_event_policy=move`` moved to the same
time were two occurrences (a user's daily ``app_open`` of two years ago), not a repeat, and
both are kept. (Their output lines are then identical, so validating that output once more
would drop one of them: there they *are* exact repeats within one file.)
"""

from __future__ import annotations

from itertools import compress, islice
from operator import eq


class RepeatFilter:
    """Removes repeats from batches of rows in final order (bucket, user, time, input order).

    Batches are fed in output order; a run may continue from one batch into the next, so the
    last run's key and rows are remembered between calls. ``dropped`` counts removed rows,
    ``dropped_before`` those of them timed before ``before`` (the analytics window) and
    ``dropped_moved`` those that had been moved in time, so the caller can correct counts it
    made before duplicates were known.
    """

    def __init__(self, before: float) -> None:
        self._before = before
        self._key: tuple[str, float] | None = None
        self._run: set[tuple[str, str, float]] = set()
        self.dropped = 0
        self.dropped_before = 0
        self.dropped_moved = 0

    def filter(
        self,
        users: list[str],
        seconds: list[float],
        lines: list[str],
        origins: list[float] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Users and lines of the batch without repeats (the same lists when there is none).

        ``origins``: each row's time as read, when an old event was moved (None: the same
        as ``seconds``); rows are repeats only if that time is the same too. Two rows with
        the same (user, line, time as read) are always in the same run, so one set of the
        rows that are in some run finds every repeat; it is built at C speed, and rows are
        walked one by one only when it shows a repeat.
        """
        count = len(lines)
        if not count:
            return users, lines
        times = seconds if origins is None else origins
        # Rows j >= 1 that continue the run of row j - 1: same instant, then same user.
        same_time = compress(range(1, count), map(eq, islice(seconds, 1, None), seconds))
        continues = [j for j in same_time if users[j] == users[j - 1]]
        carried = self._key == (users[0], seconds[0])
        in_runs = sorted({*continues, *(j - 1 for j in continues)} | ({0} if carried else set()))
        keys = list(
            zip(
                map(users.__getitem__, in_runs),
                map(lines.__getitem__, in_runs),
                map(times.__getitem__, in_runs),
                strict=True,
            )
        )
        drop: list[int] = []
        if len(set(keys)) != len(keys) or (carried and not self._run.isdisjoint(keys)):
            seen = set(self._run) if carried else set()
            for index, key in zip(in_runs, keys, strict=True):
                if key in seen:
                    drop.append(index)
                else:
                    seen.add(key)
        self._remember(users, seconds, times, lines, continues, carried=carried)
        if not drop:
            return users, lines
        self.dropped += len(drop)
        self.dropped_before += sum(1 for j in drop if seconds[j] < self._before)
        self.dropped_moved += sum(1 for j in drop if times[j] != seconds[j])
        keep = [True] * count
        for j in drop:
            keep[j] = False
        return list(compress(users, keep)), list(compress(lines, keep))

    def _remember(
        self,
        users: list[str],
        seconds: list[float],
        times: list[float],
        lines: list[str],
        continues: list[int],
        *,
        carried: bool,
    ) -> None:
        """Keep the last run's key and rows: the next batch may continue it."""
        last = len(lines) - 1
        first = last
        position = len(continues) - 1
        while position >= 0 and continues[position] == first:
            first -= 1
            position -= 1
        run = set(
            zip(
                users[first : last + 1],
                lines[first : last + 1],
                times[first : last + 1],
                strict=True,
            )
        )
        if first == 0 and carried:
            run |= self._run
        self._run = run
        self._key = (users[last], seconds[last])
