"""The Optuna study `tune` runs in: a local SQLite file, or any SQLAlchemy URL shared by workers.

Kept free of torch so that opening (and testing) a shared study costs only Optuna's import. With
a shared storage every worker started with the same params joins one study of the same name; the
first ones to meet a fresh database race to create its schema, which `open_storage` absorbs.
"""

from __future__ import annotations

import logging
import os
import random
import time

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from signkd.errors import InputError

ENV = "OPTUNA_STORAGE"
OPEN_ATTEMPTS = 8
log = logging.getLogger(__name__)


class StorageError(InputError, RuntimeError):
    """The storage URL is wrong or its server unreachable; the message shows the URL without password."""


def storage_url(configured: str, local_default: str) -> str:
    """OPTUNA_STORAGE, else the configured URL (tune.storage), else the local default."""
    return os.environ.get(ENV) or configured or local_default


def shown(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return repr(url)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The storage at `url`. Workers meeting a fresh database at the same moment race to create
    its tables and version rows; the loser gets a duplicate-key or already-exists error, waits
    a little and retries, and then finds the schema the winner made."""
    engine_kwargs = {} if url.startswith("sqlite") else {"pool_pre_ping": True}  # servers drop idle links
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as err:
            if attempt == OPEN_ATTEMPTS:
                raise StorageError(f"Optuna storage {shown(url)} could not be initialised: {err.orig or err}") from None
            log.info("Optuna storage %s is being initialised by another worker (%s); retrying", shown(url),
                     type(err.orig or err).__name__)
            time.sleep(0.1 * attempt + 0.2 * random.random())
        except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.OperationalError, ImportError) as err:
            raise StorageError(
                f"cannot open the Optuna storage {shown(url)} (from {ENV} or tune.storage): "
                f"{type(err).__name__}: {str(err).splitlines()[0]}; check the URL and that the database server is "
                "up, and install its driver (pip install 'psycopg[binary]' for postgresql+psycopg://)"
            ) from None
    raise AssertionError("unreachable")


def open_study(name: str, url: str, *, seed: int | None, pruner: optuna.pruners.BasePruner | None = None,
               **tpe_options) -> optuna.Study:
    """Create the study `name` at `url`, or join it if another worker already did (minimising);
    `tpe_options` (e.g. n_startup_trials) go to the TPE sampler."""
    return optuna.create_study(study_name=name, direction="minimize", storage=open_storage(url), pruner=pruner,
                               sampler=optuna.samplers.TPESampler(seed=seed, **tpe_options), load_if_exists=True)
