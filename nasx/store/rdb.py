"""Optuna's RDB storage as a search uses it: every call waits out a database server's restart
(nasx.store.reconnect), and a trial's heartbeat never kills its thread with a traceback. A heartbeat that
cannot be written (the server gone past the wait, SQLite's full disk) is skipped: the trial's own next write
meets the same error and reports it as one line. A trial whose process died before its first heartbeat is
stale too (Optuna's own check sees only trials that beat at least once)."""

from __future__ import annotations

import datetime as dt
import functools

import optuna
from optuna.storages import RDBStorage
from optuna.storages._rdb import models

from nasx.store.reconnect import Reconnect, for_url

# RDBStorage's methods that reach the database, as Optuna's caching wrapper and studies call them
RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
)


def _retried(name: str):
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        return self.reconnect.call(method, self, *args, **kwargs)

    return call


class ReconnectingStorage(RDBStorage):
    """RDBStorage whose calls wait out the server's absence (for_url(url): one wait and one message per process)."""

    reconnect: Reconnect

    def __init__(self, url: str, **kwargs):
        super().__init__(url, **kwargs)
        self.reconnect = for_url(url)

    def set_trial_state_values(self, trial_id, state, values=None) -> bool:
        tries = 0

        def once() -> bool:
            nonlocal tries
            tries += 1
            try:
                return RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                # tried again after a dropped connection: the first try's commit may have gone through
                if tries > 1 and state.is_finished() and RDBStorage.get_trial(self, trial_id).state == state:
                    return True
                raise

        return self.reconnect.call(once)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = self.reconnect.call(RDBStorage._get_stale_trial_ids, self, study_id)
        return stale + self.reconnect.call(self._never_beaten, study_id)

    def _never_beaten(self, study_id: int) -> list[int]:
        """RUNNING trials without a heartbeat, started more than the grace period ago: their process was killed
        between creating the trial and its first beat (the soak's SIGKILLs found one, RUNNING for good)."""
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        # the creating process's clock, stored as naive UTC (optuna 5's TrialModel)
        cutoff = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=grace)
        session = self.scoped_session()
        try:
            rows = (
                session.query(models.TrialModel.trial_id)
                .outerjoin(
                    models.TrialHeartbeatModel, models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id
                )
                .filter(
                    models.TrialModel.study_id == study_id,
                    models.TrialModel.state == optuna.trial.TrialState.RUNNING,
                    models.TrialHeartbeatModel.trial_heartbeat_id.is_(None),
                    models.TrialModel._datetime_start_utc < cutoff,
                )
                .all()
            )
        finally:
            session.close()
        return [r[0] for r in rows]

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.reconnect.call(RDBStorage.record_heartbeat, self, trial_id)
        except Exception:  # the heartbeat thread's: the trial's own next write reports the error
            pass


for _name in RETRIED:
    setattr(ReconnectingStorage, _name, _retried(_name))
