"""Optuna's RDB storage as a search uses it: every call waits out a database server's restart
(nasx.store.reconnect), and a trial's heartbeat never kills its thread with a traceback. A heartbeat that
cannot be written (the server gone past the wait, SQLite's full disk) is skipped: the trial's own next write
meets the same error and reports it as one line."""

from __future__ import annotations

import functools

import optuna
from optuna.storages import RDBStorage

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
    "_get_stale_trial_ids",
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

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.reconnect.call(RDBStorage.record_heartbeat, self, trial_id)
        except Exception:  # the heartbeat thread's: the trial's own next write reports the error
            pass


for _name in RETRIED:
    setattr(ReconnectingStorage, _name, _retried(_name))
